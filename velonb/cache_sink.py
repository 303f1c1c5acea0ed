"""Results bigger than memory: stream decoded parts into plain Parquet (``query_to_parquet``).

Memory stays bounded by the row-group buffer, whatever the result's size. Column types come
from velonb's decoder per part; when a later part brings a new column or a conflicting type the
schema is widened (new columns: null before; int+float: double; timestamp+text or other
conflicts: string) and the files written so far are rewritten batch by batch, so every file of
the output shares one schema. dicts, lists and mixed values are stored as JSON text, strings as
they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from velonb._frames_dicts import DICT_TYPES
from velonb.errors import CacheError

if TYPE_CHECKING:
    import pandas as pd

    from velonb.query import LogLine, QueryResult

__all__ = ["ParquetSink", "ParquetSummary"]

ROW_GROUP = 65_536
MAX_OPEN_FILES = 64
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


@dataclass
class ParquetSummary:
    """What ``query_to_parquet`` wrote."""

    path: Path
    rows: int
    files: list[Path]
    schema: pa.Schema
    bytes: int
    elapsed: float
    parts: int
    rewrites: int
    truncated: bool = False
    logs: list[LogLine] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"<ParquetSummary {self.rows:,} rows x {len(self.schema)} columns in "
                f"{len(self.files)} file(s), {self.bytes / 1e6:.1f} MB, {self.elapsed:.1f}s: "
                f"{self.path}>")


def _object_text(values: list[Any]) -> pa.Array:
    """Object values as text: strings as they are, everything else as JSON.

    Dicts of strings repeat (the hashes of one executable in every row): each distinct one,
    items in order, is encoded once. Only all-str dicts are remembered, so a dict can only
    match one whose values are the same strings (``1 == 1.0 == True`` never equals a str).
    """
    from velonb.cache_codec import _dumps, _is_json, _tag

    texts: dict[tuple[tuple[Any, Any], ...], str] = {}
    out: list[str | None] = []
    append = out.append
    for v in values:
        if v is None or type(v) is str:
            append(v)
            continue
        if type(v) in DICT_TYPES:
            try:
                key = tuple(v.items())
                text = texts.get(key)
            except TypeError:  # unhashable values: lists, dicts
                key, text = None, None
            if text is not None:
                append(text)
                continue
            if key is not None and all(type(k) is str and type(x) is str for k, x in key):
                texts[key] = text = _dumps(v)
                append(text)
                continue
        append(_dumps(v if _is_json(v) else _tag(v)))
    return pa.array(out, type=pa.string())


def series_to_arrow(series: pd.Series) -> pa.Array:
    """One decoded column as an Arrow array of a plain Parquet type."""
    from velonb.cache_codec import _encode_column

    if series.dtype == object:
        values = series.tolist()
        return pa.nulls(len(values)) if all(v is None for v in values) else _object_text(values)
    array, _ = _encode_column(series)
    return array.cast(pa.string()) if pa.types.is_large_string(array.type) else array


def frame_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """A decoded part as an Arrow table of plain Parquet types."""
    arrays = [series_to_arrow(frame.iloc[:, i]) for i in range(frame.shape[1])]
    return pa.Table.from_arrays(arrays, names=[str(name) for name in frame.columns])


def _unify(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if a == b or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(a) for f in numeric) and any(f(b) for f in numeric):
        return pa.float64()
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b):
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def _convert(col: pa.ChunkedArray | pa.Array, to: pa.DataType) -> Any:
    if col.type == to:
        return col
    if pa.types.is_string(to) and pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
    return col.cast(to, safe=False)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns (missing ones null), types converted."""
    names = set(table.column_names)
    arrays = [_convert(table.column(f.name), f.type) if f.name in names
              else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


class _Partition:
    """The files of one output directory (one hive partition, or the single-file output)."""

    def __init__(self, directory: Path, fixed_name: str | None) -> None:
        self.directory = directory
        self.fixed_name = fixed_name
        self.closed: list[Path] = []
        self.writer: pq.ParquetWriter | None = None
        self.path: Path | None = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.counter = 0

    def _new_path(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = self.fixed_name if self.fixed_name else f"part-{self.counter}.parquet"
        if self.fixed_name:
            name = f".{self.fixed_name}.{self.counter}.tmp"
        self.counter += 1
        return self.directory / name

    def flush(self, schema: pa.Schema) -> None:
        if not self.buffer:
            return
        if self.writer is None:
            self.path = self._new_path()
            self.writer = pq.ParquetWriter(self.path, schema, compression="zstd")
        self.writer.write_table(pa.concat_tables(self.buffer), row_group_size=ROW_GROUP)
        self.buffer, self.buffered = [], 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            assert self.path is not None
            self.closed.append(self.path)
            self.writer, self.path = None, None

    def widen(self, schema: pa.Schema) -> None:
        """Rewrite every file of this partition (and the buffer) to ``schema``."""
        self.buffer = [conform(t, schema) for t in self.buffer]
        reopen = self.writer is not None and self.fixed_name is not None
        self.close()
        for old in list(self.closed):
            new = self._new_path() if reopen else old.with_name(old.name + ".rewrite")
            writer = pq.ParquetWriter(new, schema, compression="zstd")
            for batch in pq.ParquetFile(old).iter_batches(batch_size=ROW_GROUP):
                writer.write_table(conform(pa.Table.from_batches([batch]), schema))
            if reopen:  # the single-file output keeps writing into the new file
                old.unlink()
                self.closed.remove(old)
                self.writer, self.path = writer, new
            else:
                writer.close()
                os.replace(new, old)


class ParquetSink:
    """Writes DataFrames (decoded parts) to one Parquet file or a hive-partitioned dataset."""

    def __init__(self, path: str | os.PathLike[str], *, partition_by: str | list[str] | None,
                 overwrite: bool = False) -> None:
        self.path = Path(path).expanduser().absolute()
        self.partition_by = [partition_by] if isinstance(partition_by, str) else (
            list(partition_by) if partition_by else [])
        if self.path.exists() and not overwrite:
            raise CacheError(f"{self.path} already exists",
                             hint="pass overwrite=True or a new path")
        self.schema = pa.schema([])
        self.partitions: dict[tuple[str, ...], _Partition] = {}
        self.rows = self.parts = self.rewrites = 0
        self.started = time.monotonic()
        self.tmp: Path | None = None
        self._overwrite = overwrite

    def __enter__(self) -> ParquetSink:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.tmp-"))
        return self

    def __exit__(self, kind: Any, *exc: Any) -> None:
        assert self.tmp is not None
        try:
            if kind is None:
                self._commit()
        finally:
            for part in self.partitions.values():
                with contextlib.suppress(Exception):
                    part.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- writing ---------------------------------------------------------------------------------

    def _partition(self, key: tuple[str, ...]) -> _Partition:
        part = self.partitions.get(key)
        if part is None:
            assert self.tmp is not None
            if self.partition_by:
                directory = self.tmp.joinpath(*(f"{quote(c, safe='')}={quote(v, safe='')}"
                                                for c, v in zip(self.partition_by, key,
                                                                strict=True)))
                part = _Partition(directory, None)
            else:
                part = _Partition(self.tmp, "data.parquet")
            self.partitions[key] = part
            open_ = [p for p in self.partitions.values() if p.writer is not None]
            if len(open_) >= MAX_OPEN_FILES:
                open_[0].flush(self.schema)
                open_[0].close()
        return part

    def _split(self, table: pa.Table) -> list[tuple[tuple[str, ...], pa.Table]]:
        if not self.partition_by:
            return [((), table)]
        keys = []
        for name in self.partition_by:
            if name in table.column_names:
                col = table.column(name)
                if pa.types.is_timestamp(col.type):
                    col = _convert(col, pa.string())
                values = [NULL_PARTITION if v is None else
                          json.dumps(v) if isinstance(v, float) and not v.is_integer() else
                          str(v).lower() if isinstance(v, bool) else str(v)
                          for v in col.to_pylist()]
            else:
                values = [NULL_PARTITION] * table.num_rows
            keys.append(values)
        joined = np.array(["\x00".join(k) for k in zip(*keys, strict=True)], dtype=object)
        uniques, inverse = np.unique(joined, return_inverse=True)
        data = table.drop_columns([n for n in self.partition_by if n in table.column_names])
        return [(tuple(str(u).split("\x00")), data.take(np.flatnonzero(inverse == i)))
                for i, u in enumerate(uniques)]

    def write(self, frame: pd.DataFrame) -> None:
        """Append one decoded part."""
        self.write_table(frame_to_arrow(frame))

    def write_table(self, table: pa.Table) -> None:
        """Append one part already in plain Parquet types (`frame_to_arrow`, `part_table`)."""
        self.parts += 1
        self.rows += table.num_rows
        for key, piece in self._split(table):
            widened = pa.schema([pa.field(f.name, _unify(f.type, piece.schema.field(f.name).type)
                                          if f.name in piece.column_names else f.type)
                                 for f in self.schema]
                                + [f for f in piece.schema if f.name not in self.schema.names])
            if widened != self.schema:
                self.rewrites += any(p.closed or p.writer or p.buffer
                                     for p in self.partitions.values())
                for part in self.partitions.values():
                    part.widen(widened)
                self.schema = widened
            part = self._partition(key)
            part.buffer.append(conform(piece, self.schema))
            part.buffered += piece.num_rows
            if part.buffered >= ROW_GROUP:
                part.flush(self.schema)
        if sum(p.buffered for p in self.partitions.values()) > 4 * ROW_GROUP:
            for part in self.partitions.values():
                part.flush(self.schema)

    def _commit(self) -> None:
        assert self.tmp is not None
        if not self.partition_by and not self.partitions:
            self._partition(())
        for part in self.partitions.values():
            if part.fixed_name and not part.buffer and part.writer is None and not part.closed:
                part.buffer.append(self.schema.empty_table())
            part.flush(self.schema)
            part.close()
        if self._overwrite and self.path.exists():
            if self.path.is_dir():
                shutil.rmtree(self.path)
            else:
                self.path.unlink()
        if self.partition_by:
            os.replace(self.tmp, self.path)
            self.tmp.mkdir()  # removed again by __exit__
        else:
            (only,) = self.partitions[()].closed
            os.replace(only, self.path)

    def summary(self, result: QueryResult) -> ParquetSummary:
        """The summary of the committed output."""
        files = sorted(self.path.rglob("*.parquet")) if self.path.is_dir() else [self.path]
        schema = self.schema
        for name in self.partition_by:
            schema = schema.append(pa.field(name, pa.string()))
        return ParquetSummary(self.path, self.rows, files, schema,
                              sum(f.stat().st_size for f in files),
                              time.monotonic() - self.started, self.parts, self.rewrites,
                              truncated=result.truncated, logs=list(result.logs))
