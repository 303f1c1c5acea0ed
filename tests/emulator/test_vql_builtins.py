"""Built-in plugins and functions, their argument errors and permission failures."""

import datetime as dt
import json

import pytest
from wire_helpers import run_vql

from velonb.emulator.vql import Arg, VQLCallError, function, plugin

run = run_vql


def one(expr, **kw):
    rows, logs = run(f"SELECT {expr} AS X FROM scope()", **kw)
    return rows[0][0]["X"], logs


UTC = dt.UTC

INFO_COLUMNS = [
    "Hostname",
    "Uptime",
    "BootTime",
    "OS",
    "Platform",
    "PlatformFamily",
    "PlatformVersion",
    "KernelVersion",
    "VirtualizationSystem",
    "VirtualizationRole",
    "CompilerVersion",
    "HostID",
    "Exe",
    "CWD",
    "IsAdmin",
    "ClientStart",
    "LocalTZ",
    "LocalTZOffset",
    "Fqdn",
    "Architecture",
]


def test_info_superuser_columns():
    rows, logs = run("SELECT * FROM info()")
    assert logs == []
    row = rows[0][0]
    assert list(row) == INFO_COLUMNS
    assert isinstance(row["Hostname"], str) and row["Hostname"]
    assert isinstance(row["Uptime"], int) and isinstance(row["IsAdmin"], bool)
    assert row["ClientStart"].tzinfo is not None


def test_info_permission_denied():
    rows, logs = run("SELECT * FROM info()", principal="bob", permissions=frozenset({"ANY_QUERY"}))
    assert rows == [[]]
    assert logs == ["info: PermissionDenied: Permission denied: [MACHINE_STATE]"]
    rows, _ = run("SELECT * FROM info()", principal="bob", permissions=frozenset({"MACHINE_STATE"}))
    assert len(rows[0]) == 1
    value, logs = one("info()", principal="bob")
    assert value is None and logs == ["info: PermissionDenied: Permission denied: [MACHINE_STATE]"]


def test_range_and_its_argument_errors():
    rows, _ = run("SELECT * FROM range(start=2, end=8, step=3)")
    assert rows == [[{"_value": 2}, {"_value": 5}]]
    assert run("SELECT * FROM range()")[1] == ["range: Field end is required"]
    assert run("SELECT * FROM range(end=2, foo=1)")[1] == ["range: Unexpected arg foo"]
    assert run("SELECT * FROM range(end='x')")[1] == [
        "range: Field end should be an int not string."
    ]


def test_scope_plugin_and_function():
    rows, _ = run("SELECT * FROM scope()")
    assert rows == [[{}]]
    rows, _ = run("LET A = 5 SELECT scope().A AS X FROM scope()")
    assert rows == [[{"X": 5}]]


def test_foreach_variants():
    assert run("SELECT * FROM foreach(row=[dict(X=1), dict(X=2)])")[0] == [[{"X": 1}, {"X": 2}]]
    assert run("SELECT * FROM foreach(row=[1, 2], query={ SELECT _value FROM scope() })")[0] == [
        [{"_value": 1}, {"_value": 2}]
    ]
    assert run("SELECT * FROM foreach(row=1, query=[1, 2])")[0] == [[{"_value": 1}, {"_value": 2}]]
    assert run("SELECT * FROM foreach(row=NULL)")[0] == [[]]
    assert run("SELECT * FROM foreach(row={ SELECT dict(X=1) AS X FROM scope() }, column='X')")[
        0
    ] == [[{"X": 1}]]
    rows, _ = run(
        "SELECT * FROM foreach(row={ SELECT _value AS V FROM range(end=2) }, "
        "query={ SELECT V, _value FROM range(end=V) })"
    )
    assert rows == [[{"V": 1, "_value": 0}]]
    assert run("SELECT * FROM foreach()")[1] == ["foreach: Field row is required"]


