"""The emulator's VQL engine: a vfilter-compatible parser and evaluator.

``parse(text)`` splits a VQL text into statements (vfilter.MultiParse); ``execute(stmt, scope)``
runs one statement in a :class:`Scope`.  Functions and plugins are pluggable through
:mod:`velonb.emulator.vql.registry` (``@function`` / ``@plugin`` decorators).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from velonb.emulator.vql import functions as _functions  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_bytes as _functions_bytes  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_cmdline as _functions_cmdline  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_convert as _functions_convert  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_lists as _functions_lists  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_pathops as _functions_pathops  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_paths as _functions_paths  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_text as _functions_text  # noqa: F401  (registers builtins)
from velonb.emulator.vql import functions_timefmt as _functions_timefmt  # noqa: F401  (registers builtins)
from velonb.emulator.vql import plugins as _plugins  # noqa: F401  (registers builtins)
from velonb.emulator.vql.calls import StoredExpression
from velonb.emulator.vql.parser import Statement, VQLParseError, parse
from velonb.emulator.vql.protocols import MaterializedQuery, StoredQuery
from velonb.emulator.vql.query import SelectQuery
from velonb.emulator.vql.registry import (
    DEFAULT_REGISTRY,
    Arg,
    FunctionSpec,
    PluginSpec,
    Registry,
    VQLCallError,
    function,
    plugin,
)
from velonb.emulator.vql.scope import Scope

__all__ = [
    "DEFAULT_REGISTRY",
    "Arg",
    "FunctionSpec",
    "PluginSpec",
    "Registry",
    "Scope",
    "Statement",
    "StoredQuery",
    "VQLCallError",
    "VQLParseError",
    "execute",
    "function",
    "parse",
    "plugin",
]


def _let(statement: Statement, scope: Scope) -> None:
    name = statement.let_name
    assert name is not None
    if statement.params is not None and statement.let_operator == "<=":
        scope.log(f"WARN:Expression {statement.let_raw_name} takes parameters but is "
                  "materialized! Did you mean to use '='? ")
    if scope.get_function(name) is not None:
        scope.log(f"WARN:LET expression is masking a built in function {statement.let_raw_name}")
    if statement.expression is not None:
        expr = StoredExpression(name, statement.expression, statement.params, statement.defaults)
        if statement.let_operator == "=":
            scope.set_var(name, expr)
            return
        value: Any = expr.expr.eval(scope)
        if isinstance(value, StoredQuery):
            value = MaterializedQuery(value.materialize(scope))
        scope.set_var(name, value)
        return
    assert statement.select is not None
    if statement.let_operator == "=":
        scope.set_var(name, SelectQuery(statement.select, name, statement.params,
                                        statement.defaults))
    else:
        scope.set_var(name, MaterializedQuery(list(statement.select.eval(scope))))


def execute(statement: Statement, scope: Scope) -> Iterator[dict[str, object]] | None:
    """Run one statement: LET defines (returns None); SELECT returns an iterator of row dicts."""
    if statement.let_name is not None:
        _let(statement, scope)
        return None
    sub = scope.copy()
    sub.append_vars({"$Query": statement.to_string()})
    assert statement.select is not None
    select = statement.select

    def rows() -> Iterator[dict[str, object]]:
        for row in select.eval(sub):
            if scope.cancelled:
                return
            yield row if isinstance(row, dict) else {}

    return rows()
