"""A subset of Go's fmt.Sprintf, enough for VQL's format() and log(args=...)."""

from __future__ import annotations

import datetime as _dt
import json
import re
from decimal import Decimal

from velonb.emulator.vql.associative import go_time_string
from velonb.emulator.vql.protocols import StoredQuery, go_type_name

_VERB = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?([a-zA-Z%])")


def go_value(a: object) -> str:
    """Go's %v rendering of a VQL value."""
    if a is None:
        return "<nil>"
    if isinstance(a, bool):
        return "true" if a else "false"
    if isinstance(a, int):
        return str(a)
    if isinstance(a, float):
        return go_float_g(a)
    if isinstance(a, str):
        return a
    if isinstance(a, list):
        return "[" + " ".join(go_value(x) for x in a) + "]"
    if isinstance(a, dict):
        return json.dumps(a, default=str, separators=(",", ":"))
    if isinstance(a, _dt.datetime):
        return go_time_string(a)
    if isinstance(a, StoredQuery):
        return "&{}"
    return str(a)


def go_float_g(value: float) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64), which %v prints for a float64: the shortest
    digits, in exponent form when the exponent is below -4 or at least 6 (shortest 'g' uses
    precision 6 for that decision: 1e+06, 1.234567e+06, 123456)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if repr(value).startswith("-") else "0"
    shortest = Decimal(repr(abs(value))).normalize()
    _, places, exp = shortest.as_tuple()
    assert isinstance(exp, int)
    text = "".join(map(str, places))
    exponent = len(text) + exp - 1
    minus = "-" if value < 0 else ""
    if exponent < -4 or exponent >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return minus + format(shortest, "f")


def _pad(s: str, flags: str, width: int | None) -> str:
    if width is None or len(s) >= width:
        return s
    if "-" in flags:
        return s.ljust(width)
    if "0" in flags:
        sign = s[0] if s[0] in "+-" else ""
        body = s[1:] if sign else s
        return sign + body.rjust(width - len(sign), "0")
    return s.rjust(width)


def _bytes_of(a: object) -> bytes | None:
    if isinstance(a, str):
        return a.encode("utf-8", "surrogateescape")
    return None


def _fmt_one(verb: str, flags: str, prec: int | None, a: object) -> str:
    bad = f"%!{verb}({go_type_name(a)}={go_value(a)})"
    if verb in ("v", "s"):
        if verb == "s" and isinstance(a, bool | int | float):
            return bad
        s = go_value(a)
        if prec is not None:
            s = s[:prec]
        return s
    if verb == "d":
        if isinstance(a, int) and not isinstance(a, bool):
            return ("+" if "+" in flags and a >= 0 else "") + str(a)
        if isinstance(a, list):
            return "[" + " ".join(_fmt_one("d", flags, prec, x) for x in a) + "]"
        return bad
    if verb in ("x", "X"):
        if isinstance(a, int) and not isinstance(a, bool):
            s = format(abs(a), "x" if verb == "x" else "X")
            if "#" in flags:
                s = "0x" + s if verb == "x" else "0X" + s
            return ("-" if a < 0 else "") + s
        b = _bytes_of(a)
        if b is not None:
            s = b.hex()
            return s.upper() if verb == "X" else s
        if isinstance(a, float):
            return float.hex(a)
        if isinstance(a, list):
            return "[" + " ".join(_fmt_one(verb, flags, prec, x) for x in a) + "]"
        return bad
    if verb == "q":
        if isinstance(a, str):
            return json.dumps(a, ensure_ascii=False)
        if isinstance(a, int) and not isinstance(a, bool):
            return "'" + chr(a) + "'"
        return bad
    if verb == "t":
        return ("true" if a else "false") if isinstance(a, bool) else bad
    if verb in ("f", "F", "e", "g"):
        if isinstance(a, float) or (isinstance(a, int) and not isinstance(a, bool)):
            if isinstance(a, int):
                return bad
            p = 6 if prec is None else prec
            if verb == "g":
                return go_float_g(a) if prec is None else f"{a:.{p}g}"
            return f"{a:.{p}{verb.lower()}}"
        return bad
    if verb == "T":
        return go_type_name(a)
    if verb == "c":
        return chr(a) if isinstance(a, int) and not isinstance(a, bool) else bad
    if verb == "o":
        return format(a, "o") if isinstance(a, int) and not isinstance(a, bool) else bad
    if verb == "b":
        return format(a, "b") if isinstance(a, int) and not isinstance(a, bool) else bad
    return f"%!{verb}({go_type_name(a)}={go_value(a)})"


def sprintf(fmt: str, args: list[object]) -> str:
    """Go fmt.Sprintf with VQL values, including %!verb(MISSING) and %!(EXTRA ...) markers."""
    out: list[str] = []
    i = 0
    argi = 0
    pos = 0
    for m in _VERB.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width_s, prec_s, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        if width_s == "*":
            w = args[argi] if argi < len(args) else None
            argi += 1
            width = w if isinstance(w, int) else None
        elif width_s:
            width = int(width_s)
        prec: int | None = None
        if prec_s is not None:
            prec = int(prec_s) if prec_s not in ("", "*") else 0
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        a = args[argi]
        argi += 1
        out.append(_pad(_fmt_one(verb, flags, prec, a), flags, width))
        i += 1
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{go_type_name(a)}={go_value(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
