"""vfilter's operator protocols (eq, lt, add, ..., bool, associative) over Python values.

Value model: NULL is ``None``; dicts are ordered ``dict``; arrays are ``list``; times are aware
``datetime``; stored queries are :class:`StoredQuery` instances.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from velonb.emulator.vql.scope import Scope

UTC = _dt.UTC
EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)
ZERO_TIME = _dt.datetime(1, 1, 1, tzinfo=UTC)
_MAX_STR = 100_000_000


class StoredQuery:
    """A source of rows (a LET query, a `{ SELECT ... }` argument, a materialised result)."""

    def eval(self, scope: Scope) -> Iterator[Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def materialize(self, scope: Scope) -> list[Any]:
        """All rows as a list."""
        return list(self.eval(scope))


class MaterializedQuery(StoredQuery):
    """Rows already computed (LET x <= SELECT ...)."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def eval(self, scope: Scope) -> Iterator[Any]:
        return iter(self.rows)

    def materialize(self, scope: Scope) -> list[Any]:
        return self.rows


def is_int(a: object) -> bool:
    """True for ints (bool excluded)."""
    return isinstance(a, int) and not isinstance(a, bool)


def to_int(a: object) -> int | None:
    """utils.ToInt64: bools, ints and floats (truncated)."""
    if isinstance(a, bool):
        return int(a)
    if isinstance(a, int):
        return a
    if isinstance(a, float):
        return int(a) if a == a and abs(a) != float("inf") else 0
    return None


def to_float(a: object) -> float | None:
    """utils.ToFloat."""
    if isinstance(a, bool | int | float):
        return float(a)
    return None


def wrap_int(v: int) -> int:
    """Wrap to signed 64 bit like Go int64 arithmetic."""
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def to_time(a: object) -> _dt.datetime | None:
    """protocols.toTime: times, epoch floats/ints."""
    if isinstance(a, _dt.datetime):
        return a
    if isinstance(a, float):
        return EPOCH + _dt.timedelta(seconds=a)
    i = to_int(a)
    if i is not None:
        try:
            return EPOCH + _dt.timedelta(seconds=i)
        except OverflowError:
            return None
    return None


def materialize_value(scope: Scope, a: object) -> object:
    """Expand stored queries into lists of rows."""
    if isinstance(a, StoredQuery):
        return a.materialize(scope)
    return a


