"""Call sites: named arguments, symbol references, stored functions/queries, function calls."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import associative
from velonb.emulator.vql.nodes import Expr, Formatter, split_ident, unquote_ident
from velonb.emulator.vql.registry import (
    ArgError,
    FunctionSpec,
    Lazy,
    VQLCallError,
    parse_args,
    permission_error,
)
from velonb.emulator.vql.scope import Scope

MAX_DEPTH = 60
_ids = itertools.count(1)


class CallArg:
    """A named argument: `name=expr`, `name={ SELECT }`, `name=[a, b]`, `name=[]`."""

    __slots__ = ("kind", "name", "raw_name", "value")

    def __init__(self, raw_name: str, kind: str, value: Any) -> None:
        self.raw_name = raw_name
        self.name = unquote_ident(raw_name)
        self.kind = kind  # "expr" | "select" | "array" | "empty"
        self.value = value

    def fmt(self, f: Formatter) -> None:
        f.line_break()
        if self.kind == "expr":
            f.push(self.raw_name, "=")
            self.value.fmt(f)
        elif self.kind == "select":
            f.push(self.raw_name, "={", " ")
            self.value.fmt(f)
            f.push(" }")
        elif self.kind == "array":
            f.push(self.raw_name, "=[")
            self.value.fmt(f)
            f.push("]")
        else:
            f.push(self.raw_name, "=[]")

    def materialized(self, scope: Scope) -> object:
        """Value as passed to stored functions/queries (evaluated now)."""
        from velonb.emulator.vql.query import SelectQuery

        if self.kind == "expr":
            return self.value.eval(scope)
        if self.kind == "select":
            return SelectQuery(self.value)
        if self.kind == "array":
            return self.value.eval(scope)
        return []

    def lazy(self, scope: Scope) -> object:
        """Value as passed to built-in functions/plugins (expressions stay lazy)."""
        if self.kind == "expr":
            return Lazy(self.value, scope)
        return self.materialized(scope)


def fmt_args(f: Formatter, args: list[CallArg]) -> None:
    """`(a=1, b=2)`."""
    if not args:
        f.push("()")
        return
    f.push("(")
    for i, a in enumerate(args):
        a.fmt(f)
        if i < len(args) - 1:
            f.push(",", " ")
    f.push(")")


class StoredExpression:
    """`LET f(a, b) = expr` / `LET x = expr` (lazy)."""

    __slots__ = ("defaults", "expr", "name", "params")

    def __init__(self, name: str, expr: Expr, params: list[str] | None,
                 defaults: dict[str, CallArg]) -> None:
        self.name = name
        self.expr = expr
        self.params = params
        self.defaults = defaults

    def vql_associative(self, scope: Scope, key: object) -> tuple[object, bool]:
        """``X.a`` on a lazy ``LET X = expr``: the expression is reduced in a sub-scope first
        (vfilter's AssociativeDispatcher)."""
        return associative(scope, self.expr.eval(scope.copy()), key)


def build_call_args(scope: Scope, args: list[CallArg] | None, target: Any) -> dict[str, object]:
    """Arguments for a stored function/query call, with declared defaults applied."""
    out = {a.name: a.materialized(scope) for a in (args or [])}
    for name, default in getattr(target, "defaults", {}).items():
        if name not in out:
            out[name] = default.materialized(scope)
    return out


def negate(scope: Scope, v: object) -> object:
    """Unary minus applied to a `-symbol`."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, float):
        return -v
    i = P.to_int(v)
    return -i if i is not None else None


def overflow(scope: Scope) -> bool:
    """vfilter CheckForOverflow."""
    if scope.depth < MAX_DEPTH:
        return False
    q, _ = scope.resolve("$Query")
    scope.log(f"Stack Overflow: {q}")
    return True


class SymbolRef(Expr):
    """A variable, dotted path, function call or stored query/function call."""

    __slots__ = ("args", "called", "components", "negated", "site", "symbol")

    def __init__(self, symbol: str, called: bool, args: list[CallArg] | None) -> None:
        self.symbol = symbol
        comps = split_ident(symbol)
        self.negated = comps[0].startswith("-")
        if self.negated:
            comps[0] = comps[0][1:]
        self.components = comps
        self.called = called
        self.args = args
        self.site = next(_ids)

    def fmt(self, f: Formatter) -> None:
        f.push(self.symbol)
        if self.called:
            fmt_args(f, self.args or [])

    def is_aggregate(self, scope: Scope) -> bool:
        if not self.called:
            return False
        spec = scope.get_function(self.symbol)
        return spec is not None and spec.aggregate

    def _lookup(self, scope: Scope) -> tuple[object, bool]:
        comps = self.components
        if self.called and len(comps) == 1:
            spec = scope.get_function(comps[0])
            if spec is not None:
                return spec, True
        value, pres = scope.resolve(comps[0])
        if not pres:
            if len(comps) > 1:
                scope.log(f"ERROR:While resolving {self.symbol} Symbol {comps[0]} not found. "
                          f"Current Scope is {scope.print_vars()}")
            else:
                scope.log(f"ERROR:Symbol {self.symbol} not found. "
                          f"Current Scope is {scope.print_vars()}")
            return None, False
        for comp in comps[1:]:
            value, pres = associative(scope, value, comp)
            if not pres:
                return None, False
        return value, True

    def eval(self, scope: Scope) -> Any:
        value, pres = self._lookup(scope)
        if not pres or value is None:
            return None
        v: object
        if isinstance(value, FunctionSpec):
            if not self.called:
                scope.log(f"ERROR:Symbol {self.symbol} is a function but it is not being called.")
                return None
            v = call_function(scope, value, self.args or [], self.site)
        elif isinstance(value, StoredExpression):
            sub = scope.copy()
            if self.called:
                sub.new_aggregator()
            if overflow(sub):
                return None
            sub.append_vars(build_call_args(scope, self.args if self.called else None, value))
            v = value.expr.eval(sub)
        elif isinstance(value, P.StoredQuery):
            if self.called:
                sub = scope.copy()
                sub.new_aggregator()
                if overflow(sub):
                    return None
                sub.append_vars(build_call_args(scope, self.args, value))
                v = CallSiteQuery(value, sub)
            else:
                v = value
        elif self.called:
            scope.log(f"ERROR:Symbol {self.symbol} is not a function but it is being called.")
            return None
        else:
            v = value
        return negate(scope, v) if self.negated else v


class CallSiteQuery(P.StoredQuery):
    """A stored query called with arguments: runs in the captured argument scope."""

    def __init__(self, query: P.StoredQuery, scope: Scope) -> None:
        self.query = query
        self.scope = scope

    def eval(self, scope: Scope) -> Iterator[Any]:
        return self.query.eval(self.scope)


def call_function(scope: Scope, spec: FunctionSpec, args: list[CallArg], site: int) -> object:
    """Call a registered function with vfilter's lazy-argument and error conventions."""
    for perm in spec.permissions:
        if not scope.has_permission(perm):
            scope.log(f"{spec.name}: {permission_error(spec.permissions)}")
            return None
    raw = {a.name: a.lazy(scope) for a in args}
    try:
        parsed = parse_args(scope, spec.args, raw, spec.free_form)
    except ArgError as e:
        scope.log(f"{spec.name}: {e}")
        return spec.error_value
    try:
        if spec.aggregate:
            return spec.impl(scope, parsed, site)
        return spec.impl(scope, parsed)
    except VQLCallError as e:
        scope.log(f"{spec.name}: {e}")
        return spec.error_value
