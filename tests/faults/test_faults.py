"""Faults injected through the emulator: every failure is a named VelonbError, the rows received
so far stay reachable, every wait is bounded, nothing leaks, and the Connection recovers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pandas as pd
import pytest
import yaml
from fault_helpers import ResetProxy

import velonb
from velonb import query as query_module
from velonb.download import PART_SUFFIX, download_uploads
from velonb.emulator import Emulator
from velonb.errors import (
    ConnectionFailedError,
    QueryError,
    QueryTimeout,
    ResponseDecodeError,
    StreamBrokenError,
    VelonbError,
)

VQL = "SELECT _value AS n, format(format='row %d', args=_value) AS s FROM range(start=0, end=5000)"
PART_ROWS = 1000  # velonb asks for parts of 1000 rows


def check_partial(err: QueryError, parts: int) -> None:
    assert not isinstance(err, grpc.RpcError)
    assert err.result is not None
    frame = err.partial
    assert len(frame) == parts * PART_ROWS
    assert frame["n"].tolist() == list(range(parts * PART_ROWS))


def test_server_dies_mid_stream(emu: Emulator, fault_config: Callable[..., Path],
                                no_leaks: None) -> None:
    emu.faults.die_after_parts = 2
    with velonb.connect(str(fault_config())) as conn:
        start = time.monotonic()
        with pytest.raises(StreamBrokenError) as info:
            conn.execute(VQL)
        assert time.monotonic() - start < 15
        check_partial(info.value, 2)
        assert "2000 rows" in str(info.value)
        assert not emu.running
        # The server comes back on the same port with the same CA: the same Connection works.
        emu.faults.clear()
        emu.start()
        assert _retry(lambda: len(conn.query(VQL))) == 5000


def test_server_dies_mid_stream_streaming(emu: Emulator, fault_config: Callable[..., Path],
                                          no_leaks: None) -> None:
    emu.faults.die_after_parts = 3
    frames: list[pd.DataFrame] = []
    with velonb.connect(str(fault_config())) as conn:
        result = query_module.QueryResult(vql=VQL, org_id="")
        with pytest.raises(StreamBrokenError):
            frames.extend(conn.stream(VQL, result=result))
    assert sum(len(f) for f in frames) == 3 * PART_ROWS


def test_connection_reset(emu: Emulator, fault_config: Callable[..., Path], no_leaks: None,
                          reset_proxy: ResetProxy) -> None:
    path = fault_config()
    config = yaml.safe_load(path.read_text())
    config["api_connection_string"] = reset_proxy.address
    path.write_text(yaml.safe_dump(config))
    emu.faults.stall_after_parts = 2
    emu.faults.stall_seconds = 10
    with velonb.connect(str(path)) as conn:
        def on_progress(progress: query_module.Progress) -> None:
            if progress.parts >= 2:
                reset_proxy.reset_all()
        start = time.monotonic()
        with pytest.raises(StreamBrokenError) as info:
            conn.execute(VQL, progress=on_progress)
        assert time.monotonic() - start < 8
        check_partial(info.value, 2)
        emu.faults.clear()
        assert _retry(lambda: len(conn.query(VQL))) == 5000  # through a fresh proxied connection


def test_abort_mid_stream_with_reset_status(emu: Emulator, fault_config: Callable[..., Path],
                                            no_leaks: None) -> None:
    emu.faults.abort_after_parts = 1
    with velonb.connect(str(fault_config())) as conn:
        with pytest.raises(StreamBrokenError) as info:
            conn.execute(VQL)
        check_partial(info.value, 1)
        emu.faults.clear()
        assert len(conn.query(VQL)) == 5000


def test_stalled_part_is_bounded_by_timeout(emu: Emulator, fault_config: Callable[..., Path],
                                            no_leaks: None,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A stall is bounded: ``timeout=`` at timeout + grace, ``stream(duration=)`` exactly, and a
    query without ``timeout=`` by the Connection's default_timeout (600 s unless changed)."""
    monkeypatch.setattr(query_module, "TIMEOUT_GRACE_S", 1.0)
    emu.faults.stall_after_parts = 2
    emu.faults.stall_seconds = 30
    with velonb.connect(str(fault_config())) as conn:
        start = time.monotonic()
        with pytest.raises(QueryTimeout) as info:
            conn.execute(VQL, timeout=1)
        assert time.monotonic() - start < 6
        check_partial(info.value, 2)
        start = time.monotonic()
        frames = list(conn.stream(VQL, duration=1.0))
        assert time.monotonic() - start < 6
        assert sum(len(f) for f in frames) == 2 * PART_ROWS
        emu.faults.clear()
        assert len(conn.query(VQL)) == 5000
    assert _wait(lambda: emu.active_queries == 0)


