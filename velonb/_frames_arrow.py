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
from collections.abc import Iterator
from functools import lru_cache
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from velonb._frames_dicts import row_dicts, row_dicts_where, shared_pylist
from velonb._frames_types import FLOAT_EXACT


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
    """The memory pool the JSON parser allocates from: the system allocator (glibc malloc).

    Each part's parse allocates and frees several buffers of about the part's size, on two
    threads. glibc reuses the freed buffers for the next part's parse: the 1M-row benchmark
    query peaks ~40 MB lower than with jemalloc, which keeps more freed pages, and much lower
    than with pyarrow's default (mimalloc), which returns them and faults them in again.
    A pool chosen with ``ARROW_DEFAULT_MEMORY_POOL`` is respected.
    """
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return pa.system_memory_pool()
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
            return row_dicts(tuple(fields), kids)
        return row_dicts_where(tuple(fields), kids, valid)  # ... in every non-null row
    if b"\\u" in tokens.raw or b"\\/" in tokens.raw:
        return None  # a key written escaped ("\u0041") has no token: null vs missing is unknown
    present = np.stack([k.is_valid().to_numpy(zero_copy_only=False) for k in kids], axis=1)
    expected = np.broadcast_to(np.arange(k, dtype=np.int32), present.shape)[present]
    if not np.array_equal(seq, expected):
        return None
    values = [shared_pylist(k) for k in kids]
    return [
        {f: v for f, v in zip(fields, t, strict=True) if v is not None} if ok else None
        for ok, t in zip(valid.tolist(), zip(*values, strict=True), strict=True)
    ]
