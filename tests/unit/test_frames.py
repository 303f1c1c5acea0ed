"""velonb.frames: the fast FrameBuilder must equal reference_frame on any input."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velonb.errors import ResponseDecodeError
from velonb.frames import STR_DTYPE, FrameBuilder, frame_from_parts, reference_frame

Part = tuple[str | bytes, list[str]]


def go_json(rows: list[dict[str, Any]]) -> bytes:
    """Compact JSON the way Go's encoder writes it (<>& escaped, raw UTF-8)."""
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def part(rows: list[dict[str, Any]]) -> Part:
    return go_json(rows), list(rows[0]) if rows else []


def check(parts: list[Part]) -> pd.DataFrame:
    """Decode with both paths, assert they are equal, return the fast frame."""
    fast = frame_from_parts(parts)
    ref = reference_frame(parts)
    pd.testing.assert_frame_equal(fast, ref, check_exact=True)
    assert isinstance(fast.index, pd.RangeIndex)
    return fast


def test_columns_change_between_parts_and_rows():
    df = check(
        [
            part([{"a": 1, "b": "x"}, {"a": 2, "c": True}]),
            part([{"d": 1.5, "a": 3}, {"b": "y"}]),
        ]
    )
    assert list(df.columns) == ["a", "b", "c", "d"]
    assert df["a"].dtype == "Int64" and df["a"].tolist() == [1, 2, 3, pd.NA]
    assert str(df["c"].dtype) == "boolean"
    assert df["d"].isna().tolist() == [True, True, False, True]


def test_columns_argument_sets_order_first():
    df = check([(b'[{"b":1,"a":2}]', ["a", "b", "z"])])
    assert list(df.columns) == ["a", "b", "z"]
    assert df["z"].dtype == object and df["z"].tolist() == [None]


def test_empty_result():
    df = check([(b"[]", [])])
    assert df.shape == (0, 0)
    builder = FrameBuilder()
    assert builder.add_part("[]") == 0
    assert builder.rows == 0 and builder.columns == []
    assert builder.to_frame().shape == (0, 0)


def test_empty_part_between_parts():
    df = check([part([{"a": 1}]), (b"[]", []), part([{"a": 2}])])
    assert df["a"].dtype == np.int64 and df["a"].tolist() == [1, 2]


def test_plain_types():
    df = check(
        [
            part(
                [
                    {"i": 1, "f": 1.5, "b": True, "s": "x", "n": None},
                    {"i": -(2**63), "f": -0.25, "b": False, "s": "", "n": None},
                ]
            )
        ]
    )
    assert df["i"].dtype == np.int64 and df["i"].tolist() == [1, -(2**63)]
    assert df["f"].dtype == np.float64
    assert df["b"].dtype == np.bool_
    assert df["s"].dtype == STR_DTYPE
    assert df["n"].dtype == object and df["n"].tolist() == [None, None]


def test_string_dtype_is_pandas_default():
    assert pd.Series(["a"]).dtype == STR_DTYPE
    df = check([part([{"s": "a"}, {"s": None}])])
    assert df["s"].dtype == STR_DTYPE and df["s"].isna().tolist() == [False, True]


def test_uint64_and_big_ints():
    df = check([part([{"u": 1}, {"u": 2**64 - 1}]), part([{"u": None}])])
    assert df["u"].dtype == "UInt64" and df["u"].tolist()[:2] == [1, 2**64 - 1]
    df = check([part([{"u": 2**63}]), part([{"u": 5}])])
    assert df["u"].dtype == np.uint64 and df["u"].tolist() == [2**63, 5]
    df = check([part([{"m": -1}]), part([{"m": 2**64 - 1}])])
    assert df["m"].dtype == object and df["m"].tolist() == [-1, 2**64 - 1]
    df = check([part([{"h": 2**70}, {"h": 1}])])
    assert df["h"].dtype == object and df["h"].tolist() == [2**70, 1]
    assert type(df["h"][1]) is int


def test_int_float_mixing():
    df = check([part([{"x": 1}, {"x": 2.5}]), part([{"x": 2**53}])])
    assert df["x"].dtype == np.float64 and df["x"].tolist() == [1.0, 2.5, 2.0**53]
    df = check([part([{"x": 1.5}, {"x": 2}]), part([{"x": 2**53 + 1}])])
    assert df["x"].dtype == object
    assert [type(v) for v in df["x"]] == [float, int, int]  # exact values, not 2.0
    df = check([part([{"x": 1.0}, {"x": 3}, {"x": None}])])
    assert df["x"].dtype == np.float64 and np.isnan(df["x"][2])


