"""The pyarrow side of velonb.frames: decode a response part without a Python object per row.

A part (one compact JSON array) is wrapped into ONE newline-delimited JSON line
``{"rows":<part>}`` and parsed by ``pyarrow.json`` (C++, releases the GIL). Each top-level
column becomes a *segment*: a pyarrow Array when Arrow's value is exactly the JSON value, or a
list of exact Python values. Whatever Arrow cannot represent exactly is detected and left to
the caller's ``json.loads`` fallback (a return of None).

pyarrow quirks handled here:

* ints beyond int64 silently become float64 -> a double column is only kept when every value
  has a magnitude < 2**53 (so no int was rounded); otherwise that column falls back;
* strings that look like dates (even ``2024-03-01`` or zone-less ones) are inferred as
  ``timestamp[s]`` -> the part is re-read with an explicit schema that keeps them strings;
* a struct's fields are the union of all rows' keys, in first-seen order, and a missing key
  reads as null -> struct columns are verified against the raw bytes (see `_struct_dicts`);
* explicit-schema float64 accepts JSON ints silently -> hints never pin a float type;
* type conflicts, duplicate keys and lone surrogates are parse errors -> the part falls back;
* a list starting with null items (``[null,1]``, ``[null,null]``) reads as an invalid array
  (offsets out of bounds; crashes later) -> list columns are validated, invalid -> fall back.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from velonb._frames_types import FLOAT_EXACT, datetime_series, parse_rfc3339


class FloatInts:
    """A float64 Arrow column of one part plus which rows were JSON int literals."""

    __slots__ = ("array", "ints")

    def __init__(self, array: pa.Array, ints: np.ndarray) -> None:
        self.array = array
        self.ints = ints

    def to_pylist(self) -> list[Any]:
        """The exact Python values: ints where the JSON had ints."""
        values = self.array.to_pylist()
        return [int(v) if i else v for v, i in zip(values, self.ints.tolist(), strict=True)]


#: A column's values in one part: Arrow array, exact Python values, or None (column absent).
Segment: TypeAlias = pa.Array | FloatInts | list[Any] | None

# A key whose JSON text is itself and that cannot end a string token's continuation.
_SIMPLE_KEY = re.compile(r'[^\x00-\x20"\\:,{}\[\]<>&\u2028\u2029][^\x00-\x1f"\\<>&\u2028\u2029]*\Z')
_SCALAR = (pa.null(), pa.bool_(), pa.int64(), pa.float64(), pa.string())


def read_rows(raw: bytes, hint: pa.Schema | None) -> pa.StructArray | None:
    """Parse a part as Arrow rows (one struct per row), or None when Arrow can't or mustn't."""
    # A raw line break (JSON whitespace; compact parts have none) splits the line: the first
    # piece is an unclosed object and fails to parse, or there are 2+ rows; both return None.
    line = b'{"rows":' + raw + b"}\n"
    opts = pj.ReadOptions(block_size=len(line) + 1, use_threads=False)
    schema = hint
    for _ in range(3):
        parse = None
        if schema is not None:
            parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
        try:
            table = pj.read_json(pa.BufferReader(line), read_options=opts, parse_options=parse,
                                 memory_pool=parse_pool())
        except (pa.ArrowException, ValueError):
            if schema is None:
                return None
            schema = None  # the hint did not fit this part: infer from scratch
            continue
        if table.num_rows != 1 or table.column_names != ["rows"]:
            return None
        typ = table.schema.field(0).type
        if not pa.types.is_list(typ):
            return None
        if _has_timestamp(typ):
            schema = pa.schema([pa.field("rows", _no_timestamps(typ))])
            continue
        if table.column(0).num_chunks != 1:
            return None
        lst = table.column(0).chunk(0)
        if len(lst) != 1 or lst.null_count:
            return None
        if pa.types.is_struct(lst.type.value_type):
            values = lst.values
            for i, field in enumerate(lst.type.value_type):
                if _has_list(field.type):  # see the module docstring: null list items
                    try:
                        values.field(i).validate(full=True)
                    except pa.ArrowException:
                        return None
        rows = lst.flatten()
        if pa.types.is_null(rows.type) and len(rows) == 0:
            return pa.array([], pa.struct([]))
        if not pa.types.is_struct(rows.type) or rows.null_count:
            return None
        return rows
    return None


@lru_cache(maxsize=1)
def parse_pool() -> pa.MemoryPool:
    """The memory pool the JSON parser allocates from: jemalloc where this pyarrow has it.

    Each part's parse allocates and frees several buffers of about the part's size, on two
    threads; with jemalloc the 1M-row benchmark query takes ~10% less CPU than with pyarrow's
    default (mimalloc), which returns those pages to the system and faults them in again.
    A pool chosen with ``ARROW_DEFAULT_MEMORY_POOL`` is respected.
    """
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            return pa.jemalloc_memory_pool()
        except NotImplementedError:  # ArrowNotImplementedError: built without jemalloc
            pass
    return pa.default_memory_pool()


@lru_cache(maxsize=256)
def _has_timestamp(t: pa.DataType) -> bool:
    if pa.types.is_timestamp(t):
        return True
    if pa.types.is_struct(t):
        return any(_has_timestamp(f.type) for f in t)
    if pa.types.is_list(t):
        return _has_timestamp(t.value_type)
    return False


@lru_cache(maxsize=1024)
def _has_list(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return any(_has_list(f.type) for f in t)
    return bool(pa.types.is_list(t))


def _no_timestamps(t: pa.DataType) -> pa.DataType:
    """The same type with every timestamp replaced by string (to read them as text)."""
    if pa.types.is_timestamp(t):
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _no_timestamps(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_no_timestamps(t.value_type))
    return t


def _hint_safe(t: pa.DataType) -> bool:
    """Types an explicit schema can pin without changing values (no float, no null)."""
    if t in (pa.bool_(), pa.int64(), pa.string()):
        return True
    if pa.types.is_struct(t):
        return all(_hint_safe(f.type) for f in t)
    if pa.types.is_list(t):
        return _hint_safe(t.value_type)
    return False


def hint_for(rows: pa.StructArray) -> pa.Schema | None:
    """The explicit schema for the next part: this part's safe columns (keeps dates as text)."""
    return _hint_for_type(rows.type)


