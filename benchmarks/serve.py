"""Serve the benchmark hunt: an emulator whose World holds a finished Pslist hunt of N rows.

Run: ``.venv/bin/python benchmarks/serve.py --rows 1000000 --config-out /tmp/api.yaml``

Starts ``Emulator(world=World(seed=7, large_hunt_rows=N))``, writes an api_client.yaml for an
administrator, waits until the hunt's rows are encoded (the first query would otherwise wait
for it), then prints one JSON line ``{"address", "config", "hunt_id", "vql", "rows"}`` and
serves until killed (SIGTERM/SIGINT).

``SELECT * FROM hunt_results(hunt_id=..., artifact='Windows.System.Pslist')`` with ``max_row``
> 0 is served from pre-encoded JSON (see velonb/emulator/world/plugins_fast.py). With
``--single-row-fast`` (the default) the same pre-encoded rows also serve ``max_row=0`` -- one
row per message, with its "Sending response part" log line, exactly as the generic engine path
sends them -- so that pyvelociraptor's one-row-per-message stream is limited by the client and
the transport, not by the emulator's Python query engine. ``--no-single-row-fast`` keeps the
generic path for ``max_row=0``. A query env string ``BenchRepeat=N`` ships the hunt's rows N
times in one statement (the 10M-row ``query_to_parquet`` contender: 10 x 1M rows, without a
10M-row World, which would take minutes and ~7 GB to encode).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

ARTIFACT = "Windows.System.Pslist"


def hunt_vql(hunt_id: str) -> str:
    return f"SELECT * FROM hunt_results(hunt_id='{hunt_id}', artifact='{ARTIFACT}')"


class _Repeated:
    """The pre-encoded rows shipped ``times`` times over (part numbers keep counting)."""

    def __init__(self, encoded: Any, times: int) -> None:
        self.encoded, self.times = encoded, times

    def parts(self, max_row: int) -> Any:
        for _ in range(self.times):
            yield from self.encoded.parts(max_row)


def _patch_fast_path(single_row: bool) -> None:
    """``BenchRepeat`` (a query env string) ships the hunt's rows N times; with ``single_row``
    max_row=0 is served from the pre-encoded rows too, one row per part (as max_row=0 does)."""
    from velonb.emulator import streaming

    original = streaming.QueryStream._statement

    def _statement(self: Any, scope: Any, request: Any, query_id: int, statement: Any,
                   query_start: int) -> Any:
        fast = getattr(self._world, "fast_statement", None)
        if fast is not None and statement.let_name is None and (single_row or self._max_row):
            encoded = fast(statement, scope)
            if encoded is not None:
                times = int(streaming._resolve(scope, "BenchRepeat") or 1)
                if times > 1:
                    encoded = _Repeated(encoded, times)
                max_row = self._max_row
                self._max_row = max_row or 1
                try:
                    yield from self._ship_encoded(request, query_id, encoded, query_start)
                finally:
                    self._max_row = max_row
                return
        yield from original(self, scope, request, query_id, statement, query_start)

    streaming.QueryStream._statement = _statement  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--config-out", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--single-row-fast", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()

    from velonb.emulator import Emulator
    from velonb.emulator.world import World
    from velonb.emulator.world.plugins_fast import encoded_rows

    _patch_fast_path(args.single_row_fast)
    started = time.monotonic()
    world = World(seed=7, large_hunt_rows=args.rows)
    emulator = Emulator(port=args.port, world=world).start()
    config = emulator.write_api_client_config(Path(args.config_out), name="admin")
    encoded = encoded_rows(world, "root", world.large_hunt_id, ARTIFACT)  # the warm-up
    assert len(encoded.rows) == args.rows, (len(encoded.rows), args.rows)
    print(json.dumps({"address": emulator.address, "config": str(config),
                      "hunt_id": world.large_hunt_id, "vql": hunt_vql(world.large_hunt_id),
                      "rows": args.rows, "ready_after_s": round(time.monotonic() - started, 1),
                      "bytes": sum(len(r) + 1 for r in encoded.rows) + 1}), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    emulator.stop(grace=0)
    world.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
