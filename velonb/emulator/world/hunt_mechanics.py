"""The world's hunt mechanics (:class:`HuntMechanics`, part of ``World``): hunts stored per org,
clients scheduled as they match, changes from ``hunt_update``/``hunt_add`` applied after
``mutation_delay`` (a real server's hunt manager applies them from a queue), and a hunt's
counters kept up to date as its flows finish."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from velonb.emulator.world import flows as F
from velonb.emulator.world import hunts as H
from velonb.emulator.world.model import org_key

if TYPE_CHECKING:
    from velonb.emulator.world.events import EventBus, Scheduler
    from velonb.emulator.world.model import Client

__all__ = ["HuntMechanics", "hunt_account"]


class HuntMechanics:
    """Hunts: stored, started, stopped, joined; mixed into ``World``."""

    if TYPE_CHECKING:
        lock: threading.RLock
        bus: EventBus
        scheduler: Scheduler
        mutation_delay: float
        hunt_client_delay: float
        _hunts: dict[str, dict[str, H.Hunt]]
        _clients: dict[str, dict[str, Client]]

        def clients(self, org_id: str) -> list[Client]: ...

        def flow(self, org_id: str, client_id: str, flow_id: str) -> F.Flow | None: ...

        def launch(self, org_id: str, client_id: str, request: dict[str, Any],
                   params: dict[str, dict[str, str]], *, hunt_id: str = "",
                   delay: float = 0.0) -> F.Flow: ...

    def hunts(self, org_id: str) -> list[H.Hunt]:
        with self.lock:
            return list(self._hunts.get(org_key(org_id), {}).values())

    def hunt(self, org_id: str, hunt_id: str) -> H.Hunt | None:
        with self.lock:
            return self._hunts.get(org_key(org_id), {}).get(hunt_id)

    def add_hunt(self, hunt: H.Hunt, params: dict[str, dict[str, str]]) -> None:
        """Store a new hunt; a RUNNING one schedules its clients now."""
        with self.lock:
            self._hunts.setdefault(hunt.org_id, {})[hunt.hunt_id] = hunt
            hunt.params = params
        self.bus.publish(hunt.org_id, "System.Hunt.Creation",
                         {"Timestamp": int(time.time()), "Hunt": hunt.message()})
        if hunt.state == H.RUNNING:
            self._schedule_hunt(hunt)

    def start_hunt(self, org_id: str, hunt_id: str) -> bool:
        """Start a paused or stopped hunt now (``hunt_update(start=TRUE)`` applies it after
        ``mutation_delay``): RUNNING, a new start time, matching clients scheduled."""
        hunt = self.hunt(org_id, hunt_id)
        if hunt is None:
            return False
        with self.lock:
            if hunt.state == H.RUNNING:
                return True
            hunt.state = H.RUNNING
            hunt.start_time = F.now_us()
        self._schedule_hunt(hunt)
        return True

    def stop_hunt(self, org_id: str, hunt_id: str) -> bool:
        """Stop a hunt now: no client joins it any more; its running flows go on."""
        hunt = self.hunt(org_id, hunt_id)
        if hunt is None:
            return False
        with self.lock:
            hunt.state = H.STOPPED
        return True

    def mutate_later(self, change: Callable[[], Any]) -> None:
        """Apply a hunt mutation after ``mutation_delay`` (the hunt manager's queue)."""
        self.scheduler.call_later(self.mutation_delay, change)

    def schedule_on_client(self, hunt: H.Hunt, client_id: str) -> None:
        """``scheduleHuntOnClient``: launch the hunt's collection on one client whatever the
        hunt's state and condition (``hunt_add``), unless the hunt already ran there."""
        with self.lock:
            client = self._clients.get(hunt.org_id, {}).get(client_id)
            if client is None or client_id in hunt.flows:
                return
            flow_id = H.hunt_flow_id(hunt.hunt_id)
            hunt.record(client_id, flow_id)
            hunt.scheduled += 1
            client.last_hunt_timestamp = hunt.create_time
        request = {**hunt.start_request, "client_id": client_id, "flow_id": flow_id}
        self.launch(hunt.org_id, client_id, request, hunt.params, hunt_id=hunt.hunt_id)

    def assign_flow(self, hunt: H.Hunt, client_id: str, flow_id: str) -> None:
        """``directlyAssignFlow``: an existing flow joins the hunt's table; the hunt counts it
        as scheduled, finished and with results at once, with its rows and bytes so far."""
        flow = self.flow(hunt.org_id, client_id, flow_id)
        if flow is None:
            return
        with self.lock:
            hunt.record(client_id, flow_id, ran=False)
            hunt.scheduled += 1
            hunt.finished += 1
            hunt.with_results += 1
            hunt.collected_rows += sum(s.result_rows for s in flow.query_stats)
            hunt.uploaded_bytes += sum(s.uploaded_bytes for s in flow.query_stats)

    def _schedule_hunt(self, hunt: H.Hunt) -> None:
        """Schedule every matching online client (offline ones never check in); an expired
        hunt takes no more clients."""
        params = hunt.params
        if F.now_us() > hunt.expires:
            return
        for client in self.clients(hunt.org_id):
            with self.lock:
                if not client.online or client.client_id in hunt.flows \
                        or not hunt.matches(client):
                    continue
                if hunt.client_limit and hunt.scheduled >= hunt.client_limit:
                    return
                flow_id = H.hunt_flow_id(hunt.hunt_id)
                hunt.record(client.client_id, flow_id)
                hunt.scheduled += 1
                client.last_hunt_timestamp = hunt.create_time
                delay = self.hunt_client_delay * (hunt.scheduled - 1)
            request = {**hunt.start_request, "client_id": client.client_id,
                       "flow_id": flow_id}
            self.launch(hunt.org_id, client.client_id, request, params, hunt_id=hunt.hunt_id,
                        delay=delay)

    def hunt_flows(self, hunt: H.Hunt) -> Iterator[F.Flow]:
        """The hunt's flows in scheduling order."""
        with self.lock:
            pairs = list(hunt.table)
        for client_id, flow_id in pairs:
            flow = self.flow(hunt.org_id, client_id, flow_id)
            if flow is not None:
                yield flow


def hunt_account(hunt: H.Hunt, flow: F.Flow) -> None:
    """Update a hunt's stats for one finished flow (hunt_dispatcher's flow completion)."""
    rows = sum(s.result_rows for s in flow.query_stats)
    hunt.finished += 1
    if flow.state == F.ERROR:
        hunt.with_errors += 1
    elif rows:
        hunt.with_results += 1
    else:
        hunt.without_results += 1
    hunt.collected_rows += rows
    hunt.uploaded_bytes += sum(s.uploaded_bytes for s in flow.query_stats)