def test_nested_dicts_keep_keys_and_order():
    rows = [
        {"h": {"MD5": "a", "SHA1": "b"}},
        {"h": {"SHA1": "c", "MD5": "d"}},  # other order
        {"h": {"MD5": "e"}},  # fewer keys
        {"h": {"MD5": None, "SHA1": "f"}},  # explicit null
        {"h": None},
        {},
    ]
    df = check([part(rows)])
    assert df["h"].tolist() == [r.get("h") for r in rows]
    assert [list(v) for v in df["h"][:4]] == [
        ["MD5", "SHA1"],
        ["SHA1", "MD5"],
        ["MD5"],
        ["MD5", "SHA1"],
    ]


def test_event_data_like_dicts_fast_path():
    rows = [{"EventData": {"A": i, "B": "x"} if i % 2 else {"C": i}} for i in range(50)]
    df = check([part(rows[:25]), part(rows[25:])])
    assert df["EventData"].tolist() == [r["EventData"] for r in rows]
    assert all("B" not in v for v in df["EventData"][::2])


def test_uniform_dicts_and_lists():
    rows = [{"h": {"MD5": f"{i:032x}", "n": i, "ok": True}, "l": [i, i + 1]} for i in range(100)]
    df = check([part(rows[:60]), part(rows[60:])])
    assert df["h"].tolist() == [r["h"] for r in rows]
    assert df["l"].tolist() == [r["l"] for r in rows]
    assert type(df["l"][0]) is list


def test_nested_values_stay_exact():
    rows = [
        {"d": {"x": 1, "y": [1, 2.5]}, "l": [1.0, 2]},
        {"d": {"x": 1.5, "y": []}, "l": [{"a": 1}, None, "s"]},
        {"d": {"deep": {"deeper": {"k": [1, {"z": None}]}}}, "l": [[1], []]},
    ]
    df = check([part(rows)])
    assert df["d"].tolist() == [r["d"] for r in rows]
    assert [type(v) for v in df["l"][0]] == [float, int]
    assert type(df["d"][0]["x"]) is int


def test_mixed_type_columns():
    df = check(
        [
            part([{"a": 1, "b": {"k": 1}, "c": True}, {"a": "x", "b": "s", "c": 1}]),
            part([{"a": 2.5, "b": [1], "c": "t"}]),
        ]
    )
    for col in "abc":
        assert df[col].dtype == object
    assert df["a"].tolist() == [1, "x", 2.5]
    assert df["c"].tolist() == [True, 1, "t"] and type(df["c"][1]) is int


def test_type_changes_between_parts():
    df = check([part([{"a": 1}]), part([{"a": "x"}])])
    assert df["a"].tolist() == [1, "x"]
    df = check([part([{"a": {"k": 1}}]), part([{"a": "x"}])])
    assert df["a"].tolist() == [{"k": 1}, "x"]


def test_unicode_and_escapes():
    rows = [{"s": "<a & b>", "u": "Ünïcödé 😀 \u2028", "q": 'say "hi"\\ \n\t'}]
    raw = go_json(rows)
    assert b"\\u003c" in raw
    df = check([(raw, ["s", "u", "q"])])
    assert df.iloc[0].tolist() == ["<a & b>", "Ünïcödé 😀 \u2028", 'say "hi"\\ \n\t']


def test_str_input_and_lone_surrogate():
    df = check([('[{"s":"é"}]', ["s"])])
    assert df["s"].tolist() == ["é"]
    df = check([(b'[{"s":"\\ud800"}]', ["s"])])  # json.loads accepts it; pandas str can't hold it
    assert df["s"].dtype == object and df["s"].tolist() == ["\ud800"]


def test_keys_needing_care():
    rows = [
        {'we"ird': {'a"b': 1, "c": 2}, "x": {"c": 3}},
        {'we"ird': {"c": 2, 'a"b': 1}, "x": {"c": 4}},
        {"": 1, "sp ace": {"a b": [1]}},
    ]
    df = check([part(rows)])
    assert df['we"ird'].tolist()[:2] == [rows[0]['we"ird'], rows[1]['we"ird']]


def test_key_text_inside_strings():
    rows = [
        {"h": {"MD5": "x", "SHA1": 'fake ,"MD5":"'}, "s": '{"MD5":1,"SHA1":2}'},
        {"h": {"SHA1": "y", "MD5": '"SHA1":'}, "s": '"MD5":'},
    ]
    df = check([part(rows)])
    assert df["h"].tolist() == [r["h"] for r in rows]


