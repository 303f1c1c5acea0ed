"""Hunt controls: start, stop, update and add, against a server that applies hunt changes later
(through its hunt manager's queue), so each control must wait until the change shows."""

from __future__ import annotations

import _thread
import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.conftest import ConnectAs, _connector, private_emulator
from velonb.emulator import Emulator
from velonb.errors import PermissionDeniedError
from velonb.fleet import FleetError, Flow, WaitInterrupted, WaitTimeout

MUTATION_DELAY = 0.6  # longer than a query: a control that does not wait sees the old state


@pytest.fixture(scope="module")
def lagging_emulator() -> Iterator[Emulator]:
    with private_emulator(flow_delay=0.0, mutation_delay=MUTATION_DELAY) as emu:
        yield emu


@pytest.fixture
def connect(lagging_emulator: Emulator, tmp_path: Path) -> Iterator[ConnectAs]:
    yield from _connector(lagging_emulator, tmp_path)


def _hosts(conn, hunt) -> set[str]:
    return {conn.client(cid).hostname for cid in hunt.flows()["client_id"]}


def test_start_and_stop_wait_for_the_server(connect):
    conn = connect("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", description="later", labels="finance",
                            paused=True)
    assert hunt.state == "PAUSED" and hunt.flows().empty
    started = time.monotonic()
    assert hunt.start() is hunt
    assert time.monotonic() - started >= MUTATION_DELAY * 0.9
    assert hunt.state == "RUNNING" and conn.hunt(hunt.hunt_id).state == "RUNNING"
    deadline = time.monotonic() + 10
    while _hosts(conn, hunt) != {"WKS-FIN-0042", "WKS-FIN-0057"}:
        assert time.monotonic() < deadline, hunt.flows()
        time.sleep(0.1)
    hunt.stop()
    assert hunt.state == "STOPPED" and hunt.row["stats"]["stopped"] is True
    assert conn.hunts(state="stopped")["hunt_id"].tolist().count(hunt.hunt_id) == 1
    # a restart schedules nobody twice; stopping or starting twice is a no-op
    hunt.start()
    hunt.start()
    assert hunt.progress().scheduled == 2
    hunt.stop()
    assert hunt.stop().state == "STOPPED"


def test_update_description_expiry_and_tags(connect):
    conn = connect("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", description="first", labels="it",
                            paused=True)
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    hunt.update(description="second", expires=when, add_tags=["Triage", "IR-42"])
    assert hunt.description == "second" and hunt.expires == when
    assert sorted(hunt.tags) == ["IR-42", "Triage"]
    hunt.update(remove_tags="triage", expires="3d")
    assert hunt.tags == ["IR-42"] and hunt.description == "second"
    assert abs((hunt.expires - dt.datetime.now(dt.UTC)).total_seconds() - 3 * 86400) < 60
    listed = conn.hunts().set_index("hunt_id").loc[hunt.hunt_id]
    assert listed["tags"] == ["IR-42"] and listed["description"] == "second"
    with pytest.raises(ValueError, match="nothing to update"):
        hunt.update()
    with pytest.raises(ValueError, match="in the past"):
        hunt.update(expires=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))


def test_an_expired_hunt_is_not_started(connect, lagging_emulator):
    conn = connect("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", description="old", labels="it",
                            paused=True)
    world_hunt = lagging_emulator.world.hunt("root", hunt.hunt_id)
    world_hunt.expires = int((time.time() - 60) * 1e6)
    with pytest.raises(FleetError, match="expired") as err:
        hunt.start()
    assert "update(expires=" in str(err.value)
    hunt.update(expires="1d")
    assert hunt.start().state == "RUNNING"


