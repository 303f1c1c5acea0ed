"""Evaluation semantics: operators, NULL, LET lazy/materialised, WHERE/GROUP/ORDER/LIMIT."""

import threading
import time

import pytest
from wire_helpers import run_vql

from velonb.emulator.vql import Scope, execute, parse

run = run_vql


def one(expr, **kw):
    rows, _ = run(f"SELECT {expr} AS X FROM scope()", **kw)
    return rows[0][0]["X"]


@pytest.mark.parametrize(
    "expr,value",
    [
        ("1 + 2", 3),
        ("7 / 2", 3.5),
        ("6 / 3", 2.0),
        ("1 / 0", None),
        ("2 * 3", 6),
        ("'ab' * 3", "ababab"),
        ("2.5 * 2", 5.0),
        ("10 - 3", 7),
        ("'a' + 'b'", "ab"),
        ("(1, 2) + (3, 4)", [1, 2, 3, 4]),
        ("(1, 2) + 4", [1, 2, 4]),
        ("dict(a=1) + dict(b=2)", {"a": 1, "b": 2}),
        ("dict(a=1, b=2) - dict(b=0)", {"a": 1}),
        ("NULL + 1", None),
        ("1 = 1.0", True),
        ("'1' = 1", False),
        ("NULL = NULL", True),
        ("1 != 2", True),
        ("2 > 1", True),
        ("'b' > 'a'", True),
        ("1 < 'a'", False),
        ("3 >= 3", True),
        ("2 IN (1, 2)", True),
        ("'ell' IN 'hello'", True),
        ("'a' IN dict(a=1)", True),
        ("'HELLO' =~ 'ell'", True),
        ("'abc' =~ '^b'", False),
        # velociraptor's regex protocols: numbers and times as %v (golden protocols.out.yaml),
        # dicts as their JSON; booleans match nothing
        ("10 =~ '1'", True),
        ("timestamp(epoch=1666796776) =~ '2022'", True),
        ("timestamp(epoch=1666796776) =~ '^2022-10-26 15:06:16 [+]0000 UTC$'", True),
        ("1234567.0 =~ '^1.234567e[+]06$'", True),
        ("dict(Name='svchost.exe', Pid=4) =~ '\"Pid\":4'", True),
        ("dict(a='<b>') =~ 'u003c'", True),
        ("TRUE =~ 'true'", False),
        ("NOT TRUE", False),
        ("NULL || 'X'", "X"),
        ("'A' || 'B'", "A"),
        ("'A' OR 'B'", "A"),
        ("FALSE OR 'B'", True),
        ("TRUE && 'XX'", "XX"),
        ("TRUE AND 'XX'", True),
        ("NULL && ''", False),
        ("TRUE && 1 || 2", 1),
        ("-1 AND TRUE", False),
        ("0x10 + 1", 17),
        ("-5 + 2", -3),
        ("9223372036854775807 + 1", -9223372036854775808),
        ("(1, 2, 3)[-1]", 3),
        ("(0, 1, 2, 3, 4)[1:3]", [1, 2]),
        ("(0, 1, 2, 3, 4)[-2:]", [3, 4]),
        ("'Hello World'[-5:]", "World"),
        ("dict(a=dict(b=5)).a.b", 5),
        ("dict(a=1).missing", None),
        ("(1, 2)[5]", None),
    ],
)
def test_operators(expr, value):
    got = one(expr)
    assert got == value and type(got) is type(value)


def test_or_binds_tighter_than_and():
    # vfilter: a AND b OR c == a AND (b OR c)
    assert one("FALSE AND FALSE OR TRUE") is False


def test_let_lazy_reevaluated_each_use():
    rows, logs = run(
        "LET lazy = SELECT log(message='eval %v', args=_value, dedup=-1) AS L FROM range(end=2) "
        "SELECT * FROM lazy SELECT * FROM lazy"
    )
    assert rows == [[{"L": True}, {"L": True}], [{"L": True}, {"L": True}]]
    assert logs == ["DEFAULT:eval 0", "DEFAULT:eval 1"] * 2


