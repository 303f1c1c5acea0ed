"""Frames of every kind FrameBuilder makes survive the Parquet cache exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from velonb.cache import Cache
from velonb.cache_codec import decode_frame, encode_frame
from velonb.frames import FrameBuilder

TIMES = ["2024-03-01T10:00:00Z", "2024-03-01T10:00:00.123456789+02:00",
         "0001-01-01T00:00:00Z", "1999-12-31T23:59:59.5-05:00"]
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**64 - 1), st.integers(-(2**80), 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), st.sampled_from(TIMES),
)
values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=4), kids, max_size=3)),
    max_leaves=6)
# columns are mostly one kind (typed columns), sometimes anything (mixed object columns)
KINDS = [st.integers(-5, 5), st.integers(0, 2**64 - 1), st.floats(allow_nan=False,
         allow_infinity=False), st.booleans(), st.text(max_size=6), st.sampled_from(TIMES),
         st.dictionaries(st.text(max_size=3), scalars, max_size=2), values,
         # same keys in every row (Arrow structs), sometimes with odd leaves (JSON fallback)
         st.fixed_dictionaries({"MD5": st.text(max_size=4), "n": st.one_of(
             st.none(), st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**64 - 1)),
             "in": st.fixed_dictionaries({"b": st.booleans(), "f": st.floats(allow_nan=False)})}),
         st.fixed_dictionaries({"k": scalars})]


@st.composite
def parts(draw: Any) -> list[tuple[str, list[str]]]:
    names = draw(st.lists(st.text(max_size=5), min_size=0, max_size=5, unique=True))
    kinds = {n: draw(st.sampled_from(KINDS)) for n in names}
    out = []
    for _ in range(draw(st.integers(1, 3))):
        rows = []
        for _ in range(draw(st.integers(0, 6))):
            row = {}
            for n in names:
                if draw(st.integers(0, 4)):  # sometimes missing
                    row[n] = draw(st.one_of(st.none(), kinds[n]))
            rows.append(row)
        out.append((json.dumps(rows), list(rows[0]) if rows else []))
    return out


def build(ps: list[tuple[str, list[str]]]) -> pd.DataFrame:
    builder = FrameBuilder()
    for payload, columns in ps:
        builder.add_part(payload, columns)
    return builder.to_frame()


def roundtrip(frame: pd.DataFrame, tmp: Path) -> pd.DataFrame:
    table, specs = encode_frame(frame)
    path = tmp / "t.parquet"
    pq.write_table(table, path)
    return decode_frame(pq.read_table(path), specs, len(frame))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(ps=parts())
def test_any_frame_roundtrips_exactly_through_the_cache(ps, tmp_path):
    frame = build(ps)
    pd.testing.assert_frame_equal(roundtrip(frame, tmp_path), frame, check_exact=True)
    cache = Cache(tmp_path / "c")
    cache.put("a" * 64, "b" * 64, [frame], {"statements": [{}]})
    hit = cache.get("a" * 64, "b" * 64)
    assert hit is not None
    pd.testing.assert_frame_equal(hit.frames[0], frame, check_exact=True)


def test_every_dtype_and_odd_values(tmp_path):
    rows = [{"i": 1, "u": 2**64 - 1, "f": 1.5, "b": True, "s": "x", "t": TIMES[0], "go": TIMES[2],
             "d": {"b": 1, "a": [1, 2.0]}, "m": 1, "n": None, "big": 2**70, "sur": "\ud800"},
            {"i": None, "u": None, "f": None, "b": None, "s": None, "t": None, "go": TIMES[1],
             "d": [1], "m": "1", "n": None, "big": -1, "sur": None}]
    frame = build([(json.dumps(rows), list(rows[0]))])
    assert {str(t) for t in frame.dtypes} >= {"Int64", "UInt64", "float64", "boolean", "str",
                                               "datetime64[ns, UTC]", "datetime64[us, UTC]",
                                               "object"}
    back = roundtrip(frame, tmp_path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert type(back["m"][0]) is int and type(back["m"][1]) is str
    assert list(back["d"][0]) == ["b", "a"] and type(back["d"][0]["a"][1]) is float


def test_plain_parquet_types_for_other_readers(tmp_path):
    rows = [{"n": 1, "t": "2024-03-01T10:00:00Z", "d": {"a": 1}, "j": {"a": 1}},
            {"n": 2, "t": "2024-03-01T10:00:00Z", "d": {"a": 2}, "j": {"b": 1}}]
    frame = build([(json.dumps(rows), ["n", "t", "d", "j"])])
    table, _ = encode_frame(frame)
    assert [str(t) for t in table.schema.types] == ["int64", "timestamp[ns, tz=UTC]",
                                                    "struct<a: int64>", "large_string"]
    assert table.column("d").to_pylist() == [{"a": 1}, {"a": 2}]
    assert json.loads(table.column("j")[1].as_py()) == {"b": 1}
    # a plain Parquet reader gets the same values (JSON columns as text)
    path = tmp_path / "p.parquet"
    pq.write_table(table, path)
    plain = pq.read_table(path)
    pd.testing.assert_frame_equal(plain.select(["n", "t"]).to_pandas(), frame[["n", "t"]],
                                  check_exact=True)
    assert plain.column("d").to_pylist() == frame["d"].tolist()


def test_mixed_python_values_of_concatenated_stream_frames(tmp_path):
    frame = pd.DataFrame({"x": [pd.Timestamp("2024-01-01", tz="UTC"), "a", float("nan"), (1, 2),
                                {"$weird": 1}, np.int32(3), None, b"\x00"]})
    pd.testing.assert_frame_equal(roundtrip(frame, tmp_path), frame, check_exact=True)


def test_empty_frames(tmp_path):
    for frame in (build([("[]", [])]), build([("[]", ["a", "b"])])):
        pd.testing.assert_frame_equal(roundtrip(frame, tmp_path), frame, check_exact=True)


def test_cache_files_keep_statistics_of_numbers_and_times_only(tmp_path):
    """String min/max cost a quarter of the write and a cache entry is always read whole."""
    import pyarrow.parquet as pq

    from velonb.cache import Cache

    frame = pd.DataFrame({"n": [1, 2], "s": ["a", "b"], "t": pd.to_datetime(["2024-01-01"] * 2,
                                                                            utc=True),
                          "d": [{"k": "x"}, {"k": "y"}]})
    cache = Cache(tmp_path)
    entry = cache.put("k" * 64, "q" * 64, [frame], {"statements": [{}]})
    assert entry is not None
    (path,) = tmp_path.rglob("*.parquet")
    group = pq.ParquetFile(path).metadata.row_group(0)
    stats = {group.column(i).path_in_schema: group.column(i).is_stats_set
             for i in range(group.num_columns)}
    assert stats == {"n": True, "s": False, "t": True, "d.k": False}


def test_shared_nested_values_are_stored_as_structs_and_shared_again_when_read():
    """A decoded hunt's repeated Hash values are read-only dicts shared between rows: stored
    as a Parquet struct like plain dicts, and read back shared (the replay saves the same
    memory as the live query)."""
    from velonb._frames_dicts import SharedDict

    rows = [{"Pid": i, "Hash": None if i % 50 == 0 else {"MD5": f"m{i % 4}", "SHA1": "s"}}
            for i in range(600)]
    builder = FrameBuilder()
    builder.add_part(json.dumps(rows, separators=(",", ":")), ["Pid", "Hash"])
    frame = builder.to_frame()
    assert {type(h) for h in frame["Hash"]} == {SharedDict, type(None)}
    table, specs = encode_frame(frame)
    assert [s["codec"] for s in specs] == ["int64", "struct"]
    back = decode_frame(table, specs, len(frame))
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    present = [h for h in back["Hash"] if h is not None]
    assert len({id(h) for h in present}) == 4 and all(type(h) is SharedDict for h in present)


def test_cache_files_are_read_into_jemallocs_pool_unless_arrow_is_told_otherwise(monkeypatch):
    """The re-run's allocations avoid mimalloc's huge-page stalls (see read_parquet); the table
    is the one ParquetFile reads, and a pool chosen with ARROW_DEFAULT_MEMORY_POOL is kept."""
    import io

    import pyarrow as pa

    from velonb.cache_codec import read_parquet

    frame = pd.DataFrame({"n": np.arange(200_000), "s": [f"v{i % 7}" for i in range(200_000)]})
    table, _ = encode_frame(frame)
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data = sink.getvalue()
    want = pq.ParquetFile(pa.BufferReader(data)).read()
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    try:
        jemalloc = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc: ParquetFile reads it
        assert read_parquet(data).equals(want)
        return
    before = jemalloc.bytes_allocated()
    got = read_parquet(data)
    assert got.equals(want) and got.schema == want.schema
    assert jemalloc.bytes_allocated() - before >= 200_000 * 8  # the column buffers live there
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    before = jemalloc.bytes_allocated()
    assert read_parquet(data).equals(want) and jemalloc.bytes_allocated() == before
