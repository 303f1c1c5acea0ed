"""Pluggable VQL functions and plugins, with vfilter-style argument parsing.

Register with the decorators::

    @function("upcase", Arg("string", "str", required=True))
    def upcase(scope: Scope, args: dict[str, object]) -> object: ...

    @plugin("range", Arg("start", "int"), Arg("end", "int", required=True), Arg("step", "int"))
    def range_(scope: Scope, args: dict[str, object]) -> Iterator[dict[str, object]]: ...

A function/plugin may raise :class:`VQLCallError` to have ``<name>: <message>`` logged.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from velonb.emulator.vql.gofmt import go_value
from velonb.emulator.vql.protocols import (
    StoredQuery,
    go_type_name,
    to_bool,
    to_float,
    to_int,
)

if TYPE_CHECKING:
    from velonb.emulator.vql.scope import Scope

FunctionImpl = Callable[..., object]
PluginImpl = Callable[..., Iterable[Any]]
ArgType = str  # "any" | "lazy" | "str" | "int" | "float" | "bool" | "dict" | "list" | "list_str"
# | "query" | "time" | "lambda"


class VQLCallError(Exception):
    """Raised by a function/plugin implementation: logged as ``<name>: <message>``."""


class ArgError(Exception):
    """Argument parsing failure; str() is vfilter's arg_parser message."""


class Lazy:
    """A lazily evaluated argument (vfilter LazyExpr)."""

    __slots__ = ("_done", "_expr", "_scope", "_value")

    def __init__(self, expr: Any, scope: Scope) -> None:
        self._expr = expr
        self._scope = scope
        self._done = False
        self._value: object = None

    def reduce(self) -> object:
        """Evaluate (once) and return the value."""
        if not self._done:
            self._value = self._expr.eval(self._scope)
            self._done = True
        return self._value


@dataclass(frozen=True)
class Arg:
    """One declared argument."""

    name: str
    type: ArgType = "any"
    required: bool = False
    doc: str = ""


@dataclass
class FunctionSpec:
    """A VQL function; aggregate impls also receive the call-site id as a third argument."""

    name: str
    impl: FunctionImpl
    args: tuple[Arg, ...] = ()
    permissions: tuple[str, ...] = ()
    aggregate: bool = False
    free_form: bool = False
    error_value: object = None  # returned when argument parsing fails
    doc: str = ""


@dataclass
class PluginSpec:
    """A VQL plugin (data source)."""

    name: str
    impl: PluginImpl
    args: tuple[Arg, ...] = ()
    permissions: tuple[str, ...] = ()
    free_form: bool = False
    doc: str = ""


@dataclass
class Registry:
    """Name → spec tables for functions and plugins."""

    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    plugins: dict[str, PluginSpec] = field(default_factory=dict)

    def copy(self) -> Registry:
        """A shallow copy (a scope may extend its own copy)."""
        return Registry(dict(self.functions), dict(self.plugins))


DEFAULT_REGISTRY = Registry()


def function(
    name: str,
    *args: Arg,
    permissions: tuple[str, ...] = (),
    aggregate: bool = False,
    free_form: bool = False,
    error_value: object = None,
    registry: Registry | None = None,
) -> Callable[[FunctionImpl], FunctionImpl]:
    """Decorator registering a VQL function."""

    def deco(fn: FunctionImpl) -> FunctionImpl:
        (registry or DEFAULT_REGISTRY).functions[name] = FunctionSpec(
            name, fn, tuple(args), permissions, aggregate, free_form, error_value,
            (fn.__doc__ or "").strip(),
        )
        return fn

    return deco


def plugin(
    name: str,
    *args: Arg,
    permissions: tuple[str, ...] = (),
    free_form: bool = False,
    registry: Registry | None = None,
) -> Callable[[PluginImpl], PluginImpl]:
    """Decorator registering a VQL plugin."""

    def deco(fn: PluginImpl) -> PluginImpl:
        (registry or DEFAULT_REGISTRY).plugins[name] = PluginSpec(
            name, fn, tuple(args), permissions, free_form, (fn.__doc__ or "").strip()
        )
        return fn

    return deco


def _reduce(v: object) -> object:
    return v.reduce() if isinstance(v, Lazy) else v


def _convert(scope: Scope, typ: ArgType, raw: object) -> object:
    if typ == "lazy":
        return raw
    v = _reduce(raw)
    if typ == "any":
        return v
    if typ == "query":
        if isinstance(v, StoredQuery):
            return v
        return _ValueQuery(v)
    if typ == "str":
        if isinstance(v, list) and len(v) == 1:
            v = v[0]
        if isinstance(v, str):
            return v
        if v is None:
            return ""
        return go_value(v)
    if typ == "int":
        i = to_int(v)
        if i is None:
            raise ArgError(f"should be an int not {go_type_name(v)}.")
        return i
    if typ == "float":
        f = to_float(v)
        if f is None:
            raise ArgError(f"should be a float not {go_type_name(v)}.")
        return f
    if typ == "bool":
        return to_bool(scope, v)
    if typ == "dict":
        if v is None or isinstance(v, str | int | float):
            if isinstance(v, bool):
                return {}
            raise ArgError(f"should be a dict not {go_type_name(v)}.")
        if isinstance(v, dict):
            return v
        return {}
    if typ in ("list", "list_str"):
        if isinstance(v, StoredQuery):
            v = v.materialize(scope)
        items = v if isinstance(v, list) else ([] if v is None else [v])
        if typ == "list_str":
            return [x if isinstance(x, str) else go_value(x) for x in items]
        return list(items)
    if typ == "time":
        from velonb.emulator.vql.functions import time_from_any

        return time_from_any(scope, v)
    if typ == "lambda":
        from velonb.emulator.vql.lambdas import to_lambda

        try:
            return to_lambda(v)
        except ValueError as e:
            raise ArgError(str(e)) from None
    raise ArgError(f"Unsupported type for field {typ}")


class _ValueQuery(StoredQuery):
    """Wrap a plain value so it can be used where a query is expected."""

    def __init__(self, value: object) -> None:
        self.value = value

    def eval(self, scope: Scope) -> Any:
        from velonb.emulator.vql.protocols import iterate

        return iterate(scope, self.value)


def parse_args(
    scope: Scope, spec: tuple[Arg, ...], raw: dict[str, object], free_form: bool = False
) -> dict[str, Any]:
    """vfilter arg_parser: required check, conversion, unexpected-arg check (in that order)."""
    out: dict[str, Any] = {}
    for a in spec:
        if a.name not in raw:
            if a.required:
                raise ArgError(f"Field {a.name} is required")
            continue
        try:
            out[a.name] = _convert(scope, a.type, raw[a.name])
        except ArgError as e:
            raise ArgError(f"Field {a.name} {e}") from None
    if len(out) != len(raw):
        names = {a.name for a in spec}
        for key in raw:
            if key not in names:
                if free_form:
                    out[key] = _reduce(raw[key])
                else:
                    raise ArgError(f"Unexpected arg {key}")
    return out


def permission_error(perms: tuple[str, ...]) -> str:
    """vql.CheckAccess failure text."""
    return f"PermissionDenied: Permission denied: [{' '.join(perms)}]"


def is_time(v: object) -> bool:
    """True for datetimes."""
    return isinstance(v, _dt.datetime)
