"""The ``*accessors.OSPath`` value: a path as components plus the path type that serializes it.

Follows velociraptor ``accessors/api.go`` (OSPath: Copy, Basename, Dirname, Append, Clear,
String), ``accessors/manipulators.go`` (each path type's PathJoin/AsPathSpec),
``accessors/protocols.go`` (bool, ==, +, =~, index and slice), ``accessors/pathspec.go``
(PathSpec JSON, omitempty) and ``utils/path.go`` (JoinComponents). Parsing reuses
`functions_paths.path_components`. Not emulated: the ``pathspec`` path type and HumanString.

The value plugs into the engine's protocols through its ``vql_*`` methods and ``go_json``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from velonb.emulator import gojson
from velonb.emulator.vql.functions_paths import path_components
from velonb.emulator.vql.functions_text import go_bytes, go_string

if TYPE_CHECKING:
    from velonb.emulator.vql.scope import Scope

_DRIVE_LETTER = re.compile(r"^[a-zA-Z]:$")
_SPEC_FIELDS = ("DelegateAccessor", "DelegatePath", "Delegate", "Path")


def _escape_component(component: str) -> str:
    """utils.escapeComponent: quoted (inner quotes doubled) when it has / \\ or "."""
    if not any(ch in component for ch in '/\\"'):
        return component
    return '"' + component.replace('"', '""') + '"'


def join_components(components: list[str], sep: str) -> str:
    """utils.JoinComponents: a leading separator unless the first component is a drive."""
    if not components:
        return ""
    parts = [] if _DRIVE_LETTER.match(components[0]) else [""]
    parts.extend(_escape_component(c) for c in components if c != "")
    return sep.join(parts)


def zip_escape(component: str) -> str:
    """utils.SanitizeStringForZip (the characters a zip member name may not hold)."""
    out: list[str] = []
    raw = go_bytes(component)
    text = go_string(raw)
    for pos, ch in enumerate(text):
        code = ord(ch)
        if (pos == 0 and ch in ". ") or 0xDC80 <= code <= 0xDCFF or ch in '?"*:|<>%/\\':
            byte = code - 0xDC00 if 0xDC80 <= code <= 0xDCFF else code
            out.append(f"%{byte:02X}")
        else:
            out.append(ch)
    if out and out[-1] in (".", " "):
        out[-1] = f"%{ord(out[-1]):02X}"
    return "".join(out)


def _spec_json(spec: dict[str, Any]) -> dict[str, Any]:
    """A PathSpec as Go marshals it: empty fields left out, a nested Delegate likewise."""
    out: dict[str, Any] = {}
    for name in _SPEC_FIELDS:
        value = spec.get(name)
        if name == "Delegate" and isinstance(value, dict):
            out[name] = _spec_json(value)
        elif value:
            out[name] = value
    return out


def _fold(name: str) -> str:
    return name.lower().replace("\u017f", "s").replace("\u212a", "k")