@lru_cache(maxsize=256)
def _hint_for_type(t: pa.DataType) -> pa.Schema | None:
    kept = [f for f in t if _hint_safe(f.type)]
    return pa.schema([pa.field("rows", pa.list_(pa.struct(kept)))]) if kept else None


def _field_names(t: pa.DataType) -> Iterator[str]:
    if pa.types.is_struct(t):
        for f in t:
            yield f.name
            yield from _field_names(f.type)
    elif pa.types.is_list(t):
        yield from _field_names(t.value_type)


@lru_cache(maxsize=256)
def _field_counts(t: pa.DataType) -> Counter[str]:
    """How often each field name occurs anywhere in the type (read-only: shared by parts)."""
    return Counter(_field_names(t))


def part_segments(rows: pa.StructArray, raw: bytes, *, widen: bool = True
                  ) -> tuple[list[str], dict[str, Segment]]:
    """Column names (first-seen order) and segments; a None segment needs Python values.

    ``widen``: string columns as ``large_string`` (what pandas keeps), else as parsed.
    """
    names = [f.name for f in rows.type]
    counts = _field_counts(rows.type)
    tokens = _KeyTokens(raw, counts)
    segs: dict[str, Segment] = {}
    for name, child in zip(names, rows.flatten(), strict=True):
        segs[name] = _segment(name, child, counts, tokens, widen)
    return names, segs


def _exact_doubles(arr: pa.Array) -> bool:
    """True when every double has |v| < 2**53, so no JSON int was rounded into it."""
    v = pc.fill_null(arr, 0.0).to_numpy(zero_copy_only=False)
    return bool(np.all(np.abs(v) < FLOAT_EXACT))


def _fractional_doubles(arr: pa.Array) -> bool:
    """True when no double is integral: none came from a JSON int Arrow widened to float."""
    v = pc.fill_null(arr, 0.5).to_numpy(zero_copy_only=False)
    return bool(np.all(np.isfinite(v) & (np.floor(v) != v)))


def _nested_ok(arr: pa.Array) -> bool:
    """A scalar or a list of scalars (inside a dict/list) whose Python values are exact."""
    if pa.types.is_list(arr.type):
        arr = arr.flatten()
    if arr.type == pa.float64():
        return _fractional_doubles(arr)
    return arr.type in _SCALAR


