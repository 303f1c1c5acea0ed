"""RFC 3339 text columns to UTC epoch values, in Arrow and numpy (for `velonb.frames`).

A column becomes timestamps only when every value matches RFC 3339 exactly; Arrow's ISO 8601
cast converts it when every value fits nanoseconds, otherwise a vectorised parse of the text
gives microseconds (Go's zero time ``0001-01-01T00:00:00Z`` is common in Velociraptor rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from velonb._frames_types import _NAT, datetime_series, parse_rfc3339

_RE2_RFC3339 = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


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
