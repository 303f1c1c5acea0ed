"""The associative protocol (`a.b`, `a[i]`, `a[i:j]`) and time helpers."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any

from velonb.emulator.vql.protocols import EPOCH, UTC, StoredQuery

if TYPE_CHECKING:
    from velonb.emulator.vql.scope import Scope


MISSING = object()


def associative(scope: Scope, a: object, b: object) -> tuple[object, bool]:
    """Associative protocol: `a.b`, `a[b]`; returns (value, present)."""
    from velonb.emulator.vql.scope import Scope as _Scope

    if isinstance(a, dict):
        if isinstance(b, str):
            v = a.get(b, MISSING)
            return (None, False) if v is MISSING else (v, True)
        return None, False
    if isinstance(a, _Scope):
        if isinstance(b, str):
            v, ok = a.resolve(b)
            expr = getattr(v, "expr", None)
            if ok and expr is not None and hasattr(v, "params"):
                return expr.eval(a.copy()), True
            return v, ok
        return None, False
    if isinstance(a, StoredQuery):
        a = a.materialize(scope)
    if isinstance(a, list):
        if isinstance(b, tuple):
            return _slice(a, b), True
        if isinstance(b, int) and not isinstance(b, bool):
            idx = b if b >= 0 else len(a) + b
            if 0 <= idx < len(a):
                return a[idx], True
            return None, False
        if isinstance(b, str):
            out = []
            for item in a:
                v, ok = associative(scope, item, b)
                out.append(v if ok else None)
            return out, True
        return None, False
    hook = getattr(a, "vql_associative", None)  # Go values with their own protocol (OSPath,
    if hook is not None:  # a file store pathspec): checked before str, which a pathspec is
        result: tuple[object, bool] = hook(scope, b)
        return result
    if isinstance(a, str):
        if isinstance(b, tuple):
            return _slice(a, b), True
        if isinstance(b, int) and not isinstance(b, bool):
            raw = a.encode("utf-8", "surrogateescape")
            idx = b if b >= 0 else len(raw) + b
            if 0 <= idx < len(raw):
                return raw[idx], True
            return None, False
        return None, False
    if isinstance(a, _dt.datetime) and isinstance(b, str):
        return _time_member(a, b)
    return None, False


def _slice(a: Any, rng: tuple[int | None, int | None]) -> Any:
    start, end = rng
    n = len(a)
    s = 0 if start is None else (start if start >= 0 else n + start)
    e = n if end is None else (end if end >= 0 else n + end)
    s = min(max(s, 0), n)
    e = min(max(e, 0), n)
    if e < s:
        e = s
    return a[s:e]


def _time_member(t: _dt.datetime, name: str) -> tuple[object, bool]:
    secs = int((t - EPOCH).total_seconds() // 1)
    members: dict[str, object] = {
        "Unix": secs,
        "UnixNano": (t - EPOCH) // _dt.timedelta(microseconds=1) * 1000,
        "UnixMilli": (t - EPOCH) // _dt.timedelta(milliseconds=1),
        "UnixMicro": (t - EPOCH) // _dt.timedelta(microseconds=1),
        "Year": t.year, "Month": t.month, "Day": t.day, "Hour": t.hour,
        "Minute": t.minute, "Second": t.second, "Nanosecond": t.microsecond * 1000,
        "Weekday": (t.weekday() + 1) % 7, "YearDay": t.timetuple().tm_yday,
        "String": go_time_string(t),
    }
    if name in members:
        return members[name], True
    return None, False


def go_time_string(t: _dt.datetime) -> str:
    """Go's time.Time.String() for a UTC time."""
    t = t.astimezone(UTC)
    base = f"{t.year:04d}-" + t.strftime("%m-%d %H:%M:%S")
    if t.microsecond:
        base += ("." + f"{t.microsecond:06d}").rstrip("0")
    return base + " +0000 UTC"


def rfc3339(t: _dt.datetime) -> str:
    """Go's time.RFC3339 (seconds precision) in UTC."""
    t = t.astimezone(UTC)
    return f"{t.year:04d}-" + t.strftime("%m-%dT%H:%M:%SZ")