def _segment(name: str, arr: pa.Array, counts: Counter[str], tokens: _KeyTokens,
             widen: bool) -> Segment:
    if arr.type == pa.float64():
        if not _exact_doubles(arr):
            return None
        if not _fractional_doubles(arr):  # maybe ints among the floats: find which
            ints = _int_literals(name, arr, counts, tokens)
            return None if ints is None else FloatInts(arr, ints)
        return arr
    if arr.type == pa.string() and widen:  # pandas keeps large_string: widen here, in parallel
        return arr.cast(pa.large_string())
    if arr.type in _SCALAR:
        return arr
    if pa.types.is_list(arr.type):
        return arr.to_pylist() if _nested_ok(arr) else None
    if pa.types.is_struct(arr.type):
        return _struct_dicts(arr, counts, tokens)
    return None


class _KeyTokens:
    """Finds the key tokens ``"k":`` of a part's raw JSON (one colon scan, done lazily).

    For a simple key (see `_SIMPLE_KEY`) the token can only be that key: its closing quote
    is real (not after a backslash), and its opening quote is real too unless the token ends
    a longer key that holds a quote; if any key in the part holds one, ``{``/``,`` must
    precede the token as well (a quote before ``{``/``,`` is real and can only open a string).
    """

    def __init__(self, raw: bytes, counts: Counter[str]) -> None:
        self.raw = raw
        self.a = np.frombuffer(raw, dtype=np.uint8)
        self.quoted = any('"' in name for name in counts)
        self._ends: np.ndarray | None = None
        # every unaligned 8-byte little-endian word of the text, to compare 8 bytes at once
        self._words = np.ndarray((max(len(raw) - 7, 0),), dtype="<u8", buffer=raw, strides=(1,))

    def _scan(self) -> None:
        """Positions of every ``":`` (the ``:``), split into head (< 24) and body."""
        colons = np.flatnonzero(self.a == ord(":"))
        colons = colons[colons >= 1]
        ends = colons[self.a[colons - 1] == ord('"')]
        self._head = ends[ends < 24].tolist()
        self._body = ends[ends >= 24]
        self._ends = ends
        self._word_cache: dict[int, np.ndarray] = {}

    def _word(self, stop: int) -> np.ndarray:
        """For each body position c, the 8 bytes ending at ``c - stop`` as one integer."""
        if stop not in self._word_cache:
            self._word_cache[stop] = self._words[self._body - stop - 8]
        return self._word_cache[stop]

    def find(self, key: str) -> np.ndarray:
        """Ascending positions of the ``:`` ending each token of ``key``."""
        if self._ends is None:
            self._scan()
        token = b'"' + key.encode() + b'"'
        n = len(token)
        if n > 16:  # long keys: compare in Python on the few candidates of the right tail
            c = self._body[self._word(0) == np.uint64(int.from_bytes(token[-8:], "little"))]
            keep = [x for x in self._head + c.tolist() if self._token_at(x, token)]
            return np.array(keep, dtype=np.int64)
        m = None
        for stop in range(0, n, 8):  # compare the token from its end, 8 bytes at a time
            width = min(8, n - stop)
            w = self._word(stop)
            if width < 8:
                w = w >> np.uint64(8 * (8 - width))
            hit = w == np.uint64(int.from_bytes(token[n - stop - width : n - stop], "little"))
            m = hit if m is None else m & hit
        c = self._body[m]
        if self.quoted:
            before = self.a[c - n - 1]
            c = c[(before == ord("{")) | (before == ord(","))]
        head = [x for x in self._head if self._token_at(x, token)]
        return np.concatenate([np.array(head, dtype=c.dtype), c]) if head else c

    def _token_at(self, c: int, token: bytes) -> bool:
        start = c - len(token)
        if start < 0 or self.raw[start:c] != token:
            return False
        return not self.quoted or (start >= 1 and self.raw[start - 1] in b"{,")


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


_WINDOW = np.arange(1, 33)


def _int_literals(
    key: str, arr: pa.Array, counts: Counter[str], tokens: _KeyTokens
) -> np.ndarray | None:
    """Per row of a top-level float column: was the JSON value an int literal? (None: unknown)

    The key occurs only at the top level, so its tokens are the rows' own, in row order, each
    followed by the value: ``null`` or a number that ends at ``,`` or ``}``.
    """
    if counts[key] != 1 or not _SIMPLE_KEY.match(key):
        return None
    a = tokens.a
    win = a[np.minimum(tokens.find(key)[:, None] + _WINDOW, len(a) - 1)]
    win = win[win[:, 0] != ord("n")]  # explicit nulls
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if len(win) != int(valid.sum()):
        return None
    stop = (win == ord(",")) | (win == ord("}"))
    if not stop.any(axis=1).all():
        return None
    before = np.arange(win.shape[1]) < stop.argmax(axis=1)[:, None]
    frac = ((win == ord(".")) | (win == ord("e")) | (win == ord("E"))) & before
    ints = np.zeros(len(arr), dtype=bool)
    ints[valid] = ~frac.any(axis=1)
    return ints


