"""Fault-injection fixtures: a private emulator on a fixed loopback port, a resetting TCP proxy,
and a leak check (threads and file descriptors back to where they were)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_helpers import ResetProxy

from velonb.emulator import Emulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="module")
def fault_emu() -> Iterator[Emulator]:
    """An emulator of its own (faults must not disturb the session one), on a fixed port so a
    restart comes back at the same address with the same CA."""
    emu = Emulator(port=free_port(), users={"apiuser": ["api"]})
    emu.start()
    try:
        yield emu
    finally:
        emu.faults.clear()
        emu.stop(grace=0)


@pytest.fixture
def emu(fault_emu: Emulator) -> Iterator[Emulator]:
    """The fault emulator, running and without faults before and after the test."""
    fault_emu.faults.clear()
    fault_emu.start()
    yield fault_emu
    fault_emu.faults.clear()
    fault_emu.start()


@pytest.fixture
def fault_config(emu: Emulator, tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(1000))

    def make(**kw: object) -> Path:
        return emu.write_api_client_config(tmp_path / f"api_{next(counter)}.yaml",
                                           name="apiuser", roles=("api",), **kw)  # type: ignore[arg-type]

    return make


def settled(baseline: int, count: Callable[[], int], slack: int, wait: float = 5.0) -> int:
    """``count()`` once it is back within ``slack`` of ``baseline`` (or after ``wait`` s)."""
    end = time.monotonic() + wait
    value = count()
    while value > baseline + slack and time.monotonic() < end:
        time.sleep(0.05)
        value = count()
    return value


@pytest.fixture
def no_leaks(emu: Emulator) -> Iterator[None]:
    """Fail when the test leaves threads or file descriptors behind (small slack: gRPC's own
    process-wide pollers start lazily)."""
    import gc

    with contextlib.suppress(Exception):
        import velonb  # noqa: F401 - warm imports before counting
    threads, fds = threading.active_count(), open_fds()
    yield
    gc.collect()
    assert settled(threads, threading.active_count, 2) <= threads + 2, \
        [t.name for t in threading.enumerate()]
    assert settled(fds, open_fds, 4) <= fds + 4


@pytest.fixture
def reset_proxy(emu: Emulator) -> Iterator[ResetProxy]:
    proxy = ResetProxy(("127.0.0.1", emu._bound_port))
    try:
        yield proxy
    finally:
        proxy.close()