def test_timestamps():
    df = check(
        [
            part(
                [
                    {"t": "2024-03-01T10:20:30Z"},
                    {"t": "2024-03-01T10:20:30.123456789Z"},
                    {"t": "2024-03-01T12:20:30.5+02:00"},
                    {"t": None},
                ]
            )
        ]
    )
    assert str(df["t"].dtype) == "datetime64[ns, UTC]"
    assert df["t"][1].value == pd.Timestamp("2024-03-01T10:20:30Z").value + 123456789
    assert df["t"][2] == pd.Timestamp("2024-03-01T10:20:30.5Z")
    assert df["t"].isna().tolist() == [False, False, False, True]


def test_zero_time_falls_back_to_microseconds():
    df = check(
        [part([{"t": "0001-01-01T00:00:00Z"}]), part([{"t": "2024-03-01T10:20:30.1234567Z"}])]
    )
    assert str(df["t"].dtype) == "datetime64[us, UTC]"
    assert df["t"][1] == pd.Timestamp("2024-03-01T10:20:30.123456Z")
    assert df["t"][0] == pd.Timestamp("0001-01-01T00:00:00Z")


@pytest.mark.parametrize(
    "value",
    [
        "2024-03-01",
        "2024-03-01 10:20:30",
        "2024-03-01T10:20:30",
        "2024-02-30T10:20:30Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T10:20:60Z",
        "0000-01-01T00:00:00Z",
        "2024-03-01T10:20:30.1234567891Z",
        "2024-03-01t10:20:30z",
    ],
)
def test_not_rfc3339_stays_string(value: str):
    df = check([part([{"t": "2024-03-01T10:20:30Z"}, {"t": value}])])
    assert df["t"].dtype == STR_DTYPE
    df = check([part([{"t": value}])])
    assert df["t"].dtype == STR_DTYPE


def test_ns_range_edges():
    df = check(
        [part([{"t": "2262-04-11T23:47:16.854775807Z"}, {"t": "1677-09-21T00:12:43.145224193Z"}])]
    )
    assert str(df["t"].dtype) == "datetime64[ns, UTC]"
    df = check([part([{"t": "2262-04-11T23:47:16.854775808Z"}])])
    assert str(df["t"].dtype) == "datetime64[us, UTC]"
    df = check([part([{"t": "9999-12-31T23:59:59-23:59"}, {"t": "0001-01-01T00:00:00+23:59"}])])
    assert str(df["t"].dtype) == "datetime64[us, UTC]"


def test_all_null_column():
    df = check([part([{"a": None}, {"a": None}]), part([{"b": 1}])])
    assert df["a"].dtype == object and df["a"].tolist() == [None, None, None]


def test_single_row_over_4_mib():
    big = "x" * (5 << 20)
    df = check([part([{"a": 1, "big": big}]), part([{"a": 2, "big": "y"}])])
    assert len(df["big"][0]) == 5 << 20


@pytest.mark.parametrize(
    "bad",
    [b"", b"[", b"{", b'{"a":1}', b"[1,2]", b'[{"a":1},2]', b"[null]", b'[{"a":1}]x', b"\xff",
     b'[{"a":"caf\xe9"}]'],  # parts arrive as bytes: invalid UTF-8 is the decoder's to catch
)
def test_invalid_json_raises(bad: bytes):
    builder = FrameBuilder()
    builder.add_part(b'[{"a":1}]', ["a"])
    with pytest.raises(ResponseDecodeError, match="part 1"):
        builder.add_part(bad)
    with pytest.raises(ResponseDecodeError):
        reference_frame([(bad, [])])
    assert builder.to_frame()["a"].tolist() == [1]  # partial result still available


def test_builder_api():
    builder = FrameBuilder()
    assert builder.add_part(b'[{"a":1,"b":2},{"a":3}]', ["a", "b"]) == 2
    assert builder.add_part('[{"c":"x"}]', ["c"]) == 1
    assert builder.rows == 3 and builder.columns == ["a", "b", "c"]
    first = builder.to_frame()
    second = builder.to_frame()
    pd.testing.assert_frame_equal(first, second)
    first.loc[0, "a"] = 99
    assert builder.to_frame()["a"][0] == 1
    builder.add_part(b'[{"a":5}]')
    assert builder.to_frame()["a"].tolist() == [1, 3, pd.NA, 5]


def test_whitespace_and_newlines_fall_back():
    check([(b'[ {"a" : 1 ,\n "h": {"x": 1, "y": 2}} ,\r\n {"h": {"y": 3, "x": 4}} ]', ["a"])])


