"""The world's VQL functions, part 4: changing clients - ``label`` (vql/server/labels.go,
services/labels) and client/server metadata (vql/server/clients/metadata.go,
services/client_info/metadata.go)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from velonb.emulator.vql.associative import rfc3339
from velonb.emulator.vql.gofmt import go_value
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.vql.scope import Scope
from velonb.emulator.world.plugins import WORLD_REGISTRY, check, world_of

_R = WORLD_REGISTRY
_CLIENT_ID = re.compile(r"^(C\.[a-z0-9]+|server)")  # services/client_info/validate.go


def _validate_client_id(client_id: str) -> None:
    if not client_id:
        raise VQLCallError("ClientId not provided")
    if not _CLIENT_ID.match(client_id):
        raise VQLCallError("ClientId is not valid")


@function("label", Arg("client_id", "str", required=True),
          Arg("labels", "list_str", required=True), Arg("op", "str"), registry=_R)
def label(scope: Scope, args: dict[str, Any]) -> object:
    """Add the labels to the client (``op='set'``), remove them (``'remove'``) or check them
    (``'check'``: FALSE unless all are set). Any other op changes nothing. Labels compare
    case-insensitively; the value is the argument struct as a dict (its Go field names, as
    vfilter's RowToDict gives them; golden labels.out.yaml)."""
    check(scope, "LABEL_CLIENT")
    world = world_of(scope)
    client_id, op = args["client_id"], args.get("op", "")
    client = world.client(scope.org_id, client_id)
    for name in args["labels"]:
        if not name:
            continue
        if op == "set":
            _validate_client_id(client_id)
            name = name.strip()
            with world.lock:
                if client is not None and name.lower() not in {x.lower() for x in client.labels}:
                    client.labels.append(name)
        elif op == "remove":
            with world.lock:
                if client is not None:
                    client.labels[:] = [x for x in client.labels if x.lower() != name.lower()]
        elif op == "check":
            held = {x.lower() for x in client.labels} if client is not None else set()
            if name.lower() != "all" and name.lower() not in held:
                return False
    return {"ClientId": client_id, "Labels": list(args["labels"]), "Op": op}


def _go_string(value: object) -> str:
    """``utils.ToString`` of a metadata value: text as it is, a time as RFC 3339, anything
    else as ``%v``."""
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    return value if isinstance(value, str) else go_value(value)


def _set_metadata(scope: Scope, client_id: str, metadata: dict[str, Any]) -> bool:
    """``Store.SetMetadata``: merge as strings; a null value deletes its key."""
    world = world_of(scope)
    org = scope.org_id or "root"
    with world.lock:
        if client_id == "server":
            store = world.server_metadata.setdefault(org, {})
        else:
            client = world.client(org, client_id)
            if client is None:
                return True  # the real server keeps metadata for ids it has never seen
            store = client.metadata
        for key, value in metadata.items():
            store.pop(key, None)  # ordereddict Set: a changed key moves to the end
            if value is not None:
                store[key] = _go_string(value)
    return True


@function("client_set_metadata", Arg("client_id", "str", required=True),
          Arg("metadata", "dict"), free_form=True, registry=_R)
def client_set_metadata(scope: Scope, args: dict[str, Any]) -> object:
    """Sets client metadata (``metadata=dict(...)`` or as keyword arguments)."""
    client_id = args.pop("client_id")
    metadata = args.pop("metadata", None)
    check(scope, "SERVER_ADMIN" if client_id == "server" else "COLLECT_CLIENT")
    return _set_metadata(scope, client_id, metadata if metadata is not None else args)


@function("server_set_metadata", Arg("metadata", "dict"), free_form=True, registry=_R)
def server_set_metadata(scope: Scope, args: dict[str, Any]) -> object:
    """Sets server metadata (``metadata=dict(...)`` or as keyword arguments)."""
    metadata = args.pop("metadata", None)
    check(scope, "SERVER_ADMIN")
    return _set_metadata(scope, "server", metadata if metadata is not None else args)


@function("server_metadata", Arg("metadata", "dict"), free_form=True, registry=_R)
def server_metadata(scope: Scope, args: dict[str, Any]) -> object:
    """Returns server metadata from the datastore (a free form key/value dict)."""
    check(scope, "SERVER_ADMIN")
    return dict(world_of(scope).server_metadata.get(scope.org_id or "root", {}))
