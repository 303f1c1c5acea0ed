"""Load: many threads on one Connection, many short queries with flat memory and descriptors, a
long stream at a sustained rate with flat client memory. Figures print with ``pytest -s``."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import velonb
from velonb.emulator import Emulator

SHORT_QUERIES = int(os.environ.get("VELONB_LOAD_QUERIES", "10000"))
STREAM_ROWS = int(os.environ.get("VELONB_LOAD_ROWS", "1000000"))


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(scope="module")
def conn(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        velonb.Connection]:
    path = emulator.write_api_client_config(tmp_path_factory.mktemp("load") / "c.yaml",
                                            name="apiuser", roles=("api",))
    with velonb.connect(str(path)) as connection:
        yield connection


def test_32_threads_share_one_connection(conn: velonb.Connection) -> None:
    per_thread = 20

    def work(worker: int) -> int:
        total = 0
        for i in range(per_thread):
            frame = conn.query("SELECT _value + w AS n FROM range(end=50)",
                               env={"w": worker * 1000 + i})
            assert frame["n"].tolist() == [worker * 1000 + i + k for k in range(50)]
            total += len(frame)
        return total

    start = time.monotonic()
    with ThreadPoolExecutor(32) as pool:
        rows = sum(pool.map(work, range(32)))
    elapsed = time.monotonic() - start
    assert rows == 32 * per_thread * 50
    print(f"\n32 threads x {per_thread} queries: {32 * per_thread / elapsed:.0f} queries/s, "
          f"{rows / elapsed:.0f} rows/s, {elapsed:.2f}s")


def test_short_queries_keep_memory_and_fds_flat(conn: velonb.Connection) -> None:
    for _ in range(200):  # warm up: imports, gRPC pollers, allocator arenas
        conn.query("SELECT 1 AS one FROM scope()")
    gc.collect()
    rss0, fds0, threads0 = rss_kib(), fds(), threading.active_count()
    start = time.monotonic()
    for i in range(SHORT_QUERIES):
        frame = conn.query("SELECT x AS one FROM scope()", env={"x": i})
        assert frame["one"].iloc[0] == i
    elapsed = time.monotonic() - start
    gc.collect()
    rss1, fds1 = rss_kib(), fds()
    print(f"\n{SHORT_QUERIES} short queries: {SHORT_QUERIES / elapsed:.0f} queries/s; "
          f"RSS {rss0 // 1024} -> {rss1 // 1024} MiB, peak {rss_kib('VmHWM') // 1024} MiB; "
          f"fds {fds0} -> {fds1}")
    assert fds1 <= fds0 + 2
    assert threading.active_count() <= threads0 + 2
    assert rss1 - rss0 < 40 * 1024, "memory grows with the number of queries"


def test_long_stream_keeps_client_memory_flat(conn: velonb.Connection) -> None:
    vql = f"SELECT _value AS n, 'row' AS s FROM range(end={STREAM_ROWS})"
    gc.collect()
    rss0 = rss_kib()
    samples: list[int] = []
    rows = 0
    start = time.monotonic()
    for frame in conn.stream(vql):
        rows += len(frame)
        if len(samples) < 1000:
            samples.append(rss_kib())
        del frame
    elapsed = time.monotonic() - start
    assert rows == STREAM_ROWS
    half = samples[len(samples) // 2:]
    growth = max(half) - min(half) if half else 0
    print(f"\nstream of {rows} rows: {rows / elapsed:.0f} rows/s over {elapsed:.1f}s; client RSS "
          f"{rss0 // 1024} -> {max(samples) // 1024} MiB (second-half spread {growth // 1024} MiB)")
    assert growth < 40 * 1024, "client memory grows with the stream"
