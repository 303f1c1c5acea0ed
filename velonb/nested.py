"""Nested columns as columns: ``expand(df, "Hash")`` gives ``Hash.MD5``, ``Hash.SHA1``, ...

Velociraptor rows nest objects (Pslist's ``Hash`` and ``Authenticode``, netstat's ``Laddr``);
pandas wants flat columns to filter, group and stack. `expand` replaces each nested column,
where it stood, by one column per key, typed by the same rules as query results (integers,
RFC 3339 times, strings; see `velonb.frames`).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from velonb._frames_dicts import DICT_TYPES, distinct_objects

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["expand"]


def expand(frame: pd.DataFrame, *columns: Hashable, sep: str = ".", depth: int | None = 1,
           keep: bool = False) -> pd.DataFrame:
    """A copy of ``frame`` where each nested column is one column per key, in its place.

    ``Hash`` holding ``{"MD5": ..., "SHA1": ...}`` becomes ``Hash.MD5`` and ``Hash.SHA1``
    (keys in order of first appearance; ``sep`` joins the names). A row whose value is null
    gets nulls. Without ``columns``, every column whose values are all dicts or null is
    expanded. ``depth`` levels are expanded (``None``: until nothing nested is left);
    ``keep=True`` keeps each original column too, and then also takes columns that hold
    other values beside dicts (those rows get nulls in the new columns; the values stay in the
    kept column). The frame's index is kept.

    Raises ``KeyError`` for a column that is not in the frame and ``ValueError`` for one that
    holds no dicts, holds other values (without ``keep``), or whose new names would clash with
    existing columns.
    """
    for name in columns:
        if name not in frame.columns:
            raise KeyError(f"expand: no column {name!r} in this frame "
                           f"(columns: {', '.join(map(str, frame.columns))})")
    if frame.columns.has_duplicates:
        raise ValueError("expand: the frame has duplicate column names; rename them first")
    todo = list(columns) if columns else _nested_columns(frame)
    frame = frame.copy(deep=False)  # a new frame even when nothing is nested (copy-on-write)
    level = 0
    while todo and (depth is None or level < depth):
        new_names: list[Hashable] = []
        for name in todo:
            frame, added = _expand_one(frame, name, sep, keep, named=bool(columns) and level == 0)
            new_names.extend(added)
        todo = [n for n in new_names if _all_dicts(frame[n])]
        level += 1
    return frame


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return value != value  # NaN
    import pandas as pd

    return value is pd.NA or value is pd.NaT


def _all_dicts(series: pd.Series) -> bool:
    """Object column whose non-null values are all dicts (and there is at least one)."""
    if series.dtype != object:
        return False
    seen = False
    for value in series.array:
        if type(value) in DICT_TYPES:
            seen = True
        elif not _is_null(value):
            return False
    return seen


def _nested_columns(frame: pd.DataFrame) -> list[Hashable]:
    return [name for name in frame.columns if _all_dicts(frame[name])]


def _expand_one(frame: pd.DataFrame, name: Hashable, sep: str, keep: bool, *, named: bool
                ) -> tuple[pd.DataFrame, list[Hashable]]:
    import pandas as pd

    from velonb._frames_types import series_from_values

    values = frame[name].to_numpy(dtype=object)
    # rows holding the same object (velonb's shared nested values) are looked at once
    codes, first = distinct_objects(values)
    distinct = values[first]
    keys: dict[Any, None] = {}
    for position, value in zip(first.tolist(), distinct, strict=True):
        if type(value) in DICT_TYPES:
            keys.update(dict.fromkeys(value))
        elif not _is_null(value) and not keep:
            raise ValueError(
                f"expand: column {name!r} holds a {type(value).__name__} in row "
                f"{frame.index[position]!r}, not only dicts and nulls; pass keep=True to keep "
                "the column beside the new ones (those rows get nulls)")
    if not keys:
        if named:
            raise ValueError(f"expand: column {name!r} holds no dicts to expand")
        return frame, []
    new = {f"{name}{sep}{key}": key for key in keys}
    clash = [n for n in new if n in frame.columns and not (keep is False and n == name)]
    if clash:
        raise ValueError(f"expand: the new column(s) {', '.join(map(repr, clash))} already "
                         f"exist; choose another sep= than {sep!r}")
    expanded: dict[str, pd.Series] = {}
    for column, key in new.items():
        # the typing rules depend on which values occur, not how often: type the distinct
        # objects' values, then spread them over the rows
        typed = series_from_values([v.get(key) if type(v) in DICT_TYPES else None
                                    for v in distinct])
        expanded[column] = typed.take(codes).reset_index(drop=True)
    at = frame.columns.get_loc(name)
    assert isinstance(at, int)  # column names are unique (checked by expand)
    plain = frame.set_axis(pd.RangeIndex(len(frame)))  # positional: the index may repeat
    parts = [plain.iloc[:, : at + 1] if keep else plain.iloc[:, :at],
             pd.DataFrame(expanded), plain.iloc[:, at + 1:]]
    return pd.concat(parts, axis=1).set_axis(frame.index), list(new)
