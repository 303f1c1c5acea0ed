"""The decoder's fast paths equal reference_frame: Arrow's timestamp cast (with the numpy
parser as its fallback) and shared strings inside nested dicts."""

from __future__ import annotations

import copy
import json
import pickle
import random
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from velonb._frames_dicts import SharedDict
from velonb.frames import frame_from_parts, reference_frame


def go_part(rows: list[dict[str, Any]]) -> tuple[bytes, list[str]]:
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
    return text.encode(), list(rows[0]) if rows else []


def check(parts: list[tuple[bytes, list[str]]]) -> pd.DataFrame:
    fast = frame_from_parts(parts)
    pd.testing.assert_frame_equal(fast, reference_frame(parts), check_exact=True)
    return fast


EDGES = [
    "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-04-31T00:00:00Z",
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1900-02-29T00:00:00Z",
    "2000-02-29T00:00:00Z", "2024-01-01T00:00:00+05:30", "2024-01-01T00:00:00-00:00",
    "2024-01-01T23:59:59.999999999-23:59", "2024-01-01T00:00:00.1Z",
    "1677-09-21T00:12:43.145224193Z", "1677-09-21T00:12:43.145224192Z",
    "1677-09-21T00:12:43.145224191Z", "2262-04-11T23:47:16.854775807Z",
    "2262-04-11T23:47:16.854775808Z", "2262-04-11T23:47:16.854775807-00:01",
    "2262-04-11T23:47:16.854775807+00:01", "1677-09-21T00:12:43.145224193+00:01",
    "9999-12-31T23:59:59.999999999Z", "1969-12-31T23:59:59.5Z", "1970-01-01T00:00:00Z",
]


@pytest.mark.parametrize("value", EDGES)
def test_timestamp_edges_alone_and_with_a_plain_time(value: str) -> None:
    check([go_part([{"t": value}])])
    check([go_part([{"t": "2024-03-01T10:00:00Z"}, {"t": value}, {"t": None}])])
    check([go_part([{"t": value}]), go_part([{"t": "2024-03-01T10:00:00.5+01:00"}])])


digits = st.integers(min_value=0, max_value=9)
stamp = st.builds(
    lambda y, mo, d, h, mi, s, frac, zone: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    + (f".{frac}" if frac else "") + zone,
    st.sampled_from([1, 1677, 1678, 1900, 1970, 2000, 2024, 2262, 2263, 9999])
    | st.integers(1, 9999),
    st.integers(1, 12), st.integers(1, 31), st.integers(0, 23), st.integers(0, 59),
    st.integers(0, 59), st.text("0123456789", max_size=9),
    st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-23:59", "+23:59", "-08:00"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.one_of(stamp, st.none()), min_size=1, max_size=6), min_size=1,
                max_size=3))
def test_property_timestamps(columns: list[list[str | None]]) -> None:
    check([go_part([{"t": v} for v in values]) for values in columns])


def test_nested_dict_strings_are_shared_but_equal() -> None:
    rnd = random.Random(3)
    hashes = [f"{rnd.getrandbits(128):032x}" for _ in range(4)]
    rows = [{"Pid": i, "Hash": {"MD5": rnd.choice(hashes), "SHA1": rnd.choice(hashes)}}
            for i in range(500)]
    df = check([go_part(rows[:250]), go_part(rows[250:])])
    assert df["Hash"].tolist() == [r["Hash"] for r in rows]
    # rows holding equal values share one read-only dict: changing it in place is refused
    # (it would change every row that shares it) and changes nothing
    first = df["Hash"].iloc[0]
    assert isinstance(first, dict) and type(first) is SharedDict
    assert len({id(h) for h in df["Hash"]}) <= 2 * 16  # one per distinct value per part
    for mutate in (lambda d: d.__setitem__("MD5", "x"), lambda d: d.__delitem__("MD5"),
                   lambda d: d.update(MD5="x"), lambda d: d.pop("MD5"), lambda d: d.popitem(),
                   lambda d: d.setdefault("x", 1), lambda d: d.clear(),
                   lambda d: d.__ior__({"MD5": "x"})):
        with pytest.raises(TypeError, match=r"shared by every row .* read-only"):
            mutate(first)
    assert df["Hash"].tolist() == [r["Hash"] for r in rows]
    # a copy is an ordinary dict; pickle, copy and JSON see the same value
    edited = first.copy()
    edited["MD5"] = "changed"
    assert type(edited) is dict and first["MD5"] != "changed"
    assert type(first | {"x": 1}) is dict
    for clone in (pickle.loads(pickle.dumps(first)), copy.copy(first), copy.deepcopy(first)):
        assert clone == first and type(clone) is SharedDict
    assert json.loads(json.dumps(first)) == first
    assert yaml.safe_load(yaml.safe_dump(first)) == first == yaml.safe_load(yaml.dump(first))


def test_null_nested_values_do_not_stop_the_sharing() -> None:
    """Pslist has no Hash for some processes: the other rows still share their values."""
    rows = [{"Pid": i, "Hash": None if i % 9 == 0 else {"MD5": f"m{i % 3}", "SHA1": "s"}}
            for i in range(400)]
    df = check([go_part(rows)])
    present = [h for h in df["Hash"] if h is not None]
    assert len(present) == 355 and len({id(h) for h in present}) == 3
    assert all(type(h) is SharedDict for h in present)


