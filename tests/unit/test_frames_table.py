"""part_table (query_to_parquet's direct path) equals the DataFrame path, frame_to_arrow."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from tests.unit.test_frames import part, rows_st, typed_rows
from velonb._frames_table import part_table
from velonb.cache_sink import _object_text, frame_to_arrow
from velonb.frames import decode_part, frame_from_parts


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def check(rows: list[dict[str, Any]]) -> pa.Table:
    """Both paths on one part (strings widened or not): same schema, same values."""
    response, columns = part(rows)
    expected = frame_to_arrow(frame_from_parts([(response, columns)]))
    for widen in (False, True):
        got = part_table(decode_part(response, columns, 0, widen=widen))
        assert got.schema == expected.schema, (got.schema, expected.schema)
        for name in expected.column_names:
            want, have = expected.column(name).to_pylist(), got.column(name).to_pylist()
            assert all(_same(x, y) for x, y in zip(want, have, strict=True)), name
    return got


def test_plain_types_stay_in_arrow():
    table = check([
        {"i": 1, "f": 0.5, "s": "a", "b": True, "t": "2024-03-01T10:20:30Z", "n": None},
        {"i": None, "f": None, "s": None, "b": None, "t": None, "n": None, "x": 3},
    ])
    assert table.schema.field("s").type == pa.string()
    assert table.schema.field("t").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("n").type == pa.null()
    assert table.column("f").to_pylist()[1] != table.column("f").to_pylist()[1]  # NaN, as pandas


def test_dicts_lists_and_mixed_values_are_json_text():
    table = check([
        {"h": {"MD5": "a", "SHA1": "b"}, "l": [1, 2], "m": 1, "big": 2**64},
        {"h": {"MD5": "a", "SHA1": "b"}, "l": [], "m": "x", "big": -1},
        {"h": {"SHA1": "b", "MD5": "a"}, "l": None, "m": 2.5, "big": None},
    ])
    assert table.column("h").to_pylist() == [
        '{"MD5":"a","SHA1":"b"}', '{"MD5":"a","SHA1":"b"}', '{"SHA1":"b","MD5":"a"}']


def test_zero_time_is_microseconds():
    table = check([{"t": "0001-01-01T00:00:00Z"}, {"t": "2024-03-01T10:20:30.123456789Z"}])
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")


def test_object_text_reuses_equal_dicts_exactly():
    """Equal str-valued dicts share one text; values equal but of other types never do."""
    values = [{"a": "1"}, {"a": "1"}, {"a": 1}, {"a": True}, {"a": 1.0}, {"b": "1", "a": "1"},
              {"a": "1", "b": "1"}, None, "text", [1], {"a": [1]}]
    assert _object_text(values).to_pylist() == [
        '{"a":"1"}', '{"a":"1"}', '{"a":1}', '{"a":true}', '{"a":1.0}', '{"b":"1","a":"1"}',
        '{"a":"1","b":"1"}', None, "text", "[1]", '{"a":[1]}']


@pytest.mark.parametrize("rows", [[], [{}], [{"a": None}]])
def test_empty_and_null_parts(rows: list[dict[str, Any]]):
    check(rows)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows_st)
def test_property_equals_dataframe_path(rows: list[dict[str, Any]]):
    check(rows)


@settings(max_examples=150, deadline=None)
@given(typed_rows)
def test_property_typed_columns(rows: list[dict[str, Any]]):
    check(rows)


def test_repeated_string_dicts_keep_one_text_per_row():
    """Rows repeating a few hash combinations (dicts copied from templates, texts memoised)."""
    rows = [{"Hash": {"MD5": f"m{i % 3}", "SHA1": f"s{i % 3}"}, "n": i} for i in range(300)]
    table = check(rows)
    assert table.column("Hash").to_pylist() == [
        f'{{"MD5":"m{i % 3}","SHA1":"s{i % 3}"}}' for i in range(300)]