def eq(scope: Scope, a: object, b: object) -> bool:
    """EqDispatcher.Eq."""
    if a is None:
        return b is None
    if isinstance(a, str):
        if isinstance(b, str):
            return a == b
    elif isinstance(a, bool):
        if isinstance(b, bool):
            return a == b
    elif isinstance(a, int):
        if isinstance(b, bool | int | float):
            return a == b
        return False
    elif isinstance(a, float):
        f = to_float(b)
        if f is not None:
            return a == f
    elif isinstance(a, _dt.datetime):
        t = to_time(b)
        if t is not None:
            return a == t
    elif hasattr(a, "vql_eq"):  # values with their own protocol (OSPath)
        return bool(a.vql_eq(b))
    ia, ib = to_int(a), to_int(b)
    if ia is not None and ib is not None:
        return ia == ib
    a = materialize_value(scope, a)
    b = materialize_value(scope, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(eq(scope, x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a == b
    return False


def _int_lt(lhs: int, b: object) -> bool:
    if isinstance(b, bool | int | float):
        return lhs < b
    return False


def _int_gt(lhs: int, b: object) -> bool:
    if isinstance(b, bool | int | float):
        return lhs > b
    return False


def _time_and_string(scope: Scope, a: object, b: object
                     ) -> tuple[_dt.datetime, _dt.datetime] | None:
    """velociraptor's _TimeLtString/_TimeGtString: a time against a string compares with the
    string parsed as a time; None when the pair is not (time, string) either way round, and
    a pair that compares false both ways when the string is no time."""
    if isinstance(a, _dt.datetime) and isinstance(b, str):
        text, time_value, time_first = b, a, True
    elif isinstance(b, _dt.datetime) and isinstance(a, str):
        text, time_value, time_first = a, b, False
    else:
        return None
    from velonb.emulator.vql.functions import _parse_time_string, parse_zone

    parsed = _parse_time_string(text, parse_zone(scope))
    if parsed is None:
        return (time_value, time_value)  # neither before nor after: both tests are false
    return (time_value, parsed) if time_first else (parsed, time_value)


def lt(scope: Scope, a: object, b: object) -> bool:
    """LtDispatcher.Lt (plus velociraptor's dict length and time/string orderings)."""
    if a is None:
        return False
    pair = _time_and_string(scope, a, b)
    if pair is not None:
        return pair[0] < pair[1]
    if isinstance(a, str):
        if isinstance(b, str):
            return a < b
    elif isinstance(a, bool | int):
        if isinstance(b, _dt.datetime):
            t = to_time(a)
            return t is not None and t < b
        return _int_lt(int(a), b)
    elif isinstance(a, float):
        f = to_float(b)
        if f is not None:
            return a < f
    elif isinstance(a, _dt.datetime):
        t = to_time(b)
        if t is not None:
            return a < t
    if b is None:
        return False
    if isinstance(b, int) and not isinstance(b, bool):
        # vfilter: "not (b > a) and not (b == a)" - true for non-numeric a.
        return not (isinstance(a, bool | int | float) and (b > a or b == a))
    if isinstance(b, float):
        f = to_float(a)
        return f is not None and f < b
    if isinstance(b, _dt.datetime):
        t = to_time(a)
        return t is not None and b > t
    if isinstance(a, dict) or isinstance(b, dict):
        if not isinstance(a, dict):
            return True
        if not isinstance(b, dict):
            return False
        return len(a) < len(b)
    return False


def gt(scope: Scope, a: object, b: object) -> bool:
    """GtDispatcher.Gt (mirror of lt)."""
    if a is None:
        return False
    pair = _time_and_string(scope, a, b)
    if pair is not None:
        return pair[0] > pair[1]
    if isinstance(a, str):
        if isinstance(b, str):
            return a > b
    elif isinstance(a, bool | int):
        if isinstance(b, _dt.datetime):
            t = to_time(a)
            return t is not None and t > b
        return _int_gt(int(a), b)
    elif isinstance(a, float):
        f = to_float(b)
        if f is not None:
            return a > f
    elif isinstance(a, _dt.datetime):
        t = to_time(b)
        if t is not None:
            return a > t
    if b is None:
        return False
    if isinstance(b, bool | int | float) and isinstance(a, bool | int | float):
        return a > b
    if isinstance(b, _dt.datetime):
        t = to_time(a)
        return t is not None and t > b
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) > len(b)
    return False


def _to_slice(scope: Scope, a: object) -> list[Any]:
    if isinstance(a, list):
        return list(a)
    if isinstance(a, StoredQuery):
        return list(a.materialize(scope))
    return [a]


def add(scope: Scope, a: object, b: object) -> object:
    """AddDispatcher.Add."""
    if hasattr(a, "vql_add"):  # values with their own protocol (OSPath)
        return a.vql_add(scope, b)
    if isinstance(a, str):
        if isinstance(b, str):
            if len(a) + len(b) > _MAX_STR:
                scope.log(
                    "Adding Str + Str exceeded memory limits. LH Str "
                    f"{len(a)} + RH Str {len(b)} = {len(a) + len(b)}"
                )
                return None
            return a + b
    elif a is None:
        return None
    elif isinstance(a, bool | int) and not isinstance(a, bool):
        if isinstance(b, int) and not isinstance(b, bool):
            return wrap_int(a + b)
        if isinstance(b, float):
            return float(a) + b
    elif isinstance(a, bool):
        pass
    elif isinstance(a, float):
        f = to_float(b)
        if f is not None:
            return a + f
    if isinstance(a, dict) and isinstance(b, dict):
        res = dict(a)
        res.update(b)
        return res
    if isinstance(a, list | StoredQuery) or isinstance(b, list | StoredQuery):
        return _to_slice(scope, a) + _to_slice(scope, b)
    return None


def sub(scope: Scope, a: object, b: object) -> object:
    """SubDispatcher.Sub."""
    if a is None or b is None:
        return None
    if isinstance(a, float):
        f = to_float(b)
        if f is not None:
            return a - f
    if isinstance(b, float):
        f = to_float(a)
        if f is not None:
            return f - b
    ia, ib = to_int(a), to_int(b)
    if ia is not None and ib is not None:
        return wrap_int(ia - ib)
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: v for k, v in a.items() if k not in b}
    return None


def mul(scope: Scope, a: object, b: object) -> object:
    """MulDispatcher.Mul."""
    if a is None:
        return None
    if isinstance(a, str):
        n = to_int(b)
        if n is not None:
            if len(a) * max(n, 0) > _MAX_STR:
                scope.log(
                    "Multiply Str x Int exceeded memory limits. Len Str "
                    f"{len(a)} * Count {n} = {len(a) * n}"
                )
                return None
            return a * max(n, 0)
    elif isinstance(a, float):
        f = to_float(b)
        if f is not None:
            return a * f
    if b is None:
        return None
    if isinstance(b, float):
        f = to_float(a)
        if f is not None:
            return b * f
    ia, ib = to_int(a), to_int(b)
    if ia is not None and ib is not None:
        return wrap_int(ia * ib)
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: v for k, v in a.items() if k in b}
    return None


def div(scope: Scope, a: object, b: object) -> object:
    """DivDispatcher.Div: always float division; division by zero gives NULL."""
    if a is None or b is None:
        return None
    fa, fb = to_float(a), to_float(b)
    if fa is not None and fb is not None:
        if fb == 0:
            return None
        return fa / fb
    return None