def _spec_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.Unmarshal into a PathSpec (fields matched case-insensitively, last one wins)."""
    folded = {_fold(name): name for name in _SPEC_FIELDS}
    spec: dict[str, Any] = {}
    for key, value in pairs:
        name = key if key in _SPEC_FIELDS else folded.get(_fold(key))
        if name is None or value is None:
            continue
        spec[name] = _spec_fields(value) if name == "Delegate" else value
    return spec


def parse_pathspec(path: str) -> dict[str, Any]:
    """accessors.maybeParsePathSpec: the PathSpec a path string stands for (call after
    `path_components`, which reports a malformed one)."""
    if not path.startswith("{"):
        return {"Path": path}
    return _spec_fields(json.loads(path, object_pairs_hook=list))


class OSPath:
    """An OSPath: ``components`` and the ``path_type`` whose manipulator serializes them."""

    __slots__ = ("components", "nil_components", "path_type", "spec")

    def __init__(self, components: list[str], path_type: str, spec: dict[str, Any],
                 nil_components: bool = False) -> None:
        self.components = components
        self.path_type = path_type
        self.spec = spec
        self.nil_components = nil_components  # Go's nil slice: `.Components` is null

    @classmethod
    def parse(cls, path: str, path_type: str) -> OSPath:
        """accessors.ParsePath (raises VQLCallError as the Go parsers fail)."""
        components = path_components(path, path_type)
        spec = parse_pathspec(path)
        nil = not components and path_type not in ("linux", "zip")
        return cls(components, "generic" if path_type == "" else path_type, spec, nil)

    # -- OSPath methods ---------------------------------------------------------------------
    def copy(self) -> OSPath:
        """OSPath.Copy (the components slice copied: never nil)."""
        return OSPath(list(self.components), self.path_type, dict(self.spec))

    def append(self, *children: str) -> OSPath:
        """OSPath.Append."""
        result = self.copy()
        result.components.extend(children)
        return result

    def clear(self) -> OSPath:
        """OSPath.Clear: no components and no pathspec, same path type."""
        return OSPath([], self.path_type, {}, nil_components=True)

    def basename(self) -> str:
        """The last component ("" for none)."""
        return self.components[-1] if self.components else ""

    def dirname(self) -> OSPath:
        """All but the last component."""
        result = self.copy()
        if result.components:
            result.components = result.components[:-1]
        return result

    def as_path(self) -> str:
        """The ``Path`` of the manipulator's AsPathSpec."""
        comps = self.components
        kind = self.path_type
        if kind == "linux":
            return "/" + "/".join(comps)
        if kind in ("windows", "ntfs"):
            if not comps:
                return "" if kind == "windows" else str(self.spec.get("Path", ""))
            if len(comps) == 1 and kind == "ntfs":
                return comps[0]
            return comps[0] + join_components(comps[1:], "\\")
        if kind == "registry":
            return join_components(comps, "\\").removeprefix("\\")
        if kind == "zip":
            return "/" + "/".join(zip_escape(c) for c in comps if c)
        return join_components(comps, "/")

    def delegate_path(self) -> str:
        """PathSpec.GetDelegatePath: a nested Delegate serialized, else DelegatePath."""
        delegate = self.spec.get("Delegate")
        if isinstance(delegate, dict):
            return gojson.dumps(_spec_json(delegate))
        return str(self.spec.get("DelegatePath", ""))

    def string(self) -> str:
        """OSPath.String: the path, or the whole PathSpec as JSON when it has a delegate."""
        if self.path_type == "filestore":  # FileStorePathManipulator: fs: or ds: + the path
            return self.delegate_path() + join_components(self.components, "/")
        path = self.as_path()
        if not self.spec.get("DelegateAccessor") and not self.delegate_path():
            return path
        return gojson.dumps(_spec_json({**self.spec, "Path": path}))

    def __str__(self) -> str:
        return self.string()

    def __repr__(self) -> str:
        return f"OSPath({self.path_type}, {self.components!r})"

    # -- protocols ----------------------------------------------------------------------------
    go_type = "*accessors.OSPath"

    def go_json(self) -> str:
        """MarshalJSON: the String() form."""
        return self.string()

    def vql_bool(self) -> bool:
        """_BoolOSPath: components or a delegate path."""
        return bool(self.components) or self.delegate_path() != ""

    def vql_eq(self, other: object) -> bool:
        """_EqualOSPath (only against another OSPath)."""
        return (isinstance(other, OSPath) and self.components == other.components
                and self.string() == other.string())

    def vql_add(self, scope: Scope, other: object) -> object:
        """_AddOSPath: another path's components, a string parsed as a generic path, or the
        string items of a list are appended."""
        if isinstance(other, OSPath):
            return self.append(*other.components)
        if isinstance(other, str):
            try:
                parsed = OSPath.parse(other, "")
            except Exception:
                return None
            return self.append(*parsed.components)
        if isinstance(other, list):
            return self.append(*(item for item in other if isinstance(item, str)))
        return None

    def vql_string(self) -> str:
        """The text a regex is matched against."""
        return self.string()

    def vql_associative(self, scope: Scope, key: object) -> tuple[object, bool]:
        """_AssociativeOSPath: ``p[i]``, ``p[i:j]`` and the methods and fields."""
        length = len(self.components)
        if isinstance(key, tuple):
            first = 0 if key[0] is None else key[0]
            second = length if key[1] is None else min(key[1], length)
            first = first + length if first < 0 else first
            second = second + length if second < 0 else second
            if second <= first:
                return self.clear(), True
            return self.clear().append(*self.components[max(first, 0):second]), True
        if isinstance(key, int) and not isinstance(key, bool):
            index = key + length if key < 0 else key
            return (self.components[index] if 0 <= index < length else None), True
        members: dict[str, Any] = {
            "Components": None if self.nil_components else list(self.components),
            "Basename": self.basename, "Dirname": self.dirname, "String": self.string,
            "Path": self.as_path, "DelegatePath": self.delegate_path,
            "DelegateAccessor": lambda: str(self.spec.get("DelegateAccessor", "")),
        }
        if not isinstance(key, str) or key not in members:
            return None, False
        value = members[key]
        return (value() if callable(value) else value), True
