"""Python values -> VQL variables, bound through ``VQLCollectorArgs.env`` (never pasted into VQL).

How values reach the server:

* ``str`` values are sent as they are: ``env`` entries are Go strings on the server, so the VQL sees
  a string variable of that name.
* Every other supported value (``int``, ``float``, ``bool``, ``None``, ``list``/``tuple``/``set``,
  ``dict``, ``datetime``/``date``, pandas/numpy scalars, ``Series``/``Index``/arrays) is encoded
  into ONE JSON document held in the env variable ``_velonb_params``. A first VQL request (named
  ``velonb-params``) then defines each name from it, e.g.::

      LET pid <= parse_json(data=_velonb_params).pid
      LET since <= timestamp(string=parse_json(data=_velonb_params).since)

  so ``pid`` is an integer, lists are arrays, dicts are dicts and datetimes are timestamps on the
  server. The text of that request is built only from validated identifiers and fixed VQL; values
  never enter any VQL text. Naive datetimes are taken as UTC; datetimes nested inside lists or
  dicts arrive as RFC 3339 strings.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from velonb.errors import ParameterError

PARAMS_VARIABLE = "_velonb_params"
PRELUDE_NAME = "velonb-params"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names the server itself gives meaning to, or that would break our own prelude.
_RESERVED = {PARAMS_VARIABLE.lower(), "let", "select", "from", "where", "and", "or", "not", "in",
             "true", "false", "null", "limit", "order", "group", "by", "as", "desc"}
_SUPPORTED = ("str, int, float, bool, None, list/tuple/set, dict, datetime/date, "
              "pandas Series/Index/Timestamp, numpy arrays and scalars")


@dataclass(frozen=True)
class Bindings:
    """What a set of parameters turns into: env string pairs and an optional prelude request."""

    env: dict[str, str] = field(default_factory=dict)
    prelude: str = ""
    typed: dict[str, str] = field(default_factory=dict)  # name -> VQL type shown in dry runs

    def describe(self) -> list[tuple[str, str, str]]:
        """(name, kind, value-as-sent) rows for dry runs and summaries."""
        rows = [(k, self.typed.get(k, "string"), v) for k, v in self.env.items()
                if k != PARAMS_VARIABLE]
        if PARAMS_VARIABLE in self.env:
            values = json.loads(self.env[PARAMS_VARIABLE])
            rows += [(k, self.typed[k], json.dumps(values[k])) for k in self.typed]
        return rows


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ParameterError(
            f"invalid parameter name {name!r}",
            hint="use a VQL identifier: letters, digits and underscores, not starting with a digit",
        )
    if name.lower() in _RESERVED:
        raise ParameterError(f"parameter name {name!r} is reserved", hint="choose another name")
    return name


def _iso(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        text = value.astimezone(dt.UTC).isoformat()
    else:
        text = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).isoformat()
    return text.replace("+00:00", "Z")


def to_jsonable(value: Any, *, path: str = "value") -> Any:
    """Convert a Python/pandas/numpy value to JSON-compatible data, or raise ParameterError."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ParameterError(f"{path} is {value!r}; JSON (and VQL) has no NaN or infinity")
        return value
    if isinstance(value, dt.datetime | dt.date):
        return _iso(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ParameterError(f"{path} has a non-string key {key!r}",
                                     hint="dict keys must be strings to become a VQL dict")
            out[key] = to_jsonable(item, path=f"{path}[{key!r}]")
        return out
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_jsonable(item, path=f"{path}[{i}]") for i, item in enumerate(items)]
    # pandas / numpy without importing them: duck-type on tolist()/item()/to_pydatetime().
    to_pydatetime = getattr(value, "to_pydatetime", None)
    if callable(to_pydatetime) and not hasattr(value, "__len__"):
        return to_jsonable(to_pydatetime(), path=path)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        converted = tolist()
        if converted is not value:
            return to_jsonable(converted, path=path)
    item = getattr(value, "item", None)
    if callable(item):
        return to_jsonable(item(), path=path)
    raise ParameterError(
        f"{path} has type {type(value).__name__}, which cannot be bound as a VQL value",
        hint=f"supported types: {_SUPPORTED}; convert it (e.g. str(value)) first",
    )


def _vql_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "string"


def bind(params: Mapping[str, Any] | None) -> Bindings:
    """Turn ``params`` into env strings and the prelude that types the non-string ones."""
    if not params:
        return Bindings()
    env: dict[str, str] = {}
    typed_values: dict[str, Any] = {}
    typed: dict[str, str] = {}
    statements: list[str] = []
    for raw_name, value in params.items():
        name = _check_name(raw_name)
        if isinstance(value, str):
            env[name] = value
            continue
        is_time = isinstance(value, dt.datetime | dt.date) or (
            callable(getattr(value, "to_pydatetime", None)) and not hasattr(value, "__len__")
        )
        jsonable = to_jsonable(value, path=name)
        typed_values[name] = jsonable
        accessor = f"parse_json(data={PARAMS_VARIABLE}).{name}"
        if is_time:
            typed[name] = "timestamp"
            statements.append(f"LET {name} <= timestamp(string={accessor})")
        else:
            typed[name] = _vql_type(jsonable)
            statements.append(f"LET {name} <= {accessor}")
    if typed_values:
        env[PARAMS_VARIABLE] = json.dumps(typed_values, ensure_ascii=False, separators=(",", ":"))
    return Bindings(env=env, prelude="\n".join(statements), typed=typed)
