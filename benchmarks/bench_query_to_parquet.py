"""Peak memory of ``Connection.query_to_parquet`` (and, for contrast, ``query``) for N rows.

The emulator runs in a separate process (``velonb emulator``), so the peak RSS measured here is
the client's alone. The source is ``range()`` with a few computed columns (~80 bytes of JSON
per row, 1000-row parts).

Run: ``.venv/bin/python benchmarks/bench_query_to_parquet.py [--rows 10000000] [--memory]``
(``--memory`` also runs ``conn.query`` into a DataFrame in a fresh process, for comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VQL = ("SELECT _value AS n, format(format='host-%d', args=_value) AS host, "
       "dict(id=_value, ok=true) AS details FROM range(end={rows})")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def start_emulator(workdir: Path) -> tuple[subprocess.Popen[str], Path]:
    config = workdir / "api_client.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "velonb.cli", "emulator", "--empty",
                             "--config-out", str(config)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not config.exists() or config.stat().st_size == 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the emulator did not start")
        time.sleep(0.1)
    time.sleep(0.2)
    return proc, config


def client(mode: str, config: str, rows: int, out: str) -> dict[str, float]:
    """Run in a fresh process: one query, report time and peak RSS."""
    import velonb

    base = peak_rss_mb()
    started = time.monotonic()
    with velonb.connect(config) as conn:
        if mode == "parquet":
            summary = conn.query_to_parquet(VQL.format(rows=rows), out, overwrite=True)
            got, size = summary.rows, summary.bytes
        else:
            frame = conn.query(VQL.format(rows=rows))
            got, size = len(frame), int(frame.memory_usage(deep=True).sum())
    elapsed = time.monotonic() - started
    return {"rows": got, "seconds": round(elapsed, 1), "rows_per_s": round(got / elapsed),
            "peak_rss_mb": round(peak_rss_mb(), 1), "rss_before_query_mb": round(base, 1),
            "output_mb": round(size / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--memory", action="store_true", help="also measure conn.query")
    parser.add_argument("--client", nargs=3, metavar=("MODE", "CONFIG", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        mode, config, out = args.client
        print(json.dumps(client(mode, config, args.rows, out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc, config = start_emulator(Path(tmp))
        try:
            for mode in ["parquet"] + (["memory"] if args.memory else []):
                run = subprocess.run([sys.executable, __file__, "--rows", str(args.rows),
                                      "--client", mode, str(config),
                                      str(Path(tmp) / "out.parquet")],
                                     capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
                print(f"{mode:>8}: {run.stdout.strip()}")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
