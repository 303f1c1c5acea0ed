"""Text, encoding and container builtins, following velociraptor's Go implementations
(``basename`` is in `functions_paths`).

Sources (Velocidex/velociraptor): ``vql/functions/functions.go`` (base64decode, base64encode,
utf16, utf16_encode), ``vql/functions/strings.go`` (strip), ``vql/functions/humanize.go``
with dustin/go-humanize v1.0.1 (humanize), ``vql/parsers/regexparser.go`` with Go's
``regexp.ReplaceAllString`` (regex_replace), ``vql/functions/lists.go`` (array),
``vql/functions/dict.go`` (to_dict, the items function) and ``vql/common/items.go`` (the items
plugin).

Go strings are byte strings; the emulator keeps them as ``str`` and carries bytes that are not
valid UTF-8 as lone surrogates (``surrogateescape``), which the JSON writer prints as ``\\ufffd``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
import re
import struct
from collections.abc import Callable, Iterator
from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import associative
from velonb.emulator.vql.registry import Arg, ArgError, function, parse_args, plugin
from velonb.emulator.vql.scope import Scope

# ---------------------------------------------------------------------------------------------
# Go string <-> bytes helpers


def go_bytes(s: str) -> bytes:
    """The bytes of a Go string held as ``str`` (escaped bytes restored, other lone
    surrogates written as U+FFFD, which is what Go would hold for them)."""
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        out = bytearray()
        for ch in s:
            try:
                out += ch.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                out += "\ufffd".encode()
        return bytes(out)


def go_string(b: bytes) -> str:
    """A Go ``string(bytes)`` as the emulator holds it."""
    return b.decode("utf-8", "surrogateescape")


def go_runes(s: str) -> str:
    """Go ``[]rune(s)``: every byte that is not part of valid UTF-8 becomes U+FFFD."""
    text = go_string(go_bytes(s))
    if text.isascii():
        return text
    return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)


# ---------------------------------------------------------------------------------------------
# base64 / utf16

# encoding/base64 StdEncoding.DecodeString: padded, alphabet only, CR/LF ignored.
_B64_STD = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


@function("base64decode", Arg("string", "str", required=True))
def base64decode(scope: Scope, args: dict[str, Any]) -> object:
    """Decode a base64 string (NULL, without a log, when it is not valid StdEncoding)."""
    text = args["string"].replace("\r", "").replace("\n", "")
    if not _B64_STD.fullmatch(text):
        return None
    return go_string(base64.b64decode(text))


@function("base64encode", Arg("string", "str", required=True))
def base64encode(scope: Scope, args: dict[str, Any]) -> object:
    """Encode a string's bytes as padded standard base64."""
    return base64.b64encode(go_bytes(args["string"])).decode("ascii")


def _utf16_decode(units: tuple[int, ...]) -> str:
    """unicode/utf16.Decode: pairs joined, any other surrogate becomes U+FFFD."""
    out: list[str] = []
    i = 0
    n = len(units)
    while i < n:
        u = units[i]
        if u < 0xD800 or u >= 0xE000:
            out.append(chr(u))
        elif u < 0xDC00 and i + 1 < n and 0xDC00 <= units[i + 1] < 0xE000:
            out.append(chr(0x10000 + ((u - 0xD800) << 10) + (units[i + 1] - 0xDC00)))
            i += 1
        else:
            out.append("\ufffd")
        i += 1
    return "".join(out)


@function("utf16", Arg("string", "str", required=True))
def utf16(scope: Scope, args: dict[str, Any]) -> object:
    """Decode UTF-16LE bytes (a trailing odd byte is ignored)."""
    raw = go_bytes(args["string"])
    count = len(raw) // 2
    return _utf16_decode(struct.unpack(f"<{count}H", raw[: count * 2]))


@function("utf16_encode", Arg("string", "str", required=True))
def utf16_encode(scope: Scope, args: dict[str, Any]) -> object:
    """Encode a string as UTF-16LE bytes (held as a Go string)."""
    return go_string(go_runes(args["string"]).encode("utf-16-le"))


# ---------------------------------------------------------------------------------------------
# strip

