"""Bad input: broken configs, hostile parameter values, damaged or planted cache files, hostile
pack members and upload names, random JSON parts. Each is refused clearly, never trusted."""

from __future__ import annotations

import json
import os
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import velonb
from velonb.cache import Cache
from velonb.config import config_from_dict, load_config
from velonb.download import _inside, _local_name, safe_relpath
from velonb.errors import CacheError, CacheWarning, ConfigError, ResponseDecodeError
from velonb.frames import frame_from_parts, reference_frame
from velonb.pack import unpack

# --- configs -------------------------------------------------------------------------------------

ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
    for i in range(9))


@pytest.fixture
def good(api_config: Path) -> dict[str, str]:
    return dict(yaml.safe_load(api_config.read_text()))


def _write(tmp_path: Path, data: bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_broken_config_files(tmp_path: Path, good: dict[str, str],
                             make_config: Callable[..., Path]) -> None:
    other = yaml.safe_load(make_config("investigator").read_text())
    cases: dict[str, bytes] = {
        "empty": b"",
        "binary": bytes(range(256)) * 8,
        "huge": b"a: " + b"x" * (2 << 20),
        "alias bomb": ALIAS_BOMB.encode(),
        "deep nesting": b"[" * 5000 + b"]" * 5000,
        "a list": b"- 1\n- 2\n",
        "wrong types": yaml.safe_dump({**good, "client_cert": 12, "ca_certificate": [1, 2],
                                       "max_grpc_recv_size": "lots"}).encode(),
        "garbage PEM": yaml.safe_dump({**good, "client_cert": "-----BEGIN CERTIFICATE-----\n"
                                       "bm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"}).encode(),
        "key of another cert": yaml.safe_dump(
            {**good, "client_private_key": other["client_private_key"]}).encode(),
        "no key": yaml.safe_dump({k: v for k, v in good.items()
                                  if k != "client_private_key"}).encode(),
        "bad connection string": yaml.safe_dump(
            {**good, "api_connection_string": "not a target\x00"}).encode(),
    }
    for name, data in cases.items():
        start = time.monotonic()
        with pytest.raises(ConfigError) as info:
            load_config(_write(tmp_path, data))
        assert time.monotonic() - start < 3, name
        assert "PRIVATE KEY" not in str(info.value), name


def test_directory_and_fifo_are_not_configs(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo):  # a FIFO would block a naive open(): refused before reading
        with pytest.raises(ConfigError):
            load_config(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000) | st.text(max_size=500).map(str.encode))
def test_random_config_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), data)
        start = time.monotonic()
        with pytest.raises(ConfigError):
            load_config(path)
        assert time.monotonic() - start < 3


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(["ca_certificate", "client_cert", "client_private_key",
                                        "api_connection_string", "name", "max_grpc_recv_size",
                                        "pinned_server_name"]),
                       st.none() | st.integers() | st.text(max_size=50) | st.lists(st.integers(),
                                                                                    max_size=3)))
def test_random_config_dicts(data: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        config_from_dict(data)


# --- parameters ----------------------------------------------------------------------------------

HOSTILE = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80) | \
    st.sampled_from(["'", '"', "\\", "x' OR 1=1 --", "*/ LET x = 1 /*", "\n SELECT * FROM info()",
                     "{x}", "${x}", "LET y <= SELECT * FROM info()", "// comment", "\u202e",
                     "\x00", "\U0001d54d\U0001d548\U0001d543"])


