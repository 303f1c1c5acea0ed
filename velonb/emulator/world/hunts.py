"""Hunts: the record the world keeps and the two ways the server renders it.

* ``hunts()`` rows: ``json.ConvertProtoToOrderedDict(api_proto.Hunt)`` - every field in
  declaration order (``api/proto/hunts.proto``), enums as names, unset messages as default dicts;
* ``hunt().Request``: the ``*api_proto.Hunt`` itself in a row. Member access reads its Go struct
  fields - omitempty, enums as integers, the ``union_field`` oneof as ``UnionField: {Labels|Os:
  ...}`` (golden output ``artifacts/testdata/server/testcases/hunts.out.yaml``) - but the object
  is encoded by the protojson encoder the hunt dispatcher registers for ``*api_proto.Hunt``
  (``json.MarshalHuntProtobuf``: proto names, enum names, 64-bit integers as strings, unset
  fields omitted; golden ``vql/server/hunts/fixtures/TestCreateHunt.golden``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from velonb.emulator.world.flows import omitempty, zero_request
from velonb.emulator.world.model import Client

__all__ = ["HUNT_STATES", "OS_CODES", "Hunt", "ProtoMessage", "hunt_flow_id", "tag_result_row"]

HUNT_STATES = {0: "UNSET", 1: "PAUSED", 2: "RUNNING", 3: "STOPPED", 4: "ARCHIVED", 5: "DELETED"}
PAUSED, RUNNING, STOPPED = 1, 2, 3
OS_CODES = {"windows": 1, "linux": 2, "darwin": 3}  # HuntOsCondition.OS (OSX = 3)
_OS_NAMES = {0: "ALL", 1: "WINDOWS", 2: "LINUX", 3: "OSX"}


class ProtoMessage(dict[str, Any]):
    """A proto message placed in a row: its fields (Go struct reflection) for member access,
    and what the JSON encoder registered for its type writes (`gojson` calls ``go_json``)."""

    def __init__(self, fields: dict[str, Any], encoded: dict[str, Any]) -> None:
        super().__init__(fields)
        self.encoded = encoded

    def go_json(self) -> dict[str, Any]:
        return self.encoded


_U64_REQUEST = ("timeout", "max_rows", "max_logs", "max_upload_bytes", "trace_freq_sec",
                "log_batch_time")
_U64_SPEC = ("max_batch_wait", "max_batch_rows", "max_batch_rows_buffer", "timeout")


def _populated(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """protojson with EmitUnpopulated false: zero scalars and empty lists are left out."""
    return {k: v for k, v in pairs if v not in (None, "", 0, 0.0, False, [], "0")}


def _request_protojson(request: dict[str, Any]) -> dict[str, Any]:
    """``ArtifactCollectorArgs`` as protojson (``compiled_collector_args`` is not modelled)."""
    specs = []
    for spec in request.get("specs", []):
        env = [_populated([("key", e["key"]), ("value", e["value"]),
                           ("comment", e.get("comment", ""))])
               for e in spec.get("parameters", {}).get("env", [])]
        item = _populated([("artifact", spec["artifact"])])
        item["parameters"] = _populated([("env", env)])
        item.update(_populated([("cpu_limit", spec.get("cpu_limit", 0))] +
                               [(k, str(spec.get(k, 0))) for k in _U64_SPEC]))
        specs.append(item)
    return _populated([
        (key, str(request.get(key, 0)) if key in _U64_REQUEST else
         specs if key == "specs" else request.get(key))
        for key in request if key != "compiled_collector_args"])


def tag_result_row(row: dict[str, Any], flow_id: str, client_id: str, org_id: str,
                   fqdn: str) -> dict[str, Any]:
    """``hunt_results()``'s context columns, added as hunts.go does with ordereddict ``Set``,
    which moves a key the row already has (e.g. ``Fqdn``) to the end."""
    for key, value in (("FlowId", flow_id), ("ClientId", client_id), ("_OrgId", org_id),
                       ("Fqdn", fqdn)):
        row.pop(key, None)
        row[key] = value
    return row


def hunt_flow_id(hunt_id: str) -> str:
    """``utils.CreateFlowIdFromHuntId``: every client's flow of H.X is F.X.H."""
    _, _, suffix = hunt_id.partition(".")
    return f"F.{suffix}.H" if suffix else f"F.{hunt_id}"


