"""DataFrame <-> Arrow table for the Parquet cache: exact round trips, no pickle.

Every column is stored as a plain Parquet type any reader understands, and described by a small
*spec* (kept in the sidecar) that says how to rebuild the exact pandas column:

==========  ==============================  =================================================
codec       Parquet column                  pandas column rebuilt
==========  ==============================  =================================================
int64       int64                           int64 (numpy)
uint64      uint64                          uint64 (numpy)
float64     double (NaN kept)               float64
bool        boolean                         bool (numpy)
Int64 ...   int64 / uint64 / bool + nulls   Int64 / UInt64 / boolean (pandas nullable)
str         string                          the pandas default string dtype
datetime    timestamp[ns|us, UTC]           datetime64[ns|us, UTC]
null        null                            object column of None
struct      struct of typed children        object of dicts: every value has the same keys in
                                            the same order and each key one kind of value
                                            (str, int64, uint64, finite float, bool, None, or
                                            such a dict); repeated strings are dictionaries;
                                            rows with equal values get one shared `SharedDict`
                                            back, as from the live query (not ``to_pandas``:
                                            ints with nulls become floats)
json        string: JSON text per value     object: ``json.loads`` of each (exact: dicts,
                                            lists, big ints, int vs float, key order)
tagged      string: tagged JSON per value   object of mixed Python values that JSON alone
                                            cannot type (Timestamps, NaN, tuples, numpy, ...)
==========  ==============================  =================================================

Decoding converts the columns Arrow types exactly with one ``Table.to_pandas()`` call and
decodes the others (nullable ints, structs, JSON) column by column.
JSON text is parsed with ``orjson`` when it is installed (an optional speed-up, not a
dependency) unless the column holds integers of 19+ digits, which orjson would turn into floats;
otherwise, and whenever orjson refuses a text, with the standard library.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import json
import math
import os
import re
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from velonb._frames_dicts import DICT_TYPES, distinct_objects, flat_struct_pylist
from velonb._frames_types import STR_DTYPE, datetime_series, masked_series, object_series
from velonb.errors import CacheError

try:  # optional speed-up, imported by name so type checking does not depend on its presence
    _orjson: Any = importlib.import_module("orjson")
except ImportError:
    _orjson = None

__all__ = ["decode_frame", "encode_frame"]

_NAT = np.iinfo(np.int64).min
_PLAIN = {"int64": pa.int64(), "uint64": pa.uint64(), "float64": pa.float64(), "bool": pa.bool_()}
_NULLABLE = {"Int64": pa.int64(), "UInt64": pa.uint64(), "boolean": pa.bool_()}
#: codecs whose column ``Table.to_pandas()`` gives exactly (checked against the stored dtype)
_DIRECT = frozenset({*_PLAIN, "str", "datetime", "null"})
#: a run of digits orjson may not parse exactly (beyond 64 bits); strings may match: harmless
_WIDE_INT = re.compile(r"[0-9]{19,}")
_NONE = type(None)


# --- JSON values ---------------------------------------------------------------------------------


def _is_json(value: Any) -> bool:
    """True when ``json.loads(json.dumps(value))`` gives back exactly ``value`` (same types)."""
    kind = type(value)
    if kind in (str, int, bool) or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(_is_json(v) for v in value)
    if kind in DICT_TYPES:
        return all(type(k) is str and _is_json(v) for k, v in value.items())
    return False


# one encoder each (json.dumps with options builds a new encoder per call: ~2x slower)
_JSON_TEXT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_JSON_ASCII = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def _dumps(value: Any) -> str:
    text = _JSON_TEXT.encode(value)
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them (json.loads restores them)
        text = _JSON_ASCII.encode(value)
    return text


def _tag(value: Any) -> Any:
    """A JSON-able form of ``value`` from which `_untag` rebuilds it exactly."""
    kind = type(value)
    if value is None or kind in (str, int, bool):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$": "float", "v": repr(value)}
    if kind is list:
        return [_tag(v) for v in value]
    if kind is tuple:
        return {"$": "tuple", "v": [_tag(v) for v in value]}
    if kind in DICT_TYPES:
        if all(type(k) is str and not k.startswith("$") for k in value):
            return {k: _tag(v) for k, v in value.items()}
        return {"$": "dict", "v": [[_tag(k), _tag(v)] for k, v in value.items()]}
    if value is pd.NaT:
        return {"$": "nat"}
    if value is pd.NA:
        return {"$": "na"}
    if isinstance(value, pd.Timestamp):
        return {"$": "ts", "v": value.isoformat(), "unit": value.unit,
                "tz": None if value.tz is None else str(value.tz)}
    if isinstance(value, dt.datetime):
        return {"$": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$": "date", "v": value.isoformat()}
    if isinstance(value, np.generic):
        return {"$": "np", "dtype": value.dtype.str, "v": _tag(value.item())}
    if isinstance(value, bytes):
        return {"$": "bytes", "v": base64.b64encode(value).decode()}
    raise CacheError(f"cannot store a value of type {kind.__name__} in the cache",
                     hint="only values made of JSON types, timestamps and numpy scalars are cached")


def _untag(value: Any) -> Any:
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get("$")
    if tag is None:
        return {k: _untag(v) for k, v in value.items()}
    if tag == "float":
        return float(value["v"])
    if tag == "tuple":
        return tuple(_untag(v) for v in value["v"])
    if tag == "dict":
        return {_untag(k): _untag(v) for k, v in value["v"]}
    if tag == "nat":
        return pd.NaT
    if tag == "na":
        return pd.NA
    if tag == "ts":
        stamp = pd.Timestamp(value["v"]).as_unit(value["unit"])
        return stamp if value["tz"] is None else stamp.tz_convert(value["tz"])
    if tag == "datetime":
        return dt.datetime.fromisoformat(value["v"])
    if tag == "date":
        return dt.date.fromisoformat(value["v"])
    if tag == "np":
        return np.dtype(value["dtype"]).type(_untag(value["v"]))
    if tag == "bytes":
        return base64.b64decode(value["v"])
    raise CacheError(f"unknown tag {tag!r} in a cached column", hint="clear the cache entry")


# --- dict columns as Arrow structs ---------------------------------------------------------------


def _child_array(values: list[Any], *, dictionary: bool = False) -> pa.Array | None:
    """The Arrow array of one struct field's values (None: not exactly representable);
    ``dictionary``: strings as a dictionary array even when they do not repeat here."""
    kinds = set(map(type, values))
    kinds.discard(_NONE)
    if not kinds:
        return pa.nulls(len(values))
    if len(kinds) > 1:
        return None
    kind = kinds.pop()
    try:
        if kind is str:
            # repeated strings (hashes, user names) are stored and read back as a dictionary:
            # smaller in memory when read, and decoded to one shared str per distinct value
            distinct = {v: None for v in values if v is not None}
            if not dictionary and (len(values) < 2 or 2 * len(distinct) > len(values)):
                return pa.array(values, type=pa.large_string())
            number: dict[str | None, int | None] = {v: i for i, v in enumerate(distinct)}
            number[None] = None
            return pa.DictionaryArray.from_arrays(
                pa.array(list(map(number.__getitem__, values)), type=pa.int32()),
                pa.array(list(distinct), type=pa.large_string()))
        if kind is bool:
            return pa.array(values, type=pa.bool_())
        if kind is int:
            try:
                return pa.array(values, type=pa.int64())
            except (OverflowError, pa.ArrowException):
                return pa.array(values, type=pa.uint64())
        if kind is float:
            array = pa.array(values, type=pa.float64())
            finite = np.isfinite(array.to_numpy(zero_copy_only=False))
            return array if bool(finite[~np.asarray(array.is_null())].all()) else None
        if kind in DICT_TYPES:
            return _struct_array(values)
    except (OverflowError, UnicodeError, ValueError, TypeError, pa.ArrowException):
        return None
    return None


#: from this many rows on, a dict column whose rows share dict objects is encoded per object
_SHARED_MIN_ROWS = 64


def _struct_array(values: Sequence[Any], *, dictionary: bool = False) -> pa.StructArray | None:
    """Dicts (or None) that all have the same non-empty str keys in the same order, each key
    one kind of value: an Arrow struct array that ``to_pylist``/``to_pandas`` gives back."""
    kinds = set(map(type, values))
    if not kinds - {_NONE} or not kinds - {_NONE} <= DICT_TYPES:
        return None
    if len(values) >= _SHARED_MIN_ROWS:
        # rows sharing one dict (a decoded hunt's SharedDicts): encode each object once and
        # spread it; its strings repeat across the rows, so they are dictionaries as below
        codes, first = distinct_objects(values)
        if 2 * len(first) <= len(values):
            distinct = _struct_array([values[i] for i in first.tolist()], dictionary=True)
            return None if distinct is None else distinct.take(pa.array(codes))
    # (not ``in``/``count``: pd.NA == None raises)
    nulls = [i for i, v in enumerate(values) if v is None] if _NONE in kinds else []
    present = [v for v in values if v is not None] if nulls else values
    shapes = set(map(tuple, present))  # each dict's keys, in order
    if len(shapes) != 1:
        return None
    keys = shapes.pop()
    if not keys or not all(type(k) is str for k in keys):
        return None
    try:
        for k in keys:
            k.encode("utf-8")
    except UnicodeEncodeError:
        return None
    children = []
    for key in keys:
        child = _child_array(list(map(itemgetter(key), present)), dictionary=dictionary)
        if child is None:
            return None
        children.append(child)
    if not nulls:
        return pa.StructArray.from_arrays(children, names=list(keys))
    # spread the present rows' values over all rows; a null row's children are never read
    mask = np.zeros(len(values), dtype=bool)
    mask[nulls] = True
    where = np.cumsum(~mask) - 1
    where[mask] = 0
    index = pa.array(where)
    return pa.StructArray.from_arrays([c.take(index) for c in children], names=list(keys),
                                      mask=pa.array(mask))


# --- JSON text columns ---------------------------------------------------------------------------


def _json_column(values: list[Any], texts: list[str | None],
                 codec: str) -> tuple[pa.Array, dict[str, Any]]:
    wide = any(_WIDE_INT.search(t) is not None for t in texts if t is not None)
    spec: dict[str, Any] = {"codec": codec, "wide_ints": wide}
    mask = np.array([v is None for v in values], dtype=bool)
    return pa.array(texts, type=pa.large_string(), mask=mask), spec


def _loads_column(col: pa.ChunkedArray, exact_ints_only: bool) -> list[Any]:
    """The values of a column of JSON texts (a Parquet null is None), in one parse."""
    texts = pc.fill_null(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0), "null")
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(texts)], type=pa.int64()),
                                          texts.cast(pa.large_string()))
    joined = pc.binary_join(whole, pa.scalar(",", pa.large_string()))[0].as_buffer()
    data = b"[" + (joined.to_pybytes() if joined is not None else b"") + b"]"
    if _orjson is not None and not exact_ints_only:
        try:
            values: list[Any] = _orjson.loads(data)
        except _orjson.JSONDecodeError:
            pass
        else:
            return values
    loaded: list[Any] = json.loads(data)
    return loaded


# --- columns -------------------------------------------------------------------------------------


def _encode_column(series: pd.Series) -> tuple[pa.Array, dict[str, Any]]:
    dtype = series.dtype
    name = str(dtype)
    if name in _PLAIN:
        return pa.array(series.to_numpy(), type=_PLAIN[name]), {"codec": name}
    if name in _NULLABLE:
        values = series.array
        mask = np.asarray(values.isna())
        filled = np.asarray(values.to_numpy(dtype=_NULLABLE[name].to_pandas_dtype(),
                                            na_value=0 if name != "boolean" else False))
        return pa.array(filled, type=_NULLABLE[name], mask=mask), {"codec": name}
    if dtype == STR_DTYPE and name != "object":
        return pa.array(series, type=pa.large_string(), from_pandas=True), {"codec": "str"}
    if isinstance(dtype, pd.DatetimeTZDtype) and str(dtype.tz) == "UTC":
        unit = dtype.unit
        epoch = series.dt.tz_localize(None).to_numpy().view("i8")
        mask = epoch == _NAT
        return (pa.array(epoch, type=pa.int64(), mask=mask).cast(pa.timestamp(unit, tz="UTC")),
                {"codec": "datetime", "unit": unit})
    if name == "object":
        values = series.tolist()
        if all(v is None for v in values):
            return pa.nulls(len(values)), {"codec": "null"}
        struct = _struct_array(values)
        if struct is not None:
            return struct, {"codec": "struct"}
        if all(_is_json(v) for v in values):
            return _json_column(values, [None if v is None else _dumps(v) for v in values],
                                "json")
        return _json_column(values, [None if v is None else _dumps(_tag(v)) for v in values],
                            "tagged")
    raise CacheError(f"column {series.name!r} has dtype {dtype}, which the cache cannot store",
                     hint="results of velonb queries can always be cached; convert the column")


def _decode_column(col: pa.ChunkedArray, spec: dict[str, Any], nrows: int) -> pd.Series:
    codec = spec["codec"]
    if codec in _PLAIN:
        return pd.Series(col.to_numpy())
    if codec in _NULLABLE:
        mask = col.is_null().to_numpy() if col.null_count else None
        filled = pc.fill_null(col, False if codec == "boolean" else 0).to_numpy()
        return masked_series(filled, mask)
    if codec == "str":
        series = col.to_pandas()
        return series if series.dtype == STR_DTYPE else series.astype(STR_DTYPE)
    if codec == "datetime":
        epoch = pc.fill_null(col.cast(pa.int64()), _NAT).to_numpy()
        return datetime_series(np.asarray(epoch, dtype=np.int64), spec["unit"])
    if codec == "null":
        return object_series([None] * nrows)
    if codec == "struct":
        values: list[Any] = []
        for chunk in col.chunks:
            dicts = flat_struct_pylist(chunk) if len(chunk) else []
            values.extend(chunk.to_pylist() if dicts is None else dicts)
        return object_series(values)
    if codec in ("json", "tagged"):
        # one parse of the whole column (a JSON null is None, as a Parquet null is)
        values = _loads_column(col, bool(spec.get("wide_ints", True)))
        if codec == "tagged":
            values = [_untag(v) for v in values]
        return object_series(values)
    raise CacheError(f"unknown column codec {codec!r} in a cache entry",
                     hint="the entry was written by a newer velonb; clear it or upgrade")


# --- frames --------------------------------------------------------------------------------------


def encode_frame(frame: pd.DataFrame) -> tuple[pa.Table, list[dict[str, Any]]]:
    """The Arrow table to write as Parquet, and one spec per column (for the sidecar)."""
    names = list(frame.columns)
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise CacheError("only frames with unique string column names can be cached",
                         hint="rename the columns")
    arrays, specs = [], []
    for i, name in enumerate(names):
        array, spec = _encode_column(frame.iloc[:, i])
        arrays.append(array)
        specs.append({"name": name, "dtype": str(frame.dtypes.iloc[i]), **spec})
    return pa.Table.from_arrays(arrays, names=names), specs


def read_parquet(data: bytes) -> pa.Table:
    """The table of a cache file's bytes, allocated from jemalloc's pool where pyarrow has one.

    pyarrow's default pool (mimalloc) asks for transparent huge pages; where the kernel
    compacts memory to provide them on first touch (THP ``defrag=madvise``, the kernel's
    default), a 1M-row re-run took 0.25 s or 0.8 s at random, and 0.28-0.34 s with jemalloc.
    ``ParquetFile`` takes no pool, so the reader it wraps is opened with one; if that class
    ever changes, or ``ARROW_DEFAULT_MEMORY_POOL`` chose a pool, ``ParquetFile`` reads it.
    (Not ``read_table``: it imports ``pyarrow.dataset``, 0.2-0.9 s in a fresh kernel.)
    """
    import pyarrow.parquet as pq

    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        try:
            from pyarrow._parquet import ParquetReader

            reader = ParquetReader(memory_pool=pa.jemalloc_memory_pool())
            reader.open(pa.BufferReader(data))
            table: pa.Table = reader.read_all()
            return table
        except (ImportError, AttributeError, TypeError, NotImplementedError):
            pass  # (ArrowNotImplementedError: a pyarrow built without jemalloc)
    return pq.ParquetFile(pa.BufferReader(data)).read()


def decode_frame(table: pa.Table, specs: list[dict[str, Any]], nrows: int) -> pd.DataFrame:
    """The exact DataFrame `encode_frame` was given (RangeIndex, same columns and dtypes)."""
    if table.num_columns != len(specs) or table.num_rows != (nrows if specs else 0):
        raise CacheError("the cached Parquet file does not match its sidecar",
                         hint="clear the cache entry")
    if not specs:
        return pd.DataFrame(index=pd.RangeIndex(nrows))
    # one multi-threaded to_pandas of the columns Arrow types exactly, as a plain Parquet reader
    # would do (any whose dtype still differs is rebuilt); the others are decoded one by one
    direct = [i for i, spec in enumerate(specs) if spec["codec"] in _DIRECT]
    frame = table.select(direct).to_pandas()
    frame.columns = pd.Index([specs[i]["name"] for i in direct])
    for j, i in enumerate(direct):
        if str(frame.dtypes.iloc[j]) != specs[i]["dtype"]:
            frame.isetitem(j, _decode_column(table.column(i), specs[i], nrows))
    for i, spec in enumerate(specs):
        if spec["codec"] not in _DIRECT:
            frame.insert(i, spec["name"], _decode_column(table.column(i), spec, nrows))
    return frame
