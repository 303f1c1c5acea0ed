"""The world's VQL plugins and functions, part 2: collections and their results.

``collect_client`` (vql/server/flows/create.go + services/launcher), ``flows``, ``get_flow``,
``cancel_flow`` (vql/server/flows/flows.go), ``source`` (results.go), ``uploads`` (uploads.go),
``flow_logs`` (logs.go), ``monitoring`` and ``watch_monitoring`` (monitoring.go).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from velonb.emulator.vql.functions import time_from_any
from velonb.emulator.vql.protocols import to_bool
from velonb.emulator.vql.registry import Arg, VQLCallError, function, permission_error, plugin
from velonb.emulator.vql.scope import Scope
from velonb.emulator.world import flows as F
from velonb.emulator.world.plugins import (
    WORLD_REGISTRY,
    check,
    client_error,
    known_client,
    world_of,
)

if TYPE_CHECKING:
    from velonb.emulator.world import World
    from velonb.emulator.world.model import ArtifactDefinition

_R = WORLD_REGISTRY
_CLIENT_ID = re.compile(r"^(C\.[a-z0-9]+|server)")
_EVENT_TYPES = ("client_event", "server_event", "internal")


def _perms(scope: Scope, org_id: str) -> frozenset[str] | None:
    """The caller's permissions in another org (None: same as the scope's)."""
    world = world_of(scope)
    if org_id in ("", scope.org_id) or world.acl is None:
        return None
    return frozenset(world.acl.permissions(scope.principal, org_id))


def _has(scope: Scope, perms: frozenset[str] | None, name: str) -> bool:
    if perms is None:
        return scope.has_permission(name)
    return scope.principal == "VelociraptorServer" or name in perms


def spec_parameters(scope: Scope, world: World, spec: dict[str, Any], perms: frozenset[str]
                    | None) -> list[tuple[str, list[tuple[str, str]]]]:
    """``collector.AddSpecProtobuf``: validate a {Artifact: {param: value}} spec and turn its
    declared parameters into strings by parameter type."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for name, values in spec.items():
        defn = world.definition(name)
        if defn is None:
            raise VQLCallError(
                f"Parameter refers to an unknown artifact ({name}). The parameter should be of "
                'the form {"Custom.Artifact.Name":{"arg":"value"}}')
        needed = "COLLECT_CLIENT" if defn.type in ("client", "client_event") else "COLLECT_SERVER"
        if not _has(scope, perms, needed):
            raise VQLCallError(f"Permission denied: {needed}")
        params: list[tuple[str, str]] = []
        if not isinstance(values, dict):
            out.append((name, params))
            continue
        for p in defn.parameters:
            if p.name not in values:
                continue
            value = values[p.name]
            text = _param_text(scope, p.type, p.name, value, p.choices)
            if text is not None:
                params.append((p.name, text))
        out.append((name, params))
    return out


def _param_text(scope: Scope, kind: str, name: str, value: Any,
                choices: list[str]) -> str | None:
    is_str = isinstance(value, str)
    if kind in ("", "string", "regex", "choices"):
        if not is_str:
            scope.log(f"Parameter {name} should be a string")
            return None
        if kind == "choices" and value not in choices:
            scope.log(f"Invalid choice for parameter {name}: {value}")
        return str(value)
    if kind in ("int", "int64"):
        from velonb.emulator.vql.gofmt import go_value

        return str(value) if is_str else go_value(value)
    if kind == "bool":
        if is_str:
            return "Y" if value in ("Y", "TRUE", "true", "True") else ""
        return "Y" if to_bool(scope, value) else ""
    if kind == "timestamp" and not is_str and value is not None:
        when = time_from_any(scope, value)
        if when is None:
            scope.log(f"Invalid timestamp for {name}")
            return None
        return F.go_time_string(when.timestamp())
    if kind in ("json", "json_array") and not is_str:
        return json.dumps(value, indent=1, default=str)
    return value if is_str else json.dumps(value, default=str)


