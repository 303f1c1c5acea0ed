"""Column typing for velonb.frames: the reference rules on Python values, and RFC 3339 parsing.

These functions define the semantics: a list of exact Python values (as ``json.loads`` returns
them, ``None`` for null or missing) becomes one typed pandas Series.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

#: The default string dtype of the installed pandas (pandas 3: ``str``; pandas 2: ``object``).
STR_DTYPE = pd.Series(["a"]).dtype

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
#: Ints with a magnitude up to this are exactly representable as float64.
FLOAT_EXACT = 2**53
#: The smallest and largest epoch nanoseconds a datetime64[ns] holds (-2**63 is NaT).
NS_MIN, NS_MAX = -(2**63) + 1, 2**63 - 1
_NAT = np.iinfo(np.int64).min

_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:Z|([+-])([0-9]{2}):([0-9]{2}))\Z"
)


def parse_rfc3339(text: str) -> tuple[int, int] | None:
    """``(epoch seconds, nanoseconds 0..999999999)`` of an RFC 3339 timestamp, else None.

    Accepted: ``YYYY-MM-DDTHH:MM:SS[.1-9 digits](Z|+HH:MM|-HH:MM)``, upper-case ``T``/``Z``,
    a real calendar date with year >= 1, hour < 24, minute and second < 60, offset < 24:00.
    """
    m = _RFC3339.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    if not (h < 24 and mi < 60 and se < 60):
        return None
    try:
        days = date(y, mo, d).toordinal() - 719163  # date(1970, 1, 1).toordinal()
    except ValueError:
        return None
    offset = 0
    if m.group(8):
        oh, om = int(m.group(9)), int(m.group(10))
        if not (oh < 24 and om < 60):
            return None
        offset = (oh * 3600 + om * 60) * (1 if m.group(8) == "+" else -1)
    nanos = int((m.group(7) or "").ljust(9, "0"))
    return days * 86400 + h * 3600 + mi * 60 + se - offset, nanos


def datetime_series(epoch: np.ndarray, unit: str) -> pd.Series:
    """A tz-aware UTC Series from int64 epoch values in ``unit`` (``_NAT`` marks nulls)."""
    values = epoch.astype(np.int64, copy=False).view(f"M8[{unit}]")
    return pd.Series(values, copy=False).dt.tz_localize("UTC")


def _timestamps_from_strings(values: Sequence[Any]) -> pd.Series | None:
    """The datetime Series of a str/None column if every string is RFC 3339, else None."""
    parsed: list[tuple[int, int] | None] = []
    for v in values:
        if v is None:
            parsed.append(None)
            continue
        p = parse_rfc3339(v)
        if p is None:
            return None
        parsed.append(p)
    ns = [None if p is None else p[0] * 10**9 + p[1] for p in parsed]
    if all(v is None or NS_MIN <= v <= NS_MAX for v in ns):
        return datetime_series(np.array([_NAT if v is None else v for v in ns]), "ns")
    us = [_NAT if p is None else p[0] * 10**6 + p[1] // 1000 for p in parsed]
    return datetime_series(np.array(us, dtype=np.int64), "us")


def object_series(values: Sequence[Any]) -> pd.Series:
    """An object Series holding exactly these Python values (lists stay lists)."""
    return pd.Series(np.fromiter(values, dtype=object, count=len(values)), dtype=object,
                     copy=False)


def masked_series(filled: np.ndarray, mask: np.ndarray | None) -> pd.Series:
    """A numpy-backed Series, or the pandas nullable dtype (Int64/UInt64/boolean) with nulls."""
    if mask is None or not mask.any():
        return pd.Series(filled, copy=False)  # pandas 3 would copy the array by default
    if filled.dtype == np.bool_:
        return pd.Series(pd.arrays.BooleanArray(filled, mask))
    return pd.Series(pd.arrays.IntegerArray(filled, mask))


def _masked(values: Sequence[Any], np_dtype: Any) -> pd.Series:
    mask = np.array([v is None for v in values], dtype=bool)
    filled = np.array([0 if v is None else v for v in values], dtype=np_dtype)
    return masked_series(filled, mask)


def series_from_values(values: Sequence[Any]) -> pd.Series:
    """Type one column of exact Python values by the velonb rules (see velonb.frames)."""
    kinds = {type(v) for v in values}
    kinds.discard(type(None))
    if not kinds:
        return object_series(values)
    if kinds == {bool}:
        return _masked(values, np.bool_)
    if kinds == {int}:
        lo = min(v for v in values if v is not None)
        hi = max(v for v in values if v is not None)
        if lo >= INT64_MIN and hi <= INT64_MAX:
            return _masked(values, np.int64)
        if lo >= 0 and hi <= UINT64_MAX:
            return _masked(values, np.uint64)
        return object_series(values)
    if kinds <= {int, float}:
        if all(type(v) is not int or -FLOAT_EXACT <= v <= FLOAT_EXACT for v in values):
            return pd.Series(np.array([np.nan if v is None else v for v in values], np.float64))
        return object_series(values)
    if kinds == {str}:
        ts = _timestamps_from_strings(values)
        if ts is not None:
            return ts
        try:
            return pd.Series(list(values), dtype=STR_DTYPE)
        except (UnicodeEncodeError, ValueError, TypeError):  # e.g. lone surrogates
            return object_series(values)
    return object_series(values)