def test_add_a_client_whatever_the_condition(connect):
    conn = connect("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", description="finance", labels="finance")
    flow = hunt.add("DC-01")  # not a finance host: added by hand
    assert isinstance(flow, Flow) and flow.client_id == conn.client("DC-01").client_id
    assert flow.flow_id == "F." + hunt.hunt_id[2:] + ".H"
    flow.wait(timeout=10, progress=False)
    assert flow.state == "FINISHED" and "DC-01" in _hosts(conn, hunt)
    # the hunt ran there: adding again returns the same collection
    assert hunt.add(flow.client_id).flow_id == flow.flow_id
    again = hunt.add("DC-01", relaunch=True)
    assert again.flow_id != flow.flow_id and again.flow_id.startswith("F.")
    again.wait(timeout=10, progress=False)
    assert again.state == "FINISHED"
    deadline = time.monotonic() + 10
    while again.flow_id not in hunt.flows()["flow_id"].tolist():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # an offline client's collection is queued in the hunt
    queued = hunt.add("WKS-FIN-0061")
    assert queued.state in ("RUNNING", "WAITING", "UNSET") and not queued.done
    with pytest.raises(FleetError, match="server cannot take part"):
        hunt.add("server")


def test_controls_need_start_hunt(connect):
    owner = connect("investigator")
    hunt = owner.create_hunt("Windows.System.Pslist", description="x", labels="it", paused=True)
    reader = connect("apiuser").hunt(hunt.hunt_id)
    for control in (reader.start, reader.stop, lambda: reader.add("DC-01"),
                    lambda: reader.update(description="y")):
        with pytest.raises(PermissionDeniedError, match="START_HUNT"):
            control()
    assert owner.hunt(hunt.hunt_id).state == "PAUSED"


def test_a_change_the_server_never_shows_times_out(connect, lagging_emulator, monkeypatch):
    conn = connect("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", description="x", labels="it", paused=True)
    monkeypatch.setattr(lagging_emulator.world, "mutate_later", lambda change: None)
    started = time.monotonic()
    with pytest.raises(WaitTimeout, match="not RUNNING after 1s") as err:
        hunt.start(timeout=1)
    assert time.monotonic() - started < 5
    assert "hunt.refresh()" in str(err.value)


@pytest.fixture(scope="module")
def slow_hunts() -> Iterator[Emulator]:
    """Clients join 0.3 s apart and take a second each, as on a real fleet."""
    with private_emulator(flow_delay=1.0, hunt_client_delay=0.3) as emu:
        yield emu


@pytest.fixture
def connect_slow(slow_hunts: Emulator, tmp_path: Path) -> Iterator[ConnectAs]:
    yield from _connector(slow_hunts, tmp_path)


def test_wait_until_the_scheduled_clients_answered(connect_slow):
    conn = connect_slow("investigator")
    online = conn.clients(os="windows").query("online")
    hunt = conn.create_hunt("Windows.System.Pslist", description="sweep", os="windows")
    started = time.monotonic()
    assert hunt.wait(timeout=60, clients=len(online), progress=False) is hunt
    assert time.monotonic() - started >= 1.0  # the last client joins late and takes a second
    done = hunt.progress()
    assert done.finished == done.scheduled == len(online) and done.rows > 0
    assert set(hunt.flows()["client_id"]) == set(online["client_id"])


def test_wait_gives_up_or_is_interrupted_and_the_hunt_goes_on(connect_slow):
    conn = connect_slow("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", description="sweep 2", os="windows")
    with pytest.raises(WaitTimeout, match=r"scheduled clients finished \(of 99 expected\) "
                                          r"after 0\.5s") as err:
        hunt.wait(timeout=0.5, clients=99, progress=False)
    assert "hunt.wait()" in str(err.value)
    timer = threading.Timer(0.4, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(WaitInterrupted, match="goes on on the server"):
            hunt.wait(timeout=30, clients=99, progress=False)
    finally:
        timer.cancel()
    assert hunt.stop().wait(timeout=30, progress=False).progress().outstanding == 0
    # a stopped hunt with nothing outstanding returns at once, whatever `clients` says
    started = time.monotonic()
    hunt.wait(timeout=30, clients=99, progress=False)
    assert time.monotonic() - started < 2


def test_a_paused_hunt_returns_at_once(connect_slow):
    conn = connect_slow("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", description="later", labels="it",
                            paused=True)
    started = time.monotonic()
    assert hunt.wait(timeout=30, progress=False).progress().scheduled == 0
    assert time.monotonic() - started < 2