@dataclass
class Hunt:
    """A hunt in one org."""

    org_id: str
    hunt_id: str
    creator: str
    description: str
    start_request: dict[str, Any]  # ConvertProtoToOrderedDict form of ArtifactCollectorArgs
    create_time: int  # µs
    expires: int  # µs
    state: int
    start_time: int = 0
    tags: list[str] = field(default_factory=list)
    include_labels: list[str] = field(default_factory=list)
    exclude_labels: list[str] = field(default_factory=list)
    os: str = ""  # "", "windows", "linux", "darwin"
    artifact_sources: list[str] = field(default_factory=list)
    org_ids: list[str] = field(default_factory=list)
    client_limit: int = 0
    params: dict[str, dict[str, str]] = field(default_factory=dict)  # artifact -> parameters
    # the hunt ran on these clients: client_id -> flow id (hunt_manager's HUNT_INDEX)
    flows: dict[str, str] = field(default_factory=dict)
    # the hunt's clients table, in append order: scheduled flows, then assigned ones
    # (hunt_add with relaunch or flow_id appends a row, so a client can appear twice)
    table: list[tuple[str, str]] = field(default_factory=list)
    scheduled: int = 0
    with_results: int = 0
    without_results: int = 0
    with_errors: int = 0
    finished: int = 0
    collected_rows: int = 0
    uploaded_bytes: int = 0

    def record(self, client_id: str, flow_id: str, *, ran: bool = True) -> None:
        """Append a row to the hunt's clients table; ``ran`` also marks the hunt as run on the
        client (scheduled flows do, directly assigned ones don't)."""
        self.table.append((client_id, flow_id))
        if ran:
            self.flows[client_id] = flow_id

    @property
    def artifacts(self) -> list[str]:
        return list(self.start_request.get("artifacts", []))

    def matches(self, client: Client) -> bool:
        """The hunt's condition (hunt_manager: OS, or any include label; minus excluded)."""
        labels = {label.lower() for label in client.labels}
        if self.os:
            if client.system != self.os:
                return False
        elif self.include_labels and not labels & {x.lower() for x in self.include_labels}:
            return False
        return not (self.exclude_labels and labels & {x.lower() for x in self.exclude_labels})

    # -- renderings ---------------------------------------------------------------------
    def _condition(self) -> dict[str, Any]:
        return {
            "excluded_labels": {"label": list(self.exclude_labels)},
            "labels": {"label": [] if self.os else list(self.include_labels)},
            "os": {"os": _OS_NAMES[OS_CODES.get(self.os, 0)]},
        }

    def _stats(self) -> dict[str, Any]:
        return {
            "total_clients_scheduled": self.scheduled,
            "total_clients_with_results": self.with_results,
            "total_clients_without_results": self.without_results,
            "total_clients_with_errors": self.with_errors,
            "total_uploaded_bytes": self.uploaded_bytes,
            "total_collected_rows": self.collected_rows,
            "total_finished_clients": self.finished,
            "stopped": self.state == STOPPED,
            "available_downloads": {"files": []},
            "last_client_table_scan": 0,
        }

    def row(self, full_request: bool = True) -> dict[str, Any]:
        """The ``hunts()`` row; without ``full_request`` the start request is the summary the
        dispatcher keeps in memory (``splitHuntObject``: creator, artifacts, summary)."""
        if full_request:
            request = dict(self.start_request)
            request["artifacts"] = list(request["artifacts"])
        else:
            request = zero_request()
            request.update(creator=self.start_request.get("creator", ""),
                           artifacts=self.artifacts, summary=True)
        return {
            "hunt_id": self.hunt_id,
            "version": 0,
            "create_time": self.create_time,
            "creator": self.creator,
            "start_time": self.start_time,
            "expires": self.expires,
            "hunt_description": self.description,
            "tags": list(self.tags),
            "start_request": request,
            "condition": self._condition(),
            "client_limit": self.client_limit,
            "stats": self._stats(),
            "artifacts": self.artifacts,
            "artifact_sources": list(self.artifact_sources),
            "state": HUNT_STATES[self.state],
            "org_ids": list(self.org_ids),
        }

    def message(self) -> ProtoMessage:
        """``hunt().Request`` (and the ``Hunt`` of ``System.Hunt.Creation``): the Hunt proto."""
        return ProtoMessage(self.reflection(), self.protojson())

    def protojson(self) -> dict[str, Any]:
        """The Hunt as ``json.MarshalHuntProtobuf`` writes it."""
        condition: dict[str, Any] = {}
        if self.exclude_labels:
            condition["excluded_labels"] = {"label": list(self.exclude_labels)}
        if self.os:
            condition["os"] = {"os": _OS_NAMES[OS_CODES[self.os]]}
        elif self.include_labels:
            condition["labels"] = {"label": list(self.include_labels)}
        stats = _populated([(k, str(int(v)) if type(v) is int else v)
                            for k, v in self._stats().items() if k != "available_downloads"])
        out = _populated([
            ("hunt_id", self.hunt_id), ("version", "0"), ("create_time", str(self.create_time)),
            ("creator", self.creator), ("start_time", str(self.start_time)),
            ("expires", str(self.expires)), ("hunt_description", self.description),
            ("tags", list(self.tags))])
        out["start_request"] = _request_protojson(self.start_request)
        if condition:
            out["condition"] = condition
        out.update(_populated([("client_limit", str(self.client_limit))]))
        out["stats"] = stats
        out.update(_populated([("artifacts", self.artifacts),
                               ("artifact_sources", list(self.artifact_sources)),
                               ("state", HUNT_STATES[self.state] if self.state else ""),
                               ("org_ids", list(self.org_ids))]))
        return out

    def reflection(self) -> dict[str, Any]:
        """The Hunt proto's Go struct fields (omitempty, integer enums)."""
        out: dict[str, Any] = {
            "hunt_id": self.hunt_id,
            "create_time": self.create_time,
            "creator": self.creator,
            "start_time": self.start_time,
            "expires": self.expires,
            "hunt_description": self.description,
            "tags": list(self.tags),
            "start_request": omitempty(self.start_request),
        }
        out = omitempty(out)
        condition: dict[str, Any] = {}
        if self.exclude_labels:
            condition["excluded_labels"] = {"label": list(self.exclude_labels)}
        if self.os:
            condition["UnionField"] = {"Os": {"os": OS_CODES[self.os]}}
        elif self.include_labels:
            condition["UnionField"] = {"Labels": {"label": list(self.include_labels)}}
        if condition:
            out["condition"] = condition
        stats = omitempty({k: v for k, v in self._stats().items()
                           if k != "available_downloads"})
        out["stats"] = stats
        out["artifacts"] = self.artifacts
        if self.artifact_sources:
            out["artifact_sources"] = list(self.artifact_sources)
        out["state"] = self.state
        if self.org_ids:
            out["org_ids"] = list(self.org_ids)
        return out
