"""Custom server artifacts run for real: the server is the emulator, so a server artifact stored
with ``artifact_set()`` runs its sources in the emulator's VQL engine, over the world, as the
user who launched the collection (their permissions in the flow's org), with the collection's
parameters as variables (typed ones converted as the server's compiled preamble does).

Each source's log lines become that source's flow log; a source that is still running when the
collection's timeout (the request's, else 600 s) passes is cancelled and the flow fails.
Built-in server artifacts keep their canned results (``results.server_rows``).
"""

from __future__ import annotations

import json
import re
import threading
from typing import TYPE_CHECKING, Any

from velonb.emulator.acl import ALL_PERMISSIONS
from velonb.emulator.world.model import ArtifactDefinition, CollectionOutput

if TYPE_CHECKING:
    from velonb.emulator.world import World
    from velonb.emulator.world.flows import Flow

__all__ = ["DEFAULT_TIMEOUT_S", "run_custom_server_artifact", "typed_parameters"]

DEFAULT_TIMEOUT_S = 600
_TRUE = {"y", "yes", "true", "t", "1", "on"}
_LEVEL = re.compile(r"^(DEFAULT|ERROR|INFO|WARN|DEBUG):")


def typed_parameters(defn: ArtifactDefinition, values: dict[str, str]) -> dict[str, Any]:
    """Parameter values (strings, as a collection request carries them) converted by type:
    int, float, bool and json; anything else stays text."""
    typed: dict[str, Any] = {}
    for name, value in values.items():
        param = defn.parameter(name)
        kind = param.type.lower() if param is not None else ""
        try:
            if kind in ("int", "int64"):
                typed[name] = int(value) if str(value).strip() else 0
            elif kind == "float":
                typed[name] = float(value) if str(value).strip() else 0.0
            elif kind == "bool":
                typed[name] = str(value).strip().lower() in _TRUE
            elif kind in ("json", "json_array"):
                typed[name] = json.loads(value) if str(value).strip() else None
            else:
                typed[name] = value
        except ValueError:
            typed[name] = value  # the server's conversion leaves bad input as it was
    return typed


def run_custom_server_artifact(world: World, flow: Flow, defn: ArtifactDefinition,
                               params: dict[str, str]) -> CollectionOutput:
    """Run ``defn``'s sources for ``flow`` (a collection on ``server``)."""
    from velonb.emulator import vql as engine

    creator = str(flow.request.get("creator") or "")
    if world.acl is not None and creator:
        permissions = frozenset(world.acl.permissions(creator, flow.org_id))
    else:
        permissions = frozenset(ALL_PERMISSIONS)
    env = typed_parameters(defn, {**defn.defaults(), **params})
    timeout = int(flow.request.get("timeout") or 0) or DEFAULT_TIMEOUT_S
    cancel = threading.Event()
    timer = threading.Timer(timeout, cancel.set)
    timer.daemon = True
    timer.start()
    out = CollectionOutput()
    try:
        for source, result in zip(defn.sources, defn.result_names(), strict=False):
            lines: list[str] = []
            scope = engine.Scope(dict(env), principal=creator or "VelociraptorServer",
                                 permissions=permissions, org_id=flow.org_id,
                                 org_name=world.orgs.get(flow.org_id, flow.org_id),
                                 log=lines.append, world=world, registry=world.registry,
                                 cancel=cancel)
            rows: list[dict[str, Any]] = []
            for statement in engine.parse(source.query):
                produced = engine.execute(statement, scope)
                if produced is not None:
                    rows.extend(produced)
            out.results[result] = rows
            out.source_logs[result] = [line if _LEVEL.match(line) else f"INFO:{line}"
                                       for line in lines]
            if cancel.is_set():
                out.error = f"{result}: timed out after {timeout}s"
                break
    finally:
        timer.cancel()
    return out