@pytest.fixture(scope="module")
def param_conn(emulator: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    path = emulator.write_api_client_config(  # type: ignore[attr-defined]
        tmp_path_factory.mktemp("params") / "c.yaml", name="apiuser", roles=("api",))
    with velonb.connect(str(path)) as conn:
        yield conn


@settings(max_examples=50, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=HOSTILE)
def test_parameters_are_values_never_vql(param_conn: velonb.Connection, value: str) -> None:
    result = param_conn.execute("SELECT x, len(list=x) AS n FROM scope()", env={"x": value},
                                strict=True)
    assert result.frame["x"].tolist() == [value]
    assert len(result.statements) == 1 and len(result.frame) == 1


# --- cache ---------------------------------------------------------------------------------------

VQL = "SELECT _value AS n FROM range(end=10)"


@pytest.fixture
def cached(api_config: Path, tmp_path: Path) -> Iterator[tuple[velonb.Connection, Path]]:
    cache_dir = tmp_path / "cache"
    with velonb.connect(str(api_config)) as conn:
        conn.execute(VQL, cache=True, cache_dir=cache_dir)
        yield conn, cache_dir


def _refetched(conn: velonb.Connection, cache_dir: Path) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = conn.execute(VQL, cache=True, cache_dir=cache_dir)
    assert result.frame["n"].tolist() == list(range(10))
    assert result.cache is None or result.cache.source == "server"
    return [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def _one(cache_dir: Path, pattern: str) -> Path:
    (path,) = [p for p in cache_dir.rglob(pattern) if not p.name.startswith(".")]
    return path


def test_truncated_parquet_is_refetched(cached: tuple[velonb.Connection, Path]) -> None:
    conn, cache_dir = cached
    parquet = _one(cache_dir, "*.parquet")
    parquet.write_bytes(parquet.read_bytes()[:50])
    assert _refetched(conn, cache_dir)


def test_checksum_mismatch_is_refetched(cached: tuple[velonb.Connection, Path]) -> None:
    conn, cache_dir = cached
    parquet = _one(cache_dir, "*.parquet")
    data = bytearray(parquet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    parquet.write_bytes(bytes(data))
    assert any("checksum" in w for w in _refetched(conn, cache_dir))


def test_tampered_sidecar_is_refetched(cached: tuple[velonb.Connection, Path]) -> None:
    conn, cache_dir = cached
    sidecar = _one(cache_dir, "*.json")
    meta = json.loads(sidecar.read_text())
    meta["statements"][0]["rows"] = 3
    meta["statements"][0]["sha256"] = "0" * 64
    sidecar.write_text(json.dumps(meta))
    _refetched(conn, cache_dir)
    sidecar.write_text("{not json")
    _refetched(conn, cache_dir)


def test_sidecar_cannot_point_outside_the_cache(cached: tuple[velonb.Connection, Path],
                                                tmp_path: Path) -> None:
    """A tampered sidecar naming ``../../victim`` must not make clear() delete that file."""
    conn, cache_dir = cached
    victim = tmp_path / "victim.txt"
    victim.write_text("evidence")
    sidecar = _one(cache_dir, "*.json")
    meta = json.loads(sidecar.read_text())
    meta["statements"][0]["file"] = os.path.relpath(victim, sidecar.parent)
    sidecar.write_text(json.dumps(meta))
    Cache(cache_dir).clear()
    _refetched(conn, cache_dir)
    Cache(cache_dir).clear()
    assert victim.read_text() == "evidence"


def test_planted_symlinks_are_not_followed(cached: tuple[velonb.Connection, Path],
                                           tmp_path: Path) -> None:
    conn, cache_dir = cached
    sidecar = _one(cache_dir, "*.json")
    # 1. the sidecar replaced by a link to a file elsewhere: not read, the query is re-run
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    planted = elsewhere / sidecar.name
    meta = json.loads(sidecar.read_text())
    planted.write_text(json.dumps(meta))
    sidecar.unlink()
    sidecar.symlink_to(planted)
    _refetched(conn, cache_dir)
    assert planted.read_text() == json.dumps(meta)  # the link was replaced, not written through
    # 2. the entry directory replaced by a link to a directory elsewhere: nothing written there
    entry_dir = sidecar.parent
    for path in entry_dir.iterdir():
        path.unlink()
    entry_dir.rmdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    entry_dir.symlink_to(outside, target_is_directory=True)
    _refetched(conn, cache_dir)
    assert list(outside.iterdir()) == []


def test_pack_members_escaping_are_refused(tmp_path: Path) -> None:
    for bad in ("../evil.ipynb", "/abs.ipynb", ".velonb-cache/../../x", "C:/x.ipynb",
                "..\\..\\x.ipynb", ".velonb-cache/0123456789abcdef/../../../x.json",
                "other/file.txt"):
        archive = tmp_path / "bad.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("case.ipynb", "{}")
            zf.writestr(".velonb-cache/case.json", "{}")
            zf.writestr(bad, "x")
        with pytest.raises(CacheError, match="refusing"):
            unpack(archive, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        zf.writestr("case.ipynb", "{}")
        info = zipfile.ZipInfo(".velonb-cache/case.json")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(CacheError, match="refusing"):
        unpack(link, tmp_path / "out")


# --- downloads -----------------------------------------------------------------------------------

UPLOAD_NAMES = st.lists(st.text(max_size=20) | st.sampled_from(
    ["..", ".", "/", "\\", "C:", "CON", "nul.txt", "COM1", "..\\..", "/etc/passwd",
     "\\\\server\\share", "a/../../b", "\x00", " .. ", "...", "~"]), max_size=6)


@settings(max_examples=200, deadline=None)
@given(UPLOAD_NAMES)
def test_upload_names_never_escape_dest(components: list[str]) -> None:
    dest = Path("/nonexistent-velonb-dest")
    relative = safe_relpath(components)
    assert not relative.is_absolute()
    assert ".." not in relative.parts
    target = _inside(dest, relative)
    assert target.is_relative_to(dest.resolve()) and target != dest.resolve()
    row = {"client_path": "/".join(components), "_accessor": components[0] if components else ""}
    _inside(dest, _local_name(row))


# --- decoder -------------------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | \
    st.floats(allow_nan=False) | st.text(max_size=10)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) |
                      st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
ROWS = st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "Time", "x y"]), VALUES,
                                max_size=4), max_size=6)


