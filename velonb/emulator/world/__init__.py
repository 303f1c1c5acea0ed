"""The simulated deployment behind the emulator: orgs, clients, artifacts, flows, hunts, events.

    world = World(seed=7)                      # the demo fleet with its planted incident
    emu = Emulator(users=..., world=world)     # plugins like clients() now see it

``World`` owns the mechanics (collections finishing after ``flow_delay`` seconds, hunts scheduling
matching clients every ``hunt_client_delay`` seconds, hunt changes applied ``mutation_delay``
seconds after ``hunt_update``/``hunt_add``, ``System.Flow.Completion`` events, uploads written
into the emulator's file store); the data comes from ``fleet``, ``catalog`` and
``results``.  Everything is thread-safe: queries run concurrently.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from velonb.emulator.world import flows as F
from velonb.emulator.world import hunts as H
from velonb.emulator.world.events import EventBus, Scheduler
from velonb.emulator.world.hunt_mechanics import HuntMechanics, hunt_account
from velonb.emulator.world.model import (
    ROOT_ORG,
    ROOT_ORG_NAME,
    ArtifactDefinition,
    Client,
    CollectionOutput,
    Source,
    org_key,
)

if TYPE_CHECKING:
    from velonb.emulator.filestore import FileStore
    from velonb.emulator.vql.registry import Registry

__all__ = ["World"]

PICKUP_DELAY = 0.1  # s before an online client picks a new collection up
# s before a hunt change (hunt_update, hunt_add) shows: the server applies them later, through
# its hunt manager's queue, so clients must not expect them in the next query
MUTATION_DELAY = 0.05
_BUILTIN_EVENTS = {  # artifacts every server has, needed by watch_monitoring()
    "System.Flow.Completion": "client_event",
    "System.Hunt.Creation": "internal",
    "System.Hunt.Participation": "internal",
    "Server.Internal.ArtifactModification": "internal",
}


def _id(prefix: str, rng: random.Random, when: float | None = None) -> str:
    """``F.``/``H.`` + 13 base32hex chars of (4 bytes big-endian time, 4 random bytes)."""
    raw = int(time.time() if when is None else when).to_bytes(4, "big") + rng.randbytes(4)
    return prefix + base64.b32hexencode(raw).decode("ascii")[:13]


class World(HuntMechanics):
    """The simulated fleet and server state (see module docstring)."""

    def __init__(self, seed: int = 7, *, now: dt.datetime | None = None,
                 flow_delay: float = 0.0, hunt_client_delay: float = 0.0,
                 large_hunt_rows: int = 0, pickup_delay: float = PICKUP_DELAY,
                 mutation_delay: float = MUTATION_DELAY, _empty: bool = False) -> None:
        from velonb.emulator.world import catalog, fleet

        self.seed = seed
        self._fixed_now = now
        self.now = now or dt.datetime.now(dt.UTC)
        self.flow_delay = flow_delay
        self.hunt_client_delay = hunt_client_delay
        self.pickup_delay = pickup_delay
        self.mutation_delay = mutation_delay
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.bus = EventBus()
        self.scheduler = Scheduler()
        self.filestore: FileStore | None = None
        self.acl: Any = None
        self.orgs: dict[str, str] = {ROOT_ORG: ROOT_ORG_NAME} if _empty else dict(fleet.ORGS)
        self.catalog: dict[str, ArtifactDefinition] = catalog.build_catalog()
        for name, kind in _BUILTIN_EVENTS.items():
            self.catalog.setdefault(name, ArtifactDefinition(name, kind, sources=[Source()]))
        self._ids: set[str] = set()
        self._clients: dict[str, dict[str, Client]] = {org: {} for org in self.orgs}
        if not _empty:
            for client in fleet.build_fleet(seed, self.now):
                self._clients.setdefault(client.org_id, {})[client.client_id] = client
                if not client.last_interrogate_flow_id and "Generic.Client.Info" in self.catalog:
                    # the enrolment interrogation (its flow is materialised on first use)
                    client.last_interrogate_flow_id = self.new_id("F.", client.first_seen_at)
                    client.last_interrogate_artifact_name = "Generic.Client.Info"
        self._flows: dict[tuple[str, str], dict[str, F.Flow]] = {}
        # collections whose client went offline before finishing: (flow, parameters)
        self._parked: list[tuple[F.Flow, dict[str, dict[str, str]]]] = []
        self._hunts: dict[str, dict[str, H.Hunt]] = {}
        # how far behind the clock each connected client's last poll stays (real clients poll
        # every few seconds to a minute; the server's last_seen_at moves with them)
        built = time.time()
        self._poll_lag: dict[str, float] = {
            c.client_id: built - c.last_seen_at / 1e6
            for org in self._clients.values() for c in org.values() if c.online}
        self.server_metadata: dict[str, dict[str, str]] = {}  # org -> the server's metadata
        self._pending_files: list[tuple[list[str], bytes]] = []
        # prepared exports: (org, client, flow) -> {file name: ContainerStats}
        self.exports: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
        self._history_done: set[tuple[str, str]] = set()
        self._registry: Registry | None = None
        self._registry_size = (0, 0)
        self.encoded_cache: dict[tuple[str, str, str], Any] = {}
        self.large_hunt_id = ""
        if large_hunt_rows > 0:
            from velonb.emulator.world.plugins_fast import create_large_hunt

            self.large_hunt_id = create_large_hunt(self, large_hunt_rows)

    @classmethod
    def empty(cls, **kw: Any) -> World:
        """A deployment with no clients, flows or hunts (the artifact catalog is still there)."""
        return cls(_empty=True, **kw)

    # -- wiring -------------------------------------------------------------------------
    def attach(self, filestore: FileStore, acl: Any = None) -> None:
        """Write uploads into ``filestore`` from now on (and any written before)."""
        with self.lock:
            self.filestore = filestore
            self.acl = acl
            pending, self._pending_files = self._pending_files, []
        for components, data in pending:
            filestore.put(components, data)

    @property
    def registry(self) -> Registry:
        """The VQL function/plugin tables with the world's plugins added."""
        from velonb.emulator.vql.registry import DEFAULT_REGISTRY
        from velonb.emulator.world.plugins import WORLD_REGISTRY

        size = (len(DEFAULT_REGISTRY.functions), len(DEFAULT_REGISTRY.plugins))
        if self._registry is None or self._registry_size != size:  # builtins added later
            merged = DEFAULT_REGISTRY.copy()
            merged.functions.update(WORLD_REGISTRY.functions)
            merged.plugins.update(WORLD_REGISTRY.plugins)
            self._registry, self._registry_size = merged, size
        return self._registry

    def fast_statement(self, statement: Any, scope: Any) -> Any:
        """Pre-encoded result rows for a statement the fast path can serve, else None
        (``streaming.QueryStream`` asks before running a statement)."""
        if not self.large_hunt_id:
            return None
        from velonb.emulator.world.plugins_fast import fast_statement

        return fast_statement(self, statement, scope)

    def close(self) -> None:
        """Stop the clock (pending completions never happen)."""
        self.scheduler.close()

    def current_time(self) -> dt.datetime:
        """``now`` for generated content: the fixed time if one was given, else the clock."""
        return self._fixed_now or dt.datetime.now(dt.UTC)

    def new_id(self, prefix: str, when: float | None = None) -> str:
        """A fresh, unique flow (``F.``) or hunt (``H.``) id (``when``: its time, default now)."""
        with self.lock:
            while True:
                new = _id(prefix, self.rng, when)
                if new not in self._ids:
                    self._ids.add(new)
                    return new

    # -- clients ------------------------------------------------------------------------
    def clients(self, org_id: str) -> list[Client]:
        with self.lock:
            found = list(self._clients.get(org_key(org_id), {}).values())
            for client in found:
                self._poll(client)
            return found

    def client(self, org_id: str, client_id: str) -> Client | None:
        with self.lock:
            client = self._clients.get(org_key(org_id), {}).get(client_id)
            if client is not None:
                self._poll(client)
            return client

    def _poll(self, client: Client) -> None:
        """A connected client keeps polling: its last_seen_at follows the clock (lock held)."""
        if client.online and self._fixed_now is None:
            lag = self._poll_lag.get(client.client_id, 5.0)
            client.last_seen_at = max(client.last_seen_at, int((time.time() - lag) * 1e6))

    def definition(self, name: str) -> ArtifactDefinition | None:
        """The artifact named ``name`` ("Name/Source" resolves to Name, as the repository)."""
        return self.catalog.get(name.split("/", 1)[0] if name.count("/") == 1 else name)

    # -- flows --------------------------------------------------------------------------
    def flows(self, org_id: str, client_id: str) -> list[F.Flow]:
        """The client's flows, oldest first."""
        self._ensure_history(org_key(org_id), client_id)
        with self.lock:
            return list(self._flows.get((org_key(org_id), client_id), {}).values())

    def flow(self, org_id: str, client_id: str, flow_id: str) -> F.Flow | None:
        self._ensure_history(org_key(org_id), client_id)
        with self.lock:
            return self._flows.get((org_key(org_id), client_id), {}).get(flow_id)

    def launch(self, org_id: str, client_id: str, request: dict[str, Any],
               params: dict[str, dict[str, str]], *, hunt_id: str = "",
               delay: float = 0.0) -> F.Flow:
        """Record a new collection (``request`` from ``flows.request_dict``) and set it going:
        an online client picks it up after ``pickup_delay`` and finishes ``flow_delay`` later;
        an offline one never does."""
        org_id = org_key(org_id)
        flow = F.Flow(org_id, client_id, request["flow_id"], request, F.now_us(),
                      hunt_id=hunt_id)
        with self.lock:
            self._flows.setdefault((org_id, client_id), {})[flow.session_id] = flow
            client = self._clients.get(org_id, {}).get(client_id)
        if client_id == "server" or (client is not None and client.online):
            start = delay + self.pickup_delay
            complete = functools.partial(self._complete, flow, params)
            if client_id == "server" and any(
                    (d := self.definition(a)) is not None and not d.built_in
                    for a in flow.artifacts):
                # a custom server artifact runs real VQL, which may block (watch_monitoring):
                # in a thread of its own, not on the clock every collection shares
                complete = functools.partial(_in_thread, complete, f"flow-{flow.session_id}")
            flow.timers.append(self.scheduler.call_later(start, lambda: self._pickup(flow)))
            flow.timers.append(self.scheduler.call_later(start + self.flow_delay, complete))
        return flow

    def wait_flow(self, flow: F.Flow, timeout: float = 10.0) -> bool:
        """Block until ``flow`` finished (tests); False on timeout."""
        return flow.done.wait(timeout)

    def _pickup(self, flow: F.Flow) -> None:
        with self.lock:
            if flow.finished:
                return
            flow.inflight_time = int(time.time())
            flow.state = F.IN_PROGRESS
            client = self._clients.get(flow.org_id, {}).get(flow.client_id)
            if client is not None:
                client.in_flight_flows[flow.session_id] = int(time.time())
            self._init_stats(flow, F.now_us())

    def _init_stats(self, flow: F.Flow, now: int) -> None:
        """One in-progress query status per (artifact, source) of the collection."""
        names = [(a, n) for a in flow.artifacts
                 for n in (self.catalog[a].result_names() if a in self.catalog else [a])]
        flow.query_stats = [
            F.QueryStat(a, n, i + 1, len(names), first_active=now, last_active=now)
            for i, (a, n) in enumerate(names)]

    def _collect(self, flow: F.Flow, artifact: str,
                 params: dict[str, str]) -> CollectionOutput:
        from velonb.emulator.world import results

        now = self.current_time()
        defn = self.definition(artifact)
        if defn is None:
            return CollectionOutput(error=f"Unknown artifact {artifact}")
        if flow.client_id == "server":
            if not defn.built_in:
                from velonb.emulator.world.server_artifacts import run_custom_server_artifact

                return run_custom_server_artifact(self, flow, defn, params)
            return results.server_rows(defn, params, now=now)
        client = self.client(flow.org_id, flow.client_id)
        assert client is not None
        return results.collect(client, defn, params, seed=self.seed, now=now)

    def set_online(self, org_id: str, client_id: str, online: bool) -> None:
        """Take a client off the network or bring it back (fault injection).

        A collection whose client drops before finishing stays IN_PROGRESS, as on a real server
        (the client has not reported back); it completes once the client is online again.
        """
        org = org_key(org_id)
        with self.lock:
            client = self._clients.get(org, {}).get(client_id)
            if client is None:
                raise KeyError(f"no client {client_id} in org {org}")
            client.online = online
            if not online:
                return
            client.last_seen_at = int(time.time() * 1_000_000)
            waiting = [p for p in self._parked if (p[0].org_id, p[0].client_id) == (org, client_id)]
            self._parked = [p for p in self._parked if p not in waiting]
        for flow, params in waiting:
            flow.timers.append(self.scheduler.call_later(
                self.flow_delay, functools.partial(self._complete, flow, params)))

    def _complete(self, flow: F.Flow, params: dict[str, dict[str, str]]) -> None:
        if flow.finished:
            return
        client = None if flow.client_id == "server" else self.client(flow.org_id, flow.client_id)
        if client is not None and not client.online:
            with self.lock:
                self._parked.append((flow, params))  # finishes when the client is back
            return
        if not flow.query_stats:
            self._pickup(flow)
        outputs: list[tuple[str, CollectionOutput]] = []
        for artifact in flow.artifacts:
            try:
                out = self._collect(flow, artifact, params.get(artifact, {}))
            except Exception as err:  # a data bug becomes a failed collection, as on a client
                error = f"{type(err).__name__}: {err}"
                out = CollectionOutput(logs=[f"ERROR:{artifact}: {error}"], error=error)
            outputs.append((artifact, out))
        end = F.now_us()
        with self.lock:
            if flow.finished:  # cancelled meanwhile
                return
            self._apply(flow, outputs, end)
            client = self._clients.get(flow.org_id, {}).get(flow.client_id)
            if client is not None:
                client.in_flight_flows.pop(flow.session_id, None)
            hunt = self._hunts.get(flow.org_id, {}).get(flow.hunt_id)
            if hunt is not None:
                hunt_account(hunt, flow)
        self.bus.publish(flow.org_id, "System.Flow.Completion", flow.completion_event(),
                         client_id=flow.client_id)
        flow.done.set()

    def _apply(self, flow: F.Flow, outputs: list[tuple[str, CollectionOutput]],
               end: int) -> None:
        """Store a finished collection's results, uploads and stats (lock held)."""
        by_artifact = dict(outputs)
        flow.state = F.FINISHED
        for stat in flow.query_stats:
            out = by_artifact.get(stat.artifact, CollectionOutput())
            rows = [dict(r) for r in out.results.get(stat.name, [])]
            flow.results[stat.name] = rows
            stat.result_rows = len(rows)
            stat.last_active = end
            stat.duration = max(end - stat.first_active, 1) * 1000 + 7919 * (len(rows) + 1)
            first_of_artifact = stat.query_id == min(
                s.query_id for s in flow.query_stats if s.artifact == stat.artifact)
            stat.logs = list(out.source_logs.get(stat.name, ()))
            if first_of_artifact:
                stat.logs[:0] = out.logs
                for upload in out.uploads:
                    record = self._store_upload(flow, upload.client_path, upload.accessor,
                                                upload.data)
                    stat.uploaded_files += 1
                    stat.uploaded_bytes += record.size
            if out.error:
                stat.status = F.STATUS_GENERIC_ERROR
                stat.error_message = out.error
                if flow.state != F.ERROR:
                    flow.state = F.ERROR
                    flow.status = out.error
            else:
                stat.status = F.STATUS_OK
            stat.log_rows = stat.count_logs(flow.client_id == "server",
                                            flow.batch_rows(stat.artifact))

    def _store_upload(self, flow: F.Flow, client_path: str, accessor: str,
                      data: bytes) -> F.UploadRecord:
        client_components = F.client_path_components(client_path)
        components = ["clients", flow.client_id, "collections", flow.session_id, "uploads",
                      accessor or "file", *client_components]
        record = F.UploadRecord(time.time(), client_path, accessor or "file", components,
                                client_components, len(data))
        flow.uploads.append(record)
        self.store_file(flow.org_id, components, data)
        return record

    def _org_path(self, org_id: str, components: list[str]) -> list[str]:
        org_id = org_key(org_id)
        return list(components) if org_id == ROOT_ORG else ["orgs", org_id, *components]

    def store_file(self, org_id: str, components: list[str], data: bytes) -> None:
        """Write a file into the org's file store (kept until `attach` when there is none)."""
        full = self._org_path(org_id, components)
        if self.filestore is not None:
            self.filestore.put(full, data)
        else:
            self._pending_files.append((full, data))

    def read_file(self, org_id: str, components: list[str]) -> bytes | None:
        """A file of the org's file store, or None."""
        full = self._org_path(org_id, components)
        if self.filestore is not None:
            return self.filestore.get(full)
        return next((data for path, data in reversed(self._pending_files) if path == full), None)

    def cancel_flow(self, org_id: str, client_id: str, flow_id: str, username: str) -> bool:
        """``launcher.CancelFlow``: whatever its state, the flow becomes ERROR."""
        flow = self.flow(org_id, client_id, flow_id)
        if flow is None:
            return False
        with self.lock:
            for token in flow.timers:
                self.scheduler.cancel(token)
            flow.state = F.ERROR
            status = f"Cancelled by {username}"
            flow.status = f"{status}: {flow.status}" if flow.status else status
            client = self._clients.get(flow.org_id, {}).get(client_id)
            if client is not None:
                client.in_flight_flows.pop(flow_id, None)
        flow.done.set()
        return True

    def _ensure_history(self, org_id: str, client_id: str) -> None:
        """Materialise the client's enrolment interrogation (``last_interrogate_flow_id``)."""
        key = (org_id, client_id)
        if key in self._history_done:
            return
        with self.lock:
            if key in self._history_done:
                return
            self._history_done.add(key)
            client = self._clients.get(org_id, {}).get(client_id)
            if client is None or not client.last_interrogate_flow_id:
                return
            fid = client.last_interrogate_flow_id
            request = F.request_dict(creator="", client_id=client_id, flow_id=fid,
                                     artifacts=["Generic.Client.Info"], specs=[])
            flow = F.Flow(org_id, client_id, fid, request, client.first_seen_at * 1_000_000)
            self._flows.setdefault(key, {})[fid] = flow
        self._init_stats(flow, flow.create_time + 150_000)
        self._complete_now(flow)
        for stat in flow.query_stats:
            stat.last_active = flow.create_time + 2_400_000
            stat.duration = 2_250_000_000

    def _complete_now(self, flow: F.Flow) -> None:
        """Finish ``flow`` synchronously without publishing (history)."""
        outputs = []
        for artifact in flow.artifacts:
            try:
                outputs.append((artifact, self._collect(flow, artifact, {})))
            except Exception as err:
                outputs.append((artifact, CollectionOutput(error=str(err))))
        with self.lock:
            self._apply(flow, outputs, F.now_us())
        flow.done.set()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no completion is pending (tests)."""
        deadline = time.monotonic() + timeout
        while self.scheduler.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def __repr__(self) -> str:
        count = sum(len(c) for c in self._clients.values())
        return f"World(seed={self.seed}, orgs={len(self.orgs)}, clients={count})"


def _in_thread(work: Callable[[], None], name: str) -> None:
    threading.Thread(target=work, name=name, daemon=True).start()
