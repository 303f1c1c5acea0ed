"""The cache directory: keys, layout, permissions, atomicity, damage, full disk, eviction, CLI."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
import warnings

import pandas as pd
import pytest

from velonb import cache as cache_mod
from velonb.cache import Cache, Identity, Policy, cache_key, parse_size, parse_ttl, request_fields
from velonb.cli import main
from velonb.errors import CacheError, CacheWarning
from velonb.params import bind

ME = Identity("127.0.0.1:8001", "ab" * 32, "apiuser")


def key(identity=ME, vql="SELECT * FROM info()", env=None, org="", max_rows=None):
    return cache_key(identity, request_fields(vql, bind(env), org, max_rows))


def test_key_covers_server_ca_org_user_vql_env_limit():
    base = key()
    others = [key(Identity("127.0.0.1:8002", "ab" * 32, "apiuser")),
              key(Identity("127.0.0.1:8001", "cd" * 32, "apiuser")),
              key(Identity("127.0.0.1:8001", "ab" * 32, "admin")),
              key(org="O1234"), key(vql="SELECT * FROM info() "), key(max_rows=10),
              key(env={"pid": 42}), key(env={"pid": "42"})]
    assert len({base, *others}) == len(others) + 1
    assert key(env={"pid": 42, "x": "a"}) == key(env={"x": "a", "pid": 42})
    assert key(org="") == key(org="root")


def test_policies_and_parsers():
    assert Policy.from_args(None) is None and Policy.from_args(False) is None
    assert Policy.from_args(True) == Policy()
    assert Policy.from_args("2h").ttl == parse_ttl(7200)
    assert Policy.from_args(None, refresh=True) == Policy(refresh=True)
    assert parse_ttl("7d").days == 7 and parse_ttl("90s").seconds == 90
    with pytest.raises(ValueError):
        parse_ttl("soon")
    assert parse_size("5GB") == 5 * 10**9 and parse_size("2GiB") == 2 * 2**30
    assert parse_size("none") is None


def _put(cache: Cache, k: str = "a" * 64, n: int = 3, q: str = "b" * 64):
    frame = pd.DataFrame({"n": range(n)})
    return cache.put(k, q, [frame], {"vql": "SELECT", "statements": [{"request": "velonb"}]})


def test_layout_modes_and_sidecar(tmp_path):
    cache = Cache(tmp_path / "c")
    entry = _put(cache)
    assert entry is not None
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.sidecar.parent.stat().st_mode) == 0o700
    for path in [entry.sidecar, *entry.files]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert entry.sidecar == cache.path / ("b" * 16) / ("a" * 64 + ".json")
    meta = json.loads(entry.sidecar.read_text())
    assert meta["statements"][0]["columns"] == [{"name": "n", "dtype": "int64",
                                                 "codec": "int64"}]
    assert meta["velonb_version"] and meta["created_at"] and meta["statements"][0]["sha256"]
    assert not list(cache.path.glob("*/.tmp-*"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "sidecar"])
def test_damaged_entries_are_detected(tmp_path, damage):
    cache = Cache(tmp_path / "c")
    entry = _put(cache)
    assert entry is not None
    parquet = entry.files[0]
    if damage == "truncate":
        parquet.write_bytes(parquet.read_bytes()[:-10])
    elif damage == "flip":
        data = bytearray(parquet.read_bytes())
        data[len(data) // 2] ^= 0xFF
        parquet.write_bytes(bytes(data))
    elif damage == "delete":
        parquet.unlink()
    else:
        entry.sidecar.write_text("{not json")
    with pytest.raises(cache_mod.Damaged):
        cache.get("a" * 64, "b" * 64)


def test_full_disk_keeps_old_entry_and_warns(tmp_path, monkeypatch):
    cache = Cache(tmp_path / "c")
    _put(cache, n=3)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(cache_mod.os, "fsync", full)
        with pytest.warns(CacheWarning, match="disk is full"):
            assert _put(cache, n=5) is None
    hit = cache.get("a" * 64, "b" * 64)
    assert hit is not None and len(hit.frames[0]) == 3
    assert not [p for p in cache.path.rglob("*") if p.name.startswith(".tmp-")]


def test_two_processes_writing_the_same_key(tmp_path):
    script = textwrap.dedent(f"""
        import pandas as pd, sys
        from velonb.cache import Cache
        c = Cache({str(tmp_path / 'c')!r})
        n = int(sys.argv[1])
        for i in range(15):
            c.put("a" * 64, "b" * 64, [pd.DataFrame({{"n": range(n + i)}})],
                  {{"statements": [{{}}]}})
            hit = c.get("a" * 64, "b" * 64)
            assert hit is not None, "an entry disappeared"
        print("ok", flush=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(n)], stdout=subprocess.PIPE,
                              text=True) for n in (100, 2000)]
    # "ok": both finished every put/get (checked this way: pyarrow may abort at interpreter exit)
    assert [p.communicate(timeout=60)[0].strip() for p in procs] == ["ok", "ok"]
    cache = Cache(tmp_path / "c")
    hit = cache.get("a" * 64, "b" * 64)
    assert hit is not None and len(hit.frames[0]) in (114, 2014)
    assert len(cache.ls()) == 1


