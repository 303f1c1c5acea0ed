"""The world's VQL plugins and functions, part 3: hunts.

``hunt`` (vql/server/hunts/create.go + hunt_dispatcher.CreateHunt), ``hunts``, ``hunt_results``
and ``hunt_flows`` (vql/server/hunts/hunts.go), ``hunt_update`` (stop.go) and ``hunt_add``
(create.go). Changes to a hunt reach it through the hunt manager's queue, so they show after
``World.mutation_delay``, as on a real server.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from velonb.emulator.vql.functions import time_from_any
from velonb.emulator.vql.registry import Arg, Lazy, VQLCallError, function, plugin
from velonb.emulator.vql.scope import Scope
from velonb.emulator.world import flows as F
from velonb.emulator.world import hunts as H
from velonb.emulator.world.plugins import WORLD_REGISTRY, world_of
from velonb.emulator.world.plugins_flows import _dict_arg, _has, _perms, spec_parameters

_R = WORLD_REGISTRY
DEFAULT_EXPIRY = 7 * 24 * 3600  # hunt_dispatcher: Defaults.HuntExpiryHours or a week


@plugin("hunts", Arg("hunt_id", "str"), Arg("summary", "bool"), permissions=("READ_RESULTS",),
        registry=_R)
def hunts_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the list of hunts. One hunt is read with its stored start request (unless
    ``summary``); the listing shows the summary the dispatcher keeps in memory."""
    world = world_of(scope)
    if args.get("hunt_id"):
        hunt = world.hunt(scope.org_id, args["hunt_id"])
        if hunt is not None:  # GetHunt: the stats list the hunt's prepared exports
            from velonb.emulator.world.exports import proto_downloads

            row = hunt.row(full_request=not args.get("summary"))
            row["stats"]["available_downloads"] = proto_downloads(
                world, (scope.org_id, "hunts", hunt.hunt_id))
            yield row
        return
    for hunt in world.hunts(scope.org_id):
        yield hunt.row(full_request=False)


def _expiry(scope: Scope, value: Any) -> int:
    """Expiry in µs from any time value; must be in the future."""
    if isinstance(value, Lazy):
        value = value.reduce()
    if value is None:
        return int((time.time() + DEFAULT_EXPIRY) * 1_000_000)
    when = time_from_any(scope, value)
    if when is None:
        raise VQLCallError(f"expiry time invalid: {value}")
    if when < dt.datetime.now(dt.UTC):
        raise VQLCallError(f"expiry time {F.go_time_string(when.timestamp())} in the past")
    return int(when.timestamp() * 1_000_000)


@function("hunt", Arg("description", "str"), Arg("tags", "list_str"),
          Arg("artifacts", "list_str", required=True), Arg("expires", "lazy"), Arg("spec"),
          Arg("timeout", "int"), Arg("ops_per_sec", "float"), Arg("cpu_limit", "float"),
          Arg("iops_limit", "float"), Arg("max_rows", "int"), Arg("max_bytes", "int"),
          Arg("pause", "bool"), Arg("include_labels", "list_str"),
          Arg("exclude_labels", "list_str"), Arg("os", "str"), Arg("org_id", "list_str"),
          permissions=("START_HUNT",), registry=_R)
def hunt_function(scope: Scope, args: dict[str, Any]) -> object:
    """Launch an artifact collection against a client."""
    world = world_of(scope)
    expires = _expiry(scope, args.get("expires"))
    org_ids = args.get("org_id") or []
    if org_ids:
        if not scope.has_permission("ORG_ADMIN"):
            raise VQLCallError("PermissionDenied: Permission denied: [ORG_ADMIN]")
    else:
        org_ids = [scope.org_id or "root"]
    artifacts = list(args["artifacts"])
    specs = spec_parameters(scope, world, _dict_arg(args.get("spec")), None)
    os_name = args.get("os", "")
    include = list(args.get("include_labels") or [])
    exclude = list(args.get("exclude_labels") or [])
    if include and os_name:
        scope.log("hunt: Both OS and label conditions set, ignoring include label conditions")
    if os_name and os_name not in H.OS_CODES:
        raise VQLCallError(f"OS condition invalid {os_name} (should be linux, windows, darwin)")
    if os_name:  # create.go replaces the whole condition: labels are dropped
        include, exclude = [], []
    hunt_id = ""
    result: dict[str, Any] | None = None
    for org_id in org_ids:
        if org_id not in world.orgs and org_id != "root":
            scope.log("hunt: Org not found")
            continue
        perms = _perms(scope, org_id)
        if not _has(scope, perms, "START_HUNT"):
            scope.log("hunt: PermissionDenied: Permission denied: [START_HUNT]")
            continue
        try:
            made = _create(scope, org_id, hunt_id, artifacts, specs, args, expires, include,
                           exclude, os_name, org_ids)
        except VQLCallError as err:
            scope.log(f"hunt: {err}")
            result = None  # create.go: new_hunt is overwritten by the failed CreateHunt
            continue
        hunt_id = made["HuntId"]
        result = made  # the value is the hunt of the last org it was created in
    return result


