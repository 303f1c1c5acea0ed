"""A decoded part straight to an Arrow table of plain Parquet types (for ``query_to_parquet``).

`part_table(part)` equals ``frame_to_arrow(frame_from_parts([part]))`` (the DataFrame path that
`velonb.cache_sink` defines) without building the DataFrame: columns that are one Arrow array
are typed in Arrow (the same rules as `velonb.frames`), and only the others (exact Python
values: dicts, lists, mixed types) go through pandas. Strings stay ``string`` from the parser
to the file, where the DataFrame path widens them to ``large_string`` and back.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from velonb._frames_arrow import FloatInts
from velonb._frames_time import timestamps_epoch
from velonb._frames_types import _NAT, series_from_values
from velonb.frames import DecodedPart

__all__ = ["part_table"]



def part_table(part: DecodedPart) -> pa.Table:
    """The part's columns (its ``Columns`` first, then first-seen keys) as a table."""
    from velonb.cache_sink import series_to_arrow

    names = list(dict.fromkeys([*part.columns, *part.names]))
    arrays = []
    for name in names:
        seg = part.segments.get(name)
        if seg is None:
            arrays.append(pa.nulls(part.nrows))
            continue
        array = None if isinstance(seg, list) else _plain(
            seg.array if isinstance(seg, FloatInts) else seg)
        if array is None:
            values: list[Any] = seg if isinstance(seg, list) else seg.to_pylist()
            array = series_to_arrow(series_from_values(values))
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=names)


def _plain(arr: pa.Array) -> pa.Array | None:
    """A column that is one Arrow array, typed as `velonb.frames` types it; None: use Python."""
    if arr.null_count == len(arr):
        return pa.nulls(len(arr))
    typ = arr.type
    if typ in (pa.int64(), pa.bool_()):
        return arr
    if typ == pa.float64():
        return pc.fill_null(arr, float("nan")) if arr.null_count else arr
    if typ in (pa.string(), pa.large_string()):
        parsed = timestamps_epoch(pa.chunked_array([arr]))
        if parsed is None:
            return arr.cast(pa.string()) if typ == pa.large_string() else arr
        epoch, unit = parsed
        return pa.array(epoch, type=pa.int64(), mask=epoch == _NAT).cast(
            pa.timestamp(unit, tz="UTC"))
    return None
