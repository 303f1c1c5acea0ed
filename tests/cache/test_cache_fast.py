"""The fast paths of the cache codec (Arrow structs, one-pass JSON) keep round trips exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from velonb import cache_codec
from velonb.cache import Cache
from velonb.cache_codec import decode_frame, encode_frame
from velonb.emulator import gojson
from velonb.emulator.world.results import bulk_pslist_rows
from velonb.frames import frame_from_parts


def roundtrip(frame: pd.DataFrame, tmp: Path) -> pd.DataFrame:
    table, specs = encode_frame(frame)
    path = tmp / "t.parquet"
    pq.write_table(table, path)
    return decode_frame(pq.read_table(path), specs, len(frame))


def object_frame(values: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"x": pd.Series(values, dtype=object)})


def codec_of(frame: pd.DataFrame) -> str:
    return str(encode_frame(frame)[1][0]["codec"])


def test_benchmark_like_pslist_rows_through_the_cache(tmp_path):
    rows = list(bulk_pslist_rows(20_000))
    parts = [(gojson.dumps_rows(rows[i:i + 1000]), list(rows[i])) for i in range(0, 20_000, 1000)]
    frame = frame_from_parts(parts)
    assert len(frame) == 20_000 and frame["Hash"].dtype == object
    table, specs = encode_frame(frame)
    assert {s["name"]: s["codec"] for s in specs}["Hash"] == "struct"
    # the hashes repeat (one per executable): each field is stored as a dictionary
    assert str(table.schema.field("Hash").type) == "struct<{}>".format(", ".join(
        f"{name}: dictionary<values=large_string, indices=int32, ordered=0>"
        for name in ("MD5", "SHA1", "SHA256")))
    cache = Cache(tmp_path / "c")
    entry = cache.put("a" * 64, "b" * 64, [frame], {"statements": [{}]})
    assert entry is not None
    hit = cache.get("a" * 64, "b" * 64)
    assert hit is not None
    back = hit.frames[0]
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert list(back["Hash"][0]) == list(frame["Hash"][0])
    # one str object per distinct hash, shared by the rows (as the live decoder does)
    md5 = {}
    for value in back["Hash"]:
        assert md5.setdefault(value["MD5"], value["MD5"]) is value["MD5"]
    assert len(md5) < 20_000 / 2
    # a plain pyarrow reader of the cached file gets the same values
    plain = pq.read_table(entry.files[0])
    assert plain.column("Hash").to_pylist() == frame["Hash"].tolist()
    pd.testing.assert_frame_equal(plain.to_pandas(), frame, check_exact=True)


@pytest.mark.parametrize("values", [
    [{"a": 1, "b": "x"}, None, {"a": -(2**63), "b": ""}],  # null rows
    [{"a": None, "b": 1.5}, {"a": None, "b": -0.0}],  # an all-None field
    [{"a": "x", "b": None}, {"a": None, "b": True}],  # None leaves
    [{"u": 2**64 - 1}, {"u": 0}],  # uint64
    [{"d": {"x": 1, "y": None}}, {"d": None}, None, {"d": {"x": 2, "y": "z"}}],  # nested
    [{"": 1, "a.b": 2, "é": 3}],  # odd key names
], ids=["null-rows", "null-field", "none-leaves", "uint64", "nested", "odd-keys"])
def test_struct_columns(values, tmp_path):
    frame = object_frame(values)
    assert codec_of(frame) == "struct"
    back = roundtrip(frame, tmp_path)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    for got, want in zip(back["x"], values, strict=True):
        assert got == want and (want is None or list(got) == list(want))
        if want is not None:
            assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


@pytest.mark.parametrize("values", [
    [{"a": 1, "b": 2}, {"b": 2, "a": 1}],  # key order differs
    [{"a": 1}, {"a": 1, "b": None}],  # extra key
    [{}, {}],  # no keys
    [{"a": 1}, {"a": 1.0}],  # int and float
    [{"a": 1}, {"a": True}],  # int and bool
    [{"a": 2**64}, {"a": -1}],  # beyond 64 bits
    [{"a": [1, 2]}, {"a": [3]}],  # lists
    [{"a": float("nan")}, {"a": 1.0}],  # not finite
    [{"a": "\ud800"}],  # lone surrogate
    [{"\ud800": 1}],  # lone surrogate key
    [{"a": 1}, [1]],  # not all dicts
    [{"a": {"x": 1}}, {"a": {"y": 1}}],  # nested shapes differ
], ids=["order", "extra-key", "empty", "int-float", "int-bool", "big", "lists", "nan",
        "surrogate", "surrogate-key", "mixed", "nested-shapes"])
def test_dicts_that_are_not_structs_fall_back_to_json(values, tmp_path):
    frame = object_frame(values)
    assert codec_of(frame) in ("json", "tagged")
    back = roundtrip(frame, tmp_path)
    if "NaN" not in json.dumps(values):  # (nan != nan)
        pd.testing.assert_frame_equal(back, frame, check_exact=True)
    for got, want in zip(back["x"], values, strict=True):
        assert json.dumps(got) == json.dumps(want)


@pytest.mark.parametrize("orjson", [True, False], ids=["orjson", "stdlib"])
def test_json_columns_with_and_without_orjson(orjson, monkeypatch, tmp_path):
    if not orjson:
        monkeypatch.setattr(cache_codec, "_orjson", None)
    elif cache_codec._orjson is None:
        pytest.skip("orjson is not installed")
    small = [[1, 2.0, "a"], {"k": [None, True]}, None, 3, "s", {"a": {"b": -0.0}}]
    wide = [[2**64 - 1], [2**64], {"n": -(2**63) - 1}, 10**30, None]
    for values, is_wide in ((small, False), (wide, True)):
        frame = object_frame(values)
        spec = encode_frame(frame)[1][0]
        assert spec["codec"] == "json" and spec["wide_ints"] is is_wide
        back = roundtrip(frame, tmp_path)
        pd.testing.assert_frame_equal(back, frame, check_exact=True)
        assert [type(v) for v in back["x"]] == [type(v) for v in values]