def _create(scope: Scope, org_id: str, hunt_id: str, artifacts: list[str],
            specs: list[tuple[str, list[tuple[str, str]]]], args: dict[str, Any],
            expires: int, include: list[str], exclude: list[str], os_name: str,
            org_ids: list[str]) -> dict[str, Any]:
    """``hunt_dispatcher.CreateHunt`` in one org; returns hunt()'s value (the hunt as created,
    before any client was scheduled)."""
    world = world_of(scope)
    if not artifacts:
        raise VQLCallError("No artifacts to collect.")
    sources: list[str] = []
    for name in artifacts:
        defn = world.definition(name)
        if defn is None:
            raise VQLCallError(f"Unknown artifact {name}")
        sources += [f"{name}/{s.name}" if s.name else name for s in defn.sources]
    hunt_id = hunt_id or world.new_id("H.")
    created = F.now_us()
    if expires < created:
        raise VQLCallError("Hunt expiry is in the past!")
    request = F.request_dict(
        creator=scope.principal, client_id="", flow_id=H.hunt_flow_id(hunt_id),
        artifacts=artifacts, specs=specs, cpu_limit=args.get("cpu_limit", 0),
        iops_limit=args.get("iops_limit", 0), timeout=args.get("timeout", 0),
        max_rows=args.get("max_rows", 0), max_upload_bytes=args.get("max_bytes", 0),
        ops_per_second=args.get("ops_per_sec", 0))
    paused = bool(args.get("pause"))
    hunt = H.Hunt(
        org_id=org_id, hunt_id=hunt_id, creator=scope.principal,
        description=args.get("description", ""), start_request=request, create_time=created,
        expires=expires, state=H.PAUSED if paused else H.RUNNING,
        start_time=0 if paused else created, tags=list(args.get("tags") or []),
        include_labels=include, exclude_labels=exclude, os=os_name,
        artifact_sources=sources, org_ids=list(org_ids) if org_id == "root" else [])
    created_row = {"HuntId": hunt_id, "Request": hunt.message()}
    world.add_hunt(hunt, {name: dict(p) for name, p in specs})
    return created_row


def _fold(values: list[str], value: str) -> bool:
    return any(v.lower() == value.lower() for v in values)


@function("hunt_update", Arg("hunt_id", "str", required=True), Arg("stop", "bool"),
          Arg("start", "bool"), Arg("description", "str"), Arg("expires", "lazy"),
          Arg("add_labels", "list_str"), Arg("del_labels", "list_str"),
          permissions=("START_HUNT",), registry=_R)
def hunt_update(scope: Scope, args: dict[str, Any]) -> object:
    """Update a hunt: start or stop it, its description, expiry or labels (tags). The value is
    the hunt id, or the hunt's labels when they changed; the changes show a moment later."""
    world = world_of(scope)
    org_id, hunt_id = scope.org_id, args["hunt_id"]
    if args.get("start") or args.get("stop"):
        apply = world.start_hunt if args.get("start") else world.stop_hunt
        world.mutate_later(lambda: apply(org_id, hunt_id))  # an unknown hunt: nothing happens
    expires_arg = args.get("expires")
    when = time_from_any(scope, expires_arg.reduce() if isinstance(expires_arg, Lazy)
                         else expires_arg) if expires_arg is not None else None
    description = args.get("description", "")
    if description or when is not None:
        if when is not None and when < dt.datetime.now(dt.UTC):
            raise VQLCallError("expiry time spectified is in the past.")  # [sic]
        expires = int(when.timestamp() * 1_000_000) if when is not None else 0

        def describe() -> None:
            hunt = world.hunt(org_id, hunt_id)
            if hunt is not None:
                hunt.description = description or hunt.description
                hunt.expires = expires or hunt.expires

        world.mutate_later(describe)
    added, removed = args.get("add_labels") or [], args.get("del_labels") or []
    if added or removed:
        hunt = world.hunt(org_id, hunt_id)
        if hunt is None:
            raise VQLCallError("<nil>")  # stop.go logs the (nil) error it has at hand
        tags = list(hunt.tags)
        tags += [t for t in added if not _fold(tags, t)]
        tags = [t for t in tags if not _fold(removed, t)] or ["-"]

        def relabel(target: H.Hunt = hunt, new: list[str] = tags) -> None:
            target.tags = sorted(dict.fromkeys(t for t in new if t != "-"))

        world.mutate_later(relabel)
        return [t for t in tags if t != "-"]
    return hunt_id