def check_collect(scope: Scope, perms: frozenset[str] | None, defn: ArtifactDefinition,
                  client_id: str) -> None:
    """``launcher.CheckAccess``: COLLECT_BASIC for basic artifacts, else COLLECT_CLIENT
    (COLLECT_SERVER for the server), then the artifact's required permissions."""
    if _has(scope, perms, "COLLECT_BASIC") and defn.basic:
        pass
    else:
        needed = "COLLECT_SERVER" if client_id == "server" else "COLLECT_CLIENT"
        if not _has(scope, perms, needed) and not (
                defn.basic and _has(scope, perms, "COLLECT_BASIC")):
            raise VQLCallError(f"PermissionDenied: User {scope.principal} is not allowed to "
                               f"launch flows {needed}.")
    for perm in defn.required_permissions:
        if not _has(scope, perms, perm):
            raise VQLCallError(f"PermissionDenied: While collecting artifact ({defn.name}) "
                               f"permission denied {perm}")


def _dict_arg(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


@function("collect_client", Arg("client_id", "str", required=True), Arg("flow_id", "str"),
          Arg("artifacts", "list_str", required=True), Arg("env", "dict"), Arg("spec", "dict"),
          Arg("timeout", "int"), Arg("ops_per_sec", "float"), Arg("cpu_limit", "float"),
          Arg("iops_limit", "float"), Arg("max_rows", "int"), Arg("max_bytes", "int"),
          Arg("urgent", "bool"), Arg("org_id", "str"), registry=_R)
def collect_client(scope: Scope, args: dict[str, Any]) -> object:
    """Launch an artifact collection against a client."""
    world = world_of(scope)
    spec = args.get("spec")
    artifacts = list(args.get("artifacts") or [])
    if spec and not artifacts:
        artifacts = list(spec)
    if not artifacts:
        raise VQLCallError("no artifacts to collect!")
    org_id = args.get("org_id") or scope.org_id
    if org_id not in ("", "root") and org_id not in world.orgs:
        raise VQLCallError("Org not found")
    perms = _perms(scope, org_id)
    client_id = args["client_id"]
    if not client_id:
        raise VQLCallError("ClientId not provided")
    if not _CLIENT_ID.match(client_id):
        raise VQLCallError("ClientId is not valid")
    if spec is None:
        env = args.get("env")
        spec = {name: _dict_arg(env) for name in artifacts} if env is not None else {}
    specs = spec_parameters(scope, world, _dict_arg(spec), perms)
    for name in artifacts:
        defn = world.definition(name)
        if defn is None:
            raise VQLCallError(f"Unknown artifact {name}")
        check_collect(scope, perms, defn, client_id)
    if not known_client(world, org_id, client_id):
        raise VQLCallError(client_error(client_id))
    flow_id = args.get("flow_id") or world.new_id("F.")
    request = F.request_dict(
        creator=scope.principal, client_id=client_id, flow_id=flow_id, artifacts=artifacts,
        specs=specs, urgent=bool(args.get("urgent")), cpu_limit=args.get("cpu_limit", 0),
        iops_limit=args.get("iops_limit", 0), timeout=args.get("timeout", 0),
        max_rows=args.get("max_rows", 0), max_upload_bytes=args.get("max_bytes", 0),
        ops_per_second=args.get("ops_per_sec", 0))
    world.launch(org_id, client_id, request, {name: dict(p) for name, p in specs})
    return {"flow_id": flow_id, "request": request}


@plugin("flows", Arg("client_id", "str", required=True), Arg("flow_id", "str"),
        Arg("summary", "bool"), permissions=("READ_RESULTS",), registry=_R)
def flows_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the flows launched on each client."""
    world = world_of(scope)
    client_id = args["client_id"]
    if not known_client(world, scope.org_id, client_id):
        scope.log(f"flows: unable to get client {client_id}: {client_error(client_id)}")
        return
    summary = bool(args.get("summary"))
    if args.get("flow_id"):
        flow = world.flow(scope.org_id, client_id, args["flow_id"])
        if flow is not None:
            yield {**flow.row(summary), "AvailableDownloads": _downloads(scope, flow, summary)}
        return
    for flow in world.flows(scope.org_id, client_id):
        if scope.cancelled:
            return
        yield flow.row(summary)


def _downloads(scope: Scope, flow: F.Flow, summary: bool) -> dict[str, Any] | None:
    """``AvailableDownloads`` (reflection JSON, omitempty): the flow's prepared zip exports
    (``create_flow_download``); ``summary`` skips the lookup and leaves it nil (``null``)."""
    if summary:
        return None
    from velonb.emulator.world.exports import available_downloads

    return available_downloads(world_of(scope), (scope.org_id, flow.client_id,
                                                 flow.session_id))


@function("get_flow", Arg("client_id", "str", required=True), Arg("flow_id", "str"),
          Arg("summary", "bool"), registry=_R)
def get_flow(scope: Scope, args: dict[str, Any]) -> object:
    """Gets flow details."""
    check(scope, "COLLECT_SERVER" if args["client_id"] == "server" else "COLLECT_CLIENT")
    flow_id = args.get("flow_id", "")
    flow = world_of(scope).flow(scope.org_id, args["client_id"], flow_id)
    if flow is None:
        raise VQLCallError(f"Flow not found: {flow_id} in client '{args['client_id']}'")
    summary = bool(args.get("summary"))
    return {**flow.row(summary), "AvailableDownloads": _downloads(scope, flow, summary)}


@function("cancel_flow", Arg("client_id", "str", required=True), Arg("flow_id", "str"),
          registry=_R)
def cancel_flow(scope: Scope, args: dict[str, Any]) -> object:
    """Cancels the flow (it ends in ERROR, status "Cancelled by VQL query")."""
    check(scope, "COLLECT_SERVER" if args["client_id"] == "server" else "COLLECT_CLIENT")
    flow_id = args.get("flow_id", "")
    if not flow_id or not args["client_id"]:
        return {"flow_id": ""}
    world_of(scope).cancel_flow(scope.org_id, args["client_id"], flow_id, "VQL query")
    return {"flow_id": flow_id}


# -- source(): vql/server/flows/results.go ------------------------------------------------
_SOURCE_ARGS = (
    Arg("client_id", "str"), Arg("flow_id", "str"), Arg("hunt_id", "str"),
    Arg("artifact", "str"), Arg("source", "str"), Arg("start_time"), Arg("end_time"),
    Arg("notebook_id", "str"), Arg("notebook_cell_id", "str"),
    Arg("notebook_cell_version", "str"), Arg("notebook_cell_table", "int"),
    Arg("start_row", "int"), Arg("count", "int"), Arg("orgs", "list_str"),
)


def _scope_str(scope: Scope, name: str) -> str:
    value, present = scope.resolve(name)
    return value if present and isinstance(value, str) else ""


def _scope_int(scope: Scope, name: str) -> int:
    value, present = scope.resolve(name)
    return value if present and type(value) is int else 0


def _from_scope(scope: Scope, args: dict[str, Any]) -> None:
    """``ParseSourceArgsFromScope`` (StartTime/EndTime never are: nil != "" in Go)."""
    for arg, var in (("client_id", "ClientId"), ("flow_id", "FlowId"),
                     ("artifact", "ArtifactName"), ("notebook_id", "NotebookId"),
                     ("notebook_cell_id", "NotebookCellId"), ("hunt_id", "HuntId")):
        if not args.get(arg):
            args[arg] = _scope_str(scope, var)
    for arg, var in (("notebook_cell_table", "NotebookCellTable"), ("start_row", "StartRow"),
                     ("count", "Limit")):
        if not args.get(arg):
            args[arg] = _scope_int(scope, var)


def _artifact_type(world: World, name: str) -> str:
    defn = world.definition(name)
    if defn is None:
        raise VQLCallError(f"Artifact {name} not known")
    return defn.type


@plugin("source", free_form=True, registry=_R)
def source(scope: Scope, raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve rows from stored result sets (its own permission check and argument parsing,
    as results.go does them in that order)."""
    if not scope.has_permission("READ_RESULTS"):  # results.go logs it as "uploads:"
        scope.log(f"uploads: {permission_error(('READ_RESULTS',))}")
        return
    from velonb.emulator.vql.registry import ArgError, parse_args

    try:
        args = parse_args(scope, _SOURCE_ARGS, raw)
    except ArgError as err:
        scope.log(f"source: {err}")
        return
    world = world_of(scope)
    if "notebook_id" in raw:
        scope.log(f"source: Notebook {args.get('notebook_id', '')} not found")
        return
    _from_scope(scope, args)
    artifact = args.get("artifact", "")
    if not artifact:
        scope.log("source: source: One of artifact, flow_id, hunt_id, notebook_id should be "
                  "specified.")
        return
    if args.get("source"):
        artifact = f"{artifact}/{args['source']}"
    if args.get("hunt_id"):
        from velonb.emulator.world.plugins_hunts import hunt_results_rows

        yield from hunt_results_rows(scope, args["hunt_id"], artifact, "", args.get("orgs"))
        return
    try:
        kind = _artifact_type(world, artifact)
    except VQLCallError as err:
        scope.log(f"source: {err}")
        return
    client_id = args.get("client_id", "")
    if kind in ("client_event", "server_event"):
        if kind == "server_event":
            client_id = "server"
        elif not client_id:
            scope.log(f"source: Artifact {artifact} is a client event artifact, therefore a "
                      "client id is required.")
            return
        yield from monitoring_rows(scope, client_id, artifact, args.get("start_time"),
                                   args.get("end_time"), args.get("start_row", 0))
        return
    if not args.get("flow_id") or not client_id:
        scope.log("source: source: client_id and flow_id should be specified for non event "
                  "artifacts.")
        return
    flow = world.flow(scope.org_id, client_id, args["flow_id"])
    if flow is None:
        return
    start, limit, count = args.get("start_row", 0), args.get("count", 0), 0
    for index, row in enumerate(flow.result_rows(artifact)):
        if index < start:
            continue
        if (limit > 0 and count >= limit) or scope.cancelled:
            return
        count += 1
        yield row


# -- uploads(): vql/server/flows/uploads.go -----------------------------------------------
@plugin("uploads", Arg("client_id", "str"), Arg("flow_id", "str"), Arg("hunt_id", "str"),
        Arg("notebook_id", "str"), permissions=("READ_RESULTS",), registry=_R)
def uploads(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve information about a flow's uploads."""
    world = world_of(scope)
    merged = {"client_id": _scope_str(scope, "ClientId"), "flow_id": _scope_str(scope, "FlowId"),
              "hunt_id": _scope_str(scope, "HuntId")}
    merged.update({k: v for k, v in args.items() if k in merged})
    if not merged["hunt_id"]:
        flow = world.flow(scope.org_id, merged["client_id"], merged["flow_id"])
        for record in flow.uploads if flow is not None else ():
            yield record.row()
        return
    hunt = world.hunt(scope.org_id, merged["hunt_id"])
    if hunt is None:
        return
    for flow in world.hunt_flows(hunt):
        for record in flow.uploads:
            yield {**record.row(), "ClientId": flow.client_id, "FlowId": flow.session_id}


@plugin("flow_logs", Arg("flow_id", "str", required=True), Arg("client_id", "str", required=True),
        permissions=("READ_RESULTS",), registry=_R)
def flow_logs(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the query logs of a flow (vql/server/flows/logs.go: the flow's log result set;
    an unknown flow has an empty one)."""
    flow = world_of(scope).flow(scope.org_id, args["client_id"], args["flow_id"])
    for row in flow.log_rows() if flow is not None else ():
        if scope.cancelled:
            return
        yield row


# -- monitoring(), watch_monitoring(): vql/server/flows/monitoring.go ---------------------
def _event_time(row: dict[str, Any]) -> float:
    ts = row.get("_ts")
    if isinstance(ts, int | float):
        return ts / 1000 if ts > 1e11 else float(ts)
    return 0.0


def monitoring_rows(scope: Scope, client_id: str, artifact: str, start_time: Any,
                    end_time: Any, start_row: int) -> Iterator[dict[str, Any]]:
    """Stored events of one client (the timed result set reader: ``_ts`` in ms)."""
    world = world_of(scope)
    try:
        _artifact_type(world, artifact)
    except VQLCallError as err:
        scope.log(f"monitoring: {err}")
        return
    start = time_from_any(scope, start_time) if start_time is not None else None
    end = time_from_any(scope, end_time) if end_time is not None else None
    defn = world.definition(artifact)
    if defn is not None and defn.type == "server_event":
        client_id = "server"  # paths/artifacts: a server event's path has no client in it
    rows = list(_generated_events(world, scope.org_id, client_id, artifact, start, end))
    rows += world.bus.stored(scope.org_id, client_id, artifact)
    rows.sort(key=_event_time)
    lo = start.timestamp() if start is not None else None
    hi = end.timestamp() if end is not None else None
    count = 0
    for row in rows:
        when = _event_time(row)
        if (lo is not None and when < lo) or (hi is not None and when > hi):
            continue
        count += 1
        if count <= start_row:
            continue
        if scope.cancelled:
            return
        out = dict(row)
        out.pop("_ts", None)  # the timed reader Sets it again: last, in ms
        out["_ts"] = int(when * 1000)
        yield out


def _generated_events(world: World, org_id: str, client_id: str, artifact: str,
                      start: dt.datetime | None, end: dt.datetime | None
                      ) -> Iterator[dict[str, Any]]:
    from velonb.emulator.world import results

    defn = world.definition(artifact)
    if defn is None:
        return
    now = world.current_time()
    lo = start or now - dt.timedelta(days=1)  # generated history: the last day by default
    hi = min(end, now) if end is not None else now
    if defn.type == "server_event" and client_id == "server":
        yield from results.server_event_rows(defn, lo, hi, seed=world.seed)
        return
    client = world.client(org_id, client_id)
    if client is not None and defn.type == "client_event":
        for row in results.event_rows(client, defn, lo, hi, seed=world.seed):
            # stored by PushEventJsonl with the sending client as _Source
            yield {**_as_sent(client.client_id, row), "_Source": client.client_id}


def _as_sent(client_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """A client's event row as the server receives it: MonitoringVQLResponse appends
    ``ClientId`` to the client's columns, then the queue stamps ``_ts`` (s)."""
    ts = row.pop("_ts")
    return {**row, "ClientId": client_id, "_ts": ts}


@plugin("monitoring", Arg("client_id", "str", required=True),
        Arg("artifact", "str", required=True), Arg("source", "str"), Arg("start_time"),
        Arg("end_time"), Arg("start_row", "int"), permissions=("READ_RESULTS",), registry=_R)
def monitoring(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Read event monitoring log from a client."""
    artifact = args["artifact"]
    if args.get("source"):
        artifact = f"{artifact}/{args['source']}"
    yield from monitoring_rows(scope, args["client_id"], artifact, args.get("start_time"),
                               args.get("end_time"), args.get("start_row", 0))


@plugin("watch_monitoring", Arg("artifact", "str", required=True),
        permissions=("READ_RESULTS",), registry=_R)
def watch_monitoring(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Watch clients' monitoring log (an event plugin: blocks until cancelled)."""
    world = world_of(scope)
    artifact = args["artifact"]
    defn = world.definition(artifact)
    if defn is None:
        scope.log(f"Artifact {artifact} not known")
        return
    if defn.type not in _EVENT_TYPES:
        scope.log("watch_monitoring only supports monitoring event artifacts")
        return
    org_id = scope.org_id or "root"
    sub = world.bus.subscribe(org_id, artifact)
    since = world.current_time()
    try:
        while not scope.cancel.is_set():
            row = sub.next_row()
            if row is None:
                now = world.current_time()
                if (now - since).total_seconds() >= _LIVE_EVERY_S:
                    for live in _sent_events(world, org_id, defn, since, now):
                        live["_Source"] = artifact
                        yield live
                    since = now
                continue
            row["_Source"] = artifact
            yield row
    finally:
        sub.close()


_LIVE_EVERY_S = 0.5  # how often a watch looks for the events clients sent meanwhile


def _sent_events(world: World, org_id: str, defn: ArtifactDefinition, start: dt.datetime,
                 end: dt.datetime) -> Iterator[dict[str, Any]]:
    """The events connected clients (or the server) sent in [start, end), as a watcher gets
    them: the row, ``ClientId`` for a client's and ``_ts`` (s). A connected client streams its
    event queries' rows as they happen, whenever it last polled."""
    import dataclasses

    from velonb.emulator.world import results

    rows: list[dict[str, Any]] = []
    if defn.type == "server_event":
        rows = results.server_event_rows(defn, start, end, seed=world.seed)
    elif defn.type == "client_event":
        for client in world.clients(org_id):
            if client.online:
                streaming = dataclasses.replace(
                    client, last_seen_at=int(end.timestamp() * 1e6) + 1_000_000)
                rows += [_as_sent(client.client_id, row) for row in
                         results.event_rows(streaming, defn, start, end, seed=world.seed)]
    rows.sort(key=lambda r: r["_ts"])
    yield from rows
