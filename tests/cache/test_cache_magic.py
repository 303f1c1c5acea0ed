"""%%vql --cache / --refresh and %vql_config --cache / --offline, through a real IPython shell."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError

from velonb.display import CACHE_MIME
from velonb.errors import CacheMiss
from velonb.magic_args import parse_vql_line
from velonb.query import Connection


def test_cache_option_takes_an_optional_ttl():
    assert parse_vql_line("df --cache", cell=True).cache == "on"
    assert parse_vql_line("--cache 2h df", cell=True).cache == "2h"
    assert parse_vql_line("--cache df --refresh", cell=True).cache == "on"
    line = parse_vql_line("--cache SELECT 1 FROM scope()", cell=False)
    assert line.cache == "on" and line.vql == "SELECT 1 FROM scope()"
    line = parse_vql_line("--cache 30m --max-rows 3 SELECT 1 FROM scope()", cell=False)
    assert (line.cache, line.max_rows, line.vql) == ("30m", 3, "SELECT 1 FROM scope()")


def records(cell) -> list[dict]:
    return [d["data"][CACHE_MIME] for d in cell.displays if CACHE_MIME in d["data"]]


def test_cell_cache_summary_and_record(run, monkeypatch):
    vql = "%%vql hosts --cache 2h\nSELECT _value AS n FROM range(end=30)"
    first = run(vql)
    assert "cached" in first.text() and "from cache" not in first.text()
    (record,) = records(first)
    assert record["source"] == "server" and len(record["entries"]) == 1
    live = run("hosts").result
    with monkeypatch.context() as m:
        m.setattr(Connection, "_run", lambda *a, **k: pytest.fail("the server was contacted"))
        again = run(vql)
    assert "from cache (" in again.text() and "old, stored" in again.text()
    assert records(again)[0]["entries"] == record["entries"]
    pd.testing.assert_frame_equal(run("hosts").result, live, check_exact=True)
    assert "from cache" not in run(vql.replace("--cache 2h", "--cache 2h --refresh")).text()
    quiet = run("%%vql q --cache --quiet\nSELECT 1 AS a FROM scope()")
    assert [d["data"] for d in quiet.displays] == [{CACHE_MIME: records(quiet)[0]}]


def test_session_policy_and_offline_mode(run, monkeypatch):
    run("%vql_config --cache on")
    run("%%vql a\nSELECT 2 AS b FROM scope()")
    run("%vql_config --offline")
    monkeypatch.setattr(Connection, "_run", lambda *a, **k: pytest.fail("contacted"))
    cell = run("%%vql a\nSELECT 2 AS b FROM scope()")
    assert "offline replay from cache" in cell.text()
    with pytest.raises(CacheMiss):
        run("%%vql\nSELECT 3 AS b FROM scope()")
    miss = run("%%vql\nSELECT 3 AS b FROM scope()", raises=CacheMiss)
    assert "SELECT 3 AS b" in miss.everything() and "--online" in miss.everything()
    assert "OFFLINE" in run("%vql_config").text()
    run("%vql_config --online --cache off")
    with pytest.raises(UsageError, match="contradict"):
        run("%vql_config --offline --online")
    with pytest.raises(UsageError, match="cache"):
        run("%vql_config --cache sometimes")


def test_cache_dir_setting(run, tmp_path):
    run(f"%vql_config --cache-dir {tmp_path / 'nb-cache'} --cache-max-size 1GB")
    run("%%vql x --cache\nSELECT 1 AS a FROM scope()")
    assert list((tmp_path / "nb-cache").glob("*/*.json"))
