"""Collections ("flows"): the record the world keeps and the row shapes the server shows for it.

Shapes follow ``flows/proto/artifact_collector.proto`` as rendered by the server:

* ``flows()`` / ``get_flow()`` rows are ``json.ConvertProtoToOrderedDict`` output: every field in
  declaration order, zero values included, enums as names;
* the ``Flow`` column of ``System.Flow.Completion`` is the partial stats context the client flow
  runner writes (``flows/client_flow_runner.go`` FlowStats) encoded by reflection: omitempty and
  the state as an integer (2 FINISHED, 3 ERROR);
* upload metadata rows are what ``client_flow_runner.go`` appends to the flow's upload index;
* ``flow_logs()`` rows are the flow's log result set: for a client flow the JSONL lines the client
  sends (``responder/flow_context.go``: ``client_time`` s, ``level``, ``message``) stored verbatim
  by ``ClientFlowRunner.LogMessage``; for a server flow what ``server_artifacts/logger.go`` writes
  (``Timestamp`` µs, ``Level``, ``message``).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_MAX_UPLOAD_BYTES",
    "STATE_NAMES",
    "Flow",
    "QueryStat",
    "UploadRecord",
    "client_path_components",
    "go_time_string",
    "join_components",
    "request_dict",
    "split_level",
    "summary_request",
    "zero_request",
]

DEFAULT_MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # launcher.go: "Enforce a max upload limit"

UNSET, RUNNING, FINISHED, ERROR, IN_PROGRESS, UNRESPONSIVE, WAITING = 0, 1, 2, 3, 4, 5, 6
STATE_NAMES = {0: "UNSET", 1: "RUNNING", 2: "FINISHED", 3: "ERROR", 4: "IN_PROGRESS",
               5: "UNRESPONSIVE", 6: "WAITING"}
STATUS_OK, STATUS_PROGRESS, STATUS_GENERIC_ERROR = 0, 4, 10
STATUS_NAMES = {0: "OK", 4: "PROGRESS", 10: "GENERIC_ERROR", 11: "UNKNOWN_FLOW"}

_LEVELS = ("DEFAULT", "ERROR", "INFO", "WARN", "DEBUG", "ALERT")
DEFAULT_BATCH_ROWS = 1000  # launcher.go: a collection's MaxRow when the spec sets none
_SPLIT = re.compile(r"[/\\]+")
_DRIVE = re.compile(r"^[a-zA-Z]:")


def now_us() -> int:
    """Epoch microseconds."""
    return time.time_ns() // 1000


def go_time_string(ts: float) -> str:
    """Go ``time.Time.String()`` of a UTC time (fraction trimmed), e.g.
    ``2026-08-21 10:11:12.123456 +0000 UTC``."""
    value = dt.datetime.fromtimestamp(ts, dt.UTC)
    text = f"{value.year:04d}-" + value.strftime("%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def split_level(line: str) -> tuple[str, str]:
    """``logging.SplitIntoLevelAndLog``: a known ``LEVEL:`` prefix, else ``DEFAULT``."""
    head, sep, rest = line.partition(":")
    if sep and head.upper() in _LEVELS:
        return head.upper(), rest
    return "DEFAULT", line


def client_path_components(path: str) -> list[str]:
    """``utils.SplitComponents``: split on / and \\, dropping empty, "." and ".." parts."""
    return [part for part in _SPLIT.split(path) if part not in ("", ".", "..")]


def _escape(component: str) -> str:
    quoted = "/" in component or "\\" in component or '"' in component
    component = component.replace('"', '""')
    return f'"{component}"' if quoted else component


def join_components(components: list[str]) -> str:
    """``utils.JoinComponents(components, "/")`` (leading / unless a drive letter comes first)."""
    if not components:
        return ""
    parts = [] if _DRIVE.match(components[0]) else [""]
    parts.extend(_escape(c) for c in components if c != "")
    return "/".join(parts)


def spec_dict(artifact: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    """An ``ArtifactSpec`` as ConvertProtoToOrderedDict renders it."""
    return {
        "artifact": artifact,
        "parameters": {"env": [{"key": k, "value": v, "comment": ""} for k, v in params]},
        "cpu_limit": 0,
        "max_batch_wait": 0,
        "max_batch_rows": 0,
        "max_batch_rows_buffer": 0,
        "timeout": 0,
    }


def request_dict(*, creator: str, client_id: str, flow_id: str, artifacts: list[str],
                 specs: list[tuple[str, list[tuple[str, str]]]], urgent: bool = False,
                 cpu_limit: float = 0, iops_limit: float = 0, timeout: int = 0,
                 max_rows: int = 0, max_upload_bytes: int = 0,
                 ops_per_second: float = 0) -> dict[str, Any]:
    """An ``ArtifactCollectorArgs`` as ConvertProtoToOrderedDict renders it."""
    return {
        "creator": creator,
        "user_data": "",
        "client_id": client_id,
        "flow_id": flow_id,
        "urgent": urgent,
        "summary": False,
        "artifacts": list(artifacts),
        "specs": [spec_dict(name, params) for name, params in specs],
        "cpu_limit": cpu_limit,
        "iops_limit": iops_limit,
        "progress_timeout": 0,
        "timeout": timeout,
        "max_rows": max_rows,
        "max_logs": 0,
        "max_upload_bytes": max_upload_bytes or DEFAULT_MAX_UPLOAD_BYTES,
        "trace_freq_sec": 0,
        "allow_custom_overrides": False,
        "log_batch_time": 0,
        "compiled_collector_args": [],
        "ops_per_second": ops_per_second,
    }


def omitempty(value: Any) -> Any:
    """Drop zero values from a dict tree (Go reflection JSON with ``omitempty`` tags)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            item = omitempty(item)
            if item is None or item is False or item == "" or item == [] or item == {}:
                continue
            if type(item) in (int, float) and item == 0:
                continue
            out[key] = item
        return out
    if isinstance(value, list):
        return [omitempty(item) for item in value]
    return value


