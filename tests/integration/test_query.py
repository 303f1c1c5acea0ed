"""velonb's query core against the emulator, over real gRPC and real mutual TLS on loopback."""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time

import pandas as pd
import pytest

import velonb
from velonb.errors import (
    OrgNotFoundError,
    PermissionDeniedError,
    QueryError,
    QueryInterrupted,
    QueryTimeout,
    UserNotFoundError,
    VQLRuntimeError,
    VQLSyntaxError,
    VQLWarning,
)


@pytest.fixture
def admin(emulator, tmp_path):
    path = emulator.write_api_client_config(tmp_path / "admin.yaml", name="admin",
                                            roles=("administrator",))
    with velonb.connect(path) as conn:
        yield conn


@pytest.fixture
def api_conn(emulator, tmp_path):
    path = emulator.write_api_client_config(tmp_path / "api.yaml", name="apiuser", roles=("api",))
    with velonb.connect(path) as conn:
        yield conn


def test_query_returns_typed_frame_in_server_column_order(api_conn):
    df = api_conn.query("SELECT _value AS n, format(format='host-%d', args=_value) AS host, "
                        "_value > 4 AS big FROM range(end=10)")
    assert list(df.columns) == ["n", "host", "big"]
    assert df["n"].tolist() == list(range(10))
    assert df["n"].dtype == "int64"
    assert df["host"].iloc[3] == "host-3"
    assert df["big"].dtype == bool and df["big"].sum() == 5


def test_discovery_through_environment(emulator, tmp_path, monkeypatch):
    path = emulator.write_api_client_config(tmp_path / "found.yaml", name="apiuser",
                                            roles=("api",))
    monkeypatch.setenv("VELONB_API_CONFIG", str(path))
    with velonb.connect() as conn:
        assert conn.config.source == path
        assert conn.check() is True
        assert conn.query("SELECT 1 AS one FROM scope()")["one"].tolist() == [1]


def test_execute_keeps_every_statement_logs_and_timings(api_conn):
    result = api_conn.execute(
        "LET small = SELECT * FROM range(end=3)\n"
        "SELECT _value AS a FROM small\n"
        "SELECT _value AS b FROM range(end=5)\n"
    )
    assert [len(f) for f in result.frames] == [3, 5]
    # query_id counts the LET statement, exactly as the server numbers them.
    assert result.frame_for(1)["a"].tolist() == [0, 1, 2]
    assert result.frame_for(2)["b"].tolist() == [0, 1, 2, 3, 4]
    assert result.frame is result.frames[-1] or result.frame.equals(result.frames[-1])
    assert result.logs[0].message == "Starting query execution."
    assert all(line.timestamp.tzinfo is not None for line in result.logs)
    assert any("Sending response part 0" in line.message for line in result.logs)
    assert result.elapsed > 0 and result.complete
    assert "5 rows x 1 columns" in result.summary()


def test_parts_with_changing_columns_are_merged(api_conn):
    rows = [{"a": i} if i < 1500 else {"a": i, "extra": f"x{i}"} for i in range(2500)]
    result = api_conn.execute("SELECT * FROM foreach(row=rows)", env={"rows": rows})
    df = result.frame
    assert result.parts >= 3  # 1000-row batches
    assert list(df.columns) == ["a", "extra"]
    assert df["a"].tolist() == list(range(2500))
    assert df["extra"].iloc[:1500].isna().all()
    assert df["extra"].iloc[2499] == "x2499"


def test_empty_result(api_conn):
    result = api_conn.execute("SELECT * FROM range(end=0)")
    assert len(result.frame) == 0
    assert result.parts == 1


def test_values_round_trip_exactly(api_conn):
    df = api_conn.query(
        "SELECT 9223372036854775807 AS big, -9223372036854775807 AS small, "
        "dict(a=1, b=[1, 2, dict(c='x')]) AS nested, 'héllo ☃ <b>&amp;' AS text, "
        "NULL AS nothing FROM scope()"
    )
    row = df.iloc[0]
    assert row["big"] == 2**63 - 1 and row["small"] == -(2**63) + 1
    assert row["nested"] == {"a": 1, "b": [1, 2, {"c": "x"}]}
    assert row["text"] == "héllo ☃ <b>&amp;"
    assert row["nothing"] is None or pd.isna(row["nothing"])


def test_typed_parameters_arrive_typed(api_conn):
    since = dt.datetime(2024, 3, 1, 10, 20, 30, tzinfo=dt.UTC)
    df = api_conn.query(
        "SELECT pid + 1 AS next_pid, len(list=names) AS n, names[1] AS second, opts.k AS k, "
        "since AS since, flag AS flag FROM scope()",
        env={"pid": 41, "names": ["a", "b", "c"], "opts": {"k": "v"}, "since": since,
             "flag": True},
    )
    row = df.iloc[0]
    assert row["next_pid"] == 42
    assert row["n"] == 3 and row["second"] == "b" and row["k"] == "v"
    assert row["since"] == pd.Timestamp(since)
    assert row["flag"] is True or row["flag"] == True  # noqa: E712


@pytest.mark.parametrize("value", ["' OR 1=1 --", "x\"\nSELECT * FROM info()", "LET a = 1",
                                   "/* */ // -- {}", "ünïcödé \u2028"])
def test_injection_attempts_come_back_as_literal_values(api_conn, value):
    df = api_conn.query("SELECT needle FROM scope()", env={"needle": value})
    assert df["needle"].tolist() == [value]


def test_single_row_larger_than_grpc_default_limit(api_conn):
    df = api_conn.query("LET rows <= SELECT _value FROM range(end=400000)\n"
                        "SELECT rows FROM scope()")
    assert len(df) == 1 and len(df["rows"].iloc[0]) == 400000


