"""The least a cached re-run can cost on this machine: writing the frame's bytes into new memory.

A re-run from Parquet has to build every column of the frame (strings, numbers, times) in memory
the process has never touched. This script measures that alone, in fresh processes: allocate N
bytes and write them once, with 4 KiB pages and with transparent huge pages (where the kernel
allows them). N defaults to the size of the frame a cache hit returns (``memory_usage(deep=False)``
of the cache entry in ``--cache-dir``), so the figure can be read against the 50x target of issue 6.

    .venv/bin/python benchmarks/materialise_floor.py --cache-dir /tmp/bcache --repeat 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

_TOUCH = """
import json, resource, sys, time
import numpy as np
size, huge = int(sys.argv[1]), sys.argv[2] == "huge"
np._core.multiarray._set_madvise_hugepage(huge)
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
block = np.ones(size, dtype=np.uint8)
elapsed = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": elapsed, "user": after.ru_utime - before.ru_utime,
                  "system": after.ru_stime - before.ru_stime,
                  "faults": after.ru_minflt - before.ru_minflt}))
"""


def frame_bytes(cache_dir: Path) -> int:
    """The in-memory size of the one cached frame under ``cache_dir`` (its own buffers)."""
    import pyarrow.parquet as pq

    files = sorted(cache_dir.rglob("*.parquet"))
    if len(files) != 1:
        raise SystemExit(f"expected one cached Parquet file under {cache_dir}, found {len(files)}")
    frame = pq.read_table(files[0]).to_pandas()
    return int(frame.memory_usage(deep=False).sum())


def touch(size: int, huge: bool) -> dict[str, float]:
    """Allocate and write ``size`` bytes in a fresh interpreter; its timings."""
    mode = "huge" if huge else "small"
    out = subprocess.run([sys.executable, "-c", _TOUCH, str(size), mode],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cache-dir", type=Path, help="a velonb cache holding one entry")
    source.add_argument("--bytes", type=int, help="the size to write, instead of a cache entry's")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = args.bytes if args.bytes is not None else frame_bytes(args.cache_dir)
    print(f"writing {size / 1e6:.0f} MB of new memory, {args.repeat} fresh processes per page size")
    for huge in (False, True):
        runs = [touch(size, huge) for _ in range(args.repeat)]
        ms = sorted(run["seconds"] * 1000 for run in runs)
        faults = statistics.median(run["faults"] for run in runs)
        label = "transparent huge pages" if huge else "4 KiB pages"
        print(f"  {label:>22}: median {statistics.median(ms):.0f} ms, "
              f"min-max {ms[0]:.0f}-{ms[-1]:.0f} ms, {faults:.0f} page faults")


if __name__ == "__main__":
    main()
