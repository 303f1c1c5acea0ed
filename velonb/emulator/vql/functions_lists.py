"""List builtins: ``filter`` and ``slice`` (velociraptor ``vql/functions/lists.go``) and the
``flatten`` plugin (vfilter ``plugins/flatten.go``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import associative
from velonb.emulator.vql.functions_text import go_bytes
from velonb.emulator.vql.lambdas import Lambda
from velonb.emulator.vql.registry import Arg, function, plugin
from velonb.emulator.vql.scope import Scope

_UINT64 = (1 << 64) - 1


@function("filter", Arg("list", "list", required=True), Arg("regex", "str"),
          Arg("condition", "lambda"))
def filter_(scope: Scope, args: dict[str, Any]) -> object:
    """The items for which the lambda ``condition`` is true, else those matching ``regex``
    (an absent regex matches everything; numbers are matched as their text)."""
    items: list[Any] = args["list"]
    condition: Lambda | None = args.get("condition")
    regex: str = args.get("regex", "")
    if condition is not None:
        if regex:
            scope.log("ERROR:filter: Both regex and condition are specified - Will only use "
                      "the condition and ignore regex!")
        return [item for item in items if P.to_bool(scope, condition.reduce(scope, [item]))]
    return [item for item in items if P.match(scope, regex, item)]


@function("slice", Arg("list", required=True), Arg("start", "int", required=True),
          Arg("end", "int", required=True))
def slice_(scope: Scope, args: dict[str, Any]) -> object:
    """Items [start, end) of a list (a string gives its bytes as numbers, a dict its keys);
    start and end are unsigned (a negative number is huge), end is clipped, start <= end."""
    value = args["list"]
    if isinstance(value, str):
        items: list[Any] = list(go_bytes(value))
    elif isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        items = list(value.keys())
    else:
        return []
    end = min(args["end"] & _UINT64, len(items))
    start = min(args["start"] & _UINT64, end)
    return items[start:end]


def _make_dict(scope: Scope, row: object) -> dict[str, Any]:
    """The row as a dict (its members, for other row types)."""
    if isinstance(row, dict):
        return row
    out: dict[str, Any] = {}
    for member in P.members(scope, row):
        value, present = associative(scope, row, member)
        if present:
            out[member] = value
    return out


def _flatten(scope: Scope, row: dict[str, Any], idx: int) -> list[dict[str, Any]]:
    """Expand column ``idx`` (then, recursively, those before it) into one row per item."""
    if idx < 0:
        return [row]
    column = list(row.keys())[idx]
    result: list[dict[str, Any]] = []
    count = 0
    for member in P.iterate(scope, row[column]):
        count += 1
        if isinstance(member, dict) and "_value" in member:
            member = member["_value"]
        new_row = dict(row)
        new_row[column] = member
        result.extend(_flatten(scope, new_row, idx - 1))
    if count == 0:
        result.extend(_flatten(scope, row, idx - 1))
    return result


@plugin("flatten", Arg("query", "query", required=True))
def flatten(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Flatten the columns of a query: a row repeats once per item of each list column."""
    for row in args["query"].eval(scope):
        as_dict = _make_dict(scope, row)
        for item in _flatten(scope, as_dict, len(as_dict) - 1):
            if scope.cancelled:
                return
            yield item
