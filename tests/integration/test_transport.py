"""Connection failures are named and explained: TLS problems, unreachable or dying servers."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time

import pytest
import yaml

import velonb
from velonb.config import ApiClientConfig
from velonb.emulator import Emulator
from velonb.emulator.pki import CertificateAuthority
from velonb.errors import ConnectionFailedError, QueryError, StreamBrokenError, TLSError


def _raw_config(path) -> dict:
    return yaml.safe_load(open(path).read())


def _unchecked(data: dict, **changes) -> ApiClientConfig:
    """Build a config without load-time validation, to see what the *server* says."""
    merged = {**data, **changes}
    return ApiClientConfig(
        ca_certificate=merged["ca_certificate"], client_cert=merged["client_cert"],
        client_private_key=merged["client_private_key"],
        api_connection_string=merged["api_connection_string"], name=merged["name"],
        pinned_server_name=merged.get("pinned_server_name"),
        max_grpc_recv_size=merged.get("max_grpc_recv_size"),
    )


@pytest.fixture(scope="module")
def other_ca():
    return CertificateAuthority.generate(common_name="Some_Other_CA")


def test_unknown_server_ca_is_a_tls_error(emulator, tmp_path, other_ca):
    data = _raw_config(emulator.write_api_client_config(tmp_path / "c.yaml", name="apiuser",
                                                        roles=("api",)))
    # The client trusts another CA: the server's certificate cannot be verified.
    cred = other_ca.issue("apiuser")
    config = _unchecked(data, ca_certificate=other_ca.cert_pem, client_cert=cred.cert_pem,
                        client_private_key=cred.key_pem)
    with velonb.connect(config) as conn, pytest.raises(TLSError) as info:
        conn.query("SELECT * FROM scope()")
    assert "not signed by the CA" in str(info.value) or "TLS" in str(info.value)
    assert "PRIVATE KEY" not in str(info.value)


def test_pinned_name_mismatch_is_explained(emulator, tmp_path):
    data = _raw_config(emulator.write_api_client_config(tmp_path / "c.yaml", name="apiuser",
                                                        roles=("api",)))
    config = _unchecked(data, pinned_server_name="NotTheServer")
    with velonb.connect(config) as conn, pytest.raises(TLSError) as info:
        conn.query("SELECT * FROM scope()")
    assert "NotTheServer" in str(info.value) or "pinned_server_name" in str(info.value)


def test_client_cert_from_another_ca_is_rejected_by_server(emulator, tmp_path, other_ca):
    data = _raw_config(emulator.write_api_client_config(tmp_path / "c.yaml", name="apiuser",
                                                        roles=("api",)))
    cred = other_ca.issue("apiuser")
    config = _unchecked(data, client_cert=cred.cert_pem, client_private_key=cred.key_pem)
    with velonb.connect(config) as conn, pytest.raises(TLSError):
        conn.query("SELECT * FROM scope()")


def test_expired_client_cert_is_rejected_by_server(emulator, tmp_path):
    now = dt.datetime.now(dt.UTC)
    path = emulator.write_api_client_config(
        tmp_path / "old.yaml", name="apiuser", roles=("api",),
        not_before=now - dt.timedelta(days=400), not_after=now - dt.timedelta(days=35))
    with velonb.connect(_unchecked(_raw_config(path))) as conn, pytest.raises(TLSError):
        conn.query("SELECT * FROM scope()")


def test_unreachable_server(emulator, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = _raw_config(emulator.write_api_client_config(tmp_path / "c.yaml", name="apiuser",
                                                        roles=("api",)))
    config = _unchecked(data, api_connection_string=f"127.0.0.1:{port}")
    start = time.monotonic()
    with velonb.connect(config) as conn, pytest.raises(ConnectionFailedError) as info:
        conn.query("SELECT * FROM scope()")
    assert time.monotonic() - start < 15
    assert f"127.0.0.1:{port}" in str(info.value)
    assert not isinstance(info.value, TLSError)


def test_unix_socket_connection_string(tmp_path):
    sock = tmp_path / "api.sock"
    with Emulator(unix_socket=str(sock)) as emu:
        path = emu.write_api_client_config(tmp_path / "u.yaml", name="admin",
                                           roles=("administrator",))
        assert _raw_config(path)["api_connection_string"].startswith("unix://")
        with velonb.connect(path) as conn:
            assert conn.query("SELECT * FROM range(end=3)")["_value"].tolist() == [0, 1, 2]


def test_response_over_receive_limit_is_explained(emulator, tmp_path):
    data = _raw_config(emulator.write_api_client_config(tmp_path / "c.yaml", name="apiuser",
                                                        roles=("api",)))
    config = _unchecked(data, max_grpc_recv_size=64 * 1024)
    with velonb.connect(config) as conn, pytest.raises(QueryError) as info:
        conn.query("LET rows <= SELECT _value FROM range(end=100000)\nSELECT rows FROM scope()")
    assert "max_grpc_recv_size" in str(info.value)


def test_server_dying_mid_stream_keeps_rows_received(tmp_path):
    emu = Emulator()
    emu.start()
    try:
        path = emu.write_api_client_config(tmp_path / "a.yaml", name="admin",
                                           roles=("administrator",))
        conn = velonb.connect(path)
        threading.Timer(2.0, emu.stop, kwargs={"grace": 0}).start()
        start = time.monotonic()
        with pytest.raises(StreamBrokenError) as info:
            conn.query("SELECT _value, sleep(ms=20) FROM range(end=100000)")
        assert time.monotonic() - start < 10
        assert len(info.value.partial) > 0
        assert info.value.partial["_value"].tolist() == list(range(len(info.value.partial)))
        conn.close()
    finally:
        emu.stop(grace=0)


def test_encrypted_key_config_connects_with_password_from_env(emulator, tmp_path, monkeypatch):
    path = emulator.write_api_client_config(tmp_path / "enc.yaml", name="apiuser", roles=("api",),
                                            password="correct horse")
    assert "ENCRYPTED" in _raw_config(path)["client_private_key"]
    monkeypatch.setenv("VELONB_KEY_PASSWORD", "correct horse")
    with velonb.connect(path) as conn:
        assert conn.query("SELECT * FROM range(end=2)")["_value"].tolist() == [0, 1]
        assert "correct horse" not in repr(conn) + repr(conn.config)
