"""Row JSON exactly as Velociraptor's API writes it (Velocidex/json: Go 1.17 encoding/json fork).

What the real encoder does on the Query path, and what this module reproduces:

* compact output, dict key order kept (rows are ordered dicts), ``nil`` -> ``null``;
* strings: ``<``, ``>``, ``&`` escaped as ``\\u003c`` ``\\u003e`` ``\\u0026``, U+2028/U+2029
  escaped, control characters as ``\\n``/``\\r``/``\\t`` or ``\\u00XX`` (lower-case hex; Go 1.17 has
  no ``\\b``/``\\f`` short forms), all other non-ASCII written raw as UTF-8, invalid UTF-8
  (a lone surrogate in Python) as ``\\ufffd``;
* ints exactly (int64/uint64 as numbers); floats like Go's float64 encoder (ES6 style: ``1`` not
  ``1.0``, exponent form below 1e-6 and from 1e21 as ``1e-7`` / ``1e+21``);
* datetimes as RFC 3339 with trailing fractional zeros trimmed, ``Z`` when the offset is 0;
  converted to UTC, or to the zone named by the scope's ``TZ`` variable;
* bytes as base64 (Go ``[]byte``);
* a dict value that cannot be encoded (NaN, infinity, a year outside 0-9999) becomes ``null``
  (velociraptor's ordered-dict encoder swallows the error per key).

``dumps_rows`` is the hot path: it normalises only values the C ``json`` encoder would get wrong
and lets it do the rest.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["dumps", "dumps_rows", "format_float", "format_time", "resolve_zone"]

_UTC = dt.UTC
_Zone = dt.tzinfo | None

_ESCAPE_FIX = re.compile(r"\\([bf])|(\\\\)")
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Unencodable(Exception):
    """A value Go's encoder refuses (its parent dict writes ``null`` instead)."""


def resolve_zone(name: object) -> _Zone:
    """The tzinfo for a scope ``TZ`` value, or None (UTC) when unset or unknown, as Go does."""
    if not isinstance(name, str) or name in ("", "UTC"):
        return None
    if name == "Local":
        return dt.datetime.now().astimezone().tzinfo
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):
        return None


def format_time(value: dt.datetime, zone: _Zone = None) -> str:
    """Go ``time.Time.MarshalJSON`` text (RFC 3339, nanosecond layout, zeros trimmed)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_UTC)
    value = value.astimezone(zone or _UTC)
    text = (f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"  # Go pads the year: 0001
            f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset() or dt.timedelta(0)
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_float(value: float) -> str:
    """Go's float64 JSON text; raises _Unencodable for NaN and infinities."""
    if value != value or value in (math.inf, -math.inf):
        raise _Unencodable(repr(value))
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + int(exponent or 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        power = point - 1
        return f"{sign}{head}e{'-' if power < 0 else '+'}{abs(power)}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return _fix_text(text)


def _fix_text(text: str) -> str:
    """Turn Python json string escapes into Go's (applied to whole documents)."""
    if "<" in text:
        text = text.replace("<", "\\u003c")
    if ">" in text:
        text = text.replace(">", "\\u003e")
    if "&" in text:
        text = text.replace("&", "\\u0026")
    if "\u2028" in text:
        text = text.replace("\u2028", "\\u2028")
    if "\u2029" in text:
        text = text.replace("\u2029", "\\u2029")
    if "\\b" in text or "\\f" in text:
        text = _ESCAPE_FIX.sub(_escape_fix, text)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = _SURROGATE.sub("\\\\ufffd", text)
    return text


def _escape_fix(match: re.Match[str]) -> str:
    if match.group(2):
        return match.group(2)
    return "\\u0008" if match.group(1) == "b" else "\\u000c"


def _encode(value: Any, zone: _Zone, out: list[str]) -> None:
    """Pure-Python reference encoder (slow path); appends text pieces to ``out``."""
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(format_float(value))
    elif isinstance(value, dt.datetime):
        if not 0 <= value.year <= 9999:
            raise _Unencodable("year out of range")
        out.append('"' + format_time(value, zone) + '"')
    elif isinstance(value, bytes | bytearray | memoryview):
        out.append('"' + base64.b64encode(bytes(value)).decode("ascii") + '"')
    elif type(value) is not dict and hasattr(value, "go_json"):
        _encode(value.go_json(), zone, out)  # a type with its own registered encoder
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in value.items():
            piece: list[str] = []
            try:
                _encode(item, zone, piece)
            except _Unencodable:
                piece = ["null"]
            if not first:
                out.append(",")
            first = False
            out.append(_string(key if isinstance(key, str) else str(key)))
            out.append(":")
            out.extend(piece)
        out.append("}")
    elif isinstance(value, list | tuple | set | frozenset):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, zone, out)
        out.append("]")
    elif isinstance(value, dt.date):
        out.append(_string(value.isoformat()))
    elif isinstance(value, Iterable):
        _encode(list(value), zone, out)
    else:
        out.append(_string(str(value)))


