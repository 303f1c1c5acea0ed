"""While a query runs: the progress line, the live --stream table, and kernel interrupts."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from ipython_shell import strip_ansi

from velonb.errors import QueryInterrupted

SLOW = "SELECT _value AS n, sleep(ms=25) FROM range(end=60)"  # about 1.5 s, a part a second


def test_notebook_progress_updates_in_place_then_becomes_the_summary(run):
    run("%config Velonb.progress = 'notebook'")
    cell = run(f"%%vql slow\n{SLOW}")
    first = cell.displays[0]
    display_id = first["transient"]["display_id"]
    line = first["data"]["text/plain"]
    assert line.startswith("\u23f3 ") and " rows \u00b7 " in line and " parts \u00b7 " in line
    assert "kB" in line
    updates = cell.updates
    assert updates and all(u["transient"]["display_id"] == display_id for u in updates)
    assert "60 rows x 2 columns" in updates[-1]["data"]["text/plain"]  # condensed to the summary
    assert len(cell.displays) == 1 + len(updates)  # no second summary below it


def test_terminal_progress_is_a_carriage_return_line_on_stderr(run):
    run("%config Velonb.progress = 'terminal'")
    cell = run(f"%%vql slow\n{SLOW}")
    assert "\r⏳ " in cell.stderr and " rows · " in cell.stderr
    assert cell.stderr.endswith("\r")  # erased at the end
    assert "60 rows x 2 columns" in cell.text()


def test_quick_queries_and_quiet_show_no_progress(run):
    run("%config Velonb.progress = 'notebook'")
    cell = run("%%vql\nSELECT * FROM range(end=3)")
    assert not any(d["data"]["text/plain"].startswith("⏳") for d in cell.displays)
    cell = run(f"%%vql --quiet x\n{SLOW}")
    assert cell.displays == [] and cell.stderr == ""


def test_stream_shows_a_live_table_of_the_latest_rows(run):
    run("%config Velonb.progress = 'notebook'")
    start = time.monotonic()
    cell = run("%%vql events --stream --duration 2.2 --keep 3\n"
               "SELECT _value AS seq, sleep(ms=100) FROM range(end=100000)")
    assert 1.8 < time.monotonic() - start < 5
    events = run("events").result
    assert len(events) >= 10 and events["seq"].tolist() == list(range(len(events)))
    live = [d for d in cell.displays if "live:" in d["data"]["text/plain"]]
    assert len(live) >= 2 and live[0]["transient"]["display_id"]
    assert all(d["update"] for d in live[1:])
    last = live[-1]["data"]["text/plain"]
    assert "latest 3 shown" in last and str(len(events) - 1) in last
    assert "<table" in live[-1]["data"]["text/html"]
    assert f"{len(events)} rows x 2 columns" in cell.text() and "streamed" in cell.text()


def test_stream_without_dest_returns_all_rows_and_stops_at_max_rows(run):
    cell = run("%%vql --stream --max-rows 2500\nSELECT * FROM range(end=100000)")
    assert len(cell.result) == 2500


@pytest.fixture
def interrupt_after():
    timers: list[threading.Timer] = []

    def arm(seconds: float) -> None:
        timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
        timers.append(timer)
        timer.start()

    yield arm
    for timer in timers:
        timer.cancel()


def test_interrupt_cancels_keeps_rows_and_fails_the_cell(run, emulator, interrupt_after):
    interrupt_after(1.2)
    start = time.monotonic()
    cell = run("%%vql procs\nSELECT _value, sleep(ms=50) FROM range(end=1000000)",
               raises=QueryInterrupted)
    interrupted_at = time.monotonic()
    assert interrupted_at - start < 2.5
    assert isinstance(cell.error, KeyboardInterrupt)  # so Run-All stops at this cell
    text = strip_ansi(cell.everything())
    assert "QueryInterrupted" in text and "cancelled on the server" in text
    assert "rows received so far are in _vql_partial" in text
    assert len(run("_vql_partial").result) > 0
    assert "procs" not in run("dir()").result
    while emulator.active_queries and time.monotonic() - interrupted_at < 1.0:
        time.sleep(0.02)
    assert emulator.active_queries == 0
    assert len(run("%vql SELECT * FROM range(end=2)").result) == 2  # the session still works


def test_interrupting_a_stream_keeps_the_rows_in_dest(run, interrupt_after):
    interrupt_after(1.5)
    cell = run("%%vql feed --stream\nSELECT _value AS seq, sleep(ms=50) FROM range(end=1000000)",
               raises=QueryInterrupted)
    assert "rows streamed so far are in feed and _vql_partial" in strip_ansi(cell.everything())
    assert len(run("feed").result) > 0
