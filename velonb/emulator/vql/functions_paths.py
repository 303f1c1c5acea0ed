"""The ``basename`` builtin: velociraptor's path parsing (``accessors.ParsePath`` for each path
type, ``OSPath.Basename``), following ``vql/functions/paths.go``, ``accessors/manipulators.go``
and ``utils/path.go``. Split from `functions_text` (same conventions for Go strings)."""

from __future__ import annotations

import json
import re
from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.functions_text import go_bytes, go_string
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.vql.scope import Scope


def _consume_component(path: str) -> tuple[str, str]:
    """utils.consumeComponent: (rest, component)."""
    if not path:
        return "", ""
    length = len(path)
    first = path[0]
    if first in "/\\":
        return path[1:], ""
    if first == '"':
        result: list[str] = []
        i = 1
        while i < length:
            ch = path[i]
            if ch == '"':
                if i >= length - 1:
                    return "", "".join(result)
                nxt = path[i + 1]
                if nxt == '"':
                    result.append(nxt)
                    i += 2
                    continue
                if nxt in "/\\":
                    return path[i + 1 :], "".join(result)
                result.append(nxt)  # as Go does: the character is then read again
            else:
                result.append(ch)
            i += 1
        return "", "".join(result)
    for i, ch in enumerate(path):
        if ch in "/\\":
            return path[i:], path[:i]
    return "", path


def split_components(path: str) -> list[str]:
    """utils.SplitComponents: separators / and \\, quoted components, no '', '.' or '..'."""
    out: list[str] = []
    while path:
        path, component = _consume_component(path)
        if component not in ("", ".", ".."):
            out.append(component)
    return out


_PATHSPEC_FIELDS = {"DelegateAccessor": "string", "DelegatePath": "string",
                    "Delegate": "*accessors.PathSpec", "Path": "string"}


def _json_kind(v: object) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _fold(name: str) -> str:
    return name.lower().replace("\u017f", "s")


def _decode_pathspec(pairs: list[tuple[str, Any]], stack: list[str],
                     errors: list[str]) -> str:
    """Go json.Unmarshal into accessors.PathSpec: returns Path; type errors are collected."""
    folded = {_fold(k): k for k in _PATHSPEC_FIELDS}
    path = ""
    for key, value in pairs:
        field = key if key in _PATHSPEC_FIELDS else folded.get(_fold(key))
        if field is None or value is None:
            continue
        want = _PATHSPEC_FIELDS[field]
        if field == "Delegate":
            if isinstance(value, _Pairs):
                _decode_pathspec(value.pairs, [*stack, field], errors)
                continue
        elif isinstance(value, str):
            if field == "Path":
                path = value
            continue
        errors.append(f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                      f"PathSpec.{'.'.join([*stack, field])} of type {want}")
    return path


class _Pairs:
    """A JSON object kept as its (key, value) pairs, duplicates included."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def _reject_constant(name: str) -> object:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _pathspec_path(path: str) -> str:
    """accessors.maybeParsePathSpec: a string starting with '{' is a JSON PathSpec."""
    if not path.startswith("{"):
        return path
    try:
        doc = json.loads(path, object_pairs_hook=_Pairs, parse_constant=_reject_constant)
    except ValueError as e:  # syntax errors: Python's wording, not encoding/json's
        raise VQLCallError(f"While decoding pathspec: {e}") from None
    errors: list[str] = []
    result = _decode_pathspec(doc.pairs, [], errors)
    if errors:
        raise VQLCallError(f"While decoding pathspec: {errors[0]}")
    return result


_DRIVE_RX = re.compile(r"^[/\\]?([a-z]:)(.*)", re.IGNORECASE)
_UNC_RX = re.compile(r"^(\\\\[^\\]+)\\(.*)", re.IGNORECASE)
_DEVICE_DRIVE_RX = re.compile(r"^(\\\\[?.]\\[a-zA-Z]:)(.*)", re.IGNORECASE)
_DEVICE_DIR_RX = re.compile(r"^(\\\\[?.]\\GLOBALROOT\\Device\\[^/\\]+)([/\\]?.*)",
                            re.IGNORECASE)


def _windows_components(path: str) -> list[str]:
    for rx in (_DEVICE_DRIVE_RX, _DEVICE_DIR_RX, _UNC_RX):
        m = rx.match(path)
        if m:
            return [m.group(1), *split_components(m.group(2))]
    return split_components(path)


def _go_upper(s: str) -> str:
    """strings.ToUpper (single-rune case mapping)."""
    return "".join(u if len(u := ch.upper()) == 1 else ch for ch in s)


def _unhex(c: int) -> int:
    if 48 <= c <= 57:
        return c - 48
    if 97 <= c <= 102:
        return c - 87
    if 65 <= c <= 70:
        return c - 55
    return 0


def _unsanitize_zip(component: str) -> str:
    """utils.UnsanitizeComponentForZip: %XX escapes decoded, a trailing '%' dropped."""
    raw = go_bytes(component)
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:
            if i + 2 < len(raw):
                out.append((_unhex(raw[i + 1]) << 4 | _unhex(raw[i + 2])) & 0xFF)
                i += 3
            else:
                i += 1
        else:
            out.append(raw[i])
            i += 1
    return go_string(bytes(out))


_HIVES = {"HKCU": "HKEY_CURRENT_USER", "HKLM": "HKEY_LOCAL_MACHINE", "HKU": "HKEY_USERS"}


def path_components(path: str, path_type: str) -> list[str]:
    """accessors.ParsePath(path, path_type).Components for the supported path types."""
    if path_type in ("", "generic"):
        return split_components(_pathspec_path(path))
    if path_type in ("linux", "zip"):
        parts = [c for c in _pathspec_path(path).split("/") if c not in ("", ".", "..")]
        return [_unsanitize_zip(c) for c in parts] if path_type == "zip" else parts
    if path_type in ("windows", "ntfs"):
        components = _windows_components(_pathspec_path(path))
        if path_type == "ntfs" and components and _DRIVE_RX.match(components[0]):
            components[0] = "\\\\.\\" + _go_upper(components[0])
        return components
    if path_type == "registry":
        components = split_components(_pathspec_path(path))
        if components:
            hive = components[0]
            upper = _go_upper(hive)
            components[0] = _HIVES.get(upper, upper if hive.startswith("HKEY_") else hive)
        return components
    if path_type == "pathspec":
        raise VQLCallError("path_type pathspec is not supported by the emulator")
    raise VQLCallError(f"Unknown path type: {path_type} (should be one of windows,linux,generic)")


@function("basename", Arg("path", required=True), Arg("sep", "str"), Arg("path_type", "str"),
          error_value=False)
def basename(scope: Scope, args: dict[str, Any]) -> object:
    """The last component of a path (as the server, not running on Windows, parses it)."""
    path = args["path"]
    path_type: str = args.get("path_type", "")
    from velonb.emulator.vql.ospath import OSPath

    if isinstance(path, OSPath):
        return path.basename()
    if not isinstance(path, str):
        raise VQLCallError(f"Path should be an OSPath or string, not {P.go_type_name(path)}")
    if not path_type:
        path_type = "windows" if args.get("sep", "") == "\\" else "generic"
    components = path_components(path, path_type)
    return components[-1] if components else ""
