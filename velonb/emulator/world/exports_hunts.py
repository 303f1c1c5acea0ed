"""``create_hunt_download()``: a hunt's export zip (``createHuntDownloadFile`` in
``vql/server/downloads/downloads.go``), written with the flow export's container.

The zip holds ``hunt_info.json`` (the Hunt as its registered JSON encoder writes it), then for
each of the hunt's artifact sources ``results/All <source>.json`` (and/or ``.csv``): every
client's rows with ``FlowId``, ``ClientId`` and ``Fqdn`` appended (``json.ConvertJSONL`` with
extra data, so values are re-encoded as fastjson writes them), then unless ``only_combined``
each flow's own export under ``<hostname>-<client id>/``. The file is
``downloads/hunts/<hunt>/<base><hunt>[-summary][_locked].zip``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from velonb.emulator.gojson import dumps
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.world import exports as E  # by module: plugins imports both
from velonb.emulator.world.plugins import _R, check, world_of

if TYPE_CHECKING:
    from velonb.emulator.vql.scope import Scope
    from velonb.emulator.world import World
    from velonb.emulator.world.hunts import Hunt


def _combined_rows(world: World, hunt: Hunt, source: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(stored JSONL line, its FlowId/ClientId/Fqdn) of every flow of the hunt, in order."""
    for flow in world.hunt_flows(hunt):
        client = world.client(hunt.org_id, flow.client_id)
        extra = {"FlowId": flow.session_id, "ClientId": flow.client_id,
                 "Fqdn": client.fqdn if client is not None else ""}
        for row in flow.result_rows(source):
            yield dumps(row), extra


def write_combined(container: E.Container, world: World, hunt: Hunt, fmt: int) -> None:
    """generateCombinedResults: one ``results/All <source>`` result set per artifact source."""
    for source in hunt.artifact_sources:
        pairs = list(_combined_rows(world, hunt, source))
        container.copy_result_set(["results", "All " + source], [line for line, _ in pairs],
                                  fmt, [extra for _, extra in pairs])


@function("create_hunt_download", Arg("hunt_id", "str", required=True),
          Arg("only_combined", "bool"), Arg("wait", "bool"), Arg("format", "str"),
          Arg("base", "str"), Arg("password", "str"), Arg("expand_sparse", "bool"),
          registry=_R)
def create_hunt_download(scope: Scope, args: dict[str, Any]) -> object:
    """Creates a download pack for a hunt."""
    check(scope, "PREPARE_RESULTS")
    world = world_of(scope)
    E.check_format(args)
    hunt_id = args["hunt_id"]
    if not hunt_id:
        raise VQLCallError("Hunt Id should be specified.")
    hunt = world.hunt(scope.org_id, hunt_id)
    if hunt is None:
        raise VQLCallError("Hunt not found")
    only_combined = bool(args.get("only_combined"))
    password = args.get("password", "")
    name = (args.get("base", "") + hunt_id + ("-summary" if only_combined else "")
            + ("_locked" if password else ""))
    started = int(time.time())
    fmt = E.export_format(args)
    container = E.Container()
    container.write_json("hunt_info.json", hunt.message())
    write_combined(container, world, hunt, fmt)
    if not only_combined:
        for flow in world.hunt_flows(hunt):
            prefix = (E.hostname_of(world, scope.org_id, flow.client_id) + "-" + flow.client_id,)
            E.write_flow(container, scope, world, flow.client_id, flow, fmt, prefix)
    spec: E.FSPathSpec = E.store_export(scope, world, container,
                                    ["downloads", "hunts", hunt_id, name + ".zip"], password,
                                    (scope.org_id, "hunts", hunt_id), started)
    return spec