def test_syntax_error_is_named_with_position(api_conn):
    with pytest.raises(VQLSyntaxError) as info:
        api_conn.query("SELECT * FROM info() WHERE")
    err = info.value
    assert err.line == 1 and err.column is not None
    assert "|" in err.snippet
    assert "Starting query execution." in [line.message for line in err.result.logs]


def test_runtime_errors_warn_and_keep_rows_or_raise_when_strict(api_conn):
    vql = "SELECT * FROM range(end=3)\nSELECT * FROM no_such_plugin()"
    with pytest.warns(VQLWarning, match="no_such_plugin"):
        result = api_conn.execute(vql)
    assert len(result.frames[0]) == 3
    assert result.errors
    with pytest.raises(VQLRuntimeError) as info:
        api_conn.execute(vql, strict=True)
    assert len(info.value.result.frames[0]) == 3


def test_permission_failure_inside_query(api_conn):
    # info() needs MACHINE_STATE, which the api role lacks: a log line, no rows.
    with pytest.raises(PermissionDeniedError) as info:
        api_conn.execute("SELECT * FROM info()", strict=True)
    assert info.value.permission == "MACHINE_STATE"


def test_server_timeout_keeps_partial_rows(api_conn):
    start = time.monotonic()
    with pytest.raises(QueryTimeout) as info:
        api_conn.query("SELECT _value, sleep(ms=20) FROM range(end=100000)", timeout=1)
    assert time.monotonic() - start < 5
    assert 0 < len(info.value.partial) < 100000


def test_max_rows_cuts_and_says_so(api_conn):
    result = api_conn.execute("SELECT * FROM range(end=5000)", max_rows=1500)
    assert len(result.frame) == 1500 and result.truncated
    assert "cut at max_rows=1500" in result.summary()
    full = api_conn.execute("SELECT * FROM range(end=1500)", max_rows=1500)
    assert len(full.frame) == 1500 and not full.truncated


def test_stream_yields_batches_and_stops_after_duration(api_conn):
    start = time.monotonic()
    frames = list(api_conn.stream("SELECT _value, sleep(ms=100) FROM range(end=1000000)",
                                  duration=2.5))
    elapsed = time.monotonic() - start
    assert 2.0 < elapsed < 5
    assert len(frames) >= 2  # parts arrive every second (max_wait=1)
    values = pd.concat(frames)["_value"].tolist()
    assert values == list(range(len(values)))


def test_stream_stops_at_max_rows(api_conn):
    frames = list(api_conn.stream("SELECT * FROM range(end=100000)", max_rows=2500))
    assert sum(len(f) for f in frames) == 2500


def test_keyboard_interrupt_cancels_the_server_query(api_conn, emulator):
    timer = threading.Timer(1.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(QueryInterrupted) as info:
            api_conn.query("SELECT _value, sleep(ms=50) FROM range(end=1000000)")
    finally:
        timer.cancel()
    interrupted_at = time.monotonic()
    assert interrupted_at - start < 2.5  # surfaced within a second of the interrupt
    assert isinstance(info.value, KeyboardInterrupt)
    assert len(info.value.partial) > 0
    # ... and the server stopped running it within a second.
    while emulator.active_queries and time.monotonic() - interrupted_at < 1.0:
        time.sleep(0.02)
    assert emulator.active_queries == 0
    # The connection keeps working.
    assert len(api_conn.query("SELECT * FROM range(end=2)")) == 2


def test_eight_threads_share_one_connection(api_conn):
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(3):
                df = api_conn.query("SELECT _value + offset AS v FROM range(end=2000)",
                                    env={"offset": i * 10000})
                results[i] = df["v"].tolist()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(results[i] == list(range(i * 10000, i * 10000 + 2000)) for i in range(8))


# -- refusals -------------------------------------------------------------------------------------


def test_reader_role_cannot_query(emulator, tmp_path):
    path = emulator.write_api_client_config(tmp_path / "r.yaml", name="reader2", roles=("reader",))
    with velonb.connect(path) as conn, pytest.raises(PermissionDeniedError) as info:
        conn.query("SELECT * FROM scope()")
    assert info.value.permission == "ANY_QUERY"
    assert "acl grant reader2 --role api" in str(info.value)


def test_user_without_record(emulator, tmp_path):
    path = emulator.write_api_client_config(tmp_path / "n.yaml", name="ghost", roles=None)
    with velonb.connect(path) as conn, pytest.raises(UserNotFoundError) as info:
        conn.query("SELECT * FROM scope()")
    assert "--role api" in str(info.value)


def test_orgs(admin):
    assert admin.query("SELECT 1 AS x FROM scope()", org_id="O1234")["x"].tolist() == [1]
    with pytest.raises(OrgNotFoundError):
        admin.query("SELECT 1 AS x FROM scope()", org_id="ONOPE")


def test_empty_vql_is_refused_before_sending(api_conn):
    with pytest.raises(QueryError):
        api_conn.query("   ")


def test_parts_decoded_by_several_workers_come_back_in_order(api_conn):
    """Parts are decoded concurrently (velonb.query._DECODE_WORKERS) but appended in order."""
    from velonb import query as query_module

    assert query_module._DECODE_WORKERS >= 2
    vql = ("SELECT _value AS n, format(format='row-%d', args=_value) AS label "
           "FROM range(end=25000)")
    result = api_conn.execute(vql)
    statement = result.statements[0]
    assert statement.parts >= 25  # 1000-row parts: many decoded side by side
    frame = result.frame
    assert frame["n"].tolist() == list(range(25000))
    assert frame["label"].tolist()[24990:] == [f"row-{i}" for i in range(24990, 25000)]
