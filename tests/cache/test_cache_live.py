"""Connection.execute / stream through the cache, and offline replay, against the emulator."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

import velonb
from velonb.cache import Cache
from velonb.errors import CacheMiss, CacheWarning, VQLWarning
from velonb.query import Connection

WIDE = ("SELECT _value AS n, format(format='host-%d', args=_value) AS host, "
        "dict(a=_value, b=[1, 2]) AS d FROM range(end=3000)")


def no_network(monkeypatch):
    """Any call that would reach the server fails the test."""
    def boom(*args, **kwargs):
        raise AssertionError("the server was contacted")

    monkeypatch.setattr(Connection, "_run", boom)
    monkeypatch.setattr(Connection, "check", boom)


@pytest.fixture
def conn(api_config):
    with velonb.connect(api_config) as c:
        yield c


def test_second_run_comes_from_the_cache_exactly(conn, monkeypatch, cache_dir):
    live = conn.execute(WIDE, cache=True)
    assert live.cache.source == "server" and live.cache.stored
    with monkeypatch.context() as m:
        no_network(m)
        again = conn.execute(WIDE, cache=True)
    pd.testing.assert_frame_equal(again.frame, live.frame, check_exact=True)
    assert again.cache.source == "cache" and "from cache (" in again.summary()
    assert str(cache_dir) in again.summary()
    assert again.rows == 3000 and len(again.statements) == 1
    sidecar = json.loads(next(cache_dir.glob("*/*.json")).read_text())
    assert sidecar["user"] == "apiuser" and sidecar["vql"] == WIDE
    assert sidecar["statements"][0]["rows"] == 3000 and sidecar["org"] == "root"
    text = json.dumps(sidecar)
    assert "PRIVATE KEY" not in text and "CERTIFICATE" not in text


def test_off_by_default_ttl_refresh_and_bindings(conn, monkeypatch, cache_dir):
    conn.execute("SELECT 1 AS a FROM scope()")
    assert not cache_dir.exists()  # off unless asked
    first = conn.execute("SELECT pid AS p FROM scope()", env={"pid": 42}, cache="1h")
    assert first.frame["p"].tolist() == [42]
    other = conn.execute("SELECT pid AS p FROM scope()", env={"pid": "42"}, cache="1h")
    assert other.cache.source == "server" and other.frame["p"].tolist() == ["42"]
    assert conn.execute("SELECT pid AS p FROM scope()", env={"pid": 42},
                        cache="1h").cache.source == "cache"
    assert conn.execute("SELECT pid AS p FROM scope()", env={"pid": 42},
                        cache=dt.timedelta(0)).cache.source == "server"  # expired
    assert conn.execute("SELECT pid AS p FROM scope()", env={"pid": 42}, cache=True,
                        refresh=True).cache.source == "server"


def test_multi_statement_results_and_logs_replay(conn, monkeypatch):
    vql = ("SELECT _value AS a FROM range(end=2)\nSELECT * FROM info()\n"
           "SELECT 'x' AS b FROM range(end=3)")
    with pytest.warns(VQLWarning):
        live = conn.execute(vql, cache=True)
    no_network(monkeypatch)
    with pytest.warns(VQLWarning):  # the server's ERROR lines are replayed too
        again = conn.execute(vql, cache=True)
    assert [len(f) for f in again.frames] == [len(f) for f in live.frames]
    for a, b in zip(again.frames, live.frames, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert [line.message for line in again.logs] == [line.message for line in live.logs]
    assert [s.query_id for s in again.statements] == [s.query_id for s in live.statements]


def test_users_and_orgs_never_share_entries(conn, make_config):
    conn.execute("SELECT 1 AS a FROM scope()", cache=True)
    with velonb.connect(make_config("admin")) as admin:
        assert admin.execute("SELECT 1 AS a FROM scope()", cache=True).cache.source == "server"
        assert admin.execute("SELECT 1 AS a FROM scope()", cache=True,
                             org_id="O1234").cache.source == "server"
    assert len(Cache().ls()) == 3


def test_damaged_entry_is_refetched_with_a_warning(conn):
    conn.execute(WIDE, cache=True)
    (entry,) = Cache().ls()
    entry.files[0].write_bytes(entry.files[0].read_bytes()[:100])
    with pytest.warns(CacheWarning, match="checksum"):
        result = conn.execute(WIDE, cache=True)
    assert result.cache.source == "server" and result.cache.stored and len(result.frame) == 3000
    assert conn.execute(WIDE, cache=True).cache.source == "cache"


def test_full_disk_still_returns_the_live_result(conn, monkeypatch):
    import velonb.cache as cache_mod

    conn.execute("SELECT 1 AS a FROM scope()", cache=True)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(cache_mod, "_write_atomic", full)
        with pytest.warns(CacheWarning, match="disk is full"):
            result = conn.execute(WIDE, cache=True)
    assert len(result.frame) == 3000 and not result.cache.stored
    assert conn.execute("SELECT 1 AS a FROM scope()", cache=True).cache.source == "cache"


def test_offline_replays_and_misses_name_the_query(conn, monkeypatch, tmp_path):
    conn.execute(WIDE, cache=True)
    conn.execute(WIDE, max_rows=10, cache=True)
    no_network(monkeypatch)
    with velonb.offline():
        result = conn.execute(WIDE)  # no cache= needed offline
        assert result.cache.offline and len(result.frame) == 3000
        assert len(conn.execute(WIDE, max_rows=10).frame) == 10
        with pytest.raises(CacheMiss, match=r"range\(end=4\)") as err:
            conn.execute("SELECT * FROM range(end=4)")
        assert err.value.vql == "SELECT * FROM range(end=4)"
        # without any config: velonb.replay
        assert len(velonb.replay(WIDE).frame) == 3000
    monkeypatch.setenv("VELONB_OFFLINE", "1")
    assert len(conn.execute(WIDE).frame) == 3000


def test_offline_with_the_server_gone(emulator, tmp_path):
    from velonb.emulator import Emulator

    own = Emulator().start()
    config = own.write_api_client_config(tmp_path / "own.yaml", name="admin")
    with velonb.connect(config) as c:
        live = c.execute(WIDE, cache=True)
        own.stop(grace=0)
        with velonb.offline():
            again = c.execute(WIDE)
    pd.testing.assert_frame_equal(again.frame, live.frame, check_exact=True)


def test_bounded_streams_are_cached_unbounded_are_not(conn, monkeypatch):
    vql = "SELECT _value AS n FROM range(end=50)"
    live = pd.concat(list(conn.stream(vql, max_rows=20, cache=True)), ignore_index=True)
    assert len(live) == 20
    with pytest.warns(CacheWarning, match="not cached"):
        assert sum(len(f) for f in conn.stream(vql, cache=True)) == 50
    with monkeypatch.context() as m:
        no_network(m)
        again = list(conn.stream(vql, max_rows=20, cache=True))
    assert len(again) == 1
    pd.testing.assert_frame_equal(again[0], live, check_exact=True)
    with velonb.offline(), pytest.raises(CacheMiss, match="unbounded"):
        list(conn.stream(vql))
