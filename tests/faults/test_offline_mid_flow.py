"""A collection's client goes offline mid-flow: the wait is bounded and named, nothing is lost,
and the same flow completes once the client is back."""

from __future__ import annotations

import time
import warnings

import pytest

import velonb
from velonb.emulator import Emulator
from velonb.emulator.world import World
from velonb.fleet import WaitTimeout


@pytest.fixture
def slow_world_conn(tmp_path):
    world = World(seed=7, flow_delay=1.5)
    with Emulator(world=world) as emu:
        emu.start()
        path = emu.write_api_client_config(tmp_path / "inv.yaml", name="analyst",
                                           roles=("investigator",))
        with velonb.connect(path) as conn:
            yield world, conn


def test_client_offline_mid_flow_then_back(slow_world_conn):
    world, conn = slow_world_conn
    client = conn.client("WKS-FIN-0042")
    flow = conn.collect(client.client_id, "Generic.Client.Info", wait=False, progress=False)
    time.sleep(0.5)  # picked up (0.1 s), not finished (1.5 s)
    world.set_online("root", client.client_id, False)
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        flow.wait(timeout=2.5, progress=False)
    assert time.monotonic() - start < 10
    assert "flow.wait()" in str(info.value)  # says how to resume
    assert flow.refresh().state == "IN_PROGRESS"  # the client never reported back
    world.set_online("root", client.client_id, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flow.wait(timeout=20, progress=False)
    assert flow.state == "FINISHED"
    assert len(flow.results(artifact="Generic.Client.Info", source="BasicInformation")) == 1
