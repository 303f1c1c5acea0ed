"""Decode the server's JSON response parts of one VQL statement into one typed DataFrame.

Each part is a compact JSON array of row objects plus ``Columns`` (the first row's keys).
`FrameBuilder` parses parts with pyarrow (no Python dict per row, GIL released) and falls back,
per part or per column, to exact ``json.loads`` values wherever Arrow's result could differ.
`reference_frame` is the plain-Python definition of the result; the fast path must equal it.

Rules (per column, over all parts; missing keys and ``null`` are both null):

* order: each part's ``Columns``, then keys in order of first appearance; index 0..n-1;
* all null -> object column of None;
* bool -> ``bool`` (``boolean`` with nulls);
* int -> ``int64`` (``Int64`` with nulls); non-negative with some > int64 max -> ``uint64``
  (``UInt64``); negative and > int64 max together -> object of exact Python ints;
* float, or int and float -> ``float64`` (null -> NaN) if every int has |i| <= 2**53, else
  object of exact values;
* str -> the installed pandas' default string dtype (`STR_DTYPE`; pandas 3: ``str``, null ->
  NaN), unless every string is RFC 3339 (``YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM)``, a real
  date) -> ``datetime64[ns, UTC]`` (offsets converted), or ``datetime64[us, UTC]`` (fraction
  truncated to microseconds) when a value is outside the ns range, e.g. Go's zero time;
* dicts, lists and mixed types -> object column of the exact Python values; rows whose
  nested objects are equal may share one read-only ``dict`` (`SharedDict`), equal to the
  reference's plain dicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from velonb._frames_arrow import (
    FloatInts,
    Segment,
    hint_for,
    part_segments,
    read_rows,
)
from velonb._frames_dicts import SharedDict
from velonb._frames_time import timestamps_series
from velonb._frames_types import (
    FLOAT_EXACT,
    STR_DTYPE,
    masked_series,
    object_series,
    series_from_values,
)
from velonb.errors import ResponseDecodeError

__all__ = ["STR_DTYPE", "DecodedPart", "FrameBuilder", "SharedDict", "decode_part",
           "frame_from_parts", "reference_frame"]

#: from this many rows on, to_frame builds two columns at a time
_PARALLEL_COLUMNS_ROWS = 50_000
_HINT = "the server sent a malformed result part; re-run the query or report the server version"


def _json_rows(response: str | bytes, index: int) -> list[dict[str, Any]]:
    """``json.loads`` a part and check it is an array of objects (ResponseDecodeError if not)."""
    try:
        rows = json.loads(response)
    except (ValueError, UnicodeDecodeError) as e:
        raise ResponseDecodeError(
            f"response part {index} is not valid JSON: {e}", hint=_HINT
        ) from e
    if not isinstance(rows, list):
        raise ResponseDecodeError(
            f"response part {index} is a JSON {type(rows).__name__}, not an array of rows",
            hint=_HINT,
        )
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ResponseDecodeError(
                f"row {i} of response part {index} is a JSON {type(row).__name__}, not an object",
                hint=_HINT,
            )
    return rows


def reference_frame(parts: Iterable[tuple[str | bytes, Sequence[str]]]) -> pd.DataFrame:
    """The reference decoder: ``json.loads`` every part, type each column in plain Python."""
    order: dict[str, None] = {}
    rows: list[dict[str, Any]] = []
    for index, (response, columns) in enumerate(parts):
        part = _json_rows(response, index)
        order.update(dict.fromkeys(columns))
        for row in part:
            order.update(dict.fromkeys(row))
        rows.extend(part)
    data = {name: series_from_values([row.get(name) for row in rows]) for name in order}
    return _assemble(data, len(rows))


def _assemble(data: dict[str, pd.Series], nrows: int) -> pd.DataFrame:
    if not data:
        return pd.DataFrame(index=pd.RangeIndex(nrows))
    # copy=False: each column keeps its own array (no consolidation copy into 2-D blocks)
    frame = pd.DataFrame(dict(enumerate(data.values())), index=pd.RangeIndex(nrows), copy=False)
    frame.columns = pd.Index(list(data))
    return frame


def _py_segment(values: list[Any]) -> Segment:
    """A Python column slice as an Arrow array when it is one simple type, else the list."""
    kinds = {type(v) for v in values}
    kinds.discard(type(None))
    if not kinds:
        return None if not values else pa.nulls(len(values))
    typ = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.large_string()}
    if len(kinds) == 1 and (kind := next(iter(kinds))) in typ:
        try:
            return pa.array(values, type=typ[kind])
        except (pa.ArrowException, OverflowError, UnicodeEncodeError, ValueError):
            pass  # ints beyond int64, lone surrogates: keep exact Python values
    return values


class DecodedPart(NamedTuple):
    """One response part decoded into column segments (see `FrameBuilder.append`)."""

    nrows: int
    names: list[str]
    segments: dict[str, Segment]
    columns: Sequence[str]
    hint: pa.Schema | None


def decode_part(response: str | bytes, columns: Sequence[str], index: int,
                hint: pa.Schema | None = None, *, widen: bool = True) -> DecodedPart:
    """Decode one part (``index`` names it in errors); ``hint`` is an earlier part's schema.

    ``widen=False`` keeps Arrow string columns as parsed (``string``, not ``large_string``):
    for `velonb._frames_table.part_table`, which writes them to Parquet as they are.
    """
    raw: bytes | None
    if isinstance(response, str):
        try:
            raw = response.encode("utf-8")
        except UnicodeEncodeError:
            raw = None
    else:
        raw = bytes(response)
        if not raw.isascii():  # pyarrow's parser does not check UTF-8; json.loads does
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                raw = None  # decoded (or refused) exactly as the reference decoder does
    rows = read_rows(raw, hint) if raw is not None else None
    if rows is not None:
        assert raw is not None
        names, segs = part_segments(rows, raw, widen=widen)
        missing = [name for name, seg in segs.items() if seg is None]
        if missing:
            py_rows = _json_rows(raw, index)
            for name in missing:
                segs[name] = _py_segment([row.get(name) for row in py_rows])
        return DecodedPart(len(rows), names, segs, columns, hint_for(rows))
    py_rows = _json_rows(response, index)
    names = list({k: None for row in py_rows for k in row})
    segs = {name: _py_segment([row.get(name) for row in py_rows]) for name in names}
    return DecodedPart(len(py_rows), names, segs, columns, None)


class FrameBuilder:
    """Accumulates the parts of ONE statement's result and builds its DataFrame."""

    def __init__(self) -> None:
        self._order: dict[str, None] = {}
        self._parts: list[tuple[int, dict[str, Segment]]] = []
        self._rows = 0
        self._hint: pa.Schema | None = None
        self._frame: pd.DataFrame | None = None
        self._released = False

    @property
    def rows(self) -> int:
        """Rows added so far."""
        return self._rows

    @property
    def columns(self) -> list[str]:
        """Column names in result order so far."""
        return list(self._order)

    def add_part(self, response: str | bytes, columns: Sequence[str] = ()) -> int:
        """Decode one response part; return its row count (ResponseDecodeError if malformed)."""
        return self.append(self.decode(response, columns))

    def decode(self, response: str | bytes, columns: Sequence[str] = (),
               index: int | None = None, *, widen: bool = True) -> DecodedPart:
        """Decode a part without adding it: safe on any thread while others decode or append.

        ``index`` (the part's number in the statement, for error messages) defaults to the
        number of parts appended so far; ``widen`` as in `decode_part`.
        """
        return decode_part(response, columns, len(self._parts) if index is None else index,
                           self._hint, widen=widen)

    def remember_hint(self, hint: pa.Schema | None) -> None:
        """Use a decoded part's schema hint for the next parts (`append` does this too)."""
        if hint is not None:
            self._hint = hint

    def append(self, part: DecodedPart) -> int:
        """Add a decoded part after those already added; return its row count."""
        if self._released:
            raise RuntimeError("this FrameBuilder released its parts (to_frame(release=True)): "
                               "it takes no more parts")
        if part.hint is not None:
            self._hint = part.hint
        self._order.update(dict.fromkeys(part.columns))
        self._order.update(dict.fromkeys(part.names))
        self._parts.append((part.nrows, part.segments))
        self._rows += part.nrows
        self._frame = None
        return part.nrows

    def to_frame(self, *, release: bool = False) -> pd.DataFrame:
        """The DataFrame of all parts so far (cached until the next add_part).

        ``release=True`` (the stream has ended) drops each column's decoded parts as soon as
        its Series is built, so the parts and the frame are not both held at the peak; the
        builder keeps the frame and takes no more parts after that.
        """
        if self._frame is None:
            if self._released:  # an earlier release=True assembly failed half-way
                raise RuntimeError("this FrameBuilder released its parts: the frame is lost")
            self._released = release
            names = list(self._order)
            column = self._releasing_column if release else self._column
            if self._rows >= _PARALLEL_COLUMNS_ROWS and len(names) > 1:
                # columns are independent and mostly Arrow/numpy work (GIL released)
                with ThreadPoolExecutor(2, thread_name_prefix="velonb-columns") as pool:
                    data = dict(zip(names, pool.map(column, names), strict=True))
            else:
                data = {name: column(name) for name in names}
            self._frame = _assemble(data, self._rows)
        if release:
            self._parts, self._released = [], True
        return self._frame.copy(deep=False)

    def _releasing_column(self, name: str) -> pd.Series:
        series = self._column(name)
        for _, segs in self._parts:
            segs.pop(name, None)
        return series

    def _column(self, name: str) -> pd.Series:
        segs = [(n, segs.get(name)) for n, segs in self._parts]
        if not any(isinstance(seg, list) for _, seg in segs):
            arrays = [
                pa.nulls(n) if seg is None else seg.array if isinstance(seg, FloatInts) else seg
                for n, seg in segs
            ]
            series = _arrow_series(arrays)
            if series is not None:
                return series
        values: list[Any] = []
        for n, seg in segs:
            if seg is None:
                values.extend([None] * n)
            elif isinstance(seg, list):
                values.extend(seg)
            else:
                values.extend(seg.to_pylist())
        return series_from_values(values)