def test_stall_without_timeout_is_bounded_by_the_default(
        emu: Emulator, fault_config: Callable[..., Path], no_leaks: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(query_module, "TIMEOUT_GRACE_S", 1.0)
    emu.faults.stall_after_parts = 2
    emu.faults.stall_seconds = 30
    with velonb.connect(str(fault_config()), default_timeout=1) as conn:
        assert conn.build_request(VQL).timeout == 1  # what is sent when timeout= is not given
        assert conn.build_request(VQL, timeout=0).timeout == 0  # 0: no limit
        start = time.monotonic()
        with pytest.raises(QueryTimeout) as info:
            conn.execute(VQL)  # no timeout= given
        assert time.monotonic() - start < 6
        check_partial(info.value, 2)
        emu.faults.clear()
    assert _wait(lambda: emu.active_queries == 0)


@pytest.mark.parametrize("streaming", [False, True])
def test_malformed_part(emu: Emulator, fault_config: Callable[..., Path], no_leaks: None,
                        streaming: bool) -> None:
    emu.faults.malformed_part = 2
    with velonb.connect(str(fault_config())) as conn:
        result = query_module.QueryResult(vql=VQL, org_id="")
        frames: list[pd.DataFrame] = []
        with pytest.raises(ResponseDecodeError) as info:
            if streaming:
                frames.extend(conn.stream(VQL, result=result))
            else:
                conn.execute(VQL)
        assert "part" in str(info.value) and "not valid JSON" in str(info.value)
        if streaming:
            assert sum(len(f) for f in frames) == 2 * PART_ROWS
            assert info.value.result is result
        else:
            check_partial(info.value, 2)
        emu.faults.clear()
        assert len(conn.query(VQL)) == 5000
    assert _wait(lambda: emu.active_queries == 0)


@pytest.mark.parametrize("fault", ["die", "malformed"])
def test_export_fault_keeps_no_output(emu: Emulator, fault_config: Callable[..., Path],
                                      no_leaks: None, tmp_path: Path, fault: str) -> None:
    """query_to_parquet decodes on worker threads: a server that dies or a malformed part is
    the same named error as for a query, and neither the file nor a temporary is left."""
    if fault == "die":
        emu.faults.die_after_parts = 2
    else:
        emu.faults.malformed_part = 2
    out = tmp_path / "export.parquet"
    with velonb.connect(str(fault_config())) as conn:
        error = StreamBrokenError if fault == "die" else ResponseDecodeError
        with pytest.raises(error) as info:
            conn.query_to_parquet(VQL, out)
        assert not out.exists() and not list(tmp_path.glob(".export.parquet.tmp-*"))
        # the message counts the rows received; there is no err.partial to point to
        if fault == "die":
            assert "after 2000 rows" in str(info.value)
        assert f"nothing was written to {out}" in str(info.value)
        assert "err.partial" not in str(info.value)
        emu.faults.clear()
        if not emu.running:
            emu.start()
        assert _retry(lambda: conn.query_to_parquet(VQL, out).rows) == 5000
    assert _wait(lambda: emu.active_queries == 0)


def test_part_over_receive_limit(emu: Emulator, fault_config: Callable[..., Path],
                                 no_leaks: None) -> None:
    emu.faults.oversized_part = 1
    emu.faults.oversized_bytes = 3 << 20
    with velonb.connect(str(fault_config(max_grpc_recv_size=1 << 20))) as conn:
        with pytest.raises(QueryError) as info:
            conn.execute(VQL)
        assert "receive limit" in str(info.value) and "max_grpc_recv_size" in str(info.value)
        check_partial(info.value, 1)
        emu.faults.clear()
        assert len(conn.query(VQL)) == 5000
    assert _wait(lambda: emu.active_queries == 0)


def test_server_restart_between_queries(emu: Emulator, fault_config: Callable[..., Path],
                                        no_leaks: None) -> None:
    with velonb.connect(str(fault_config())) as conn:
        assert len(conn.query(VQL)) == 5000
        emu.stop(grace=0)
        start = time.monotonic()
        with pytest.raises(ConnectionFailedError) as info:
            conn.query(VQL)
        assert time.monotonic() - start < 10
        assert "cannot reach" in str(info.value) or "TLS" in str(info.value)
        emu.start()
        assert _retry(lambda: len(conn.query(VQL))) == 5000
        assert conn.check()


def test_download_cut_half_way_resumes(emu: Emulator, fault_config: Callable[..., Path],
                                       no_leaks: None, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    components = ["clients", "C.1", "collections", "F.1", "uploads", "file", "big.bin"]
    emu.filestore.put(components, data)
    row = {"client_path": "/big.bin", "_accessor": "file",
           "Upload": {"Components": components, "Size": len(data), "Path": "/big.bin"},
           "file_size": len(data)}
    dest = tmp_path / "dl"
    emu.faults.vfs_fail_after_bytes = len(data) // 2
    with velonb.connect(str(fault_config())) as conn:
        with pytest.raises(VelonbError) as info:
            download_uploads(conn, [row], dest, chunk_size=64 << 10)
        assert not isinstance(info.value, grpc.RpcError)
        parts = list(dest.rglob("*" + PART_SUFFIX))
        assert len(parts) == 1 and parts[0].stat().st_size == len(data) // 2
        emu.faults.clear()
        (done,) = download_uploads(conn, [row], dest, chunk_size=64 << 10)
        assert done.resumed_from == len(data) // 2
        assert done.path.read_bytes() == data
        assert not list(dest.rglob("*" + PART_SUFFIX))


def _retry(call: Callable[[], int], within: float = 10.0) -> int:
    """``call()`` retried on ConnectionFailedError for a bounded time (channel reconnect)."""
    end = time.monotonic() + within
    while True:
        try:
            return call()
        except ConnectionFailedError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _wait(condition: Callable[[], bool], within: float = 5.0) -> bool:
    end = time.monotonic() + within
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True
