"""Hunts: the object ``create_hunt()`` and ``hunt()`` return, and its controls.

A hunt's results, flows and progress are read with one query each. Its controls (``start``,
``stop``, ``update``, ``add``) call the server's ``hunt_update()`` and ``hunt_add()``; the server
applies such changes later, through its hunt manager's queue, so each control then re-reads the
hunt until the change shows (``timeout`` seconds at most, then :class:`WaitTimeout`).
``wait()`` re-reads the hunt's counters (one small query every 0.5-2 s) rather than watching
completion events, so it costs the same for ten clients or ten thousand.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from velonb.fleet_errors import (
    CollectionFailedWarning,
    FleetError,
    UnknownHuntError,
    WaitInterrupted,
    WaitTimeout,
)
from velonb.fleet_flows import Flow, _checked, _mb, _Reporter, resolve_result
from velonb.fleet_model import (
    Client,
    DryRun,
    expiry_time,
    from_micros,
    records,
    type_columns,
)

if TYPE_CHECKING:
    import os

    import pandas as pd

    from velonb.exports import ExportedZip
    from velonb.fleet import FleetMixin

__all__ = ["CHANGE_TIMEOUT_S", "Hunt", "HuntProgress"]

#: how long a hunt control waits for the server to show its change
CHANGE_TIMEOUT_S = 30.0

HUNT_VQL = "SELECT * FROM hunts(hunt_id=HuntId)"
HUNT_RESULTS_VQL = "SELECT * FROM hunt_results(hunt_id=HuntId, artifact=ResultName)"
HUNT_FLOWS_VQL = "SELECT * FROM hunt_flows(hunt_id=HuntId)"
# hunt_update()'s arguments, each sent only when used (the server reads "" and a zero time as
# "leave it"): the keyword names come from this table, every value is bound
_UPDATE_ARGS = {"start": "Start", "stop": "Stop", "description": "Description",
                "expires": "Expires", "add_labels": "AddLabels", "del_labels": "DelLabels"}
HUNT_ADD_VQL = ("SELECT hunt_add(hunt_id=HuntId, client_id=ClientId, relaunch=Relaunch) AS Value "
                "FROM scope()")


def _update_vql(used: Sequence[str]) -> str:
    args = ", ".join(f"{name}={_UPDATE_ARGS[name]}" for name in used)
    return f"SELECT hunt_update(hunt_id=HuntId, {args}) AS Value FROM scope()"  # noqa: S608


@dataclass
class HuntProgress:
    """A hunt's counters (from ``hunts()`` stats)."""

    state: str
    scheduled: int
    finished: int
    with_results: int
    without_results: int
    with_errors: int
    rows: int
    uploaded_bytes: int

    @property
    def outstanding(self) -> int:
        return max(self.scheduled - self.finished, 0)