def test_log_levels_args_dedup():
    value, logs = one("log(message='hello %v and %v', args=[1, 'x'])")
    assert value is True and logs == ["DEFAULT:hello 1 and x"]
    _, logs = run(
        "SELECT log(message='m', level='warn'), log(message='m2', level='bogus'), "
        "log(message='single %d', args=5, level='ERROR') FROM scope()"
    )
    assert logs == ["WARN:m", "DEFAULT:m2", "ERROR:single 5"]
    _, logs = run("SELECT log(message='same') FROM range(end=3)")
    assert logs == ["DEFAULT:same"]
    _, logs = run("SELECT log(message='same', dedup=-1) FROM range(end=3)")
    assert logs == ["DEFAULT:same"] * 3
    value, logs = one("log()")
    assert value is False and logs == ["log: Field message is required"]


def test_parse_json():
    value, _ = one(
        'parse_json(data=\'{"a": [1, 2.5, "x", null, true], "big": 9223372036854775807}\')'
    )
    assert value == {"a": [1, 2.5, "x", None, True], "big": 9223372036854775807}
    assert type(value["big"]) is int
    value, _ = one("parse_json(data='[1, 2]')")
    assert value == [1, 2]


@pytest.mark.parametrize(
    "expr,expected",
    [
        ("timestamp(epoch=1590938885)", dt.datetime(2020, 5, 31, 15, 28, 5, tzinfo=UTC)),
        ("timestamp(epoch=1590938885123)", dt.datetime(2020, 5, 31, 15, 28, 5, 123000, tzinfo=UTC)),
        (
            "timestamp(epoch=1590938885123456)",
            dt.datetime(2020, 5, 31, 15, 28, 5, 123456, tzinfo=UTC),
        ),
        (
            "timestamp(epoch=1590938885123456789)",
            dt.datetime(2020, 5, 31, 15, 28, 5, 123456, tzinfo=UTC),
        ),
        ("timestamp(epoch=1590938885.5)", dt.datetime(2020, 5, 31, 15, 28, 5, 500000, tzinfo=UTC)),
        ("timestamp(epoch='1590938885')", dt.datetime(2020, 5, 31, 15, 28, 5, tzinfo=UTC)),
        (
            "timestamp(string='2020-05-31T15:28:05Z')",
            dt.datetime(2020, 5, 31, 15, 28, 5, tzinfo=UTC),
        ),
        (
            "timestamp(epoch=1590938885123456/1000000)",
            dt.datetime(2020, 5, 31, 15, 28, 5, 123456, tzinfo=UTC),
        ),
        ("timestamp(epoch=NULL)", None),
        # utils.ParseTimeFromInt64: a smaller unit only past year 2603 in it; negative = seconds
        ("timestamp(epoch=30000000000)", dt.datetime(1970, 12, 14, 5, 20, tzinfo=UTC)),  # ms
        ("timestamp(epoch=20000000000)", dt.datetime(2603, 10, 11, 11, 33, 20, tzinfo=UTC)),  # s
        ("timestamp(epoch=-5)", dt.datetime(1969, 12, 31, 23, 59, 55, tzinfo=UTC)),
    ],
)
def test_timestamp(expr, expected):
    value, _ = one(expr)
    if expected is not None and value is not None:
        assert abs((value - expected).total_seconds()) < 1e-5
        assert value.tzinfo is not None
    else:
        assert value == expected


def test_timestamp_comparisons_with_ints():
    value, _ = one("timestamp(epoch=1723428985) > 1118628985")
    assert value is True


def test_now_is_epoch_seconds():
    import time

    value, _ = one("now()")
    assert isinstance(value, int) and abs(value - time.time()) < 5