def test_lazy_let_defined_but_unused_never_runs():
    _, logs = run("LET X = SELECT log(message='boom') FROM scope() LET Y = log(message='boom2')")
    assert logs == []


def test_let_materialised_runs_once():
    rows, logs = run(
        "LET X <= SELECT log(message='ran %v', args=_value, dedup=-1) FROM range(end=2) "
        "SELECT * FROM X SELECT * FROM X"
    )
    assert logs == ["DEFAULT:ran 0", "DEFAULT:ran 1"]
    assert len(rows) == 2 and len(rows[0]) == 2


def test_member_of_a_lazy_let_expression_reduces_it_each_time():
    """vfilter's AssociativeDispatcher reduces a StoredExpression in a sub-scope before the
    member lookup, so ``X.a`` works on ``LET X = dict(...)`` (not only on ``LET X <=``)."""
    rows, logs = run(
        "LET X = dict(a=dict(b=2), n=log(message='reduced', dedup=-1)) "
        "SELECT X.a.b AS B, X['a'] AS A, X.missing AS M FROM scope()")
    assert rows == [[{"B": 2, "A": {"b": 2}, "M": None}]]
    assert logs == ["DEFAULT:reduced"] * 3  # not cached: one reduction per use


def test_let_lazy_expression_and_stored_query_call():
    rows, _ = run(
        "LET X(foo) = SELECT *, foo FROM range(start=foo, end=foo + 2) "
        "SELECT * FROM X(foo=5) "
        "SELECT X(foo=1).foo AS F FROM scope()"
    )
    assert rows[0] == [{"_value": 5, "foo": 5}, {"_value": 6, "foo": 5}]
    assert rows[1] == [{"F": [1, 1]}]


def test_stored_expression_defaults_and_masking_warning():
    rows, logs = run(
        "LET Y <= 7 LET F(X=2, Y) = X + Y SELECT F(Y=1), F(), F(X=1, Y=4) FROM scope()"
    )
    assert rows == [[{"F(Y=1)": 3, "F()": 9, "F(X=1, Y=4)": 5}]]
    _, logs = run("LET format = 5 SELECT format, format(format='%v', args=1) AS A FROM scope()")
    assert logs == ["WARN:LET expression is masking a built in function format"]


def test_materialised_with_params_warns():
    _, logs = run("LET F(a) <= 1")
    assert logs == [
        "WARN:Expression F takes parameters but is materialized! Did you mean to use '='? "
    ]


def test_star_and_extra_columns():
    rows, _ = run(
        "LET X = SELECT _value AS foo, 2 AS bar FROM range(end=1) "
        "SELECT 1000 + foo AS foo, *, 2 FROM X"
    )
    assert rows == [[{"foo": 1000, "bar": 2, "2": 2}]]


def test_where_sees_aliases_and_is_lazy():
    rows, logs = run(
        "SELECT _value AS V, log(message='x%v', args=_value, dedup=-1) AS L "
        "FROM range(end=3) WHERE V = 1"
    )
    assert rows == [[{"V": 1, "L": True}]]
    assert logs == ["DEFAULT:x1"]


def test_group_by_count_and_order():
    rows, _ = run(
        "SELECT _value AS X, count() AS C FROM foreach(row=(1, 1, 8, 3, 3, 3)) GROUP BY X"
    )
    assert rows == [[{"X": 1, "C": 2}, {"X": 3, "C": 3}, {"X": 8, "C": 1}]]


def test_order_by_desc_and_limit():
    rows, _ = run("SELECT _value AS X FROM foreach(row=(1, 8, 3, 2)) ORDER BY X DESC LIMIT 2")
    assert rows == [[{"X": 8}, {"X": 3}]]
    rows, _ = run("SELECT * FROM range(end=5) LIMIT 0")
    assert rows == [[{"_value": 0}]]