@function("hunt_add", Arg("client_id", "str", required=True),
          Arg("hunt_id", "str", required=True), Arg("flow_id", "str"), Arg("relaunch", "bool"),
          permissions=("START_HUNT",), registry=_R)
def hunt_add(scope: Scope, args: dict[str, Any]) -> object:
    """Assign a client to a hunt: schedule it there (whatever the hunt's condition or state,
    unless the hunt already ran on it), add an existing ``flow_id``, or with ``relaunch`` start
    a new collection of the hunt on it (the value is then its flow id)."""
    world = world_of(scope)
    org_id, client_id, hunt_id = scope.org_id, args["client_id"], args["hunt_id"]
    if client_id == "server":
        raise VQLCallError("The server can not participate in a hunt")
    hunt = world.hunt(org_id, hunt_id)
    if args.get("relaunch"):
        if hunt is None:
            raise VQLCallError(f"Hunt id not found {hunt_id}")
        flow_id = world.new_id("F.")
        request = {**hunt.start_request, "client_id": client_id, "flow_id": flow_id}
        world.launch(org_id, client_id, request, hunt.params)
        world.mutate_later(lambda: world.assign_flow(hunt, client_id, flow_id))
        return flow_id
    if hunt is not None:  # an unknown hunt or client only shows in the server's own log
        flow_id = args.get("flow_id", "")
        if flow_id:
            world.mutate_later(lambda: world.assign_flow(hunt, client_id, flow_id))
        else:
            world.mutate_later(lambda: world.schedule_on_client(hunt, client_id))
    return client_id


def hunt_results_rows(scope: Scope, hunt_id: str, artifact: str, source: str,
                      orgs: list[str] | None) -> Iterator[dict[str, Any]]:
    """The body of ``hunt_results`` (also ``source(hunt_id=...)``)."""
    world = world_of(scope)
    hunt = world.hunt(scope.org_id, hunt_id)
    if hunt is None:
        scope.log("hunt_results: Hunt not found")
        return
    available: list[str] = []
    for name in hunt.artifacts:
        defn = world.definition(name)
        if defn is not None:
            available += [f"{defn.name}/{s.name}" if s.name else defn.name
                          for s in defn.sources]
    if not available:
        scope.log("hunt_results: not artifacts available")
        return
    if not artifact:
        artifact = available[0]
    elif source:
        artifact += "/" + source
    if artifact not in available:
        scope.log(f"hunt_results: artifact {artifact} not available in hunt. Available "
                  f"artifacts are {', '.join(available)}")
        return
    # hunts.go appends the source a second time: "A/S/S" names no known artifact, no rows.
    name = artifact + ("/" + source if source else "")
    if name.count("/") > 1:
        return
    for org_id in orgs or [scope.org_id or "root"]:
        org_hunt = world.hunt(org_id, hunt_id)
        if org_hunt is None or not _has(scope, _perms(scope, org_id), "READ_RESULTS"):
            continue
        for flow in world.hunt_flows(org_hunt):
            client = world.client(org_id, flow.client_id)
            fqdn = client.fqdn if client is not None else ""
            for row in flow.result_rows(name):
                if scope.cancelled:
                    return
                yield H.tag_result_row(row, flow.session_id, flow.client_id, org_id, fqdn)


@plugin("hunt_results", Arg("artifact", "str"), Arg("source", "str"),
        Arg("hunt_id", "str", required=True), Arg("brief", "bool"), Arg("orgs", "list_str"),
        permissions=("READ_RESULTS",), registry=_R)
def hunt_results(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the results of a hunt."""
    yield from hunt_results_rows(scope, args["hunt_id"], args.get("artifact", ""),
                                 args.get("source", ""), args.get("orgs"))


@plugin("hunt_flows", Arg("hunt_id", "str", required=True), Arg("start_row", "int"),
        Arg("limit", "int"), Arg("basic_info", "bool"), permissions=("READ_RESULTS",),
        registry=_R)
def hunt_flows(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the flows launched by a hunt (``limit`` is accepted and ignored, as real).

    ``Flow`` is the flow record read without its request file (the reduced request); with
    ``basic_info`` only its client and flow ids are set (hunt_dispatcher/flows.go GetFlows).
    """
    world = world_of(scope)
    hunt = world.hunt(scope.org_id, args["hunt_id"])
    if hunt is None:
        return
    for index, flow in enumerate(world.hunt_flows(hunt)):
        if index < args.get("start_row", 0):
            continue
        if args.get("basic_info"):
            record = F.Flow(flow.org_id, flow.client_id, flow.session_id, F.zero_request(), 0,
                            state=F.UNSET).row()
        else:
            record = flow.row(summary=True)
        yield {"HuntId": args["hunt_id"], "ClientId": flow.client_id,
               "FlowId": flow.session_id, "Flow": record}
