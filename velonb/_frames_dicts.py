"""Exact Python dicts from Arrow struct columns, fast: a compiled dict maker, one shared ``str``
per distinct value, and rows that repeat a combination of values share one read-only dict.

Used by the decoder (`velonb._frames_arrow`, a part's verified struct columns) and by the
cache codec (replaying stored dict columns).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa

_READ_ONLY = ("this nested value is shared by every row that holds an equal value, so it is "
              "read-only; change a copy instead: value.copy() or dict(value)")


class SharedDict(dict[Any, Any]):
    """A nested value (e.g. ``Hash``) that every row holding an equal value shares: a read-only
    ``dict``.

    A hunt repeats the same few nested values (the hashes of the same executables) across
    millions of rows; one object per distinct value instead of one per row saves ~190 MB on a
    1M-row Pslist hunt. It is a real ``dict`` (``isinstance``, ``==``, ``json.dumps``, pandas
    and pyarrow all take it), equal to the value ``json.loads`` gives; changing it in place
    would change every row that shares it, so that raises ``TypeError``, as a ``tuple`` does.
    ``copy()``, ``dict(value)`` and ``value | other`` give ordinary dicts.
    """

    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> NoReturn:
        raise TypeError(_READ_ONLY)

    def __delitem__(self, key: Any) -> NoReturn:
        raise TypeError(_READ_ONLY)

    def __ior__(self, other: Any) -> NoReturn:  # type: ignore[misc]
        raise TypeError(_READ_ONLY)

    def clear(self) -> NoReturn:
        raise TypeError(_READ_ONLY)

    def pop(self, *args: Any) -> NoReturn:
        raise TypeError(_READ_ONLY)

    def popitem(self) -> NoReturn:
        raise TypeError(_READ_ONLY)

    def setdefault(self, *args: Any) -> NoReturn:
        raise TypeError(_READ_ONLY)

    def update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(_READ_ONLY)

    def __reduce__(self) -> tuple[type[SharedDict], tuple[dict[Any, Any]]]:
        # pickle / copy / deepcopy rebuild it from a plain dict (their default would
        # fill an empty instance item by item, which is refused)
        return SharedDict, (dict(self),)


def _teach_yaml() -> None:
    """PyYAML represents dict subclasses only when told: dump a SharedDict as a mapping."""
    import yaml

    for name in ("SafeDumper", "Dumper", "CSafeDumper", "CDumper"):
        dumper = getattr(yaml, name, None)
        if dumper is not None:
            dumper.add_representer(SharedDict, yaml.SafeDumper.represent_dict)


_teach_yaml()

#: the dict types velonb's frames hold (exact ``type(v) in DICT_TYPES`` checks: no other
#: subclass is taken for a plain JSON object)
DICT_TYPES = frozenset({dict, SharedDict})


def distinct_objects(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Which rows hold the same object (by identity: e.g. one `SharedDict` for many rows).

    ``(codes, first)``: ``codes[i]`` numbers row ``i``'s object in order of first appearance,
    and ``first[c]`` is the first row holding object ``c``; ``values[first]`` are the distinct
    objects.
    """
    import pandas as pd

    ids = np.fromiter(map(id, values), dtype=np.uint64, count=len(values))
    codes, _ = pd.factorize(ids)
    first = np.full(int(codes.max()) + 1 if len(codes) else 0, len(codes), dtype=np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return codes, first


@lru_cache(maxsize=256)
def _dict_maker(fields: tuple[str, ...]) -> Callable[..., list[dict[str, Any]]]:
    """A compiled ``lambda *cols: [{f0: v0, f1: v1, ...} for v0, v1, ... in zip(*cols)]``.

    3x faster than ``dict(zip(fields, row))``; the keys enter the source only as ``repr``
    literals of str, so no field name can inject code.
    """
    if not fields or len(fields) > 64:
        return lambda *cols: [dict(zip(fields, t, strict=True)) for t in zip(*cols, strict=True)]
    names = [f"v{i}" for i in range(len(fields))]
    pairs = ", ".join(f"{f!r}: {v}" for f, v in zip(fields, names, strict=True))
    args = ", ".join(names)
    src = f"lambda {args}: [{{{pairs}}} for {args}, in zip({args})]"
    maker: Callable[..., list[dict[str, Any]]] = eval(src, {"__builtins__": {"zip": zip}})  # noqa: S307
    return maker


def shared_pylist(arr: pa.Array) -> list[Any]:
    """``arr.to_pylist()``; a string array's repeated values become one shared ``str`` each.

    Equal strings are interchangeable values (immutable), so this is the same list by value;
    it is as fast as ``to_pylist`` and keeps one object per distinct string (e.g. the hashes
    of the same executable in every row). Dictionary arrays (the cache's struct children) are
    already in that form.
    """
    if pa.types.is_dictionary(arr.type):
        if arr.null_count:
            return arr.to_pylist()
        distinct = arr.dictionary.to_pylist()
        return list(map(distinct.__getitem__, arr.indices.to_numpy().tolist()))
    if arr.type in (pa.string(), pa.large_string()) and not arr.null_count and len(arr) > 1:
        encoded = arr.dictionary_encode()
        if len(encoded.dictionary) < len(arr):
            distinct = encoded.dictionary.to_pylist()
            return list(map(distinct.__getitem__, encoded.indices.to_numpy().tolist()))
    return arr.to_pylist()


#: from this many rows on, repeated combinations of string values are built from templates
_TEMPLATE_MIN_ROWS = 64


def row_dicts(fields: tuple[str, ...], kids: list[pa.Array]) -> list[dict[str, Any]]:
    """One dict per row, ``{field: value}`` in field order.

    When the rows repeat a few combinations of string values (the hashes of the same
    executable), the rows of one combination share one `SharedDict`: the same keys, order and
    values as building it key by key, without a dict object per row.
    """
    templates = _templates(fields, kids) if kids and len(kids[0]) >= _TEMPLATE_MIN_ROWS else None
    if templates is None:
        return _dict_maker(fields)(*[shared_pylist(kid) for kid in kids])
    table, rows = templates
    return list(map(table.__getitem__, rows))


def row_dicts_where(fields: tuple[str, ...], kids: list[pa.Array], valid: np.ndarray
                    ) -> list[Any]:
    """`row_dicts` of the rows where ``valid`` is true (a struct's non-null rows), None for the
    others: the present rows still share their repeated values (a null ``Hash`` here and there
    must not cost every other row its own dict)."""
    if valid.all():
        return row_dicts(fields, kids)
    keep = pa.array(valid)
    made = np.empty(int(valid.sum()), dtype=object)
    made[:] = row_dicts(fields, [kid.filter(keep) for kid in kids])
    rows = np.full(len(valid), None, dtype=object)
    rows[valid] = made
    result: list[Any] = rows.tolist()
    return result


def _templates(fields: tuple[str, ...], kids: list[pa.Array]
               ) -> tuple[list[dict[str, Any]], list[int]] | None:
    """One `SharedDict` per distinct combination of the kids' values and each row's
    combination, or None (a null, a non-string field, or mostly distinct rows)."""
    codes: np.ndarray | None = None
    combinations = 1
    dictionaries = []
    for kid in kids:
        if kid.null_count:
            return None
        if pa.types.is_dictionary(kid.type):
            if kid.type.value_type not in (pa.string(), pa.large_string()):
                return None
            encoded = kid
        elif kid.type in (pa.string(), pa.large_string()):
            encoded = kid.dictionary_encode()
        else:
            return None
        size = len(encoded.dictionary)
        combinations *= max(size, 1)
        if combinations >= 2**62:
            return None
        index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
        codes = index if codes is None else codes * size + index
        dictionaries.append((encoded.dictionary, size))
    if codes is None:
        return None
    distinct, rows = _distinct_codes(codes, combinations)
    if 2 * len(distinct) > len(codes):
        return None
    columns: list[list[Any]] = []
    rest = distinct
    for dictionary, size in reversed(dictionaries):
        values = dictionary.to_pylist()
        columns.append([values[i] for i in (rest % size).tolist()])
        rest = rest // size
    columns.reverse()
    return list(map(SharedDict, _dict_maker(fields)(*columns))), rows.tolist()


def _distinct_codes(codes: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(codes, return_inverse=True)`` of codes in ``[0, bound)``; without a sort
    (a table of ``bound`` entries) when ``bound`` is not much larger than the codes."""
    if bound > 2 * len(codes) + 65_536:
        return np.unique(codes, return_inverse=True)
    seen = np.zeros(bound, dtype=bool)
    seen[codes] = True
    distinct = np.flatnonzero(seen)
    number = np.empty(bound, dtype=np.intp)
    number[distinct] = np.arange(len(distinct))
    return distinct, number[codes]


_FLAT_CHILD = (pa.null(), pa.bool_(), pa.int64(), pa.uint64(), pa.float64(), pa.string(),
               pa.large_string())


def _flat_child(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        return t.value_type in (pa.string(), pa.large_string())
    return t in _FLAT_CHILD


def flat_struct_pylist(arr: pa.StructArray) -> list[Any] | None:
    """``arr.to_pylist()`` of a struct whose fields are all scalars, built 3-5x faster
    (compiled dict maker, shared strings); None for nested fields or odd field names."""
    fields = tuple(f.name for f in arr.type)
    if (not fields or len(set(fields)) != len(fields)
            or not all(_flat_child(f.type) for f in arr.type)):
        return None
    if not arr.null_count:
        return row_dicts(fields, arr.flatten())
    return row_dicts_where(fields, arr.flatten(), arr.is_valid().to_numpy(zero_copy_only=False))