def membership(scope: Scope, a: object, b: object) -> bool:
    """MembershipDispatcher.Membership (`a IN b`)."""
    if b is None:
        return False
    if isinstance(b, dict):
        if isinstance(a, str):
            return a in b
        return False
    if isinstance(b, str):
        if isinstance(a, str):
            return a in b
        return False
    b = materialize_value(scope, b)
    if isinstance(b, list):
        return any(eq(scope, a, item) for item in b)
    return False


_RE_CACHE: dict[str, re.Pattern[str] | None] = {}

_GO_CLASSES = {
    "[:alpha:]": "a-zA-Z", "[:digit:]": "0-9", "[:alnum:]": "a-zA-Z0-9",
    "[:space:]": r"\s", "[:upper:]": "A-Z", "[:lower:]": "a-z", "[:xdigit:]": "0-9a-fA-F",
    "[:punct:]": r"!-/:-@\[-`{-~", "[:word:]": r"\w",
}


def compile_go_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Go RE2 pattern (case-insensitive, as vfilter does) with Python's re."""
    p = pattern
    for k, v in _GO_CLASSES.items():
        p = p.replace(k, v)
    p = re.sub(r"\(\?P<", "(?P<", p)
    p = p.replace(r"\z", r"\Z")
    return re.compile(p, re.IGNORECASE)


def match(scope: Scope, pattern: object, target: object) -> bool:
    """RegexDispatcher.Match (`target =~ pattern`)."""
    if isinstance(pattern, str):
        if pattern in (".", ".*", ""):
            return True
        if isinstance(target, str):
            if pattern in _RE_CACHE:
                rx = _RE_CACHE[pattern]
            else:
                try:
                    rx = compile_go_regex(pattern)
                except re.error as e:
                    scope.log(f"Compile regexp: error parsing regexp: {e}")
                    rx = None
                _RE_CACHE[pattern] = rx
            return rx is not None and rx.search(target) is not None
        target = materialize_value(scope, target)
        if isinstance(target, list):
            return any(match(scope, pattern, t) for t in target)
        if isinstance(target, dict):  # velociraptor's _RegexDict: the dict's JSON
            from velonb.emulator import gojson

            try:
                return match(scope, pattern, gojson.dumps(target))
            except ValueError:
                return False
        # velociraptor's _GenericRegexProtocol: numbers and times as fmt's %v
        if isinstance(target, _dt.datetime):
            from velonb.emulator.vql.associative import go_time_string

            return match(scope, pattern, go_time_string(target))
        if isinstance(target, int) and not isinstance(target, bool):
            return match(scope, pattern, str(target))
        if isinstance(target, float):
            from velonb.emulator.vql.gofmt import go_float_g

            return match(scope, pattern, go_float_g(target))
        if hasattr(target, "vql_string"):  # values with their own protocol (OSPath)
            return match(scope, pattern, target.vql_string())
    return False


def to_bool(scope: Scope, a: object) -> bool:
    """BoolDispatcher.Bool: numbers are true only when > 0."""
    if a is None:
        return False
    if isinstance(a, bool):
        return a
    if isinstance(a, int | float):
        return a > 0
    if isinstance(a, str | list | dict):
        return len(a) > 0
    if isinstance(a, StoredQuery):
        for _ in a.eval(scope):
            return True
        return False
    if hasattr(a, "vql_bool"):  # values with their own protocol (OSPath)
        return bool(a.vql_bool())
    return isinstance(a, _dt.datetime)


def iterate(scope: Scope, a: object) -> Iterator[Any]:
    """IterateDispatcher.Iterate: rows out of stored queries, lists, dicts and scalars."""
    if isinstance(a, StoredQuery):
        yield from a.eval(scope)
        return
    if isinstance(a, dict):
        yield a
        return
    if isinstance(a, list):
        for item in a:
            if item is None:
                continue
            yield item if isinstance(item, dict) else {"_value": item}
        return
    if a is not None:
        yield {"_value": a}


def members(scope: Scope, a: object) -> list[str]:
    """GetMembers: column names of a row-like value."""
    if isinstance(a, dict):
        return list(a.keys())
    return []


def go_type_name(a: object) -> str:
    """The Go type name the real server would print for a value (%T)."""
    from velonb.emulator.vql.scope import Scope as _Scope

    if a is None:
        return "types.Null"
    if isinstance(a, bool):
        return "bool"
    if isinstance(a, int):
        return "int64"
    if isinstance(a, float):
        return "float64"
    if isinstance(a, str):
        return "string"
    if isinstance(a, dict):
        return "*ordereddict.Dict"
    if isinstance(a, list):
        return "[]interface {}"
    if isinstance(a, _dt.datetime):
        return "time.Time"
    if isinstance(a, StoredQuery):
        return "*vfilter._StoredQuery"
    if isinstance(a, _Scope):
        return "*scope.Scope"
    return str(getattr(a, "go_type", type(a).__name__))