@dataclass(eq=False)
class Hunt:
    """A hunt in one org. ``vql`` shows how it was created (VQL and bindings)."""

    _conn: FleetMixin = field(repr=False)
    hunt_id: str
    org_id: str = ""
    description: str = ""
    state: str = ""
    artifacts: list[str] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict, repr=False)
    vql: DryRun | None = field(default=None, repr=False)

    def _env(self) -> dict[str, Any]:
        return {"HuntId": self.hunt_id}

    def _update(self, row: dict[str, Any]) -> None:
        self.row = row
        self.state = str(row.get("state") or "")
        self.description = str(row.get("hunt_description") or "")
        self.artifacts = list(row.get("artifacts") or [])

    def refresh(self) -> Hunt:
        """Read the hunt's state, description, counters and tags from the server."""
        rows = records(_checked(self._conn, HUNT_VQL, self._env(), self.org_id,
                                "reading a hunt").frame)
        if not rows:
            raise UnknownHuntError(f"no hunt {self.hunt_id} in org {self.org_id or 'root'}",
                                   hint="list them with conn.hunts()")
        self._update(rows[0])
        return self

    def progress(self) -> HuntProgress:
        """Scheduled, finished, with results/errors, rows and bytes so far."""
        self.refresh()
        stats = self.row.get("stats") or {}
        return HuntProgress(
            state=self.state,
            scheduled=int(stats.get("total_clients_scheduled") or 0),
            finished=int(stats.get("total_finished_clients") or 0),
            with_results=int(stats.get("total_clients_with_results") or 0),
            without_results=int(stats.get("total_clients_without_results") or 0),
            with_errors=int(stats.get("total_clients_with_errors") or 0),
            rows=int(stats.get("total_collected_rows") or 0),
            uploaded_bytes=int(stats.get("total_uploaded_bytes") or 0))

    def flows(self) -> pd.DataFrame:
        """One row per scheduled client: ClientId, FlowId, state, status, rows."""
        import pandas as pd

        out = []
        for row in records(_checked(self._conn, HUNT_FLOWS_VQL, self._env(), self.org_id,
                                    "listing hunt flows").frame):
            flow = row.get("Flow") or {}
            out.append({"client_id": row.get("ClientId"), "flow_id": row.get("FlowId"),
                        "state": flow.get("state"), "status": flow.get("status"),
                        "rows": flow.get("total_collected_rows"),
                        "uploaded_bytes": flow.get("total_uploaded_bytes")})
        return pd.DataFrame(out, columns=["client_id", "flow_id", "state", "status", "rows",
                                          "uploaded_bytes"])

    def results(self, artifact: str | None = None, source: str | None = None, *,
                cache: bool | str | None = None) -> pd.DataFrame:
        """Every client's rows of one result set (+ FlowId, ClientId, _OrgId, Fqdn), typed.

        ``cache`` uses the Parquet cache; a STOPPED hunt's results are cached without expiry.
        """
        if not self.artifacts:
            self.refresh()
        name, types = resolve_result(self._conn, self.artifacts, artifact, source, self.org_id)
        policy: bool | str | None = cache
        if cache not in (None, False) and self.state in ("STOPPED", "ARCHIVED"):
            policy = True
        result = _checked(self._conn, HUNT_RESULTS_VQL, {**self._env(), "ResultName": name},
                          self.org_id, "reading hunt results", cache=policy)
        return type_columns(result.frame.copy(), types)

    def export(self, dest: str | os.PathLike[str], *, format: str = "json",
               only_combined: bool = False, password: str | None = None,
               chunk_size: int | None = None, progress: Any = None) -> ExportedZip:
        """Have the server zip the hunt (every client's rows combined with FlowId, ClientId
        and Fqdn, then each collection unless ``only_combined``) and download the zip into
        ``dest``, size and SHA-256 verified (see :mod:`velonb.exports`)."""
        from velonb.download import CHUNK_SIZE
        from velonb.exports import export_hunt

        return export_hunt(self._conn, self.hunt_id, dest, format=format,  # type: ignore[arg-type]
                           only_combined=only_combined, password=password, org_id=self.org_id,
                           chunk_size=chunk_size or CHUNK_SIZE, progress=progress)

    def wait(self, timeout: float | None = 600, *, clients: int | None = None,
             progress: bool = True) -> Hunt:
        """Wait until every client scheduled so far has finished its collection and, when
        ``clients`` is given, at least that many have (clients join a running hunt as they
        check in: pass the number you expect, e.g. those online). Shows progress. A paused or
        stopped hunt with nothing outstanding returns at once. ``timeout`` seconds at most
        (None: no limit), then :class:`WaitTimeout`; Ctrl-C raises :class:`WaitInterrupted`.
        Either way the hunt goes on."""
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        reporter = _Reporter(progress)
        pause = 0.5
        try:
            while True:
                now = self.progress()
                reporter.show(_hunt_progress_text(self.hunt_id, now, clients, started))
                answered = now.scheduled > 0 and now.outstanding == 0 and (
                    clients is None or now.finished >= clients)
                if answered or (now.state != "RUNNING" and now.outstanding == 0):
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    wanted = f" (of {clients} expected)" if clients is not None else ""
                    raise WaitTimeout(
                        f"hunt {self.hunt_id}: {now.finished} of {now.scheduled} scheduled "
                        f"clients finished{wanted} after {timeout:g}s",
                        hint="the hunt goes on: hunt.wait() waits again, hunt.flows() shows "
                             "who is outstanding, hunt.stop() takes no more clients")
                time.sleep(pause if remaining is None else min(pause, remaining))
                pause = min(pause * 1.5, 2.0)
        except KeyboardInterrupt as err:
            if isinstance(err, WaitInterrupted):
                raise
            raise WaitInterrupted(f"stopped waiting; hunt {self.hunt_id} goes on on the server",
                                  hint="resume with hunt.wait(); hunt.stop() takes no more "
                                       "clients") from None
        finally:
            reporter.finish()
        if now.with_errors:
            warnings.warn(f"hunt {self.hunt_id}: {now.with_errors} client(s) failed their "
                          "collection (hunt.flows() has each status)", CollectionFailedWarning,
                          stacklevel=2)
        return self

    # -- controls ------------------------------------------------------------------------

    @property
    def expires(self) -> dt.datetime | None:
        return from_micros(self.row.get("expires"))

    @property
    def tags(self) -> list[str]:
        return list(self.row.get("tags") or [])

    def start(self, *, timeout: float = CHANGE_TIMEOUT_S) -> Hunt:
        """Start a paused hunt, or restart a stopped one (needs START_HUNT): clients matching
        its condition join as they check in; a restart does not run it twice on a client.
        Returns once the server shows it RUNNING. An expired hunt is refused: extend it first
        with ``update(expires=...)``."""
        self.refresh()
        if self.state == "RUNNING":
            return self
        expires = self.expires
        if expires is not None and expires <= dt.datetime.now(dt.UTC):
            raise FleetError(f"hunt {self.hunt_id} expired at {expires:%Y-%m-%d %H:%M} UTC: a "
                             "started hunt would take no client",
                             hint="extend it first: hunt.update(expires='7d'), then start()")
        self._send_update({"start": True}, "starting a hunt")
        return self._until(lambda: self.state == "RUNNING", "RUNNING", timeout)

    def stop(self, *, timeout: float = CHANGE_TIMEOUT_S) -> Hunt:
        """Stop the hunt (needs START_HUNT): no more clients join it; collections already
        running finish, and their results stay. Returns once the server shows it STOPPED."""
        self.refresh()
        if self.state == "STOPPED":
            return self
        self._send_update({"stop": True}, "stopping a hunt")
        return self._until(lambda: self.state == "STOPPED", "STOPPED", timeout)

    def update(self, *, description: str | None = None,
               expires: dt.datetime | dt.timedelta | float | str | None = None,
               add_tags: str | Sequence[str] = (), remove_tags: str | Sequence[str] = (),
               timeout: float = CHANGE_TIMEOUT_S) -> Hunt:
        """Change the description, the expiry (a datetime or a duration from now such as
        ``'7d'``) or the tags (the GUI's hunt labels; case-insensitive) (needs START_HUNT).
        Returns once the server shows every change."""
        added = [add_tags] if isinstance(add_tags, str) else list(add_tags)
        removed = [remove_tags] if isinstance(remove_tags, str) else list(remove_tags)
        if description is None and expires is None and not added and not removed:
            raise ValueError("nothing to update: pass description=, expires=, add_tags= or "
                             "remove_tags=")
        if description is not None and not description.strip():
            raise ValueError("the server keeps the old description when given an empty one")
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = description
        when = None
        if expires is not None:
            when = expiry_time(expires)
            if when <= dt.datetime.now(dt.UTC):
                raise ValueError(f"expiry {when:%Y-%m-%d %H:%M} UTC is in the past")
            values["expires"] = when
        if added or removed:
            values.update(add_labels=added, del_labels=removed)
        self.refresh()
        wanted_tags = {t.lower() for t in self.tags} | {t.lower() for t in added}
        wanted_tags -= {t.lower() for t in removed}
        self._send_update(values, "updating a hunt")

        def shown() -> bool:
            expiry = self.expires
            return ((description is None or self.description == description)
                    and (when is None or (expiry is not None
                                          and abs((expiry - when).total_seconds()) < 1))
                    and ((not added and not removed)
                         or {t.lower() for t in self.tags} == wanted_tags))

        return self._until(shown, "updated", timeout)

    def add(self, client: str | Client, *, relaunch: bool = False,
            timeout: float = CHANGE_TIMEOUT_S) -> Flow:
        """Add one client (id, hostname or :class:`Client`) to the hunt, whatever its
        condition or state (needs START_HUNT), and return the client's :class:`Flow` of it.
        A client the hunt already ran on keeps its collection unless ``relaunch``, which
        collects the hunt's artifacts there again in a new flow. An offline client's
        collection waits until it checks in."""
        client_id = self._conn._client_id(client, self.org_id)
        if client_id == "server":
            raise FleetError("the server cannot take part in a hunt",
                             hint="collect server artifacts with conn.collect('server', ...)")
        if not relaunch:
            existing = self._flow_of(client_id)
            if existing is not None:
                return existing.refresh()
        env = {**self._env(), "ClientId": client_id, "Relaunch": bool(relaunch)}
        result = _checked(self._conn, HUNT_ADD_VQL, env, self.org_id, "adding a client to a hunt")
        rows = records(result.frame)
        value = rows[0].get("Value") if rows else None
        if not value:
            raise FleetError(f"the server did not add {client_id} to hunt {self.hunt_id}",
                             hint=_server_said(result))
        if relaunch:
            return Flow(self._conn, client_id, str(value), self.org_id).refresh()
        found: list[Flow] = []

        def joined() -> bool:
            flow = self._flow_of(client_id)
            if flow is not None:
                found.append(flow)
            return flow is not None

        self._until(joined, f"joined by {client_id}", timeout, refresh=False)
        return found[-1].refresh()

    def _flow_of(self, client_id: str) -> Flow | None:
        """The client's latest flow in the hunt's table, or None."""
        rows = records(_checked(self._conn, HUNT_FLOWS_VQL, self._env(), self.org_id,
                                "listing hunt flows").frame)
        flow_ids = [r.get("FlowId") for r in rows if r.get("ClientId") == client_id]
        if not flow_ids:
            return None
        return Flow(self._conn, client_id, str(flow_ids[-1]), self.org_id)

    def _send_update(self, values: dict[str, Any], what: str) -> None:
        """Call hunt_update() with ``values``; a NULL answer raises with the server's log."""
        env = {**self._env(), **{_UPDATE_ARGS[k]: v for k, v in values.items()}}
        result = _checked(self._conn, _update_vql(list(values)), env, self.org_id, what)
        rows = records(result.frame)
        if not rows or rows[0].get("Value") is None:
            raise FleetError(f"the server refused {what} ({self.hunt_id})",
                             hint=_server_said(result))

    def _until(self, done: Callable[[], bool], what: str, timeout: float, *,
               refresh: bool = True) -> Hunt:
        """Re-read the hunt until ``done()`` (the server applies hunt changes from a queue)."""
        deadline = time.monotonic() + max(timeout, 0)
        pause = 0.1
        while True:
            if refresh:
                self.refresh()
            if done():
                return self
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"hunt {self.hunt_id} is not {what} after {timeout:g}s (it is {self.state}); "
                    "the server has the request and applies it from its hunt manager's queue",
                    hint="look again later with hunt.refresh()")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def __repr__(self) -> str:
        return (f"<Hunt {self.hunt_id} {','.join(self.artifacts)}: {self.state} "
                f"{self.description!r}>")


def _hunt_progress_text(hunt_id: str, now: HuntProgress, clients: int | None,
                        started: float) -> str:
    wanted = f" (waiting for {clients})" if clients is not None else ""
    errors = f" · {now.with_errors} failed" if now.with_errors else ""
    return (f"hunt {hunt_id} {now.state}: {now.finished} of {now.scheduled} scheduled clients "
            f"finished{wanted}{errors} · {now.rows} rows · {_mb(now.uploaded_bytes)} uploaded · "
            f"{time.monotonic() - started:.0f}s (Ctrl-C stops waiting, not the hunt)")


def _server_said(result: Any) -> str:
    lines = [line.message for line in result.logs]
    return "server log: " + ("; ".join(lines) if lines else "(nothing)")