def _pylist(arr: pa.Array) -> list[Any]:
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


def _row_dicts(fields: tuple[str, ...], kids: list[pa.Array]) -> list[dict[str, Any]]:
    """One new dict per row, ``{field: value}`` in field order.

    When the rows repeat a few combinations of string values (the hashes of the same
    executable), each row is a ``dict.copy`` of one template per combination: the same keys,
    order and (immutable, shared) values as building it key by key, in about half the time.
    """
    templates = _templates(fields, kids) if kids and len(kids[0]) >= _TEMPLATE_MIN_ROWS else None
    if templates is None:
        return _dict_maker(fields)(*[_pylist(kid) for kid in kids])
    table, rows = templates
    return list(map(dict.copy, map(table.__getitem__, rows)))


def _templates(fields: tuple[str, ...], kids: list[pa.Array]
               ) -> tuple[list[dict[str, Any]], list[int]] | None:
    """One dict per distinct combination of the kids' values and each row's combination, or
    None (a null, a non-string field, or mostly distinct rows)."""
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
    distinct, rows = np.unique(codes, return_inverse=True)
    if 2 * len(distinct) > len(codes):
        return None
    columns: list[list[Any]] = []
    rest = distinct
    for dictionary, size in reversed(dictionaries):
        values = dictionary.to_pylist()
        columns.append([values[i] for i in (rest % size).tolist()])
        rest = rest // size
    columns.reverse()
    return _dict_maker(fields)(*columns), rows.tolist()


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
    dicts: list[Any] = _row_dicts(fields, arr.flatten())
    if arr.null_count:
        for i in np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False)).tolist():
            dicts[i] = None
    return dicts


def _struct_dicts(
    arr: pa.StructArray, counts: Counter[str], tokens: _KeyTokens
) -> list[Any] | None:
    """Exact dicts of a struct column of scalars (or scalar lists), or None.

    Arrow cannot tell a missing key from a null, nor keep per-row key order. The fields' key
    tokens, in text order, must equal row by row the keys in field order: either every key
    (nulls were explicit) or exactly the non-null ones (nulls were missing keys). The fields
    occur nowhere else in the schema, so every such token in the text is this column's.
    """
    fields = [f.name for f in arr.type]
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    if not fields:
        return [{} if ok else None for ok in valid.tolist()]
    for f in fields:
        if counts[f] != 1 or not _SIMPLE_KEY.match(f):
            return None
    kids = arr.flatten()
    if not all(_nested_ok(k) for k in kids):
        return None
    found = [tokens.find(f) for f in fields]
    ids = np.concatenate([np.full(len(p), j, dtype=np.int32) for j, p in enumerate(found)])
    seq = ids[np.argsort(np.concatenate(found), kind="stable")]
    n_valid = int(valid.sum())
    k = len(fields)
    if len(seq) == k * n_valid and (seq.reshape(-1, k) == np.arange(k)).all():
        if n_valid == len(arr):  # every key in every row, in order
            return _row_dicts(tuple(fields), kids)
        values = [_pylist(k) for k in kids]
        return [
            dict(zip(fields, t, strict=True)) if ok else None
            for ok, t in zip(valid.tolist(), zip(*values, strict=True), strict=True)
        ]
    if b"\\u" in tokens.raw or b"\\/" in tokens.raw:
        return None  # a key written escaped ("\u0041") has no token: null vs missing is unknown
    present = np.stack([k.is_valid().to_numpy(zero_copy_only=False) for k in kids], axis=1)
    expected = np.broadcast_to(np.arange(k, dtype=np.int32), present.shape)[present]
    if not np.array_equal(seq, expected):
        return None
    values = [_pylist(k) for k in kids]
    return [
        {f: v for f, v in zip(fields, t, strict=True) if v is not None} if ok else None
        for ok, t in zip(valid.tolist(), zip(*values, strict=True), strict=True)
    ]


# --- timestamps ---------------------------------------------------------------------------------

_RE2_RFC3339 = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_NAT = np.iinfo(np.int64).min


def timestamps_series(col: pa.ChunkedArray) -> pd.Series | None:
    """The UTC datetime Series of a string column whose values are all RFC 3339, else None."""
    parsed = timestamps_epoch(col)
    return None if parsed is None else datetime_series(*parsed)


