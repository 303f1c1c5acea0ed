"""Artifacts: list and read definitions, and custom ones written in the notebook, stored on the
server and collected (:class:`ArtifactsMixin`, part of :class:`~velonb.fleet.FleetMixin`).

``set_artifact`` sends the YAML through ``artifact_set()`` (ARTIFACT_WRITER for client artifacts,
SERVER_ARTIFACT_WRITER for server ones); the server checks it (YAML, name, type, every query
parsed as VQL) and refuses with a message that :class:`ArtifactDefinitionError` carries.
Built-in artifacts cannot be replaced: name yours ``Custom.…``, as the Velociraptor GUI does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from velonb.fleet_errors import ArtifactDefinitionError, UnknownArtifactError
from velonb.fleet_flows import _checked
from velonb.fleet_model import ArtifactInfo, DryRun, records

if TYPE_CHECKING:
    import pandas as pd

    from velonb.fleet import FleetMixin
    from velonb.query_result import QueryResult

__all__ = ["ARTIFACTS_VQL", "ARTIFACT_DELETE_VQL", "ARTIFACT_SET_VQL", "ARTIFACT_VQL",
           "ArtifactsMixin", "delete_artifact", "parse_locally", "set_artifact"]

ARTIFACTS_VQL = "SELECT * FROM artifact_definitions()"
ARTIFACT_VQL = "SELECT * FROM artifact_definitions(names=Names)"
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


class ArtifactsMixin:
    """The artifact helpers of :class:`~velonb.fleet.FleetMixin`: list, read, store, delete."""

    if TYPE_CHECKING:
        execute: Callable[..., QueryResult]

        def _org(self, org_id: str | None) -> str: ...

        def _plan(self, vql: str, env: dict[str, Any], org_id: str, what: str) -> DryRun: ...

    def _fleet(self) -> FleetMixin:
        return cast("FleetMixin", self)

    def artifacts(self, type: str | None = None, search: str | None = None, *,
                  org_id: str | None = None, dry_run: bool = False) -> pd.DataFrame:
        """Artifact definitions: name, type, description, parameters, sources, tags.

        ``type``: client, client_event, server, server_event, notebook or internal.
        ``search``: a case-insensitive regex matched against name and description.
        """
        import pandas as pd

        org = self._org(org_id)
        if dry_run:
            return self._plan(ARTIFACTS_VQL, {}, org, "artifacts()")  # type: ignore[return-value]
        infos = [ArtifactInfo.from_row(r) for r in records(
            _checked(self._fleet(), ARTIFACTS_VQL, {}, org, "listing artifacts").frame)]
        if type:
            infos = [i for i in infos if i.type == type.lower()]
        if search:
            pattern = re.compile(search, re.IGNORECASE)
            infos = [i for i in infos if pattern.search(i.name) or pattern.search(i.description)]
        return pd.DataFrame([{
            "name": i.name, "type": i.type,
            "description": i.description.strip().splitlines()[0] if i.description.strip()
            else "",
            "parameters": [p.name for p in i.parameters], "sources": [s for s in i.sources if s],
            "tags": i.tags} for i in infos],
            columns=["name", "type", "description", "parameters", "sources", "tags"])

    def artifact(self, name: str, *, org_id: str | None = None) -> ArtifactInfo:
        """One artifact's definition with typed parameters, sources and column types."""
        return self._artifacts([name], self._org(org_id))[0]

    def set_artifact(self, definition: str | Mapping[str, Any], *,
                     tags: Sequence[str] | None = None,
                     org_id: str | None = None) -> ArtifactInfo:
        """Store a custom artifact on the server (YAML text or a dict; ARTIFACT_WRITER, or
        SERVER_ARTIFACT_WRITER for server artifacts) and return it as the server holds it.
        Sending it again replaces it. A definition the server refuses raises
        :class:`ArtifactDefinitionError` with its reason (bad YAML, name, type or VQL)."""
        return set_artifact(self._fleet(), definition, tags=list(tags or []),
                            org=self._org(org_id))

    def delete_artifact(self, name: str, *, org_id: str | None = None) -> None:
        """Delete a custom artifact (built-in ones cannot be deleted)."""
        delete_artifact(self._fleet(), name, org=self._org(org_id))

    def _artifacts(self, names: Sequence[str], org: str) -> list[ArtifactInfo]:
        import difflib

        wanted = [n.split("/", 1)[0] if n.count("/") == 1 else n for n in names]
        rows = records(_checked(self._fleet(), ARTIFACT_VQL, {"Names": list(wanted)}, org,
                                "reading artifact definitions").frame)
        by_name = {r.get("name"): ArtifactInfo.from_row(r) for r in rows}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            known = [i.name for i in (ArtifactInfo.from_row(r) for r in records(
                self.execute(ARTIFACTS_VQL, org_id=org).frame))]
            close = difflib.get_close_matches(missing[0], known, n=5, cutoff=0.5)
            raise UnknownArtifactError(
                f"no artifact called {missing[0]!r} on the server"
                + (f"; did you mean {', '.join(close)}?" if close else ""),
                suggestions=close, hint="list them with conn.artifacts(search=...)")
        return [by_name[n] for n in wanted]
