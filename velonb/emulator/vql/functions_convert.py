"""Number and address conversions, following velociraptor's Go implementations.

Sources (Velocidex/velociraptor): ``vql/functions/functions.go`` (atoi, parse_float, with Go's
``strconv.ParseInt(s, 0, 64)`` / ``strconv.ParseFloat(s, 64)`` and ``utils.ToInt64``) and
``vql/networking/cidrmatch.go`` (cidr_contains, with Go's ``net.ParseIP`` / ``net.ParseCIDR``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.vql.scope import Scope

_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)

# ---------------------------------------------------------------------------------------------
# strconv


def underscore_ok(text: str) -> bool:
    """strconv's underscoreOK: underscores only between digits (or after a base prefix)."""
    saw = "^"
    i = 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hex_digits = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i = 2
        saw = "0"
        hex_digits = text[1].lower() == "x"
    while i < len(text):
        ch = text[i]
        if "0" <= ch <= "9" or (hex_digits and "a" <= ch.lower() <= "f"):
            saw = "0"
        elif ch == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
        i += 1
    return saw != "_"


def go_parse_int(text: str) -> int:
    """``strconv.ParseInt(text, 0, 64)`` with its error ignored: 0 for bad syntax, the
    clamped int64 limit when out of range."""
    body = text
    negative = False
    if body[:1] in ("+", "-"):
        negative = body[0] == "-"
        body = body[1:]
    base = 10
    digits = body
    if body[:1] == "0" and len(body) > 1:
        prefix = body[1].lower()
        if prefix in "box":
            base = {"b": 2, "o": 8, "x": 16}[prefix]
            digits = body[2:]
        else:
            base = 8
            digits = body[1:]
    if not digits:
        return 0
    if "_" in digits:
        if not underscore_ok(text):
            return 0
        digits = digits.replace("_", "")
        if not digits:
            return 0
    allowed = "0123456789abcdef"[:base]
    if any(ch.lower() not in allowed for ch in digits):
        return 0
    value = int(digits, base)
    if negative:
        return max(-value, _INT64_MIN)
    return min(value, _INT64_MAX)


_DEC_FLOAT = re.compile(r"[+-]?(?:\d[\d_]*\.?[\d_]*|\.[\d_]+)(?:[eE][+-]?\d+)?")
_HEX_FLOAT = re.compile(r"([+-]?)0[xX]((?:[0-9a-fA-F_]+\.?[0-9a-fA-F_]*|\.[0-9a-fA-F_]+))"
                        r"[pP]([+-]?\d+)")
_SPECIAL = {"inf": float("inf"), "+inf": float("inf"), "-inf": float("-inf"),
            "infinity": float("inf"), "+infinity": float("inf"), "-infinity": float("-inf"),
            "nan": float("nan")}


def go_parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)`` with its error ignored: 0 for bad syntax, +-Inf when
    out of range (decimal and hex forms, Inf/Infinity/NaN in any case, ``_`` separators)."""
    special = _SPECIAL.get(text.lower())
    if special is not None:
        return special
    if "_" in text and not underscore_ok(text):
        return 0.0
    m = _HEX_FLOAT.fullmatch(text)
    if m is not None:
        mantissa = m.group(2).replace("_", "")
        if mantissa in ("", "."):
            return 0.0
        try:
            value = float.fromhex(f"{m.group(1)}0x{mantissa}p{m.group(3)}")
        except OverflowError:
            return float("-inf") if m.group(1) == "-" else float("inf")
        return value
    if not _DEC_FLOAT.fullmatch(text):
        return 0.0
    cleaned = text.replace("_", "")
    if cleaned.lstrip("+-") in (".", ""):
        return 0.0
    return float(cleaned)


def go_to_int64(value: object) -> int:
    """velociraptor's ``utils.ToInt64`` with the ok flag ignored (0 when not a number)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return go_parse_int(value)
    if isinstance(value, float):
        if value != value or not _INT64_MIN <= value < 2.0**63:
            return _INT64_MIN  # Go's conversion of an unrepresentable float on amd64
        return int(value)
    return 0


@function("atoi", Arg("string", required=True))
def atoi(scope: Scope, args: dict[str, Any]) -> object:
    """Convert a string (Go integer syntax: 0x, 0o, 0b or leading-0 octal) to an int; 0 when
    it is not one."""
    value = args["string"]
    if isinstance(value, str):
        return go_parse_int(value)
    return go_to_int64(value)


@function("parse_float", Arg("string", required=True))
def parse_float(scope: Scope, args: dict[str, Any]) -> object:
    """Convert a string to a float (0 when it is not one); floats pass through, other values
    are converted as ints."""
    value = args["string"]
    if isinstance(value, str):
        return go_parse_float(value)
    if isinstance(value, float):
        return value
    return go_to_int64(value)


# ---------------------------------------------------------------------------------------------
# cidr_contains

_IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
_IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def go_parse_ip(text: str) -> _IPAddr | None:
    """``net.ParseIP``: IPv4 (no leading zeros) or IPv6 without a zone; an IPv4-mapped IPv6
    address counts as IPv4 (as ``IPNet.Contains`` sees it)."""
    if "%" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def go_parse_cidr(text: str) -> _IPNet:
    """``net.ParseCIDR``: ``address/bits`` (host bits allowed); raises VQLCallError with Go's
    message otherwise."""
    error = VQLCallError(f"invalid CIDR address: {text}")
    address, slash, bits = text.partition("/")
    if not slash or "%" in address or not bits or not bits.isascii() or not bits.isdigit():
        raise error
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise error from None
    size = 32 if isinstance(ip, ipaddress.IPv4Address) else 128
    if int(bits) > size:
        raise error
    return ipaddress.ip_network(f"{address}/{int(bits)}", strict=False)


@function("cidr_contains", Arg("ip", "str", required=True),
          Arg("ranges", "list_str", required=True))
def cidr_contains(scope: Scope, args: dict[str, Any]) -> object:
    """TRUE when the ip is inside any of the ranges (checked in order: a bad range logs and
    gives FALSE); FALSE for something that is not an IP."""
    ip = go_parse_ip(args["ip"])
    if ip is None:
        return False
    for text in args["ranges"]:
        try:
            network = go_parse_cidr(text)
        except VQLCallError as err:
            scope.log(f"cidr_contains: {err}")
            return False
        if ip.version == network.version and ip in network:
            return True
    return False
