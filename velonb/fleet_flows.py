"""Flows: the objects ``collect()`` returns, and waiting for them (hunts: fleet_hunts).

Waiting never sleeps-and-polls: it runs short windows of one query that first reads the pending
flows' state (``flows()``) and then blocks on ``watch_monitoring('System.Flow.Completion')`` for
their completion events. A completion ends the window at once; the next window's state read
picks up the final record. Because every window starts with a state read, a completion that
happened between two windows (or before the first) is never missed. The watch ends at the first
event (``LIMIT 1``: the server ships a statement's last batch at once, not after its 1 s batch
timer). Windows grow from 0.5 s to :data:`WAIT_WINDOW_S` seconds, which is also how often
progress (state, rows, uploaded bytes) refreshes and how soon Ctrl-C / the timeout are noticed.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from velonb.errors import VQLRuntimeError
from velonb.fleet_errors import (
    CollectionFailedWarning,
    FleetError,
    UnknownFlowError,
    WaitInterrupted,
    WaitTimeout,
    permission_error,
)
from velonb.fleet_model import DryRun, from_micros, records, type_columns

if TYPE_CHECKING:
    import os

    import pandas as pd

    from velonb.exports import ExportedZip
    from velonb.fleet import FleetMixin
    from velonb.query import QueryResult

__all__ = ["FINAL_STATES", "WAIT_WINDOW_S", "Flow", "wait_for"]

FINAL_STATES = ("FINISHED", "ERROR")
WAIT_WINDOW_S = 2.0
_STATE_NAMES = {0: "UNSET", 1: "RUNNING", 2: "FINISHED", 3: "ERROR", 4: "IN_PROGRESS",
                5: "UNRESPONSIVE", 6: "WAITING"}

WAIT_VQL = """\
SELECT *, 'state' AS Kind
FROM foreach(row=Pending, query={ SELECT * FROM flows(client_id=ClientId, flow_id=FlowId) })
SELECT 'event' AS Kind, ClientId, FlowId
FROM watch_monitoring(artifact='System.Flow.Completion')
WHERE FlowId IN PendingIds
LIMIT 1
"""
FLOW_VQL = "SELECT * FROM flows(client_id=ClientId, flow_id=FlowId)"
CANCEL_VQL = "SELECT cancel_flow(client_id=ClientId, flow_id=FlowId) AS Cancelled FROM scope()"
UPLOADS_VQL = "SELECT * FROM uploads(client_id=ClientId, flow_id=FlowId)"
LOGS_VQL = "SELECT * FROM flow_logs(client_id=ClientId, flow_id=FlowId)"
SOURCE_VQL = "SELECT * FROM source(client_id=ClientId, flow_id=FlowId, artifact=ResultName)"
SOURCE_COUNT_VQL = ("SELECT * FROM source(client_id=ClientId, flow_id=FlowId, artifact=ResultName, "
                    "count=Count)")
_LOG_TIME_COLUMNS = {"client_time": "timestamp", "_ts": "timestamp", "Timestamp": "timestamp"}


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 100_000 else f"{nbytes / 1e3:.1f} kB"


def resolve_result(conn: FleetMixin, artifacts: Sequence[str], artifact: str | None,
                   source: str | None, org_id: str) -> tuple[str, dict[str, str]]:
    """The result set name ("A" or "A/S") and its column types for results(artifact, source)."""
    if artifact and "/" in artifact and not source:
        artifact, source = artifact.split("/", 1)
    if artifact is None and source and len(artifacts) == 1:
        artifact = artifacts[0]
    if artifact is None:
        infos = [conn.artifact(name, org_id=org_id) for name in artifacts]
        names = [n for info in infos for n in info.result_names]
        if len(names) != 1:
            raise FleetError(f"this collection has several result sets: {', '.join(names)}",
                             hint="pick one: results('Artifact/Source') or "
                                  "results(artifact=..., source=...)")
        name = names[0]
        info = infos[0] if len(infos) == 1 else next(
            i for i in infos if name in i.result_names)
        return name, info.column_types
    info = conn.artifact(artifact, org_id=org_id)
    named = [s for s in info.sources if s]
    if source:
        if named and source not in named:
            raise FleetError(f"{artifact} has no source {source!r}",
                             hint=f"its sources: {', '.join(named)}")
        return f"{info.name}/{source}", info.column_types
    if len(named) > 1:
        raise FleetError(f"{artifact} has several sources: {', '.join(named)}",
                         hint=f"pass source=, e.g. source={named[0]!r}")
    return (f"{info.name}/{named[0]}" if named else info.name), info.column_types


class _Reporter:
    """The live progress line while waiting (notebook display, stderr line, or nothing)."""

    def __init__(self, enabled: bool) -> None:
        self._impl: Any = None
        if not enabled:
            return
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:  # pragma: no cover - IPython is a dependency
            shell = None
        if getattr(shell, "kernel", None) is not None:
            mode = "notebook"
        elif sys.stderr.isatty():
            mode = "terminal"
        else:
            return
        from velonb.display import ProgressReporter

        self._impl = ProgressReporter(shell, mode)

    def show(self, text: str) -> None:
        if self._impl is not None:
            self._impl.show(text)

    def finish(self) -> None:
        if self._impl is not None:
            self._impl.finish()


def _progress_text(flows: Sequence[Flow], started: float) -> str:
    rows = sum(f.rows for f in flows)
    uploaded = sum(f.uploaded_bytes for f in flows)
    if len(flows) == 1:
        f = flows[0]
        head = f"{f.flow_id} on {f.hostname or f.client_id}: {f.state}"
    else:
        counts: dict[str, int] = {}
        for f in flows:
            counts[f.state] = counts.get(f.state, 0) + 1
        head = f"{len(flows)} flows: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return (f"{head} · {rows} rows · {_mb(uploaded)} uploaded · "
            f"{time.monotonic() - started:.0f}s (Ctrl-C stops waiting, not the collection)")


def wait_for(flows: Sequence[Flow], *, timeout: float | None, progress: bool) -> None:
    """Wait until every flow is FINISHED or ERROR (see the module docstring)."""
    if not flows:
        return
    conn, org_id = flows[0]._conn, flows[0].org_id
    pending = {f.flow_id: f for f in flows if not f.done}
    started = time.monotonic()
    deadline = started + timeout if timeout else None
    reporter = _Reporter(progress)
    rounds = 0
    try:
        while pending:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                still = [f for f in flows if not f.done]
                raise WaitTimeout(
                    f"{len(still)} collection(s) not finished after {timeout}s: "
                    + ", ".join(f"{f.flow_id} on {f.hostname or f.client_id} ({f.state})"
                                for f in still),
                    flows=flows,
                    hint="they keep running on the server: flow.wait() waits again "
                         "(err.flows has them), flow.cancel() stops one")
            # short first windows: a completion racing the subscription costs little
            window = min(WAIT_WINDOW_S, 0.5 * 2 ** rounds)
            rounds += 1
            if remaining is not None:
                window = min(window, remaining)
            env = {"Pending": [{"ClientId": f.client_id, "FlowId": f.flow_id}
                               for f in pending.values()],
                   "PendingIds": list(pending)}
            for frame in conn.stream(WAIT_VQL, env=env, org_id=org_id, duration=window):
                event = False
                for row in records(frame):
                    flow = pending.get(str(row.get("FlowId") or row.get("session_id") or ""))
                    if flow is None:
                        continue
                    if row.get("Kind") == "state":
                        flow._update(row)
                        if flow.done:
                            del pending[flow.flow_id]
                    else:
                        event = True
                reporter.show(_progress_text(flows, started))
                if event or not pending:
                    break
    except KeyboardInterrupt as err:
        if isinstance(err, WaitInterrupted):
            raise
        still = [f for f in flows if not f.done]
        raise WaitInterrupted(
            "stopped waiting; the collection(s) go on on the server: "
            + ", ".join(f"{f.flow_id} on {f.hostname or f.client_id}" for f in still),
            flows=flows,
            hint="resume with flow.wait() (err.flows holds the Flow objects), or "
                 "conn.flow(client, flow_id).wait(); flow.cancel() stops a collection") from None
    finally:
        reporter.finish()
    for flow in flows:
        if flow.state == "ERROR":
            warnings.warn(f"collection {flow.flow_id} on {flow.hostname or flow.client_id} "
                          f"failed: {flow.status}", CollectionFailedWarning, stacklevel=3)


def _checked(conn: FleetMixin, vql: str, env: dict[str, Any], org_id: str, what: str,
             **kwargs: Any) -> QueryResult:
    """Run ``vql`` strictly; a permission failure names the permission."""
    try:
        return conn.execute(vql, env=env, org_id=org_id, strict=True, **kwargs)
    except VQLRuntimeError as err:
        messages = [line.message for line in (err.result.errors if err.result else [])]
        denied = permission_error(messages or [str(err)], conn.config.user, what)
        if denied is not None:
            raise denied from None
        raise


@dataclass(eq=False)
class Flow:
    """One collection on one client. ``vql`` shows how it was launched (VQL and bindings)."""

    _conn: FleetMixin = field(repr=False)
    client_id: str
    flow_id: str
    org_id: str = ""
    hostname: str = ""
    artifacts: list[str] = field(default_factory=list)
    state: str = "UNSET"
    status: str = ""
    row: dict[str, Any] = field(default_factory=dict, repr=False)
    vql: DryRun | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def rows(self) -> int:
        return int(self.row.get("total_collected_rows") or 0)

    @property
    def uploaded_bytes(self) -> int:
        return int(self.row.get("total_uploaded_bytes") or 0)

    @property
    def uploaded_files(self) -> int:
        return int(self.row.get("total_uploaded_files") or 0)

    @property
    def created(self) -> Any:
        return from_micros(self.row.get("create_time"))

    def _env(self) -> dict[str, Any]:
        return {"ClientId": self.client_id, "FlowId": self.flow_id}

    def _update(self, row: dict[str, Any]) -> None:
        self.row = {k: v for k, v in row.items() if k != "Kind"}
        state = row.get("state", self.state)
        self.state = _STATE_NAMES.get(state, str(state)) if isinstance(state, int) else str(state)
        self.status = str(row.get("status") or "")
        request = row.get("request") or {}
        if request.get("artifacts"):
            self.artifacts = list(request["artifacts"])

    def refresh(self) -> Flow:
        """Read the flow's current state, counters and status from the server."""
        result = _checked(self._conn, FLOW_VQL, self._env(), self.org_id, "reading a flow")
        rows = records(result.frame)
        if not rows:
            raise UnknownFlowError(f"no flow {self.flow_id} on client {self.client_id}",
                                   hint="check the ids with conn.flows(client)")
        self._update(rows[0])
        return self

    def wait(self, timeout: float | None = 600, *, progress: bool = True) -> Flow:
        """Wait until the flow is FINISHED or ERROR (Ctrl-C stops waiting, not the flow)."""
        wait_for([self], timeout=timeout, progress=progress)
        return self

    def cancel(self) -> Flow:
        """Cancel the collection (it ends in ERROR, "Cancelled by ..."); needs COLLECT_CLIENT."""
        _checked(self._conn, CANCEL_VQL, self._env(), self.org_id, "cancelling a flow")
        return self.refresh()

    def logs(self) -> pd.DataFrame:
        """The collection's log (``flow_logs()``), times as UTC datetimes.

        A client flow's log has ``client_time``, ``level`` and ``message``; a server flow's
        ``Timestamp``, ``Level`` and ``message``. The newline Go's logger ends some messages
        with is dropped. Servers without ``flow_logs()`` give each source's status instead.
        """
        import pandas as pd

        try:
            frame = _checked(self._conn, LOGS_VQL, self._env(), self.org_id,
                             "reading flow logs").frame
        except VQLRuntimeError as err:
            if "flow_logs" not in str(err) or "not found" not in str(err):
                raise
        else:
            if "message" in frame.columns:
                frame["message"] = frame["message"].str.removesuffix("\n")
            return type_columns(frame, _LOG_TIME_COLUMNS)
        if not self.row:
            self.refresh()
        stats = self.row.get("query_stats") or []
        return pd.DataFrame([{
            "Artifact": s.get("Artifact", ""), "status": s.get("status", ""),
            "error_message": s.get("error_message", ""), "log_rows": s.get("log_rows", 0),
            "result_rows": s.get("result_rows", 0)} for s in stats])

    def results(self, artifact: str | None = None, source: str | None = None, *,
                max_rows: int | None = None,
                cache: bool | str | None = None) -> pd.DataFrame:
        """The rows of one result set, typed with the artifact's column types.

        With one artifact of one source no argument is needed; else name it (``"A/Source"``,
        or ``artifact=``/``source=``). ``cache`` uses the Parquet cache: a FINISHED flow's
        results never change, so they are cached without expiry.
        """
        name, types = resolve_result(self._conn, self.artifacts, artifact, source, self.org_id)
        env: dict[str, Any] = {**self._env(), "ResultName": name}
        if max_rows is not None:
            env["Count"] = int(max_rows)
        policy: bool | str | None = cache
        if cache not in (None, False) and self.state == "FINISHED":
            policy = True
        result = _checked(self._conn, SOURCE_VQL if max_rows is None else SOURCE_COUNT_VQL,
                          env, self.org_id, "reading results", cache=policy)
        return type_columns(result.frame.copy(), types)

    def uploads(self) -> pd.DataFrame:
        """The files the collection uploaded (``uploads()`` rows)."""
        return _checked(self._conn, UPLOADS_VQL, self._env(), self.org_id,
                        "listing uploads").frame

    def download(self, dest: str | os.PathLike[str], *, chunk_size: int | None = None,
                 progress: Any = None) -> pd.DataFrame:
        """Download every upload into ``dest`` (resumable; see :mod:`velonb.download`)."""
        import pandas as pd

        from velonb.download import CHUNK_SIZE, download_uploads

        rows = records(self.uploads())
        files = download_uploads(self._conn, rows, dest, org_id=self.org_id,  # type: ignore[arg-type]
                                 chunk_size=chunk_size or CHUNK_SIZE, progress=progress)
        return pd.DataFrame([vars(f) for f in files],
                            columns=["client_path", "path", "size", "resumed_from", "skipped"])

    def export(self, dest: str | os.PathLike[str], *, format: str = "json",
               expand_sparse: bool = False, name: str | None = None,
               password: str | None = None, chunk_size: int | None = None,
               progress: Any = None) -> ExportedZip:
        """Have the server zip the whole collection (results, log, uploads) and download the
        zip into ``dest``, size and SHA-256 verified (see :mod:`velonb.exports`).
        ``format``: ``json``, ``csv`` (both) or ``csv_only``; ``password`` encrypts it."""
        from velonb.download import CHUNK_SIZE
        from velonb.exports import export_flow

        return export_flow(self._conn, self.client_id, self.flow_id, dest,  # type: ignore[arg-type]
                           format=format, expand_sparse=expand_sparse, name=name,
                           password=password, org_id=self.org_id,
                           chunk_size=chunk_size or CHUNK_SIZE, progress=progress)

    def __repr__(self) -> str:
        where = self.hostname or self.client_id
        extra = f", status={self.status!r}" if self.status else ""
        return (f"<Flow {self.flow_id} on {where} {','.join(self.artifacts)}: {self.state}, "
                f"{self.rows} rows{extra}>")
