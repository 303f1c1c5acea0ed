"""What ``PushEvents`` does with the rows once the caller may publish (``api/events.go``):
``journal.PushRowsToArtifact`` (``services/journal/journal.go``) checks the artifact's mode
against the client id, then event artifacts go to the queue (``_ts`` and ``_Source`` stamped,
stored per client, handed to watchers) and collection artifacts are appended to the flow's
result set. Failures are the journal's error texts (``PushError``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from velonb.emulator.world import World

__all__ = ["PushError", "parse_rows", "push_rows"]

_CLIENT_ID = re.compile(r"^(C\.[a-z0-9]+|server)")  # client_info/validate.go
_MODES = {"client": "CLIENT", "client_event": "CLIENT_EVENT", "server": "SERVER",
          "server_event": "SERVER_EVENT", "internal": "INTERNAL", "notebook": "NOTEBOOK"}


class PushError(Exception):
    """The journal refused the rows (the handler returns it unwrapped: status UNKNOWN)."""


def _go_json_error(err: json.JSONDecodeError) -> str:
    """The gist of Go's encoding/json syntax errors for what Python's decoder reports."""
    if err.pos >= len(err.doc.rstrip()):
        return "unexpected end of JSON input"
    char = err.doc[err.pos]
    where = "looking for beginning of value" if err.msg.startswith("Expecting value") else \
        "after object key:value pair" if "delimiter" in err.msg else "in string literal" \
        if "control character" in err.msg else "looking for beginning of object key string"
    return f"invalid character {char!r} {where}"


def parse_rows(jsonl: bytes) -> list[dict[str, Any]]:
    """utils.ParseJsonToDicts: a JSON array of objects, or one object per line; ValueError
    with Go's message."""
    text = jsonl.decode("utf-8", "surrogateescape")
    try:
        if text[:1] == "[":
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.split("\n") if line]
    except json.JSONDecodeError as err:
        raise ValueError(_go_json_error(err)) from None
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"json: cannot unmarshal {type(item).__name__} into Go value of "
                             "type ordereddict.Dict")
    return items


def _mode(world: World, artifact: str, client_id: str, username: str) -> str:
    """GetArtifactMode: the artifact's mode, checked against who writes it."""
    definition = world.definition(artifact)
    if definition is None:
        raise PushError(f"Artifact {artifact} not known")
    mode = _MODES.get(definition.type.lower(), "INVALID")
    if mode in ("CLIENT", "CLIENT_EVENT"):
        if not client_id:
            raise PushError("Client ID invalid to write to a CLIENT artifact_type: "
                            "ClientId not provided")
        if not _CLIENT_ID.match(client_id):
            raise PushError("Client ID invalid to write to a CLIENT artifact_type: "
                            "ClientId is not valid")
    elif mode in ("SERVER", "SERVER_EVENT"):
        if client_id != "server":
            raise PushError(f"Only servers can write to a {mode} artifact_type")
    elif mode == "INTERNAL":
        if username != "server":
            raise PushError(f"Only servers can write to a {mode} artifact_type")
    else:
        raise PushError(f"Invalid artifact_type {mode}")
    return mode


def push_rows(world: World, org_id: str, artifact: str, client_id: str, flow_id: str,
              username: str, rows: list[dict[str, Any]]) -> None:
    """PushRowsToArtifact: queue event rows, append collection rows to the flow's results."""
    mode = _mode(world, artifact, client_id, username)
    if mode.endswith("_EVENT") or mode == "INTERNAL":
        for row in rows:
            world.bus.publish(org_id, artifact, row, client_id=client_id, source=username)
        return
    flow = world.flow(org_id, client_id, flow_id)
    if flow is not None:  # the result set of a flow the emulator does not know is not kept
        with world.lock:
            flow.results.setdefault(artifact, []).extend(dict(row) for row in rows)