def _arrow_series(arrays: list[pa.Array]) -> pd.Series | None:
    """Type a column whose every part is an Arrow array; None when Python typing is needed."""
    total = sum(len(a) for a in arrays)
    types = {a.type for a in arrays if a.null_count < len(a)}
    if not types:
        return object_series([None] * total)
    if types == {pa.int64(), pa.float64()}:
        for a in arrays:
            if a.type == pa.int64() and a.null_count < len(a):
                lo, hi = pc.min_max(a).values()
                if max(-lo.as_py(), hi.as_py()) > FLOAT_EXACT:
                    return None
        types = {pa.float64()}
    if len(types) != 1:
        return None
    typ = next(iter(types))
    col = pa.chunked_array([a.cast(typ) if a.type != typ else a for a in arrays], type=typ)
    if typ == pa.large_string():
        ts = timestamps_series(col)
        if ts is not None:
            return ts
        series = col.to_pandas()
        return series if series.dtype == STR_DTYPE else series.astype(STR_DTYPE)
    if typ == pa.float64():
        return pd.Series(pc.fill_null(col, float("nan")).to_numpy(), copy=False)
    if typ in (pa.int64(), pa.bool_()):
        if not col.null_count:
            return masked_series(col.to_numpy(), None)
        mask = col.is_null().to_numpy()
        filled = pc.fill_null(col, 0 if typ == pa.int64() else False).to_numpy()
        return masked_series(filled, mask)
    return None


def frame_from_parts(parts: Iterable[tuple[str | bytes, Sequence[str]]]) -> pd.DataFrame:
    """Decode all ``(response, columns)`` parts with a `FrameBuilder`."""
    builder = FrameBuilder()
    for response, columns in parts:
        builder.add_part(response, columns)
    return builder.to_frame()
