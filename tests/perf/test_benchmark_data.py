"""The fast decoder equals reference_frame on the benchmark's own data: parts of the
emulator's large Pslist hunt (the rows benchmarks/run.py times), as the server sends them."""

from __future__ import annotations

import pandas as pd
import pytest

from velonb.emulator.world import World
from velonb.emulator.world.plugins_fast import ARTIFACT, encoded_rows
from velonb.frames import FrameBuilder, reference_frame


@pytest.fixture(scope="module")
def hunt_parts() -> list[tuple[str, list[str]]]:
    world = World(seed=7, large_hunt_rows=30_000)
    try:
        encoded = encoded_rows(world, "root", world.large_hunt_id, ARTIFACT)
        return [(payload, columns) for payload, columns, _, _ in encoded.parts(1000)]
    finally:
        world.close()


def test_benchmark_hunt_decodes_exactly(hunt_parts: list[tuple[str, list[str]]]) -> None:
    builder = FrameBuilder()
    for payload, columns in hunt_parts:  # str payloads, as grpc hands them over
        builder.add_part(payload, columns)
    fast = builder.to_frame()
    pd.testing.assert_frame_equal(fast, reference_frame(hunt_parts), check_exact=True)
    assert len(fast) == 30_000
    assert str(fast["CreateTime"].dtype) == "datetime64[ns, UTC]"
    assert all(isinstance(h, dict) for h in fast["Hash"]) and fast["Pid"].dtype == "int64"
    # a hunt repeats the hashes of the same executables: one read-only dict per distinct value
    # and part, not one per row (the benchmark's peak RSS depends on it)
    assert len({id(h) for h in fast["Hash"]}) < len(fast) / 20


def test_benchmark_hunt_in_odd_part_sizes(hunt_parts: list[tuple[str, list[str]]]) -> None:
    rows = [row for payload, _ in hunt_parts[:3] for row in payload[2:-2].split("},{")]
    assert len(rows) == 3000  # no '},{' inside these rows' values: a plain re-split works
    parts, start = [], 0
    for size in (1, 7, 333, 1659):
        text = "[{" + "},{".join(rows[start:start + size]) + "}]"
        parts.append((text.encode(), list(hunt_parts[0][1])))
        start += size
    builder = FrameBuilder()
    for payload, columns in parts:
        builder.add_part(payload, columns)
    pd.testing.assert_frame_equal(builder.to_frame(), reference_frame(parts), check_exact=True)