@dataclass
class QueryStat:
    """One ``VeloStatus``: the client's report for one source of one artifact."""

    artifact: str
    name: str  # the result name: "Artifact" or "Artifact/Source"
    query_id: int
    total_queries: int
    status: int = STATUS_PROGRESS
    error_message: str = ""
    duration: int = 0  # ns
    first_active: int = 0  # µs
    last_active: int = 0  # µs
    result_rows: int = 0
    log_rows: int = 0
    uploaded_files: int = 0
    uploaded_bytes: int = 0
    logs: list[str] = field(default_factory=list)  # the query's own lines, "LEVEL:message"

    def count_logs(self, server: bool, batch_rows: int = DEFAULT_BATCH_ROWS) -> int:
        """How many rows this query adds to the flow's log (its ``log_rows``): none while it
        runs (the client sends its logs with the results), then what ``Flow.log_rows``
        yields for it."""
        if self.status == STATUS_PROGRESS:
            return 0
        if server:
            return 2 + len(self.logs)
        parts = -(-self.result_rows // max(batch_rows, 1))
        return 2 + len(self.logs) + parts + (1 if self.uploaded_files else 0)

    def as_dict(self) -> dict[str, Any]:
        """ConvertProtoToOrderedDict form (status as its name)."""
        return {
            "status": STATUS_NAMES[self.status],
            "error_message": self.error_message,
            "backtrace": "",
            "duration": self.duration,
            "last_active": self.last_active,
            "first_active": self.first_active,
            "names_with_response": [self.name] if self.result_rows else [],
            "Artifact": self.artifact,
            "log_rows": self.log_rows,
            "uploaded_files": self.uploaded_files,
            "uploaded_bytes": self.uploaded_bytes,
            "expected_uploaded_bytes": self.uploaded_bytes,
            "result_rows": self.result_rows,
            "query_id": self.query_id,
            "total_queries": self.total_queries,
            "transactions_outstanding": 0,
        }


@dataclass
class UploadRecord:
    """One row of the flow's upload metadata (``uploads()`` builds its row from it)."""

    timestamp: float
    client_path: str
    accessor: str
    components: list[str]  # filestore components, relative to the org
    client_components: list[str]
    size: int

    def row(self) -> dict[str, Any]:
        """The ``uploads()`` row (``vql/server/flows/uploads.go`` readFlowUploads)."""
        upload: dict[str, Any] = {"Path": self.client_path, "Size": self.size}
        if self.size:
            upload["StoredSize"] = self.size
        upload["Components"] = list(self.components)
        upload["Accessor"] = self.accessor
        upload["UploadId"] = 0
        return {
            "Timestamp": int(self.timestamp),
            "started": go_time_string(self.timestamp),
            "vfs_path": "fs:" + join_components(self.components),
            "Type": "",
            "_Components": list(self.components),
            "file_size": self.size,
            "_accessor": self.accessor,
            "_client_components": list(self.client_components),
            "uploaded_size": self.size,
            "client_path": self.client_path,
            "Upload": upload,
        }


RowSource = Callable[[], Iterator[dict[str, Any]]]


@dataclass
class Flow:
    """A collection on one client (or ``server``) and everything it produced."""

    org_id: str
    client_id: str
    session_id: str
    request: dict[str, Any]
    create_time: int  # µs
    hunt_id: str = ""
    state: int = RUNNING
    status: str = ""
    inflight_time: int = 0  # s (UpdateFlowStats compares it with Unix seconds)
    query_stats: list[QueryStat] = field(default_factory=list)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lazy_results: dict[str, RowSource] = field(default_factory=dict)
    uploads: list[UploadRecord] = field(default_factory=list)
    timers: list[int] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def artifacts(self) -> list[str]:
        return list(self.request.get("artifacts", []))

    @property
    def finished(self) -> bool:
        return self.state in (FINISHED, ERROR)

    def result_rows(self, name: str) -> Iterator[dict[str, Any]]:
        """Stored rows of one result set ("Artifact" or "Artifact/Source"); copies."""
        lazy = self.lazy_results.get(name)
        if lazy is not None:
            yield from lazy()
            return
        for row in self.results.get(name, ()):
            yield dict(row)

    def batch_rows(self, artifact: str) -> int:
        """The collection's ``max_batch_rows`` for ``artifact`` (1000 unless its spec says)."""
        for spec in self.request.get("specs", []):
            if spec.get("artifact") == artifact and spec.get("max_batch_rows"):
                return int(spec["max_batch_rows"])
        return DEFAULT_BATCH_ROWS

    def log_rows(self) -> Iterator[dict[str, Any]]:
        """The flow's log result set, in the order it was written (what ``flow_logs()``
        reads); a query adds its lines when it finishes."""
        server = self.client_id == "server"
        for stat in self.query_stats:
            if stat.status == STATUS_PROGRESS:
                continue
            if server:
                yield from self._server_log(stat)
            else:
                yield from self._client_log(stat)

    def _server_log(self, stat: QueryStat) -> Iterator[dict[str, Any]]:
        """``server_artifacts/collection_context.go``: scope.Log lines through the server logger
        (``log.Logger`` adds the newline; the level is split off the text)."""
        creator = self.request.get("creator", "")
        lines = [f"Running query {stat.name} on behalf of user {creator}",
                 f"<green>Starting</> query {stat.name} execution.", *stat.logs]
        for line in lines:
            level, message = split_level(line + "\n")
            yield {"Timestamp": stat.first_active, "Level": level, "message": message}

    def _client_log(self, stat: QueryStat) -> Iterator[dict[str, Any]]:
        """``actions/vql.go`` for one source's query: scope.Log lines end in a newline,
        responder.Log lines (parts, uploads) do not."""
        from velonb.emulator.gojson import dumps
        from velonb.emulator.streaming import go_duration, humanize_bytes

        name = stat.artifact

        def row(when_us: int, level: str, message: str) -> dict[str, Any]:
            return {"client_time": when_us // 1_000_000, "level": level, "message": message}

        yield row(stat.first_active, "INFO", f"Starting query execution for {name}.\n")
        for line in stat.logs:
            yield row(stat.first_active, *split_level(line + "\n"))
        seconds = max(stat.last_active - stat.first_active, 0) // 1_000_000
        parts: list[list[int]] = []  # [JSONL payload bytes, rows] of each part
        batch = self.batch_rows(stat.artifact)
        for index, result in enumerate(self.result_rows(stat.name)):
            if index % batch == 0:
                parts.append([0, 0])
            parts[-1][0] += len(dumps(result).encode()) + 1
            parts[-1][1] += 1
        for part, (size, count) in enumerate(parts):
            yield row(stat.last_active, "DEFAULT",
                      f"{name}: Time {seconds}: {stat.name}: Sending response part {part} "
                      f"{humanize_bytes(size)} ({count} rows).")
        if stat.uploaded_files:
            yield row(stat.last_active, "DEFAULT",
                      f"{name}: Uploaded {stat.uploaded_files} files.")
        yield row(stat.last_active, "INFO",
                  f"Collection {name} is done after {go_duration(stat.duration)}\n")

    def artifacts_with_results(self) -> list[str]:
        names: list[str] = []
        for stat in self.query_stats:
            if stat.result_rows and stat.name not in names:
                names.append(stat.name)
        return names

    def _totals(self) -> dict[str, int]:
        stats = self.query_stats
        completed = sum(1 for s in stats if s.status in (STATUS_OK, STATUS_GENERIC_ERROR))
        return {
            "start_time": min((s.first_active for s in stats), default=0),
            "active_time": max((s.last_active for s in stats), default=0),
            "total_uploaded_files": sum(s.uploaded_files for s in stats),
            "total_expected_uploaded_bytes": sum(s.uploaded_bytes for s in stats),
            "total_uploaded_bytes": sum(s.uploaded_bytes for s in stats),
            "total_collected_rows": sum(s.result_rows for s in stats),
            "total_logs": sum(s.log_rows for s in stats),
            "total_requests": len(stats),
            "outstanding_requests": len(stats) - completed,
            "execution_duration": max((s.duration for s in stats), default=0),
        }

    def row(self, summary: bool = False) -> dict[str, Any]:
        """The ``flows()`` row (ConvertProtoToOrderedDict of ArtifactCollectorContext); with
        ``summary`` the request is the reduced copy kept with the flow record."""
        t = self._totals()
        return {
            "client_id": self.client_id,
            "session_id": self.session_id,
            "request": summary_request(self.request, self.session_id) if summary
            else _copy_request(self.request),
            "previous_flows": [],
            "backtrace": "",
            "create_time": self.create_time,
            "start_time": t["start_time"],
            "active_time": t["active_time"],
            # LoadCollectionContext reads it from the client's in-flight map, which
            # FlowComplete empties
            "inflight_time": 0 if self.finished else self.inflight_time,
            "total_uploaded_files": t["total_uploaded_files"],
            "total_expected_uploaded_bytes": t["total_expected_uploaded_bytes"],
            "total_uploaded_bytes": t["total_uploaded_bytes"],
            "total_collected_rows": t["total_collected_rows"],
            "total_logs": t["total_logs"],
            "total_requests": t["total_requests"],
            "outstanding_requests": t["outstanding_requests"],
            "transactions_outstanding": 0,
            "next_response_id": 0,
            "execution_duration": t["execution_duration"],
            "state": STATE_NAMES[self.state],
            "status": self.status,
            "artifacts_with_results": self.artifacts_with_results(),
            "query_stats": [s.as_dict() for s in self.query_stats],
            "uploaded_files": [],
            "user_notified": False,
            "logs": [],
            "dirty": False,
            "total_loads": 0,
        }

    def context_reflection(self) -> dict[str, Any]:
        """The whole ArtifactCollectorContext as reflection JSON (omitempty, integer enums):
        what an export's ``collection_context.json`` holds."""
        row = self.row()
        row["state"] = self.state
        row["query_stats"] = [{**s.as_dict(), "status": s.status} for s in self.query_stats]
        return omitempty(row)

    def stats_reflection(self) -> dict[str, Any]:
        """The completion event's ``Flow``: the client's partial stats context, reflection JSON
        (omitempty, integer enums)."""
        t = self._totals()
        stats = []
        for s in self.query_stats:
            item = s.as_dict()
            item["status"] = s.status
            stats.append(omitempty(item))
        full = {
            "client_id": self.client_id,
            "session_id": self.session_id,
            "start_time": t["start_time"],
            "active_time": t["active_time"],
            "total_uploaded_files": t["total_uploaded_files"],
            "total_expected_uploaded_bytes": t["total_expected_uploaded_bytes"],
            "total_uploaded_bytes": t["total_uploaded_bytes"],
            "total_collected_rows": t["total_collected_rows"],
            "total_logs": t["total_logs"],
            "total_requests": t["total_requests"],
            "outstanding_requests": t["outstanding_requests"],
            "execution_duration": t["execution_duration"],
            "state": self.state,
            "status": self.status,
            "artifacts_with_results": self.artifacts_with_results(),
        }
        out = omitempty(full)
        if stats:
            out["query_stats"] = stats
        return out

    def completion_event(self) -> dict[str, Any]:
        """The ``System.Flow.Completion`` row (before the queue stamps ``_ts``)."""
        return {
            "Timestamp": int(time.time()),
            "Flow": self.stats_reflection(),
            "FlowId": self.session_id,
            "ClientId": self.client_id,
        }


_SUMMARY_REQUEST_FIELDS = ("creator", "client_id", "artifacts", "urgent", "cpu_limit",
                           "iops_limit", "progress_timeout", "timeout", "max_rows", "max_logs",
                           "max_upload_bytes")


def zero_request() -> dict[str, Any]:
    """An unset ``ArtifactCollectorArgs`` as ConvertProtoToOrderedDict renders it."""
    zero = request_dict(creator="", client_id="", flow_id="", artifacts=[], specs=[])
    zero["max_upload_bytes"] = 0
    return zero


def summary_request(request: dict[str, Any], flow_id: str) -> dict[str, Any]:
    """The request a ``summary=TRUE`` read sees: the reduced copy ``FlowStorageManager.WriteFlow``
    keeps with the flow record (creator, artifacts and limits; no specs), zero values
    elsewhere."""
    zero = zero_request()
    zero.update({key: request[key] for key in _SUMMARY_REQUEST_FIELDS if key in request})
    zero["artifacts"] = list(request.get("artifacts", []))
    zero["flow_id"] = flow_id
    return zero


def _copy_request(request: dict[str, Any]) -> dict[str, Any]:
    out = dict(request)
    out["artifacts"] = list(request.get("artifacts", []))
    out["specs"] = [
        {**spec, "parameters": {"env": [dict(e) for e in spec["parameters"]["env"]]}}
        for spec in request.get("specs", [])
    ]
    out["compiled_collector_args"] = []
    return out