def test_ls_info_clear_and_eviction(tmp_path):
    cache = Cache(tmp_path / "c", max_bytes=10**9)
    for i in range(4):
        _put(cache, k=f"{i:x}" * 64, q=f"{i:x}" * 64, n=1000)
    entries = cache.ls()
    assert [e.key[0] for e in entries] == ["0", "1", "2", "3"]
    assert cache.info("2").rows == 1000
    with pytest.raises(CacheError):
        cache.info("9")
    one = entries[0].size
    small = Cache(tmp_path / "c", max_bytes=int(one * 2.5))
    _put(small, k="4" * 64, q="4" * 64, n=1000)
    assert [e.key[0] for e in small.ls()] == ["3", "4"]  # oldest first
    old = json.loads(small.ls()[0].sidecar.read_text())
    old["created_at"] = "2020-01-01T00:00:00+00:00"
    small.ls()[0].sidecar.write_text(json.dumps(old))
    assert small.clear(older_than="7d") == 1 and len(small.ls()) == 1
    assert small.clear() == 1 and small.ls() == [] and small.size == 0


def test_cli_cache_commands(tmp_path, capsys):
    cache = Cache(tmp_path / "c")
    _put(cache)
    d = str(cache.path)
    assert main(["cache", "--dir", d, "ls"]) == 0
    assert "aaaaaaaaaaaa" in capsys.readouterr().out
    assert main(["cache", "--dir", d, "info", "aaaa"]) == 0
    assert '"sha256"' in capsys.readouterr().out
    assert main(["cache", "--dir", d, "info", "zzz"]) == 1
    assert main(["cache", "--dir", d, "clear", "--older-than", "7d"]) == 0
    assert "removed 0" in capsys.readouterr().out
    assert main(["cache", "--dir", d, "clear"]) == 0 and cache.ls() == []


def test_cache_dir_resolution(tmp_path, monkeypatch, cache_dir):
    assert cache_mod.default_cache_dir() == cache_dir
    monkeypatch.delenv("VELONB_CACHE_DIR")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".velonb-cache").mkdir()
    assert cache_mod.default_cache_dir() == tmp_path / ".velonb-cache"
    cache_mod.set_cache_dir(tmp_path / "x")
    assert cache_mod.default_cache_dir() == tmp_path / "x"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cache_mod.is_offline()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "case.json").write_text('{"offline": true}')
    assert cache_mod.is_offline()
    monkeypatch.setenv("VELONB_OFFLINE", "0")
    assert not cache_mod.is_offline()
    with cache_mod.offline():
        assert cache_mod.is_offline()
    assert os.environ["VELONB_OFFLINE"] == "0"
