"""Helpers shared by emulator tests (a module of its own: conftest cannot be imported reliably)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from velonb.emulator.world import World


def load_api_config(path: Path) -> dict[str, Any]:
    """The YAML content of an api_client.yaml."""
    return yaml.safe_load(path.read_text())


def query_args(*vql: str, name: str = "Test", **fields: Any) -> Any:
    """A VQLCollectorArgs with one VQLRequest per ``vql`` text (env given as a dict)."""
    from velonb._proto import vql_pb2

    env = fields.pop("env", {})
    return vql_pb2.VQLCollectorArgs(
        Query=[vql_pb2.VQLRequest(Name=name, VQL=text) for text in vql],
        env=[vql_pb2.VQLEnv(key=k, value=v) for k, v in env.items()],
        **fields,
    )


def run_world_query(
    sim: World,
    vql: str,
    roles: Iterable[str] = ("administrator",),
    *,
    org: str = "root",
    principal: str = "admin",
    env: dict[str, object] | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run ``vql`` on the emulator's VQL engine over ``sim`` as ``principal`` holding ``roles``
    in ``org``; returns (rows, logs).  No gRPC: fast enough for permission matrices."""
    from velonb.emulator import vql as engine
    from velonb.emulator.acl import role_permissions

    logs: list[str] = []
    scope = engine.Scope(env or {}, principal=principal, permissions=role_permissions(roles, org),
                         org_id=org, org_name=sim.orgs.get(org, org), log=logs.append,
                         world=sim, registry=sim.registry)
    rows: list[dict[str, Any]] = []
    for statement in engine.parse(vql):
        produced = engine.execute(statement, scope)
        if produced is not None:
            rows.extend(produced)
    return rows, logs


def run_vql(text: str, **scope: Any) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """Run ``text`` on the emulator's VQL engine in a fresh Scope(**scope), no world, no gRPC;
    returns (one row list per SELECT statement, log lines)."""
    from velonb.emulator.vql import Scope, execute, parse

    logs: list[str] = []
    bound = Scope(log=logs.append, **scope)
    out = []
    for statement in parse(text):
        rows = execute(statement, bound)
        if rows is not None:
            out.append(list(rows))
    return out, logs
