"""Custom artifacts: write one in the notebook, store it on the server, collect it.

``set_artifact`` sends the YAML through ``artifact_set()`` (ARTIFACT_WRITER for client artifacts,
SERVER_ARTIFACT_WRITER for server ones); the server checks it (YAML, name, type, every query
parsed as VQL) and refuses with a message that :class:`ArtifactDefinitionError` carries.
Built-in artifacts cannot be replaced: name yours ``Custom.…``, as the Velociraptor GUI does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from velonb.fleet_errors import ArtifactDefinitionError
from velonb.fleet_flows import _checked
from velonb.fleet_model import ArtifactInfo, records

if TYPE_CHECKING:
    from velonb.fleet import FleetMixin
    from velonb.query_result import QueryResult

__all__ = ["ARTIFACT_DELETE_VQL", "ARTIFACT_SET_VQL", "delete_artifact", "parse_locally",
           "set_artifact"]

ARTIFACT_SET_VQL = ("SELECT artifact_set(definition=Definition, tags=Tags) AS Artifact "
                    "FROM scope()")
ARTIFACT_DELETE_VQL = "SELECT artifact_delete(name=Name) AS Deleted FROM scope()"


def _yaml_text(definition: str | Mapping[str, Any]) -> tuple[str, str]:
    """(YAML text, artifact name); a definition that is not YAML at all is refused here."""
    import yaml

    if isinstance(definition, Mapping):
        text = yaml.safe_dump(dict(definition), sort_keys=False, allow_unicode=True)
        doc: Any = dict(definition)
    else:
        text = str(definition)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ArtifactDefinitionError(f"the definition is not valid YAML: {err}",
                                          hint="indent with spaces; put each query under "
                                               "'query: |'") from None
    name = doc.get("name") if isinstance(doc, dict) else None
    if not name:
        raise ArtifactDefinitionError("the definition has no name",
                                      hint="start it with 'name: Custom.Something'")
    return text, str(name)


def parse_locally(definition: str | Mapping[str, Any]) -> ArtifactInfo:
    """The definition as velonb reads it without a server (no VQL check): for offline replay."""
    import yaml

    text, _ = _yaml_text(definition)
    doc = yaml.safe_load(text)
    row = {**doc, "type": str(doc.get("type") or "client").lower(), "raw": text}
    for key in ("parameters", "sources", "column_types"):
        row[key] = [item for item in row.get(key) or [] if isinstance(item, Mapping)]
    return ArtifactInfo.from_row(row)


def _refusal(result: QueryResult, function: str, sent: str = "") -> str:
    """The server's reason from its log, without the echo of the definition it appends
    (``artifact_set: <reason>: <the first 99 characters> ...``)."""
    echo = sent[:99] + " ..." if len(sent) > 100 else sent
    for line in result.logs:
        if line.message.startswith(f"{function}: "):
            reason = line.message[len(function) + 2:]
            if echo and reason.endswith(": " + echo):
                reason = reason[:-len(echo) - 2]
            return reason
    return "the server gave no reason (its log is empty)"


def set_artifact(conn: FleetMixin, definition: str | Mapping[str, Any], *,
                 tags: list[str] | None, org: str) -> ArtifactInfo:
    """Store a custom artifact (YAML text or a dict); its definition as the server holds it."""
    text, name = _yaml_text(definition)
    env = {"Definition": text, "Tags": list(tags or [])}
    result = _checked(conn, ARTIFACT_SET_VQL, env, org, f"storing artifact {name}")
    rows = records(result.frame)
    stored = rows[0].get("Artifact") if rows else None
    if not isinstance(stored, Mapping):
        raise ArtifactDefinitionError(
            f"the server refused artifact {name}: {_refusal(result, 'artifact_set', text)}",
            hint="fix the definition and send it again; built-in artifacts cannot be replaced "
                 "(name yours Custom.…)")
    return ArtifactInfo.from_row(stored)


def delete_artifact(conn: FleetMixin, name: str, *, org: str) -> None:
    """Delete a custom artifact (built-in ones cannot be deleted)."""
    result = _checked(conn, ARTIFACT_DELETE_VQL, {"Name": name}, org,
                      f"deleting artifact {name}")
    rows = records(result.frame)
    if not rows or rows[0].get("Deleted") != name:
        raise ArtifactDefinitionError(
            f"the server did not delete artifact {name}: "
            f"{_refusal(result, 'artifact_delete')}")
