"""Custom artifacts: ``artifact_set()`` and ``artifact_delete()`` (vql/server/repository.go) over
the repository manager's checks (services/repository: LoadYaml, LoadProto, SetArtifactFile).

A definition is checked as the server checks it before it is stored: YAML (strict: unknown fields
are errors), the name, the type, required permissions, and every precondition and source query
parsed as VQL, with all but a source's last statement a LET. Built-in artifacts cannot be
replaced, only custom ones deleted. The messages are the server's.
Collecting a custom client artifact from a simulated client runs it and returns no rows (the
emulator has no endpoint to run its VQL on); a custom server artifact runs for real
(``server_artifacts``).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from velonb.emulator.acl import ALL_PERMISSIONS
from velonb.emulator.vql.parser import VQLParseError, parse
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.vql.scope import Scope
from velonb.emulator.world.catalog import definition_row, parse_definition
from velonb.emulator.world.model import ArtifactDefinition
from velonb.emulator.world.plugins import WORLD_REGISTRY, check, world_of

__all__ = ["load_definition", "sanitize_artifact_yaml"]

_R = WORLD_REGISTRY
_NAME = re.compile(r"^[a-zA-Z0-9_.]+$")
_MODES = {"client": "client", "": "client", "client_event": "client_event", "server": "server",
          "server_event": "server_event", "notebook": "notebook", "internal": "internal"}
# the YAML names of the proto fields (artifacts/proto/artifact.proto)
_FIELDS = {
    "proto.Artifact": {"name", "aliases", "description", "author", "reference", "references",
                       "required_permissions", "implied_permissions", "impersonate",
                       "resources", "tools", "precondition", "parameters", "type", "sources",
                       "imports", "export", "reports", "column_types", "raw"},
    "proto.ArtifactParameter": {"name", "default", "description", "type", "choices",
                                "friendly_name", "validating_regex", "artifact_type",
                                "sources"},
    "proto.ArtifactSource": {"name", "description", "precondition", "query", "queries",
                             "notebook"},
}
# PyYAML words a few scanner errors differently from libyaml, which go-yaml ports
_LIBYAML_WORDING = {"mapping values are not allowed here":
                    "mapping values are not allowed in this context"}
_QUERY_LINE = re.compile(r"(?im)^[\s-]*(precondition|query):[ \t]*$")
_QUERIES_ITEM = re.compile(r"(?im)(^ +- +)(SELECT|LET|//)")


def sanitize_artifact_yaml(data: str) -> str:
    """The server's fix-ups before parsing: LF line ends, and a bare ``query:`` (or a list item
    starting with SELECT/LET) turned into a literal block so the query keeps its lines."""
    data = data.replace("\r\n", "\n")
    data = _QUERY_LINE.sub(lambda m: m.group(0) + " |\n", data)
    return _QUERIES_ITEM.sub(lambda m: m.group(1) + "|\n" + " " * len(m.group(1)) + m.group(2),
                             data)


def _strict(node: yaml.Node, kind: str, problems: list[str]) -> None:
    """go-yaml's UnmarshalStrict: every mapping key must be a field of the message."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        name = key.value
        if name not in _FIELDS[kind]:
            problems.append(f"line {key.start_mark.line + 1}: field {name} not found in type "
                            f"{kind}")
        elif kind == "proto.Artifact" and name in ("parameters", "sources") \
                and isinstance(value, yaml.SequenceNode):
            inner = "proto.ArtifactParameter" if name == "parameters" else "proto.ArtifactSource"
            for item in value.value:
                _strict(item, inner, problems)