def test_many_parts_reuse_schema_hint():
    parts = [
        part([{"t": f"2024-03-01T10:20:{i % 60:02d}Z", "n": i, "f": i + 0.5, "h": {"k": str(i)}}])
        for i in range(20)
    ]
    parts.append(part([{"t": "x", "n": 1.5, "f": 2, "h": {"k": 1}}]))
    check(parts)


# --- property test --------------------------------------------------------------------------

KEYS = ["a", "b", "c", "MD5", "SHA1", "T", 'q"k', "é"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-5, max_value=5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.sampled_from(
        ["2024-03-01T10:20:30Z", "0001-01-01T00:00:00Z", "2024-03-01T10:20:30.5+02:00"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    ),
    max_leaves=6,
)
# per column, values drawn from a small per-column pool so columns are often (not always) typed
rows_st = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=5), max_size=8)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows_st, min_size=1, max_size=4))
def test_property_builder_equals_reference(parts_rows: list[list[dict[str, Any]]]):
    check([part(rows) for rows in parts_rows])


typed_rows = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "i": st.integers(-(2**63), 2**63 - 1) | st.none(),
            "f": st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers(-10, 10),
            "s": st.text(max_size=4),
            "t": st.sampled_from(["2024-03-01T10:20:30Z", "2024-03-01T10:20:30.123456789-05:30"]),
            "h": st.dictionaries(st.sampled_from(["MD5", "SHA1", "SHA256"]), st.text(max_size=3)),
            "l": st.lists(st.integers(-3, 3), max_size=3),
        },
    ),
    max_size=10,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(typed_rows, min_size=1, max_size=4))
def test_property_typed_columns(parts_rows: list[list[dict[str, Any]]]):
    check([part(rows) for rows in parts_rows])


def test_common_result_needs_no_python_rows(monkeypatch: pytest.MonkeyPatch):
    """A Pslist-like result (ints, strings, times, hash dicts, lists) stays on the Arrow path."""
    import velonb.frames as frames

    rows = [
        {
            "Pid": i,
            "Name": f"p{i}.exe",
            "Hash": {"MD5": f"{i:032x}", "SHA1": f"{i:040x}", "SHA256": None},
            "CreateTime": f"2024-03-01T10:20:{i % 60:02d}.5Z",
            "CPU": i / 4,  # whole values among floats
            "Args": ["-k", str(i)],
            "Elevated": i % 3 == 0,
            "Meta": {"a": i} if i % 2 else {"b": "x"},
        }
        for i in range(300)
    ]
    parts = [part(rows[:100]), part(rows[100:200]), part(rows[200:])]
    expected = reference_frame(parts)

    def no_python(*args: Any) -> Any:
        raise AssertionError("fell back to json.loads")

    monkeypatch.setattr(frames, "_json_rows", no_python)
    pd.testing.assert_frame_equal(frame_from_parts(parts), expected, check_exact=True)


def test_released_builder_frees_its_parts_and_takes_no_more():
    """A finished statement's builder drops its decoded parts once the frame is built (the
    QueryResult keeps the frame, not the parts too); a half-built release cannot be retried."""
    rows = [{"a": i, "b": f"x{i}", "c": {"k": i % 2}} for i in range(100)]
    builder = FrameBuilder()
    builder.add_part(json.dumps(rows[:50]), ["a", "b", "c"])
    builder.add_part(json.dumps(rows[50:]), ["a", "b", "c"])
    kept = builder.to_frame()
    fresh = FrameBuilder()
    fresh.add_part(json.dumps(rows[:50]), ["a", "b", "c"])
    fresh.add_part(json.dumps(rows[50:]), ["a", "b", "c"])
    released = fresh.to_frame(release=True)
    pd.testing.assert_frame_equal(released, kept, check_exact=True)
    assert fresh._parts == [] and fresh.rows == 100
    pd.testing.assert_frame_equal(fresh.to_frame(), kept, check_exact=True)
    with pytest.raises(RuntimeError, match="released its parts"):
        fresh.add_part(json.dumps(rows[:1]), ["a", "b", "c"])

    broken = FrameBuilder()
    broken.add_part(json.dumps(rows), ["a", "b", "c"])

    def fail(name: str) -> pd.Series:
        raise MemoryError(name)

    broken._column = fail  # type: ignore[method-assign]
    with pytest.raises(MemoryError):
        broken.to_frame(release=True)
    with pytest.raises(RuntimeError, match="the frame is lost"):
        broken.to_frame()
