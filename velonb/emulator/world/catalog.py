"""The artifact catalog: our own definitions (``artifacts/*.yaml``) of real Velociraptor artifacts.

Names, types, parameters (names, types, defaults, choices), sources and result columns follow the
real built-in artifacts; descriptions and queries are our own short wording.
"""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import yaml

from velonb.emulator.world.model import ArtifactDefinition, Parameter, Source

__all__ = ["build_catalog", "definition", "definition_row", "parse_definition"]

# Server-side metadata (the real server keeps it outside the YAML).
_METADATA: dict[str, dict[str, Any]] = {
    "Generic.Client.Info": {"basic": True, "tags": ["Interrogation"]},
    "Windows.System.Pslist": {"basic": True, "tags": ["Process"]},
    "Linux.Sys.Pslist": {"basic": True, "tags": ["Process"]},
    "Windows.Network.Netstat": {"basic": True, "tags": ["Network"]},
    "Linux.Network.Netstat": {"tags": ["Network"]},
    "Windows.Search.FileFinder": {"basic": True, "tags": ["Files"]},
    "Windows.Persistence.PermanentWMIEvents": {"tags": ["Persistence", "WMI"]},
    "Windows.System.Services": {"tags": ["Persistence"]},
    "Windows.System.TaskScheduler": {"tags": ["Persistence"]},
    "Windows.EventLogs.RDPAuth": {"tags": ["EventLogs", "Lateral Movement"]},
    "Windows.Forensics.Prefetch": {"tags": ["Execution"]},
    "Generic.Client.Stats": {"tags": ["Monitoring"]},
    "Server.Monitor.Health": {"tags": ["Server", "Monitoring"]},
    "System.Flow.Completion": {"hidden": False, "tags": ["Internal"]},
}
_PERMISSIONS: dict[str, list[str]] = {
    "Server.Utils.CollectClient": ["COLLECT_CLIENT"],
}
_TYPES = {"client", "client_event", "server", "server_event", "notebook", "internal"}


def _text(value: object) -> str:
    """A YAML scalar as the string the server stores (None -> "")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [_text(v) for v in value]
    return [_text(value)]


def parse_definition(raw: str) -> ArtifactDefinition:
    """Build an ArtifactDefinition from one artifact's YAML text."""
    doc = yaml.safe_load(raw)
    if not isinstance(doc, dict) or "name" not in doc:
        raise ValueError("artifact YAML needs a mapping with a name")
    kind = _text(doc.get("type") or "client").lower()
    if kind not in _TYPES:
        raise ValueError(f"{doc['name']}: unknown artifact type {kind!r}")
    params = [
        Parameter(
            name=_text(p["name"]),
            type=_text(p.get("type")),
            default=_text(p.get("default")),
            description=_text(p.get("description")).strip(),
            choices=_strings(p.get("choices")),
            friendly_name=_text(p.get("friendly_name")),
            validating_regex=_text(p.get("validating_regex")),
        )
        for p in doc.get("parameters") or []
    ]
    sources = [
        Source(
            name=_text(s.get("name")),
            description=_text(s.get("description")),
            query=_text(s.get("query")),
            precondition=_text(s.get("precondition")),
            notebook=list(s.get("notebook") or []),
        )
        for s in doc.get("sources") or []
    ]
    name = _text(doc["name"])
    meta = _METADATA.get(name, {})
    return ArtifactDefinition(
        name=name,
        type=kind,
        description=_text(doc.get("description")),
        author=_text(doc.get("author")),
        parameters=params,
        sources=sources,
        column_types=[
            {"name": _text(c.get("name")), "type": _text(c.get("type")),
             "description": _text(c.get("description"))}
            for c in doc.get("column_types") or []
        ],
        precondition=_text(doc.get("precondition")),
        required_permissions=_strings(doc.get("required_permissions"))
        or list(_PERMISSIONS.get(name, [])),
        tags=list(meta.get("tags", [])),
        basic=bool(meta.get("basic", False)),
        hidden=bool(meta.get("hidden", False)),
        references=_strings(doc.get("references")),
        raw=raw,
        aliases=_strings(doc.get("aliases")),
        reference=_strings(doc.get("reference")),
        implied_permissions=_strings(doc.get("implied_permissions")),
        imports=_strings(doc.get("imports")),
        export=_text(doc.get("export")),
    )


@functools.lru_cache(maxsize=1)
def _load() -> tuple[ArtifactDefinition, ...]:
    folder = resources.files("velonb.emulator.world") / "artifacts"
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            found.append(parse_definition(entry.read_text(encoding="utf-8")))
    return tuple(found)


def build_catalog() -> dict[str, ArtifactDefinition]:
    """A fresh {name: definition} of every artifact the world knows (sorted by name)."""
    return {d.name: copy.deepcopy(d) for d in _load()}


def definition(name: str) -> ArtifactDefinition | None:
    """The shared (read-only) built-in definition called ``name``, or None."""
    for defn in _load():
        if defn.name == name or name in defn.aliases:
            return defn
    return None


def definition_row(defn: ArtifactDefinition) -> dict[str, Any]:
    """The row ``artifact_definitions()`` returns (the Artifact proto, every field, in order)."""
    return {
        "name": defn.name,
        "aliases": list(defn.aliases),
        "description": defn.description,
        "author": defn.author,
        "reference": list(defn.reference),
        "references": list(defn.references),
        "required_permissions": list(defn.required_permissions),
        "implied_permissions": list(defn.implied_permissions),
        "impersonate": "",
        "resources": {
            "timeout": 0, "ops_per_second": 0.0, "cpu_limit": 0.0, "iops_limit": 0.0,
            "max_rows": 0, "max_upload_bytes": 0, "max_batch_wait": 0, "max_batch_rows": 0,
            "max_batch_rows_buffer": 0,
        },
        "tools": [],
        "precondition": defn.precondition,
        "parameters": [
            {
                "name": p.name, "default": p.default, "description": p.description,
                "type": p.type, "choices": list(p.choices), "friendly_name": p.friendly_name,
                "validating_regex": p.validating_regex, "artifact_type": "", "sources": False,
            }
            for p in defn.parameters
        ],
        "type": defn.type.lower(),
        "sources": [
            {
                "name": s.name, "description": s.description, "precondition": s.precondition,
                "query": s.query, "queries": [], "notebook": [_cell(c) for c in s.notebook],
            }
            for s in defn.sources
        ],
        "imports": list(defn.imports),
        "export": defn.export,
        "reports": [],
        "column_types": [
            {"name": c.get("name", ""), "type": c.get("type", ""),
             "description": c.get("description", "")}
            for c in defn.column_types
        ],
        "raw": defn.raw,
        "compiled": True,  # repository.Get compiles every artifact it returns
        "built_in": defn.built_in,
        "compiled_in": defn.built_in,
        "is_alias": False,
        "is_inherited": False,
        "metadata": {"hidden": defn.hidden, "basic": defn.basic, "tags": list(defn.tags)},
    }


def _cell(cell: dict[str, Any]) -> dict[str, Any]:
    return {
        "template": _text(cell.get("template")), "type": _text(cell.get("type")),
        "name": _text(cell.get("name")), "output": _text(cell.get("output")),
        "env": [{"key": _text(e.get("key")), "value": _text(e.get("value"))}
                for e in cell.get("env") or []],
    }
