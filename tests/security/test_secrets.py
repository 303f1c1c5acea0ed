"""Secrets never reach output: every text velonb can produce is scanned for the private key and
the full client certificate."""

from __future__ import annotations

import json
import logging
import os
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import velonb
from velonb.cache import Cache
from velonb.display import CACHE_MIME
from velonb.emulator import Emulator
from velonb.errors import ConfigError, PermissionDeniedError, TLSError, VelonbError
from velonb.pack import pack


def _forbidden(config_path: Path) -> list[str]:
    """Strings that must never appear: key PEM body lines, the key marker, the certificate."""
    config = yaml.safe_load(config_path.read_text())
    key, cert = config["client_private_key"], config["client_cert"]
    body = [line for line in key.splitlines() if len(line) > 20 and "-----" not in line]
    cert_body = "".join(line for line in cert.splitlines() if "-----" not in line)
    return [*body, "PRIVATE KEY", cert.strip(), cert_body]


def _scan(where: str, text: str, forbidden: list[str]) -> None:
    for secret in forbidden:
        assert secret not in text, f"{where} leaks {secret[:30]}..."


def test_no_output_leaks_key_or_certificate(
    make_config: Callable[..., Path], emulator: Emulator, tmp_path: Path,
    caplog: pytest.LogCaptureFixture, run: Callable[..., Any],
) -> None:
    path = make_config("apiuser")
    forbidden = _forbidden(path)
    outputs: dict[str, str] = {}
    caplog.set_level(logging.DEBUG)  # every logger, velonb's and grpc's included

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        os.chmod(path, 0o644)  # ConfigWarning: readable by others
        conn = velonb.connect(str(path))
        os.chmod(path, 0o600)
        outputs["config"] = repr(conn.config) + str(conn.config) + str(conn.config.describe())
        outputs["connection"] = repr(conn)
        result = conn.execute("SELECT * FROM info()")  # api role: a VQLWarning (MACHINE_STATE)
        outputs["result"] = repr(result) + result.summary() + result.frame.to_string()
        outputs["logs"] = "\n".join(str(line) for line in result.logs)
        cache_dir = tmp_path / "cache"
        conn.execute("SELECT _value FROM range(end=3)", cache=True, cache_dir=cache_dir)
    outputs["warnings"] = "\n".join(str(w.message) for w in caught)
    assert any("readable by other users" in text for text in outputs["warnings"].splitlines())

    errors: list[BaseException] = []
    # ConfigErrors from broken configs built out of the real secrets.
    config = yaml.safe_load(path.read_text())
    other = yaml.safe_load(make_config("investigator").read_text())
    broken = [
        {**config, "client_private_key": other["client_private_key"]},  # key of another cert
        {**config, "client_cert": config["client_cert"][:200]},  # truncated certificate
        {**config, "client_private_key": config["client_private_key"][:300]},  # truncated key
        {**config, "ca_certificate": config["client_private_key"]},  # a key where a cert goes
        {**config, "client_cert": config["client_private_key"]},
    ]
    for number, bad in enumerate(broken):
        bad_path = tmp_path / f"bad{number}.yaml"
        bad_path.write_text(yaml.safe_dump(bad))
        bad_path.chmod(0o600)
        with pytest.raises(ConfigError) as info:
            velonb.connect(str(bad_path))
        errors.append(info.value)
    # TLSError: a config of another CA against the session server.
    with Emulator(users={"apiuser": ["api"]}) as stranger:
        foreign = yaml.safe_load(stranger.write_api_client_config(
            tmp_path / "foreign.yaml", name="apiuser", roles=("api",)).read_text())
    foreign["api_connection_string"] = emulator.address
    with velonb.connect(foreign) as bad_conn, pytest.raises(TLSError) as tls:
        bad_conn.query("SELECT * FROM info()")
    errors.append(tls.value)
    with velonb.connect(str(make_config("reader"))) as reader, \
            pytest.raises(PermissionDeniedError) as denied:
        reader.query("SELECT * FROM info()")
    errors.append(denied.value)
    conn.close()
    with pytest.raises(VelonbError) as closed:
        conn.query("SELECT 1 FROM scope()")
    errors.append(closed.value)
    outputs["errors"] = "\n".join(f"{type(e).__name__}: {e!s} {e!r} {getattr(e, 'hint', '')}"
                                  for e in errors)

    # Magic output (the run fixture also scans what each cell shows).
    cell = run("%%vql\nSELECT _value AS n FROM range(end=3)")
    outputs["magic"] = cell.everything()
    cell = run("%vql_config")
    outputs["magic config"] = cell.everything()

    # Cache sidecars and Parquet files on disk, and a pack made of them.
    for file in cache_dir.rglob("*"):
        if file.is_file():
            outputs[f"cache {file.name}"] = file.read_bytes().decode("latin-1")
    (entry,) = Cache(cache_dir).ls()
    notebook = tmp_path / "case.ipynb"
    notebook.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": [
        {"output_type": "display_data", "data": {CACHE_MIME: {"entries": [entry.ref]}},
         "metadata": {}}]}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    archive = tmp_path / "case.zip"
    pack(notebook, archive, cache_dir=cache_dir)
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            outputs[f"pack {name}"] = zf.read(name).decode("latin-1")
    outputs["logging"] = "\n".join(record.getMessage() for record in caplog.records)

    assert len(outputs) > 10
    for where, text in outputs.items():
        _scan(where, text, forbidden)


def test_api_client_yaml_is_private(make_config: Callable[..., Path]) -> None:
    path = make_config("apiuser")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_emulator_binds_loopback_only_unless_allowed() -> None:
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.org"):
        with pytest.raises(ValueError, match="allow_remote"):
            Emulator(host=host)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        Emulator(host=host)  # accepted (not started)
    Emulator(host="0.0.0.0", allow_remote=True)  # explicit opt-in; not started


def test_emulator_writes_no_ca_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CA key lives in memory only: starting an emulator writes nothing to the cwd/home."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with Emulator(users={"apiuser": ["api"]}) as emu:
        config = emu.write_api_client_config(tmp_path / "c.yaml", name="apiuser")
        assert "PRIVATE KEY" not in emu.ca.cert_pem
    assert [p.name for p in tmp_path.rglob("*")] == ["c.yaml"]
    written = yaml.safe_load(config.read_text())
    assert written["ca_certificate"].strip() == emu.ca.cert_pem.strip()
    ca_key_body = [line for line in emu.ca.key_pem.splitlines() if "-----" not in line]
    assert not any(line in config.read_text() for line in ca_key_body)