def dumps(value: Any, zone: _Zone = None) -> str:
    """Encode one value as Velocidex/json would (top-level refusals raise ValueError)."""
    out: list[str] = []
    try:
        _encode(value, zone, out)
    except _Unencodable as err:
        raise ValueError(f"json: unsupported value: {err}") from None
    return "".join(out)


_PLAIN = frozenset({str, int, bool, type(None)})
_CHECK = frozenset({float, list, dict})


def _needs_slow_path(value: Any) -> bool:
    """True when the C encoder's output would differ from Go's beyond integral floats."""
    kind = type(value)
    if kind in _PLAIN or kind is dt.datetime or kind is bytes:
        return False
    if kind is float:
        if value != value or value in (math.inf, -math.inf):
            return True
        magnitude = abs(value)
        if magnitude == 0:
            return math.copysign(1.0, value) < 0
        return magnitude < 1e-4 or magnitude >= 1e16
    if kind is dict:
        return any(type(key) is not str or _needs_slow_path(item) for key, item in value.items())
    if kind is list:
        return any(_needs_slow_path(item) for item in value)
    return True


def _has_integral_float(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return bool(value.is_integer())
    if kind is dict:
        return any(_has_integral_float(item) for item in value.values())
    if kind is list:
        return any(_has_integral_float(item) for item in value)
    return False


def _fast_floats(value: Any) -> Any:
    """Replace integral floats by ints (Go writes ``1``, Python ``1.0``), copying containers."""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        return {key: _fast_floats(item) for key, item in value.items()}
    if kind is list:
        return [_fast_floats(item) for item in value]
    return value


def _default_for(zone: _Zone) -> Callable[[Any], Any]:
    def default(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return format_time(value, zone)
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        raise TypeError(type(value).__name__)

    return default


def dumps_rows(rows: list[dict[str, Any]], zone: _Zone = None) -> str:
    """Encode a batch of rows as one compact JSON array (the ``Response`` of a part)."""
    prepared: list[Any] = rows
    values = list(itertools.chain.from_iterable([row.values() for row in rows]))
    kinds = set(map(type, values))
    if not kinds.isdisjoint(_CHECK):
        odd = [value for value in values if type(value) in _CHECK]
        if any(map(_needs_slow_path, odd)):
            return _dumps_rows_slow(rows, zone)
        if any(map(_has_integral_float, odd)):
            prepared = [_fast_floats(row) for row in rows]
    try:
        # datetimes and bytes go through ``default``; anything else unusual takes the slow path.
        text = _encoder(zone).encode(prepared)
    except (TypeError, ValueError):
        return _dumps_rows_slow(rows, zone)
    return _fix_text(text)


def _dumps_rows_slow(rows: list[dict[str, Any]], zone: _Zone) -> str:
    out: list[str] = ["["]
    for index, row in enumerate(rows):
        if index:
            out.append(",")
        _encode(row, zone, out)
    out.append("]")
    return "".join(out)


@functools.lru_cache(maxsize=64)
def _encoder(zone: _Zone) -> json.JSONEncoder:
    return json.JSONEncoder(
        ensure_ascii=False,
        separators=(",", ":"),
        check_circular=False,
        allow_nan=False,
        default=_default_for(zone),
    )


def go_indent(compact: str, indent: str = " ") -> str:
    """encoding/json.Indent of compact JSON: a line per element, ``": "`` after keys, empty
    ``{}``/``[]`` kept whole; strings copied untouched."""
    out: list[str] = []
    depth = 0
    in_string = escaped = False
    need_newline = False
    for char in compact:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if need_newline:
            need_newline = False
            if char in "]}":  # an empty object or array stays on its line
                out.append(char)
                depth -= 1
                continue
            out.append("\n" + indent * depth)
        if char == '"':
            in_string = True
            out.append(char)
        elif char in "{[":
            out.append(char)
            depth += 1
            need_newline = True
        elif char in "]}":
            depth -= 1
            out.append("\n" + indent * depth + char)
        elif char == ",":
            out.append(",\n" + indent * depth)
        elif char == ":":
            out.append(": ")
        else:
            out.append(char)
    return "".join(out)
