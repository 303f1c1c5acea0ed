"""Velocidex/json row encoding, go-humanize Bytes and Go duration strings (pure functions)."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from velonb.emulator import gojson
from velonb.emulator.streaming import go_duration, humanize_bytes


def test_compact_and_key_order_kept():
    rows = [{"b": 1, "a": "x", "c": None, "d": True, "e": False}]
    assert gojson.dumps_rows(rows) == '[{"b":1,"a":"x","c":null,"d":true,"e":false}]'


def test_empty_batch_is_empty_array():
    assert gojson.dumps_rows([]) == "[]"


def test_html_characters_and_line_separators_escaped():
    rows = [{"<k>": "a<b>&c\u2028d\u2029"}]
    assert gojson.dumps_rows(rows) == (
        '[{"\\u003ck\\u003e":"a\\u003cb\\u003e\\u0026c\\u2028d\\u2029"}]'
    )


def test_non_ascii_raw_and_control_characters_like_go():
    text = gojson.dumps_rows([{"s": 'héllo ☃ \n\r\t\x08\x0c\x01\x1f\x7f"\\'}])
    assert text == '[{"s":"héllo ☃ \\n\\r\\t\\u0008\\u000c\\u0001\\u001f\x7f\\"\\\\"}]'


def test_backslash_followed_by_b_is_not_mistaken_for_escape():
    assert gojson.dumps_rows([{"s": "\\b\\f\x08"}]) == '[{"s":"\\\\b\\\\f\\u0008"}]'


def test_lone_surrogate_becomes_replacement_escape():
    assert gojson.dumps_rows([{"s": "a\udc80b"}]) == '[{"s":"a\\ufffdb"}]'


def test_integers_exact_including_uint64():
    rows = [{"a": 2**64 - 1, "b": -(2**63), "c": 0}]
    assert gojson.dumps_rows(rows) == '[{"a":18446744073709551615,"b":-9223372036854775808,"c":0}]'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (100.0, "100"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (1e-6, "0.000001"),
        (1e-5, "0.00001"),
        (1e16, "10000000000000000"),
        (1e20, "100000000000000000000"),
        (1.2345678901234568e20, "123456789012345680000"),
        (1e21, "1e+21"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
        (-0.0, "-0"),
        (123.456, "123.456"),
    ],
)
def test_floats_like_go(value, expected):
    assert gojson.format_float(value) == expected
    assert gojson.dumps_rows([{"f": value}]) == f'[{{"f":{expected}}}]'


def test_nan_and_infinity_become_null_inside_a_row():
    rows = [{"a": math.nan, "b": math.inf, "c": [1.0, math.nan], "d": {"x": -math.inf}}]
    assert gojson.dumps_rows(rows) == '[{"a":null,"b":null,"c":null,"d":{"x":null}}]'


def test_datetimes_rfc3339_trimmed_utc_z():
    utc = dt.UTC
    rows = [
        {
            "a": dt.datetime(2020, 5, 31, 15, 28, 5, tzinfo=utc),
            "b": dt.datetime(2020, 5, 31, 15, 28, 5, 120000, tzinfo=utc),
            "c": dt.datetime(
                2020, 5, 31, 15, 28, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))
            ),
        }
    ]
    assert gojson.dumps_rows(rows) == (
        '[{"a":"2020-05-31T15:28:05Z","b":"2020-05-31T15:28:05.12Z",'
        '"c":"2020-05-31T13:28:05.123456Z"}]'
    )


def test_datetimes_in_scope_time_zone():
    zone = gojson.resolve_zone("Australia/Brisbane")
    value = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert gojson.dumps_rows([{"t": value}], zone) == '[{"t":"2020-01-01T10:00:00+10:00"}]'
    assert gojson.resolve_zone("No/Such_Zone") is None
    assert gojson.resolve_zone("") is None


def test_nested_values_bytes_and_tuples():
    rows = [{"l": [1, "a", None, {"k": [2.0]}], "t": (1, 2), "b": b"\x00\xff"}]
    assert gojson.dumps_rows(rows) == '[{"l":[1,"a",null,{"k":[2]}],"t":[1,2],"b":"AP8="}]'


def test_fast_path_matches_reference_encoder():
    utc = dt.UTC
    rows = [
        {
            "ClientId": "C.1234567890abcdef",
            "Hostname": "host-<1>&",
            "Size": 12345,
            "Ratio": 0.25,
            "Whole": 3.0,
            "Labels": ["a", "b"],
            "Meta": {"os": "linux", "n": 1.5},
            "When": dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=utc),
            "Ok": True,
            "Nil": None,
        }
    ] * 3
    assert gojson.dumps_rows(rows) == gojson.dumps(rows)
    assert json.loads(gojson.dumps_rows(rows))[0]["Whole"] == 3


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (9, "9 B"),
        (10, "10 B"),
        (415, "415 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (1499, "1.5 kB"),
        (9949, "9.9 kB"),
        (9950, "10 kB"),
        (82854982, "83 MB"),
        (999999, "1000 kB"),
        (1_000_000, "1.0 MB"),
        (5_500_000_000, "5.5 GB"),
    ],
)
def test_humanize_bytes_like_go_humanize_v1_0_1(size, expected):
    assert humanize_bytes(size) == expected


@pytest.mark.parametrize(
    ("ns", "expected"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5\u00b5s"),
        (150_000_000, "150ms"),
        (2_000_000_000, "2s"),
        (2_000_318_625, "2.000318625s"),
        (60_500_000_000, "1m0.5s"),
        (3_723_000_000_000, "1h2m3s"),
        (-1_500_000_000, "-1.5s"),
    ],
)
def test_go_duration_strings(ns, expected):
    assert go_duration(ns) == expected


def test_encoder_speed_smoke():
    """Not a benchmark (see benchmarks/), just a guard against a pathological slowdown."""
    import time

    row = {
        "ClientId": "C.1234567890abcdef",
        "Hostname": "workstation-0042.corp.example.com",
        "OS": "windows",
        "Release": "Microsoft Windows 10 Enterprise 10.0.19045 Build 19045",
        "LastSeen": 1717171717171717,
        "Labels": ["finance", "vip"],
        "Size": 123456789,
        "Path": "C:\\Users\\alice\\AppData\\Local\\Temp\\evil.exe",
        "Ok": True,
    }
    rows = [dict(row, Size=i) for i in range(20000)]
    start = time.perf_counter()
    gojson.dumps_rows(rows)
    assert time.perf_counter() - start < 2.0