@pytest.mark.parametrize(
    "fmt,args,expected",
    [
        ("%v-%v", "[1, 'a']", "1-a"),
        ("%s", "'x'", "x"),
        ("%d", "42", "42"),
        ("%x", "255", "ff"),
        ("%08x", "255", "000000ff"),
        ("%x", '"\\x01\\x02\\xf0"', "0102ef"[:0] + "0102efbfbd"),
        ("%q", "'a\"b'", '"a\\"b"'),
        ("%5d|", "3", "    3|"),
        ("%-4s|", "'a'", "a   |"),
        ("%d", "'x'", "%!d(string=x)"),
        ("%v %v", "[1]", "1 %!v(MISSING)"),
        ("%v", "[1, 2]", "1%!(EXTRA int64=2)"),
        ("%v", "[(1, 2), 3]", "[1 2]%!(EXTRA int64=3)"),
        ("%v", "[(1, 2)]", "1%!(EXTRA int64=2)"),  # [x] is x itself in vfilter
        ("%v", "[1.5]", "1.5"),
        # %v of a float64 is strconv's shortest 'g': exponent form from 1e6 (not JSON's 1e21)
        ("%v %v %v", "[123456.0, 1000000.0, 1234567.5]", "123456 1e+06 1.2345675e+06"),
        ("%v", "[0.00001]", "1e-05"),
        ("%v", "[TRUE]", "true"),
        ("100%%", "[]", "100%"),
    ],
)
def test_format_verbs(fmt, args, expected):
    value, _ = one(f"format(format='{fmt}', args={args})")
    assert value == expected


def test_format_time_is_rfc3339():
    value, _ = one("format(format='%v', args=timestamp(epoch=1590938885))")
    assert value == "2020-05-31T15:28:05Z"


def test_sleep_arguments():
    import time

    t = time.monotonic()
    value, _ = one("sleep(ms=50)")
    assert value is True and time.monotonic() - t >= 0.04
    value, logs = one("sleep(time='x')")
    assert value is False and logs == ["sleep: Field time should be an int not string."]


def test_misc_functions():
    assert one("len(list=(1, 2, 3))")[0] == 3
    assert one("len(list=dict(a=1))")[0] == 1
    assert one("len(list='abc')")[0] == 3
    assert one("if(condition=1 + 1 = 2, then=2, else=3)")[0] == 2
    assert one("if(condition=FALSE, then=2)")[0] is None
    assert one("get(item=dict(a=dict(b=3)), member='a.b')")[0] == 3
    assert one("get(item=[dict(foo=3), 2], member='0.foo')")[0] == 3
    assert one("get(item=dict(a=1), field='z', default='d')")[0] == "d"
    assert one("str(str=5)")[0] == "5"
    assert one("int(int='0x10')")[0] == 16
    assert one("int(int=3.9)")[0] == 3
    assert one("lowcase(string='AbC')")[0] == "abc"
    assert one("upcase(string='AbC')")[0] == "ABC"
    assert one("split(string='a,b,,c', sep=',')")[0] == ["a", "b", "", "c"]
    assert one("join(array=('a', 'b'), sep='-')")[0] == "a-b"
    assert one("dict(a=1, `b c`=2)")[0] == {"a": 1, "b c": 2}
    assert one("serialize(item=dict(a=[1, 2]))")[0] == '{"a":[1,2]}'
    # vfilter quirk: a one-element argument array is the element itself.
    assert one("dict(a=[1])")[0] == {"a": 1}


def test_if_is_lazy():
    _, logs = run("SELECT if(condition=FALSE, then=log(message='never')) FROM scope()")
    assert logs == []


def test_aggregates_in_group_by():
    rows, _ = run(
        "SELECT min(item=_value) AS Min, max(item=_value) AS Max, count() AS Count, "
        "sum(item=_value) AS Sum FROM foreach(row=[0, 1, 2]) GROUP BY 1"
    )
    assert rows == [[{"Min": 0, "Max": 2, "Count": 3, "Sum": 3}]]


def test_function_unexpected_arg():
    value, logs = one("upcase(string='a', foo=1)")
    assert value is None and logs == ["upcase: Unexpected arg foo"]