# unicode.IsSpace, as strings.TrimSpace uses it.
_GO_SPACE = ("\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
             "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


@function("strip", Arg("string", "str", required=True), Arg("prefix", "str"),
          Arg("suffix", "str"), error_value=False)
def strip(scope: Scope, args: dict[str, Any]) -> object:
    """Strip a prefix and/or suffix; with neither, trim surrounding white space."""
    s: str = args["string"]
    prefix: str = args.get("prefix", "")
    suffix: str = args.get("suffix", "")
    if not prefix and not suffix:
        return s.strip(_GO_SPACE)
    if prefix:
        s = s.removeprefix(prefix)
    if suffix:
        s = s.removesuffix(suffix)
    return s


# ---------------------------------------------------------------------------------------------
# regex_replace


def go_replace_all(rx: re.Pattern[str], src: str, repl: Callable[[re.Match[str]], str]) -> str:
    """regexp.Regexp.replaceAll: successive leftmost matches; an empty match right after the
    previous match is not replaced; the search always advances by at least one character."""
    out: list[str] = []
    last_end = 0
    pos = 0
    end = len(src)
    while pos <= end:
        m = rx.search(src, pos)
        if m is None:
            break
        start, stop = m.span()
        out.append(src[last_end:start])
        if stop > last_end or start == 0:
            out.append(repl(m))
        last_end = stop
        width = 1 if pos < end else 0
        if pos + width > stop:
            pos += width
        elif pos + 1 > stop:
            pos += 1
        else:
            pos = stop
    out.append(src[last_end:])
    return "".join(out)


def _template_name(text: str) -> tuple[str, int, str] | None:
    """regexp's extract(): a leading ``name`` or ``{name}`` -> (name, number or -1, rest)."""
    if not text:
        return None
    brace = text[0] == "{"
    if brace:
        text = text[1:]
    i = 0
    while i < len(text) and (text[i].isalpha() or text[i].isdecimal() or text[i] == "_"):
        i += 1
    if i == 0:
        return None
    name = text[:i]
    if brace:
        if i >= len(text) or text[i] != "}":
            return None
        i += 1
    num = 0
    for ch in name:
        if not "0" <= ch <= "9" or num >= 100_000_000:
            num = -1
            break
        num = num * 10 + ord(ch) - 48
    if name[0] == "0" and len(name) > 1:
        num = -1
    return name, num, text[i:]


def go_expand(template: str, m: re.Match[str]) -> str:
    """regexp.Regexp.Expand: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; the longest
    name is taken (``$1x`` is ``${1x}``); unknown or unmatched groups expand to nothing."""
    out: list[str] = []
    groups = m.re.groups
    while template:
        before, sep, after = template.partition("$")
        if not sep:
            break
        out.append(before)
        template = after
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        parsed = _template_name(template)
        if parsed is None:
            out.append("$")
            continue
        name, num, template = parsed
        index = num if num >= 0 else m.re.groupindex.get(name, -1)
        if 0 <= index <= groups:
            value = m.group(index)
            if value is not None:
                out.append(value)
    out.append(template)
    return "".join(out)


@function("regex_replace", Arg("source", "str", required=True), Arg("replace", "str"),
          Arg("re", "str", required=True))
def regex_replace(scope: Scope, args: dict[str, Any]) -> object:
    """Search and replace with a (case-insensitive) regex; ``$1`` expands captures."""
    pattern: str = args["re"]
    try:
        rx = P.compile_go_regex(pattern)
    except re.error:
        scope.log(f"Unable to compile regex {pattern}")
        return None
    template: str = args.get("replace", "")
    if "$" not in template:
        return go_replace_all(rx, args["source"], lambda m: template)
    return go_replace_all(rx, args["source"], lambda m: go_expand(template, m))


# ---------------------------------------------------------------------------------------------
# humanize (dustin/go-humanize v1.0.1)

_SI_SIZES = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
_IEC_SIZES = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def _humanate_bytes(s: int, base: float, sizes: tuple[str, ...]) -> str:
    if s < 10:
        return f"{s} B"
    e = math.floor(math.log(float(s)) / math.log(base))
    val = math.floor(float(s) / math.pow(base, e) * 10 + 0.5) / 10
    return f"{val:.0f} {sizes[e]}" if val >= 10 else f"{val:.1f} {sizes[e]}"


_SECOND = 1_000_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY
_MONTH = 30 * _DAY
_YEAR = 12 * _MONTH
_MAX_DURATION = (1 << 63) - 1

# (threshold, format, divisor) in nanoseconds: humanize's defaultMagnitudes.
_MAGNITUDES = (
    (_SECOND, "now", _SECOND),
    (2 * _SECOND, "1 second %s", 1),
    (_MINUTE, "%d seconds %s", _SECOND),
    (2 * _MINUTE, "1 minute %s", 1),
    (_HOUR, "%d minutes %s", _MINUTE),
    (2 * _HOUR, "1 hour %s", 1),
    (_DAY, "%d hours %s", _HOUR),
    (2 * _DAY, "1 day %s", 1),
    (_WEEK, "%d days %s", _DAY),
    (2 * _WEEK, "1 week %s", 1),
    (_MONTH, "%d weeks %s", _WEEK),
    (2 * _MONTH, "1 month %s", 1),
    (_YEAR, "%d months %s", _MONTH),
    (18 * _MONTH, "1 year %s", 1),
    (2 * _YEAR, "2 years %s", 1),
    (37 * _YEAR, "%d years %s", _YEAR),
    (_MAX_DURATION, "a long while %s", 1),
)


def rel_time(then: _dt.datetime, now: _dt.datetime) -> str:
    """humanize.RelTime(then, now, "ago", "from now") with Go's saturating Duration."""
    label = "ago"
    delta = now - then
    if then > now:
        label = "from now"
        delta = then - now
    diff = min(delta // _dt.timedelta(microseconds=1) * 1000, _MAX_DURATION)
    fmt, div = next(((f, d) for limit, f, d in _MAGNITUDES if limit > diff),
                    _MAGNITUDES[-1][1:])
    return fmt.replace("%d", str(diff // div)).replace("%s", label)


_HUMANIZE_ARGS = (Arg("bytes", "int"), Arg("ibytes", "int"), Arg("time", "time"),
                  Arg("comma", "int"))


@function("humanize", free_form=True, error_value=False)
def humanize(scope: Scope, args: dict[str, Any]) -> object:
    """Format bytes (SI), ibytes (IEC), a time (relative to now) or an int with commas."""
    try:  # parsed here: the Go function logs its argument errors as "Humanize: ..."
        parsed = parse_args(scope, _HUMANIZE_ARGS, args)
    except ArgError as e:
        scope.log(f"Humanize: {e}")
        return False
    when = parsed.get("time")
    if when is not None and when != P.ZERO_TIME:
        return rel_time(when, _dt.datetime.now(P.UTC))
    comma = parsed.get("comma", 0)
    if comma:
        return f"{P.wrap_int(comma):,}"
    size = parsed.get("bytes", 0)
    if size:
        return _humanate_bytes(size & 0xFFFFFFFFFFFFFFFF, 1000, _SI_SIZES)
    return _humanate_bytes(parsed.get("ibytes", 0) & 0xFFFFFFFFFFFFFFFF, 1024, _IEC_SIZES)


# ---------------------------------------------------------------------------------------------
# array, to_dict, items


def _normalize(scope: Scope, value: object, depth: int) -> object:
    """vfilter dict.normalize_value: queries materialised, lists walked (at most 10 deep)."""
    if depth > 10:
        return None
    if isinstance(value, P.StoredQuery):
        return list(value.materialize(scope))
    if isinstance(value, list):
        return [_normalize(scope, item, depth + 1) for item in value]
    return value


@function("array", Arg("_"), free_form=True)
def array(scope: Scope, args: dict[str, Any]) -> object:
    """An array of the ``_`` initialiser's items (or the value itself), then every other arg."""
    result: list[object] = []
    if "_" in args:
        value = P.materialize_value(scope, args["_"])
        if isinstance(value, list):
            result.extend(value)
        else:
            result.append(value)
    for key, value in args.items():
        if key != "_":
            result.append(P.materialize_value(scope, _normalize(scope, value, 0)))
    return result


def _members(scope: Scope, item: object) -> list[str]:
    """GetMembers: a dict's keys; for a list, the members of its first item."""
    while isinstance(item, list):
        if not item:
            return []
        item = item[0]
    return P.members(scope, item)


def row_to_dict(scope: Scope, item: object) -> dict[str, object]:
    """vfilter RowToDict: a new dict of the item's members with normalised values."""
    result: dict[str, object] = {}
    for member in _members(scope, item):
        value, present = associative(scope, item, member)
        if present:
            result[member] = _normalize(scope, value, 0)
    return result


@function("to_dict", Arg("item"))
def to_dict(scope: Scope, args: dict[str, Any]) -> object:
    """A dict from a query's ``_key``/``_value`` rows, or from another object's members."""
    item = args.get("item")
    if not isinstance(item, P.StoredQuery):
        return row_to_dict(scope, item)
    result: dict[str, object] = {}
    for row in item.eval(scope):
        key, present = associative(scope, row, "_key")
        key = P.materialize_value(scope, key) if present else None
        if not isinstance(key, str) or not key:
            continue
        value, present = associative(scope, row, "_value")
        result[key] = value if present else None
    return result


@function("items", Arg("item"))
def items_function(scope: Scope, args: dict[str, Any]) -> object:
    """A dict as ``_key``/``_value`` rows; anything else as a single ``_value`` row."""
    item = args.get("item")
    if isinstance(item, dict):
        return [{"_key": key, "_value": value} for key, value in item.items()]
    return [{"_value": item}]


@plugin("items", Arg("item"))
def items_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, object]]:
    """Rows ``_key``/``_value``: indexes of a query's rows or a list, or a dict's members."""
    item = args.get("item")
    if isinstance(item, P.StoredQuery):
        for index, row in enumerate(item.eval(scope)):
            if scope.cancel.is_set():
                return
            yield {"_key": index, "_value": row}
        return
    if isinstance(item, list):
        for index, element in enumerate(item):
            yield {"_key": index, "_value": element}
        return
    for key in P.members(scope, item):
        value, present = associative(scope, item, key)
        if present:
            yield {"_key": key, "_value": value}