def _equal(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert list(left.columns) == list(right.columns)
    assert len(left) == len(right)
    pd.testing.assert_frame_equal(left, right, check_dtype=True)


@settings(max_examples=150, deadline=None)
@given(st.lists(ROWS, min_size=1, max_size=3))
def test_random_parts_decode_like_the_reference(parts: list[list[dict[str, object]]]) -> None:
    encoded = [(json.dumps(rows), list(rows[0]) if rows else []) for rows in parts]
    _equal(frame_from_parts(encoded), reference_frame(encoded))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60) | st.binary(max_size=60) |
       st.sampled_from(["[", "[{]", "{}", "[1]", "[[]]", '[{"a":1},', "null", "[{\"a\":NaN}]",
                        '"[]"', "[{}]x", "\ufeff[]"]))
def test_random_text_decodes_or_fails_clearly(payload: str | bytes) -> None:
    try:
        expected = reference_frame([(payload, [])])
    except ResponseDecodeError:
        with pytest.raises(ResponseDecodeError):
            frame_from_parts([(payload, [])])
        return
    _equal(frame_from_parts([(payload, [])]), expected)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0,
                    reason="handing a directory to another user needs root (CI runs as root)")
def test_cache_directory_owned_by_another_user_is_not_trusted(
        cached: tuple[velonb.Connection, Path]) -> None:
    """Entries in a directory someone else owns could be planted: never replayed, never added."""
    conn, cache_dir = cached
    os.chown(cache_dir, 65534, 65534)  # nobody
    messages = _refetched(conn, cache_dir)
    assert any("belongs to another user" in m for m in messages)
    os.chown(cache_dir, 0, 0)


def test_cache_directory_writable_by_others_is_not_trusted(
        cached: tuple[velonb.Connection, Path]) -> None:
    conn, cache_dir = cached
    os.chmod(cache_dir, 0o777)
    messages = _refetched(conn, cache_dir)
    assert any("writable by group or others" in m for m in messages)
    os.chmod(cache_dir, 0o700)
    assert conn.execute(VQL, cache=True, cache_dir=cache_dir).cache.source == "cache"
