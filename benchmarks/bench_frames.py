"""Benchmark velonb.frames on a Pslist-like result: FrameBuilder vs reference vs json+DataFrame.

Run: ``.venv/bin/python benchmarks/bench_frames.py [--rows 1000000] [--part 1000] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

import pandas as pd

from velonb.frames import FrameBuilder, reference_frame

_NAMES = ["svchost.exe", "chrome.exe", "explorer.exe", "lsass.exe", "python.exe", "Ünïcode.exe"]


def make_parts(rows: int, part_rows: int, seed: int = 1) -> list[tuple[bytes, list[str]]]:
    """A Pslist-like result: ~14 columns, ~300 bytes/row, compact Go-style JSON parts."""
    rnd = random.Random(seed)
    parts: list[tuple[bytes, list[str]]] = []
    for start in range(0, rows, part_rows):
        part = []
        for i in range(start, min(rows, start + part_rows)):
            name = rnd.choice(_NAMES)
            row = {
                "Pid": i,
                "Ppid": rnd.randrange(1, 70000),
                "TokenIsElevated": rnd.random() < 0.3,
                "Name": name,
                "CommandLine": f"{name} -k netsvcs <{i}>",
                "Exe": f"C:\\Windows\\System32\\{name}",
                "Hash": {
                    "MD5": f"{rnd.getrandbits(128):032x}",
                    "SHA1": f"{rnd.getrandbits(160):040x}",
                },
                "CreateTime": f"2024-03-01T10:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}Z",
                "Username": "SYSTEM",
                "MemoryUsage": rnd.randrange(1 << 20, 1 << 33),
                "Threads": rnd.randrange(1, 200),
                "CPUPercent": round(rnd.random() * 100, 3),
                "ClientId": "C.0123456789abcdef",
                "Authenticode": rnd.random() < 0.5,
            }
            part.append(row)
        text = json.dumps(part, separators=(",", ":"), ensure_ascii=False)
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        parts.append((text.encode(), list(part[0])))
    return parts


def _builder(parts: list[tuple[bytes, list[str]]]) -> pd.DataFrame:
    fb = FrameBuilder()
    for resp, cols in parts:
        fb.add_part(resp, cols)
    return fb.to_frame()


def _naive(parts: list[tuple[bytes, list[str]]]) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    for resp, _ in parts:
        rows.extend(json.loads(resp))
    return pd.DataFrame(rows)


def _time(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--part", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-reference", action="store_true")
    args = ap.parse_args()
    parts = make_parts(args.rows, args.part)
    size = sum(len(p) for p, _ in parts)
    print(
        f"{args.rows} rows, {len(parts)} parts, {size / args.rows:.0f} B/row, {size / 1e6:.0f} MB"
    )
    results = {"FrameBuilder": _time(lambda: _builder(parts), args.repeat)}
    results["json.loads+DataFrame"] = _time(lambda: _naive(parts), args.repeat)
    if not args.skip_reference:
        results["reference_frame"] = _time(lambda: reference_frame(parts), args.repeat)
    base = results["FrameBuilder"]
    for name, sec in results.items():
        rate = args.rows / sec
        print(f"{name:24s} {sec:7.2f} s {rate:12,.0f} rows/s  {sec / base:5.1f}x FrameBuilder")


if __name__ == "__main__":
    main()
