"""Python values become env bindings; nothing of a value ever reaches the VQL text."""

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from velonb.errors import ParameterError
from velonb.params import PARAMS_VARIABLE, bind, to_jsonable


def test_strings_are_plain_env_strings():
    b = bind({"Hostname": "win-dc01'\nLET x = 1"})
    assert b.env == {"Hostname": "win-dc01'\nLET x = 1"}
    assert b.prelude == ""


def test_typed_values_go_through_one_json_document():
    when = dt.datetime(2024, 3, 1, 10, 0, tzinfo=dt.UTC)
    b = bind({"pid": 42, "ratio": 0.5, "flag": True, "none": None, "names": ("a", "b"),
              "opts": {"k": [1, 2]}, "since": when})
    values = json.loads(b.env[PARAMS_VARIABLE])
    assert values == {"pid": 42, "ratio": 0.5, "flag": True, "none": None, "names": ["a", "b"],
                      "opts": {"k": [1, 2]}, "since": "2024-03-01T10:00:00Z"}
    lines = b.prelude.splitlines()
    assert lines[0] == f"LET pid <= parse_json(data={PARAMS_VARIABLE}).pid"
    assert lines[-1] == f"LET since <= timestamp(string=parse_json(data={PARAMS_VARIABLE}).since)"
    assert b.typed == {"pid": "int", "ratio": "float", "flag": "bool", "none": "null",
                       "names": "list", "opts": "dict", "since": "timestamp"}


def test_pandas_and_numpy_values():
    b = bind({"ids": pd.Series(["C.1", "C.2"]), "n": np.int64(7), "arr": np.array([1.5, 2.5]),
              "t": pd.Timestamp("2024-01-02 03:04:05", tz="Europe/Berlin"), "idx": pd.Index([3])})
    values = json.loads(b.env[PARAMS_VARIABLE])
    assert values == {"ids": ["C.1", "C.2"], "n": 7, "arr": [1.5, 2.5],
                      "t": "2024-01-02T02:04:05Z", "idx": [3]}
    assert b.typed["t"] == "timestamp"


def test_naive_datetime_is_utc_and_big_ints_stay_exact():
    b = bind({"t": dt.datetime(2020, 5, 31, 15, 28, 5), "big": 2**64 - 1})
    values = json.loads(b.env[PARAMS_VARIABLE])
    assert values == {"t": "2020-05-31T15:28:05Z", "big": 18446744073709551615}


@pytest.mark.parametrize("name", ["1abc", "a b", "a-b", "", "x;y", "LET", "_velonb_params", 3])
def test_invalid_names_are_refused(name):
    with pytest.raises(ParameterError):
        bind({name: 1})


@pytest.mark.parametrize("value", [object(), b"bytes", float("nan"), {1: "x"}, dt.timedelta(1)])
def test_unsupported_values_are_named(value):
    with pytest.raises(ParameterError) as info:
        to_jsonable(value, path="v")
    assert "v" in str(info.value)


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True),
                       st.one_of(st.text(), st.integers(), st.lists(st.text(), max_size=3)),
                       max_size=5))
def test_values_never_enter_the_prelude(params):
    params = {k: v for k, v in params.items() if k.lower() not in {
        "let", "select", "from", "where", "and", "or", "not", "in", "true", "false", "null",
        "limit", "order", "group", "by", "as", "desc"}}
    b = bind(params)
    for line in b.prelude.splitlines():
        # Every prelude line is fixed text around a validated identifier.
        assert line.startswith("LET ") and PARAMS_VARIABLE in line
        name = line.split()[1]
        assert name in params
        assert line in (f"LET {name} <= parse_json(data={PARAMS_VARIABLE}).{name}",)
