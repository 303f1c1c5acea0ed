"""Shared by the contender scripts (stdlib only: pyvelociraptor's venv imports it too).

Every contender is run as ``python <script> '<json args>'`` and prints one JSON line:
``seconds`` (the timed work only: imports and interpreter start are outside), ``rows``,
``cpu_seconds`` (user + system, all threads), ``peak_rss_mb`` (VmHWM of the whole
process) and whatever else it wants to report.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def proc_status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def prepare_velonb() -> None:
    """Import what a velonb query loads lazily (grpc, pandas, pyarrow, the decoder), so the
    timing covers the query, as for the other contenders; ``import`` costs are measured apart."""
    import velonb._proto.api_pb2_grpc
    import velonb._proto.velonb_wire_pb2
    import velonb.cache
    import velonb.cache_codec
    import velonb.cache_run
    import velonb.config
    import velonb.frames
    import velonb.query
    import velonb.transport  # noqa: F401


def run(work: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Parse the JSON argument, time ``work(args)``, print its report as one JSON line."""
    args = json.loads(sys.argv[1])
    before = proc_status_mb("VmRSS")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    report = work(args)
    report["seconds"] = time.perf_counter() - started
    end = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_seconds"] = end.ru_utime - cpu.ru_utime + end.ru_stime - cpu.ru_stime
    report["rss_before_mb"] = before
    report["peak_rss_mb"] = proc_status_mb("VmHWM")
    print(json.dumps(report), flush=True)