def test_registry_extension_with_world():
    class World:
        clients = ["C.1", "C.2"]

    @plugin("test_clients", Arg("search", "str"), permissions=("READ_RESULTS",))
    def test_clients(scope, args):
        for cid in scope.world.clients:
            yield {"client_id": cid, "search": args.get("search", "")}

    @function("test_fail", Arg("x", "int", required=True))
    def test_fail(scope, args):
        raise VQLCallError(f"bad {args['x']}")

    rows, logs = run("SELECT * FROM test_clients(search='a')", world=World())
    assert rows == [[{"client_id": "C.1", "search": "a"}, {"client_id": "C.2", "search": "a"}]]
    rows, logs = run("SELECT * FROM test_clients()", world=World(), principal="u")
    assert rows == [[]] and logs == [
        "test_clients: PermissionDenied: Permission denied: [READ_RESULTS]"
    ]
    value, logs = one("test_fail(x=3)")
    assert value is None and logs == ["test_fail: bad 3"]


def test_epoch_zero_is_go_zero_time_not_the_unix_epoch():
    from velonb.emulator import gojson

    rows, logs = run_vql("SELECT timestamp(epoch=0) AS Z, timestamp(epoch=0.0) AS F, "
                         "len(list=base64decode(string='/w==')) AS L FROM scope()")
    assert logs == []
    assert gojson.dumps(rows[0][0]) == '{"Z":"0001-01-01T00:00:00Z","F":"0001-01-01T00:00:00Z",' \
        '"L":1}'  # Go's zero time, RFC 3339 with a 4-digit year; len counts bytes


def test_times_compare_with_strings_parsed_as_times():
    # golden time.out.yaml; a string that is no time is neither before nor after
    rows, logs = run_vql(
        "LET T = timestamp(epoch=1723428985) "
        "SELECT T < '2024-08-12T02:15:25.176Z' AS A, '2024-08-12T02:15:25.176Z' < T AS B, "
        "T > '2024-08-12T02:15:25.176Z' AS C, '2024-08-12T02:15:25.176Z' > T AS D, "
        "T > 'not a time' AS E, T < 'not a time' AS F FROM scope()")
    assert logs == []
    assert rows[0] == [{"A": False, "B": True, "C": True, "D": False, "E": False, "F": False}]


def test_parse_tz_reads_zoneless_time_strings_golden():
    from velonb.emulator import gojson

    # golden time.out.yaml (Brisbane is UTC+10, no daylight saving)
    rows, logs = run_vql(
        "LET PARSE_TZ <= 'Australia/Brisbane' "
        "SELECT timestamp(string='March 3 2019') AS A, "
        "timestamp(string='March 3 2019') < '2021-10-01' AS B, "
        "timestamp(string='2021-10-01T10:53:32') AS C, "
        "timestamp(string='2021-10-01T10:53:32Z') AS D, "
        "timestamp(string='8/30/2021 6:01:28 PM', format='1/2/2006 3:04:05 PM') AS F "
        "FROM scope()")
    assert logs == []
    assert json.loads(gojson.dumps(rows[-1][0])) == {
        "A": "2019-03-02T14:00:00Z", "B": True, "C": "2021-10-01T00:53:32Z",
        "D": "2021-10-01T10:53:32Z", "F": "2021-08-30T08:01:28Z"}


def test_parse_zone_falls_back_to_tz_then_utc():
    rows, logs = run_vql("LET TZ <= 'Europe/Berlin' "
                         "SELECT timestamp(string='2021-10-01 10:53:32') AS X FROM scope()")
    assert logs == [] and rows[-1][0]["X"] == dt.datetime(2021, 10, 1, 8, 53, 32, tzinfo=UTC)
    rows, logs = run_vql("LET PARSE_TZ <= 'Mars/Olympus' "
                         "SELECT timestamp(string='2021-10-01 10:53:32') AS X, "
                         "timestamp(string='2021-10-02 10:53:32') AS Y FROM scope()")
    assert rows[-1][0]["X"] == dt.datetime(2021, 10, 1, 10, 53, 32, tzinfo=UTC)
    assert logs == ["Unable to load timezone from PARSE_TZ Mars/Olympus: unknown time zone "
                    "Mars/Olympus, using UTC"]  # once: the zone is kept for the query
