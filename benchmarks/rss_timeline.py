"""Where a velonb query's memory goes over time: VmRSS sampled every 5 ms during one query.

Start the benchmark server first (it prints one JSON line; keep it in a file)::

    .venv/bin/python benchmarks/serve.py --rows 1000000 --config-out /tmp/bench-api.yaml \\
        | head -1 > /tmp/serve.json &
    .venv/bin/python benchmarks/rss_timeline.py /tmp/serve.json

Prints when frame assembly started and ended, the peak (time, MB) and VmHWM, then the RSS every
~0.2 s. Set ``ARROW_DEFAULT_MEMORY_POOL=system`` to compare pyarrow's pools.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "contenders"))

from _common import prepare_velonb, proc_status_mb

prepare_velonb()

import velonb  # noqa: E402
import velonb.frames  # noqa: E402


def main(serve_json: str) -> None:
    args = json.loads(Path(serve_json).read_text().splitlines()[0])
    samples: list[tuple[float, float]] = []
    marks: dict[str, float] = {}
    stop = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter() - start, proc_status_mb("VmRSS")))
            time.sleep(0.005)

    to_frame = velonb.frames.FrameBuilder.to_frame

    def timed_to_frame(self: Any) -> Any:
        marks.setdefault("assembly started", time.perf_counter() - start)
        frame = to_frame(self)
        marks["assembly ended"] = time.perf_counter() - start
        return frame

    velonb.frames.FrameBuilder.to_frame = timed_to_frame  # type: ignore[method-assign]
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with velonb.connect(args["config"]) as conn:
        frame = conn.query(args["vql"])
    marks["query returned"] = time.perf_counter() - start
    time.sleep(0.3)
    stop.set()
    sampler.join()
    peak = max(samples, key=lambda s: s[1])
    print(f"{len(frame):,} rows; frame {frame.memory_usage(deep=True).sum() / 1e6:.0f} MB "
          "(memory_usage deep)")
    print("marks:", {k: round(v, 3) for k, v in marks.items()})
    print(f"peak {peak[1]:.0f} MB at {peak[0]:.2f} s; VmHWM {proc_status_mb('VmHWM'):.0f} MB")
    for at, rss in samples[::40]:
        print(f"{at:6.2f} s {rss:7.1f} MB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/serve.json")