def _scalar_tag(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float"}.get(type(value), "str")


def _check_vql(text: str, what: str) -> list[Any]:
    try:
        return parse(text)
    except VQLParseError as err:
        raise ValueError(f"{what}: {err}") from None


def load_definition(raw: str) -> ArtifactDefinition:
    """A custom artifact from its YAML, as ``LoadYaml(ValidateArtifact: true)`` accepts it;
    ValueError with the server's message otherwise."""
    text = sanitize_artifact_yaml(raw)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark else 0
        problem = _LIBYAML_WORDING.get(str(err.problem), str(err.problem))
        raise ValueError(f"yaml: line {line}: {problem}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        tag = "!!seq" if isinstance(doc, list) else f"!!{_scalar_tag(doc)} `{doc}`"
        raise ValueError(f"yaml: unmarshal errors:\n  line 1: cannot unmarshal {tag} into "
                         "proto.Artifact")
    problems: list[str] = []
    if root is not None:
        _strict(root, "proto.Artifact", problems)
    if problems:
        raise ValueError("yaml: unmarshal errors:\n  " + "\n  ".join(problems))
    name = str(doc.get("name") or "")
    if not _NAME.match(name):
        raise ValueError("Invalid artifact name. Can only contain characters in this set "
                         "'a-zA-Z0-9_.'")
    if any(part[:1].isdigit() for part in name.split(".")):
        raise ValueError("Invalid artifact name. Name parts can not start with a number'")
    kind = str(doc.get("type") or "").lower()
    if kind not in _MODES:
        raise ValueError(f"Artifact type {doc.get('type')} invalid.")
    for permission in doc.get("required_permissions") or []:
        if str(permission) not in ALL_PERMISSIONS:
            raise ValueError(f"Invalid artifact permission: {permission}")
    if doc.get("precondition"):
        _check_vql(str(doc["precondition"]), "While parsing artifact precondition")
    if doc.get("export"):
        _check_vql(str(doc["export"]), "While parsing artifact export")
    for source in doc.get("sources") or []:
        source = source if isinstance(source, dict) else {}
        query = str(source.get("query") or "") or "".join(
            "\n" + str(q) for q in source.get("queries") or [])
        if source.get("precondition"):
            if doc.get("precondition"):
                raise ValueError(f"Artifact {name} contains a top level precondition and a "
                                 "source precondition.")
            _check_vql(str(source["precondition"]), "While parsing precondition")
        if query.strip():
            statements = _check_vql(query, f"While parsing source query {source.get('name') or ''}")
            for index, statement in enumerate(statements):
                last = index == len(statements) - 1
                if (statement.let_name is None) != last:
                    gap = " " if not last else "  "  # [sic]: the server's two messages differ
                    raise ValueError(f"Invalid artifact{gap}{name}: All Queries in a source "
                                     "must be LET queries, except for the final one.")
        source["query"] = query
        source.pop("queries", None)
    doc["type"] = _MODES[kind]
    normalised = yaml.safe_dump(doc, sort_keys=False)
    definition = parse_definition(normalised)
    definition.raw = raw
    definition.built_in = False
    return definition


def _truncated(definition: str) -> str:
    return definition[:99] + " ..." if len(definition) > 100 else definition


@function("artifact_set", Arg("definition", "str"), Arg("prefix", "str"),
          Arg("tags", "list_str"), Arg("repository", "str"), registry=_R)
def artifact_set(scope: Scope, args: dict[str, Any]) -> object:
    """Sets an artifact into the global repository (the value is the stored artifact)."""
    world = world_of(scope)
    raw = args.get("definition", "")
    try:
        defn = load_definition(raw)
    except ValueError as err:
        raise VQLCallError(f"{err}: {_truncated(raw)}") from None
    if defn.type == "internal":
        return None  # not an error, but such artifacts cannot be set
    writer = "ARTIFACT_WRITER" if defn.type in ("client", "client_event") \
        else "SERVER_ARTIFACT_WRITER"
    check(scope, writer)
    if args.get("repository"):
        raise VQLCallError("local repositories are not supported by the emulator")
    with world.lock:
        existing = world.catalog.get(defn.name)
        if existing is not None and existing.built_in:
            raise VQLCallError(f"Unable to override built in artifact {defn.name}")
        if args.get("tags"):
            defn.tags = list(args["tags"])
        world.catalog[defn.name] = defn
    return definition_row(defn)


@function("artifact_delete", Arg("name", "str"), registry=_R)
def artifact_delete(scope: Scope, args: dict[str, Any]) -> object:
    """Deletes a custom artifact from the global repository (the value is its name)."""
    world = world_of(scope)
    name = args.get("name", "")
    defn = world.catalog.get(name)
    if defn is None:
        raise VQLCallError(f"Artifact '{name}' not found")
    if defn.built_in:
        raise VQLCallError("Can only delete custom artifacts.")
    writer = "SERVER_ARTIFACT_WRITER" if defn.type in ("server", "server_event") \
        else "ARTIFACT_WRITER"
    if not scope.has_permission(writer):
        # repository.go logs this one under artifact_set's name [sic]
        scope.log(f"artifact_set: PermissionDenied: Permission denied: [{writer}]")
        return None
    with world.lock:
        world.catalog.pop(name, None)
    return name
