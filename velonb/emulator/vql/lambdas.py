"""VQL lambdas (vfilter ``lambda.go``; velociraptor's ``vql/protocols/lambda.go`` registers the
argument parser that turns a ``"x=>..."`` string into one)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from velonb.emulator.vql.protocols import go_type_name

if TYPE_CHECKING:
    from velonb.emulator.vql.nodes import Expr
    from velonb.emulator.vql.scope import Scope

_NOT_A_STRING = 'VQL lambda functions need to be a string of the form "x=>..."'


class Lambda:
    """A compiled ``params => expression``."""

    __slots__ = ("expr", "params", "text")

    def __init__(self, params: list[str], expr: Expr, text: str) -> None:
        self.params = params
        self.expr = expr
        self.text = text

    def reduce(self, scope: Scope, values: list[Any]) -> object:
        """Evaluate with the parameters bound to ``values`` in a child scope."""
        if len(values) != len(self.params):
            scope.log("ERROR:Incorrect number of parameters in Lambda call")
            return None
        sub = scope.copy()
        sub.append_vars(dict(zip(self.params, values, strict=True)))
        return self.expr.eval(sub)


@functools.lru_cache(maxsize=256)
def compile_lambda(text: str) -> Lambda:
    """Parse a lambda (cached per text, as velociraptor caches them per query); raises
    VQLParseError."""
    from velonb.emulator.vql.parser import parse_lambda

    params, expr = parse_lambda(text)
    return Lambda(params, expr, text)


def to_lambda(value: object) -> Lambda:
    """The ``*vfilter.Lambda`` argument parser: a string is compiled, anything else refused
    (ValueError with the parser's message)."""
    if isinstance(value, Lambda):
        return value
    if isinstance(value, str):
        from velonb.emulator.vql.parser import VQLParseError

        try:
            return compile_lambda(value)
        except VQLParseError as err:
            raise ValueError(str(err)) from None
    raise ValueError(f"Got field type {go_type_name(value)}: {_NOT_A_STRING}")
