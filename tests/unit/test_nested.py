"""velonb.expand: nested columns as typed columns, on frames decoded the way queries decode them."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import velonb
from velonb.frames import STR_DTYPE, frame_from_parts
from velonb.nested import expand


def decoded(rows: list[dict[str, Any]], part_rows: int = 1000) -> pd.DataFrame:
    """``rows`` as velonb's decoder gives them back (compact JSON parts, as the server sends)."""
    parts = [(json.dumps(rows[i:i + part_rows], separators=(",", ":")), list(rows[0]))
             for i in range(0, len(rows), part_rows)]
    return frame_from_parts(parts)


def pslist(n: int = 300) -> pd.DataFrame:
    rows = [{"Pid": i, "Name": f"p{i % 5}.exe",
             "Hash": None if i % 10 == 0 else {"MD5": f"m{i % 5}", "SHA1": f"s{i % 5}"},
             "Authenticode": {"Trusted": "trusted" if i % 2 else "untrusted",
                              "Timestamp": "2024-03-01T10:00:00Z", "Serial": i % 3},
             "User": "alice"} for i in range(n)]
    return decoded(rows)


def test_a_nested_column_becomes_typed_columns_in_its_place() -> None:
    df = pslist()
    out = expand(df, "Hash", "Authenticode")
    assert list(out.columns) == ["Pid", "Name", "Hash.MD5", "Hash.SHA1", "Authenticode.Trusted",
                                 "Authenticode.Timestamp", "Authenticode.Serial", "User"]
    assert out["Hash.MD5"].dtype == STR_DTYPE
    assert out["Authenticode.Timestamp"].dtype == "datetime64[ns, UTC]"
    assert out["Authenticode.Serial"].dtype == "int64"
    assert out["Hash.MD5"].isna().tolist() == [i % 10 == 0 for i in range(300)]
    assert out.loc[7, "Hash.SHA1"] == "s2" and out.loc[7, "Authenticode.Trusted"] == "trusted"
    assert list(df.columns) == ["Pid", "Name", "Hash", "Authenticode", "User"]  # a copy


def test_without_names_every_all_dict_column_is_expanded_and_the_index_is_kept() -> None:
    df = pslist().iloc[::3]  # a filtered frame: the index is not 0..n-1
    out = expand(df)
    assert "Hash" not in out.columns and "Authenticode" not in out.columns
    assert list(out.index) == list(df.index)
    assert out.loc[21, "Hash.MD5"] == "m1"
    repeated = pd.concat([df, df])  # an index with repeated labels
    assert len(expand(repeated, "Hash")) == 2 * len(df)


def test_depth_and_keep() -> None:
    rows = [{"Conn": {"Laddr": {"IP": "10.0.0.5", "Port": 445}, "Status": "LISTEN"}}] * 3
    df = decoded(rows)
    one = expand(df)
    assert list(one.columns) == ["Conn.Laddr", "Conn.Status"]
    both = expand(df, depth=None)
    assert list(both.columns) == ["Conn.Laddr.IP", "Conn.Laddr.Port", "Conn.Status"]
    assert both["Conn.Laddr.Port"].tolist() == [445] * 3
    kept = expand(df, "Conn", keep=True, sep="_")
    assert list(kept.columns) == ["Conn", "Conn_Laddr", "Conn_Status"]


def test_mixed_values_are_refused_unless_kept() -> None:
    df = decoded([{"A": {"x": 1}}, {"A": "not a dict"}, {"A": None}])
    with pytest.raises(ValueError, match=r"'A' holds a str in row 1.*keep=True"):
        expand(df, "A")
    kept = expand(df, "A", keep=True)
    assert kept["A"].tolist() == [{"x": 1}, "not a dict", None]
    assert kept["A.x"].tolist()[0] == 1 and kept["A.x"].isna().tolist() == [False, True, True]
    same = expand(df)
    assert list(same.columns) == ["A"] and same is not df  # not all dicts: left alone
    same["B"] = 1
    assert list(df.columns) == ["A"]  # the caller's frame never changes


def test_named_errors() -> None:
    df = pslist(20)
    with pytest.raises(KeyError, match="no column 'Nope'"):
        expand(df, "Nope")
    with pytest.raises(ValueError, match="'Name' holds a str"):
        expand(df, "Name")
    with pytest.raises(ValueError, match="'User' holds a str"):
        expand(df, "User")
    clash = df.assign(**{"Hash.MD5": 1})
    with pytest.raises(ValueError, match=r"'Hash\.MD5' already exist"):
        expand(clash, "Hash")
    assert "Hash_MD5" in expand(clash, "Hash", sep="_").columns
    nulls = decoded([{"A": None, "B": 1}] * 2)
    with pytest.raises(ValueError, match="holds no dicts"):
        expand(nulls, "A")


def test_shared_nested_values_are_read_once_and_results_are_plain() -> None:
    df = pslist(3000)
    hashes = [h for h in df["Hash"] if h is not None]
    assert type(hashes[0]) is velonb.SharedDict  # the decoder shares equal values
    out = expand(df, "Hash")
    assert out["Hash.MD5"].nunique() == 5
    assert velonb.expand is expand


_values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.text(max_size=5), st.lists(st.integers(), max_size=2))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b", "c"]), _values,
                                                     max_size=3)), min_size=1, max_size=30))
def test_expanded_columns_equal_the_values_they_came_from(cells: list[Any]) -> None:
    df = decoded([{"N": cell} for cell in cells], part_rows=7)
    if not any(isinstance(c, dict) and c for c in cells):
        return
    out = expand(df, "N")
    keys = list(dict.fromkeys(k for c in cells if isinstance(c, dict) for k in c))
    assert list(out.columns) == [f"N.{k}" for k in keys]
    for key in keys:
        # the column is the same as decoding that key's values as their own column
        want = decoded([{"v": c.get(key) if isinstance(c, dict) else None} for c in cells],
                       part_rows=7)["v"]
        pd.testing.assert_series_equal(out[f"N.{key}"], want, check_names=False)