def test_count_without_group_by_counts_rows():
    rows, _ = run("SELECT count() AS A, count() AS B FROM foreach(row=[0, 1, 2])")
    assert rows == [[{"A": 1, "B": 1}, {"A": 2, "B": 2}, {"A": 3, "B": 3}]]


def test_subselect_column():
    rows, _ = run(
        "SELECT { SELECT * FROM range(start=3, end=5) WHERE FALSE } AS Empty, "
        "{ SELECT _value FROM range(end=1) } AS One, "
        "{ SELECT _value FROM range(end=2) } AS Two FROM scope()"
    )
    assert rows == [[{"Empty": None, "One": 0, "Two": [0, 1]}]]


def test_stored_query_in_column_is_materialised():
    rows, _ = run("LET Q = SELECT _value FROM range(end=2) SELECT Q FROM scope()")
    assert rows == [[{"Q": [{"_value": 0}, {"_value": 1}]}]]


def test_env_values_are_strings():
    rows, _ = run("SELECT Hostname, Hostname + 'x' AS Y FROM scope()", env={"Hostname": "web1"})
    assert rows == [[{"Hostname": "web1", "Y": "web1x"}]]


def test_symbol_not_found_log():
    rows, logs = run("SELECT Foo FROM scope()", env={"Hostname": "h"})
    assert rows == [[{"Foo": None}]]
    assert logs == [
        "ERROR:Symbol Foo not found. Current Scope is [NULL], "
        "[Hostname, _SessionId, $device_manager, config, $acl, Artifact, $repository, $root], "
        "[$Query], []"
    ]


def test_dotted_symbol_not_found_log():
    _, logs = run("LET A = 1 SELECT Foo.Bar FROM scope()")
    assert logs[0].startswith(
        "ERROR:While resolving Foo.Bar Symbol Foo not found. Current Scope is "
    )
    assert logs[0].endswith("[A], [$Query], []")


def test_plugin_not_found_logs():
    rows, logs = run("SELECT * FROM rang()")
    assert rows == [[]]
    assert logs[0].startswith("ERROR:Plugin rang not found. Current Scope is [NULL], [")
    assert logs[1] == "ERROR:Plugin rang not found. Did you mean range? "
    _, logs = run("SELECT * FROM format()")
    assert logs[1] == (
        'ERROR:Plugin format not found. There is a VQL function called "format" '
        "- did you mean to call this function instead?"
    )


def test_function_misuse_logs():
    _, logs = run("SELECT format FROM scope()")
    assert logs[0].startswith("ERROR:Symbol format not found. Current Scope is [NULL]")
    _, logs = run("LET X = 1 SELECT X() FROM scope()")
    assert logs == []
    _, logs = run("LET X <= 1 SELECT X() FROM scope()")
    assert logs == ["ERROR:Symbol X is not a function but it is being called."]


def test_cancellation_stops_range_and_sleep():
    ev = threading.Event()
    scope = Scope(cancel=ev)
    it = execute(parse("SELECT * FROM range(end=100000000000)")[0], scope)
    assert next(it) == {"_value": 0}
    ev.set()
    t = time.monotonic()
    rest = sum(1 for _ in it)
    assert rest < 2048 and time.monotonic() - t < 1

    ev2 = threading.Event()
    scope2 = Scope(cancel=ev2)
    threading.Timer(0.2, ev2.set).start()
    t = time.monotonic()
    rows = list(execute(parse("SELECT sleep(time=60) FROM range(end=100)")[0], scope2))
    assert time.monotonic() - t < 1.5
    assert len(rows) <= 1


def test_range_throughput():
    scope = Scope()
    t = time.monotonic()
    n = sum(1 for _ in execute(parse("SELECT * FROM range(end=1000000)")[0], scope))
    assert n == 1000000
    assert n / (time.monotonic() - t) > 200_000


def test_stack_overflow_does_not_hang():
    rows, logs = run("LET X = 1 + X SELECT X FROM scope()")
    assert rows == [[{"X": None}]]
    assert any(line.startswith("Stack Overflow: ") for line in logs)
