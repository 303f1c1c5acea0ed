"""Concurrency, client cancellation and the server dying mid-stream."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from wire_helpers import query_args

from velonb.emulator import Emulator


def wait_until(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_32_concurrent_streams(raw_stub, api_config):
    stub = raw_stub(api_config)
    vql = "SELECT _value, sleep(ms=20) AS S FROM range(end=20)"

    def one(_: int) -> int:
        messages = stub.Query(query_args(vql, max_row=5, max_wait=1), timeout=30)
        return sum(len(json.loads(m.Response)) for m in messages if not m.log)

    start = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        totals = list(pool.map(one, range(32)))
    assert totals == [20] * 32
    assert time.monotonic() - start < 10  # they ran side by side (each takes ~0.4 s)


def test_client_cancel_stops_server_side_producer(emulator, raw_stub, api_config):
    stub = raw_stub(api_config)
    call = stub.Query(
        query_args("SELECT _value, sleep(ms=50) AS S FROM range(end=100000)", max_row=1),
        timeout=30,
    )
    assert next(call).log == "Starting query execution.\n"
    next(call)
    assert wait_until(lambda: emulator.active_queries >= 1, 1)
    call.cancel()
    assert wait_until(lambda: emulator.active_queries == 0, 1.0)
    assert wait_until(
        lambda: not any(t.name == "velonb-vql-rows" for t in threading.enumerate()), 1.0
    )


def test_client_deadline_stops_producer(emulator, raw_stub, api_config):
    stub = raw_stub(api_config)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Query(query_args("SELECT * FROM range(end=100000000)", max_row=10), timeout=0.5))
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert wait_until(lambda: emulator.active_queries == 0, 1.0)


def test_server_dies_mid_stream(raw_stub, tmp_path):
    emu = Emulator(users={"bob": ["api"]}).start()
    path = emu.write_api_client_config(tmp_path / "b.yaml", "bob", roles=None)
    call = raw_stub(path).Query(
        query_args("SELECT _value, sleep(ms=50) AS S FROM range(end=1000)", max_row=1), timeout=30
    )
    received = [next(call), next(call)]
    emu.stop(grace=0)
    with pytest.raises(grpc.RpcError) as info:
        for message in call:
            received.append(message)
    assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
    assert len(received) < 100
    assert emu.active_queries == 0


def test_client_pinging_too_often_gets_goaway(emulator, raw_stub, api_config):
    """grpc-go's enforcement: pings closer than 5 min apart -> GOAWAY too_many_pings."""
    stub = raw_stub(
        api_config,
        options=[
            ("grpc.keepalive_time_ms", 100),
            ("grpc.keepalive_timeout_ms", 1000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    )
    vql = "SELECT _value, sleep(ms=500) AS S FROM range(end=20)"  # ~10 s; GOAWAY after ~3 s
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Query(query_args(vql, max_row=100, max_wait=30), timeout=20))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "Too many pings"  # GOAWAY ENHANCE_YOUR_CALM too_many_pings
