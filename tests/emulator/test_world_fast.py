"""The large benchmark hunt: ``World(large_hunt_rows=N)`` and its pre-encoded fast path give the
same messages as the engine's generic path."""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from wire_helpers import query_args

from velonb.emulator import Emulator
from velonb.emulator.world import World

ROWS = 2500


@pytest.fixture(scope="module")
def big():
    world = World(seed=7, large_hunt_rows=ROWS)
    emu = Emulator(users={"apiuser": ["api"], "reader2": ["reader"]}, world=world).start()
    yield emu, world
    emu.stop(grace=0)
    world.close()


def messages(stub, vql, **fields):
    return list(stub.Query(query_args(vql, **fields)))


def summary(msgs):
    parts = [(m.part, m.query_id, list(m.Columns), m.Response) for m in msgs if m.Response]
    logs = [re.sub(r"^Time \d+:", "Time N:", m.log) for m in msgs if m.log]
    return parts, logs


def test_large_hunt_fast_path_matches_generic(big, tmp_path, raw_stub):
    emu, world = big
    hid = world.large_hunt_id
    stub = raw_stub(emu.write_api_client_config(tmp_path / "a.yaml", name="apiuser", roles=None),
                    options=[("grpc.max_receive_message_length", 2**27)])
    fast_vql = f"SELECT * FROM hunt_results(hunt_id='{hid}', artifact='Windows.System.Pslist')"
    slow_vql = fast_vql + " WHERE TRUE"
    fast = summary(messages(stub, fast_vql, max_row=1000))
    assert world.encoded_cache  # served from the cache
    slow = summary(messages(stub, slow_vql, max_row=1000))
    assert [p[:3] for p in fast[0]] == [p[:3] for p in slow[0]]
    assert [p[3] for p in fast[0]] == [p[3] for p in slow[0]]
    assert fast[1] == slow[1]
    rows = [row for part in fast[0] for row in json.loads(part[3])]
    assert len(rows) == ROWS and [len(json.loads(p[3])) for p in fast[0]] == [1000, 1000, 500]
    assert list(rows[0])[-4:] == ["FlowId", "ClientId", "_OrgId", "Fqdn"]
    assert "Sending response part 2 " in fast[1][-1] and fast[1][-1].endswith("(500 rows).\n")
    assert {r["ClientId"] for r in rows} == set(world.hunt("root", hid).flows)
    zoned = summary(messages(stub, fast_vql, max_row=1000, env={"TZ": "Australia/Brisbane"}))
    assert zoned[0] != fast[0] and "+10:00" in zoned[0][0][3]  # TZ: the engine path renders


def test_large_hunt_is_listed_and_generic_queries_work(big, tmp_path, raw_stub):
    emu, world = big
    hid = world.large_hunt_id
    stub = raw_stub(emu.write_api_client_config(tmp_path / "a.yaml", name="apiuser", roles=None))
    rows = [r for m in messages(stub, f"SELECT hunt_id, stats FROM hunts(hunt_id='{hid}')")
            if m.Response for r in json.loads(m.Response)]
    assert rows[0]["stats"]["total_collected_rows"] == ROWS
    assert rows[0]["stats"]["total_finished_clients"] > 1
    count = [r for m in messages(stub, f"SELECT count() AS N FROM hunt_results(hunt_id='{hid}')"
                                       " GROUP BY 1") if m.Response for r in json.loads(m.Response)]
    assert count == [{"N": ROWS}]
    # max_row=0 is not pre-encoded: the generic path's one-row-per-message behaviour stays
    msgs = messages(stub, f"SELECT * FROM hunt_results(hunt_id='{hid}') LIMIT 3", max_row=0)
    assert [len(json.loads(m.Response)) for m in msgs if m.Response] == [0, 1, 1, 1]


@pytest.mark.skipif(not os.environ.get("VELONB_BENCH_ROWS"), reason="set VELONB_BENCH_ROWS=N")
def test_benchmark_fast_path(tmp_path, raw_stub):
    """``VELONB_BENCH_ROWS=1000000 pytest tests/emulator/test_world_fast.py -k bench -s``:
    rows/s and MB/s of the fast path over mTLS at max_row=1000 (raw grpc client)."""
    count = int(os.environ["VELONB_BENCH_ROWS"])
    world = World(seed=7, large_hunt_rows=count)
    emu = Emulator(users={"bench": ["api"]}, world=world).start()
    try:
        stub = raw_stub(emu.write_api_client_config(tmp_path / "b.yaml", name="bench",
                                                    roles=None),
                        options=[("grpc.max_receive_message_length", 2**30)])
        vql = (f"SELECT * FROM hunt_results(hunt_id='{world.large_hunt_id}', "
               "artifact='Windows.System.Pslist')")
        for label in ("first (waits for the encoding)", "cached", "cached"):
            start = time.perf_counter()
            rows = size = 0
            for message in stub.Query(query_args(vql, max_row=1000, max_wait=1)):
                if message.Response:
                    size += len(message.Response)
                    rows += message.Response.count('{"Pid":')
            took = time.perf_counter() - start
            print(f"\n{label}: {rows} rows, {size / 1e6:.1f} MB in {took:.2f} s = "
                  f"{rows / took:,.0f} rows/s, {size / 1e6 / took:.1f} MB/s")
            assert rows == count
    finally:
        emu.stop(grace=0)
        world.close()
