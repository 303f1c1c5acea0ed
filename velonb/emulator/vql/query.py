"""SELECT evaluation: FROM plugins, lazy rows, WHERE, GROUP BY, ORDER BY, LIMIT."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import associative
from velonb.emulator.vql.calls import (
    CallArg,
    StoredExpression,
    build_call_args,
    fmt_args,
    overflow,
)
from velonb.emulator.vql.nodes import Expr, Formatter, split_ident, unquote_ident
from velonb.emulator.vql.registry import ArgError, VQLCallError, parse_args, permission_error
from velonb.emulator.vql.scope import Scope


class Aliased:
    """One SELECT column: expression, `{ SELECT }` or `*`, with optional AS."""

    __slots__ = ("alias", "expr", "name", "star", "subselect")

    def __init__(self, expr: Expr | None, subselect: Select | None, alias: str | None,
                 star: bool = False) -> None:
        self.expr = expr
        self.subselect = subselect
        self.alias = alias
        self.star = star
        self.name = "*" if star else (unquote_ident(alias) if alias else unquote_ident(self.text()))

    def fmt(self, f: Formatter) -> None:
        if self.star:
            f.push("*")
            return
        if self.expr is not None:
            self.expr.fmt(f)
        elif self.subselect is not None:
            f.push("{", " ")
            self.subselect.fmt(f)
            f.push(" }")
        if self.alias:
            f.push(" AS ", self.alias)

    def text(self) -> str:
        """Formatted text (no alias)."""
        f = Formatter()
        if self.expr is not None:
            self.expr.fmt(f)
        elif self.subselect is not None:
            f.push("{", " ")
            self.subselect.fmt(f)
            f.push(" }")
        return f.text()

    def is_aggregate(self, scope: Scope) -> bool:
        return self.subselect is not None or (
            self.expr is not None and self.expr.is_aggregate(scope))

    def value(self, scope: Scope) -> object:
        """Evaluate the column in the row scope."""
        if self.expr is not None:
            v = self.expr.eval(scope)
            if isinstance(v, P.StoredQuery):
                return v.materialize(scope)
            return v
        assert self.subselect is not None
        rows: list[Any] = []
        for item in self.subselect.eval(scope):
            keys = list(item) if isinstance(item, dict) else []
            rows.append(item[keys[0]] if len(keys) == 1 else item)
        if len(rows) == 1:
            return rows[0]
        return rows or None


class LazyRow(Mapping[str, Any]):
    """Columns evaluated on first access (WHERE may look at some, output at all)."""

    __slots__ = ("_cache", "cols", "scope")

    _UNSET = object()

    def __init__(self, scope: Scope, cols: dict[str, Any]) -> None:
        self.scope = scope
        self.cols = cols  # name -> Aliased or ("const", value)
        self._cache: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key in self._cache:
            return self._cache[key]
        col = self.cols[key]
        v = col[1] if isinstance(col, tuple) else col.value(self.scope)
        self._cache[key] = v
        return v

    def __contains__(self, key: object) -> bool:
        return key in self.cols

    def __iter__(self) -> Iterator[str]:
        return iter(self.cols)

    def __len__(self) -> int:
        return len(self.cols)

    def materialize(self) -> dict[str, Any]:
        """A plain dict with every column evaluated, in column order."""
        return {k: self[k] for k in self.cols}


class Plugin:
    """FROM clause: plugin call, LET variable or stored query call."""

    __slots__ = ("args", "called", "name")

    def __init__(self, name: str, called: bool, args: list[CallArg]) -> None:
        self.name = name
        self.called = called
        self.args = args

    def fmt(self, f: Formatter) -> None:
        f.push(self.name)
        if self.called:
            fmt_args(f, self.args)

    def _not_found(self, scope: Scope) -> None:
        parts = self.name.split("_")
        similar = sorted({k for part in parts for k in scope.registry.plugins if part in k})
        msg = f"Plugin {self.name} not found. "
        if similar:
            msg += f"Did you mean {' '.join(similar)}? "
        if scope.get_function(self.name) is not None:
            msg += (f'There is a VQL function called "{self.name}" - did you mean to call '
                    "this function instead?")
        scope.log(f"ERROR:{msg}")

    def eval(self, scope: Scope) -> Iterator[Any]:
        comps = split_ident(self.name)
        if self.called and len(comps) == 1:
            spec = scope.get_plugin(comps[0])
            if spec is not None:
                yield from self._call_plugin(scope, spec)
                return
        value, pres = scope.resolve(comps[0])
        if not pres:
            if len(comps) > 1:
                scope.log(f"ERROR:While resolving {self.name} Plugin {comps[0]} not found. "
                          f"Current Scope is {scope.print_vars()}")
            else:
                scope.log(f"ERROR:Plugin {self.name} not found. "
                          f"Current Scope is {scope.print_vars()}")
            self._not_found(scope)
            return
        for comp in comps[1:]:
            value, pres = associative(scope, value, comp)
            if not pres:
                self._not_found(scope)
                return
        if overflow(scope):
            return
        if self.called:
            if isinstance(value, StoredExpression | P.StoredQuery):
                sub = scope.copy()
                sub.append_vars(build_call_args(scope, self.args, value))
                if isinstance(value, StoredExpression):
                    yield from _iter_symbol(sub, value.expr.eval(sub))
                else:
                    yield from value.eval(sub)
                return
            scope.log(f"ERROR:Symbol {self.name} is not callable as a plugin")
            return
        yield from _iter_symbol(scope, value)

    def _call_plugin(self, scope: Scope, spec: Any) -> Iterator[Any]:
        for perm in spec.permissions:
            if not scope.has_permission(perm):
                scope.log(f"{spec.name}: {permission_error(spec.permissions)}")
                return
        raw = {a.name: a.lazy(scope) for a in self.args}
        try:
            parsed = parse_args(scope, spec.args, raw, spec.free_form)
        except ArgError as e:
            scope.log(f"{spec.name}: {e}")
            return
        try:
            yield from spec.impl(scope, parsed)
        except VQLCallError as e:
            scope.log(f"{spec.name}: {e}")


def _iter_symbol(scope: Scope, value: object) -> Iterator[Any]:
    """Rows of a LET value used in FROM."""
    if isinstance(value, StoredExpression):
        value = value.expr.eval(scope)
    if isinstance(value, P.StoredQuery):
        yield from value.eval(scope)
    elif isinstance(value, list):
        yield from value
    else:
        yield value


class Select:
    """A SELECT statement."""

    __slots__ = ("all", "columns", "explain", "group_by", "limit", "order_by", "order_desc",
                 "plugin", "where")

    def __init__(self, columns: list[Aliased], all_: bool, plugin: Plugin, where: Expr | None,
                 group_by: Expr | None, order_by: str | None, order_desc: bool,
                 limit: int | None, explain: bool = False) -> None:
        self.columns = columns
        self.all = all_
        self.plugin = plugin
        self.where = where
        self.group_by = group_by
        self.order_by = order_by
        self.order_desc = order_desc
        self.limit = limit
        self.explain = explain

    def fmt(self, f: Formatter) -> None:
        if self.explain:
            f.push("EXPLAIN ")
        f.push("SELECT ")
        if self.all:
            f.push("*")
            if self.columns:
                f.push(",", " ")
        for i, c in enumerate(self.columns):
            c.fmt(f)
            if i < len(self.columns) - 1:
                f.push(",", " ")
                f.line_break()
        f.line_break()
        f.push("FROM ")
        self.plugin.fmt(f)
        if self.where is not None:
            f.line_break()
            f.push("WHERE ")
            self.where.fmt(f)
        if self.group_by is not None:
            f.line_break()
            f.push("GROUP BY ")
            self.group_by.fmt(f)
        if self.order_by is not None:
            f.line_break()
            f.push("ORDER BY ", self.order_by)
            if self.order_desc:
                f.push(" DESC ")
        if self.limit is not None:
            f.line_break()
            f.push(f"LIMIT {self.limit} ")

    def to_string(self) -> str:
        """FormatToString."""
        f = Formatter()
        self.fmt(f)
        return f.text()

    # ---- evaluation ----
    def eval(self, scope: Scope) -> Iterator[Any]:
        """Rows of this query (dicts)."""
        rows = self._eval_grouped(scope) if self.group_by is not None else self._eval_rows(scope)
        if self.order_by is not None:
            rows = self._sorted(scope, rows)
        if self.limit is not None:
            if self.limit <= 0:
                rows = itertools_islice(rows, 1)
            else:
                rows = itertools_islice(rows, self.limit)
        return rows

    def _transform(self, scope: Scope, row: Any) -> LazyRow:
        cols: dict[str, Any] = {}
        row_scope = scope.copy()
        row_scope.append_vars(row if isinstance(row, Mapping) else {})
        if self.all:
            for k in P.members(scope, row):
                cols[k] = ("const", row[k])
        for c in self.columns:
            if c.star:
                for k in P.members(scope, row):
                    if k not in cols:
                        cols[k] = ("const", row[k])
                continue
            cols[c.name] = c
        return LazyRow(row_scope, cols)

    def _eval_rows(self, scope: Scope) -> Iterator[Any]:
        cancel = scope.cancel
        where = self.where
        simple_star = self.all and not self.columns and where is None
        for row in self.plugin.eval(scope):
            if cancel.is_set():
                return
            if simple_star:
                yield dict(row) if isinstance(row, dict) else {}
                continue
            lazy = self._transform(scope, row)
            if where is not None:
                wscope = lazy.scope.copy()
                wscope.append_vars(lazy)
                if not P.to_bool(wscope, where.eval(wscope)):
                    continue
            yield lazy.materialize()

    def _eval_grouped(self, scope: Scope) -> Iterator[Any]:
        assert self.group_by is not None
        bins: dict[Any, tuple[Any, dict[str, Any], Any]] = {}
        for row in self.plugin.eval(scope):
            if scope.cancel.is_set():
                return
            lazy = self._transform(scope, row)
            wscope = lazy.scope.copy()
            wscope.append_vars(lazy)
            if self.where is not None and not P.to_bool(wscope, self.where.eval(wscope)):
                continue
            key_value = self.group_by.eval(wscope)
            key = _hashable(key_value)
            entry = bins.get(key)
            ag = entry[2] if entry else None
            if ag is None:
                from velonb.emulator.vql.scope import AggregatorCtx

                ag = AggregatorCtx()
            lazy.scope.ag_ctx = ag
            bins[key] = (key_value, lazy.materialize(), ag)
        entries = list(bins.values())

        def by_key(x: tuple[Any, ...], y: tuple[Any, ...]) -> int:
            return _cmp(scope, x[0], y[0])

        entries.sort(key=functools.cmp_to_key(by_key))
        for _, row, _ag in entries:
            yield row

    def _sorted(self, scope: Scope, rows: Iterator[Any]) -> Iterator[Any]:
        key = unquote_ident(self.order_by or "")
        items = list(rows)

        def k(r: Any) -> object:
            return r.get(key) if isinstance(r, dict) else None

        items.sort(key=functools.cmp_to_key(lambda a, b: _cmp(scope, k(a), k(b))),
                   reverse=self.order_desc)
        return iter(items)


def itertools_islice(it: Iterator[Any], n: int) -> Iterator[Any]:
    """Take n items."""
    if n <= 0:
        return
    for i, x in enumerate(it, 1):
        yield x
        if i >= n:
            return


def _hashable(v: object) -> Any:
    if isinstance(v, list):
        return ("__list__", *(_hashable(x) for x in v))
    if isinstance(v, dict):
        return ("__dict__", *((k, _hashable(x)) for k, x in v.items()))
    if isinstance(v, float) and v.is_integer():
        return int(v)
    try:
        hash(v)
    except TypeError:
        return repr(v)
    return (type(v).__name__ == "bool", v) if isinstance(v, bool) else v


def _cmp(scope: Scope, a: object, b: object) -> int:
    if a is None and b is None:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    if P.lt(scope, a, b):
        return -1
    if P.lt(scope, b, a):
        return 1
    return 0


class SelectQuery(P.StoredQuery):
    """A stored query backed by a SELECT AST (lazy LET, `{ ... }` arguments)."""

    def __init__(self, select: Select, name: str = "", params: list[str] | None = None,
                 defaults: dict[str, CallArg] | None = None) -> None:
        self.select = select
        self.name = name
        self.params = params
        self.defaults = defaults or {}

    def eval(self, scope: Scope) -> Iterator[Any]:
        return self.select.eval(scope)
