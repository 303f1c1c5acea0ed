"""A cached re-run against the live query, for N rows of a wide-ish result.

Run: ``.venv/bin/python benchmarks/bench_cache.py [--rows 200000]`` (starts its own emulator,
caches into a temporary directory).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

VQL = ("SELECT _value AS n, format(format='host-%d', args=_value) AS host, "
       "dict(id=_value, tags=['a', 'b']) AS details FROM range(end={rows})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    import velonb
    from velonb.emulator import Emulator

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["VELONB_CACHE_DIR"] = str(Path(tmp) / "cache")
        emulator = Emulator().start()
        config = emulator.write_api_client_config(Path(tmp) / "api.yaml", name="admin")
        vql = VQL.format(rows=args.rows)
        with velonb.connect(config) as conn:
            started = time.monotonic()
            live = conn.execute(vql, cache=True)
            live_s = time.monotonic() - started
            started = time.monotonic()
            cached = conn.execute(vql, cache=True)
            cached_s = time.monotonic() - started
        emulator.stop(grace=0)
        assert cached.cache is not None and cached.cache.source == "cache"
        size = sum(p.stat().st_size for p in (Path(tmp) / "cache").rglob("*") if p.is_file())
        print(f"rows={args.rows:,} live+store={live_s:.2f}s cached re-run={cached_s:.2f}s "
              f"({live_s / cached_s:.0f}x) cache entry={size / 1e6:.1f} MB; "
              f"equal={cached.frame.equals(live.frame)}")


if __name__ == "__main__":
    main()