def test_distinct_nested_values_stay_plain_dicts() -> None:
    rows = [{"Pid": i, "Hash": {"MD5": f"{i:032x}"}} for i in range(300)]
    df = check([go_part(rows)])
    assert all(type(h) is dict for h in df["Hash"])
    df["Hash"].iloc[0]["MD5"] = "changed"  # one object per row: nothing else changes
    assert sum(h["MD5"] == "changed" for h in df["Hash"]) == 1


_flat_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                         st.floats(allow_nan=False), st.text(max_size=6))


@given(st.lists(st.one_of(st.none(), st.fixed_dictionaries(
    {"a": st.sampled_from(["x", "y", ""]), "b": st.one_of(st.none(), st.integers(0, 3)),
     "c": st.text(max_size=4)})), min_size=1, max_size=40))
@settings(max_examples=150, deadline=None)
def test_flat_struct_pylist_equals_to_pylist(rows: list[dict[str, Any] | None]) -> None:
    import pyarrow as pa

    from velonb._frames_dicts import flat_struct_pylist

    plain = pa.array(rows, type=pa.struct([("a", pa.large_string()), ("b", pa.int64()),
                                           ("c", pa.string())]))
    dictionary = pa.StructArray.from_arrays(
        [plain.field("a").dictionary_encode(), plain.field("b"), plain.field("c")],
        names=["a", "b", "c"], mask=plain.is_null())
    for arr in (plain, dictionary, plain.slice(1)):
        got = flat_struct_pylist(arr)
        assert got == arr.to_pylist()
        assert [list(d) if d else d for d in got] == [list(d) if d else d
                                                       for d in arr.to_pylist()]


def test_flat_struct_pylist_leaves_nested_and_odd_structs_to_arrow() -> None:
    import pyarrow as pa

    from velonb._frames_dicts import flat_struct_pylist

    nested = pa.array([{"a": {"b": 1}}])
    assert flat_struct_pylist(nested) is None
    assert flat_struct_pylist(pa.array([{}], type=pa.struct([]))) is None
    dup = pa.StructArray.from_arrays([pa.array([1]), pa.array([2])], names=["k", "k"])
    assert flat_struct_pylist(dup) is None
    assert flat_struct_pylist(pa.array([{"x": 1.5, "y": True}])) == [{"x": 1.5, "y": True}]


def test_parse_pool_is_the_system_allocator_unless_arrow_is_told_otherwise(monkeypatch):
    import pyarrow as pa

    from velonb._frames_arrow import parse_pool

    parse_pool.cache_clear()
    try:
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
        assert parse_pool().backend_name == "system"
        parse_pool.cache_clear()
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
        assert parse_pool().backend_name == pa.default_memory_pool().backend_name
        check([go_part([{"a": "x", "n": 1}]), go_part([{"a": "y", "n": 2}])])
    finally:
        parse_pool.cache_clear()


def test_repeated_dicts_are_built_from_templates_exactly():
    """Many rows repeating a few nested dicts (as hashes of the same executable do): rows with
    equal values share one read-only dict, equal to the reference's and with its key order."""
    hashes = [{"SHA256": f"s{i}", "MD5": f"m{i % 3}", "Path": "C:\\\\x\\u00e9"} for i in range(5)]
    rows = [{"Pid": i, "Hash": dict(hashes[i % 5])} for i in range(700)]
    parts = [go_part(rows[i:i + 350]) for i in (0, 350)]
    fast = check(parts)
    values = fast["Hash"].tolist()
    assert [list(v) for v in values] == [["SHA256", "MD5", "Path"]] * 700
    assert len({id(v) for v in values}) == 10  # one per distinct value in each part
    assert values[0] is values[5] and type(values[0]) is SharedDict
    with pytest.raises(TypeError):
        values[0]["MD5"] = "changed"
    assert values[5]["MD5"] == "m0"


def test_flat_struct_pylist_templates_with_dictionary_fields_and_nulls():
    import pyarrow as pa

    from velonb._frames_dicts import flat_struct_pylist

    rows = [None if i % 7 == 0 else {"b": f"v{i % 4}", "a": f"w{i % 2}"} for i in range(300)]
    plain = pa.array(rows, type=pa.struct([("b", pa.large_string()), ("a", pa.string())]))
    encoded = pa.StructArray.from_arrays(
        [plain.field("b").dictionary_encode(), plain.field("a").dictionary_encode()],
        names=["b", "a"], mask=plain.is_null())
    no_nulls = pa.array([r for r in rows if r is not None], type=plain.type)
    for arr in (plain, encoded, no_nulls, no_nulls.slice(10, 100)):
        got = flat_struct_pylist(arr)
        assert got == arr.to_pylist()
        assert all(list(d) == ["b", "a"] for d in got if d is not None)
        present = [d for d in got if d is not None]
        assert len({id(d) for d in present}) == len({tuple(d.items()) for d in present})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300), st.sampled_from([41, 10**6]))
def test_distinct_codes_equals_np_unique(codes: list[int], bound: int) -> None:
    """The sort-free table (small bound) and np.unique (large bound) give the same answer."""
    import numpy as np

    from velonb._frames_dicts import _distinct_codes

    array = np.array(codes, dtype=np.int64)
    distinct, rows = _distinct_codes(array, bound)
    want_distinct, want_rows = np.unique(array, return_inverse=True)
    assert distinct.tolist() == want_distinct.tolist() and rows.tolist() == want_rows.tolist()
