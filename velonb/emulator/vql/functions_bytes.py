"""Byte-level string builtins, following velociraptor's Go implementations.

Sources (Velocidex/velociraptor): ``vql/functions/xor.go`` (xor), ``vql/functions/unhex.go``
with Go's ``encoding/hex.DecodeString`` (unhex), ``vql/functions/rot13.go`` (rot13),
``vql/functions/entropy.go`` (entropy), ``vql/functions/strings.go`` (substr) and
``vql/functions/encode.go`` (encode, which overrides vfilter's own ``encode``).

Strings are Go byte strings held as ``str`` (see `functions_text`): every function works on
``go_bytes`` of its input and returns ``go_string`` of the result.
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from typing import Any

from velonb.emulator import gojson
from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import rfc3339
from velonb.emulator.vql.functions_text import go_bytes, go_string
from velonb.emulator.vql.gofmt import go_value
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.vql.scope import Scope

# ---------------------------------------------------------------------------------------------
# xor, unhex, rot13


@function("xor", Arg("string", "str", required=True), Arg("key", "str", required=True),
          error_value=False)
def xor(scope: Scope, args: dict[str, Any]) -> object:
    """Xor the string's bytes with the repeated key (an empty key leaves the string as is)."""
    data = go_bytes(args["string"])
    key = go_bytes(args["key"])
    if not key:
        return args["string"]
    size = len(key)
    return go_string(bytes(b ^ key[i % size] for i, b in enumerate(data)))


_HEX = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}


def go_hex_decode(text: str) -> bytes:
    """``hex.DecodeString`` with its error ignored: the bytes of the leading valid pairs."""
    out = bytearray()
    for i in range(0, len(text) - 1, 2):
        high, low = _HEX.get(text[i]), _HEX.get(text[i + 1])
        if high is None or low is None:
            break
        out.append(high << 4 | low)
    return bytes(out)


@function("unhex", Arg("string", "str"), error_value=False)
def unhex(scope: Scope, args: dict[str, Any]) -> object:
    """Hex-decode a string (spaces removed, a leading ``0x`` dropped); decoding stops at the
    first invalid pair, as Go returns the bytes decoded before its error."""
    text = args.get("string", "").replace(" ", "").removeprefix("0x")
    return go_string(go_hex_decode(text))


def _rot13_byte(b: int) -> int:
    if 97 <= b <= 122:
        return (b - 97 + 13) % 26 + 97
    if 65 <= b <= 90:
        return (b - 65 + 13) % 26 + 65
    return b


@function("rot13", Arg("string", "str"), error_value=False)
def rot13(scope: Scope, args: dict[str, Any]) -> object:
    """Rotate ASCII letters by 13 places (other bytes unchanged)."""
    return go_string(bytes(_rot13_byte(b) for b in go_bytes(args.get("string", ""))))


# ---------------------------------------------------------------------------------------------
# entropy


@function("entropy", Arg("string", "str", required=True), error_value=False)
def entropy(scope: Scope, args: dict[str, Any]) -> object:
    """Shannon entropy of the string's bytes in bits, rounded down to two decimals (Go's
    ``math.Floor(-sum*100)/100``, so a single repeated byte or "" gives -0)."""
    data = go_bytes(args["string"])
    counts: dict[int, int] = {}
    for b in data:
        counts[b] = counts.get(b, 0) + 1
    total = 0.0
    for value in sorted(counts):
        f = counts[value] / len(data)
        total += f * math.log2(f)
    scaled = (total * -1) * 100
    floored = float(math.floor(scaled)) if scaled != 0 else scaled  # keeps -0.0
    return floored / 100


# ---------------------------------------------------------------------------------------------
# substr


@function("substr", Arg("str", "str", required=True), Arg("start", "int"), Arg("end", "int"))
def substr(scope: Scope, args: dict[str, Any]) -> object:
    """A substring by rune positions [start, end); end 0 with a start means to the end."""
    text: str = args["str"]
    start: int = args.get("start", 0)
    end: int = args.get("end", 0)
    if start < 0 or end < 0:
        raise VQLCallError("Start and End values must be greater than 0")
    if start == 0 and end == 0:
        return text
    raw = go_bytes(text)
    if start != 0 and end == 0:
        end = len(raw)
    elif end < start:
        raise VQLCallError("End must be greater than start!")
    # Go ranges over the string's runes: byte offsets of each rune start.
    offsets = _rune_offsets(raw)
    start_index = 0
    for counter, offset in enumerate(offsets):
        if counter == start:
            start_index = offset
        if counter == end:
            return go_string(raw[start_index:offset])
    return go_string(raw[start_index:])


def _rune_offsets(raw: bytes) -> list[int]:
    """Byte offsets at which ``for i := range s`` stops (invalid bytes are one rune each)."""
    offsets: list[int] = []
    i = 0
    while i < len(raw):
        offsets.append(i)
        i += _rune_len(raw, i)
    return offsets


def _rune_len(raw: bytes, i: int) -> int:
    b = raw[i]
    for size, limit in ((1, 0x80), (2, 0xE0), (3, 0xF0), (4, 0xF5)):
        if b < limit:
            if size == 1:
                return 1
            if b < 0xC2:
                return 1
            chunk = raw[i : i + size]
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError:
                return 1
            return size
    return 1


# ---------------------------------------------------------------------------------------------
# encode


@function("encode", Arg("string", required=True), Arg("type", "str", required=True))
def encode(scope: Scope, args: dict[str, Any]) -> object:
    """Encode an item as json (indented), string, hex or base64 (unpadded); csv and yaml are
    not emulated."""
    item = P.materialize_value(scope, args["string"])
    kind: str = args["type"]
    if kind in ("", "json"):
        tz, _ = scope.resolve("TZ")
        try:
            return gojson.go_indent(gojson.dumps(item, gojson.resolve_zone(tz)))
        except ValueError as err:
            raise VQLCallError(str(err)) from None
    if kind == "string":  # utils.ToString
        if isinstance(item, _dt.datetime):
            return rfc3339(item)
        return item if isinstance(item, str) else go_value(item)
    if kind in ("hex", "base64"):
        if not isinstance(item, str):
            label = "hex" if kind == "hex" else "base64"
            raise VQLCallError(f"Unsupported type for {label} encoding {P.go_type_name(item)}")
        raw = go_bytes(item)
        if kind == "hex":
            return raw.hex()
        return base64.b64encode(raw).decode("ascii").rstrip("=")
    if kind in ("csv", "yaml"):
        raise VQLCallError(f"format {kind} is not supported by the emulator")
    raise VQLCallError(f"Unknown format {kind}")