def timestamps_epoch(col: pa.ChunkedArray) -> tuple[np.ndarray, str] | None:
    """``(epoch, unit)`` of a string column whose values are all RFC 3339, else None.

    ``epoch`` is int64 in ``unit`` ("ns", or "us" when a value is outside the ns range) with
    ``_NAT`` for nulls, as `datetime_series` takes it.
    """
    vals = pc.drop_null(col)
    if len(vals) == 0 or parse_rfc3339(vals[0].as_py()) is None:
        return None
    if not pc.all(pc.match_substring_regex(vals, _RE2_RFC3339)).as_py():
        return None
    valid = col.is_valid().to_numpy(zero_copy_only=False) if col.null_count else None
    try:  # Arrow's ISO 8601 cast: exact for pattern-checked text; raises on bad dates/overflow
        cast = pc.cast(vals, pa.timestamp("ns", tz="UTC")).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        ns = cast.cast(pa.int64()).to_numpy(zero_copy_only=False)
        if (ns != _NAT).all():
            if valid is None:
                return ns, "ns"
            out = np.full(len(col), _NAT, dtype=np.int64)
            out[valid] = ns
            return out, "ns"
    flat = pc.cast(vals, pa.large_string()).combine_chunks()
    parsed = _parse_flat(flat)
    if parsed is None:
        return None
    sec, frac = parsed
    in_ns = (
        ((sec > -9223372037) & (sec < 9223372036))
        | ((sec == 9223372036) & (frac <= 854775807))
        | ((sec == -9223372037) & (frac >= 145224193))
    )
    if in_ns.all():
        unit = "ns"
        low = sec == -9223372037
        epoch = np.where(
            low,
            (np.minimum(sec, 0) + 1) * 10**9 + (frac - 10**9),
            np.maximum(sec, -9223372036) * 10**9 + frac,
        )
    else:
        unit = "us"
        epoch = sec * 10**6 + frac // 1000
    out = np.full(len(col), _NAT, dtype=np.int64)
    out[col.is_valid().to_numpy(zero_copy_only=False)] = epoch
    return out, unit


def _parse_flat(a: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray] | None:
    """Epoch seconds and nanos of ASCII strings already matching the RFC 3339 pattern."""
    offs = np.frombuffer(a.buffers()[1], dtype=np.int64)[a.offset : a.offset + len(a) + 1]
    data = np.frombuffer(a.buffers()[2], dtype=np.uint8)
    lens = np.diff(offs)
    width = int(lens.max())
    if (lens == width).all():  # one length (the usual case): the bytes are an n x width matrix
        mat = data[offs[0] : offs[0] + len(a) * width].reshape(len(a), width)
    else:
        mat = data[np.minimum(offs[:-1, None] + np.arange(width), len(data) - 1)]
    rows = np.arange(len(a))

    def dig(col: int) -> np.ndarray:
        return mat[:, col].astype(np.int64) - 48

    def dig_end(back: int) -> np.ndarray:  # the digit ``back`` bytes before each string's end
        return mat[rows, lens - back].astype(np.int64) - 48

    def num(col: int, n: int) -> np.ndarray:
        out = dig(col)
        for i in range(1, n):
            out = out * 10 + dig(col + i)
        return out

    y, mo, d, h, mi, se = num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    if (y < 1).any() or (d > _DAYS_IN_MONTH[mo] + ((mo == 2) & leap)).any():
        return None
    zulu = dig_end(1) == ord("Z") - 48
    frac_len = lens - np.where(zulu, 1, 6) - 20  # -1 when there is no fraction
    frac = np.zeros(len(a), dtype=np.int64)
    for j in range(min(9, width - 21)):
        frac = frac * 10 + np.where(frac_len > j, dig(20 + j), 0)
    frac *= 10 ** (9 - min(9, max(width - 21, 0)))
    sign = np.where(dig_end(6) == ord("-") - 48, -1, 1)
    hours = dig_end(5) * 10 + dig_end(4)
    offset = np.where(zulu, 0, sign * (hours * 3600 + (dig_end(2) * 10 + dig_end(1)) * 60))
    # days from civil (H. Hinnant); y >= 1 so every intermediate is non-negative
    y2 = y - (mo <= 2)
    era = y2 // 400
    yoe = y2 - era * 400
    doy = (153 * ((mo + 9) % 12) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + h * 3600 + mi * 60 + se - offset, frac
