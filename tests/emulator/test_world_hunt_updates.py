"""hunt_update() and hunt_add() (vql/server/hunts/stop.go, create.go; the hunt manager's
mutations): values, logs, and changes that show only after the hunt manager applied them."""

from __future__ import annotations

import time

import pytest
from wire_helpers import run_world_query

from velonb.emulator.world import World
from velonb.emulator.world import hunts as H


@pytest.fixture
def sim():
    world = World(seed=7, flow_delay=0.0, hunt_client_delay=0.0, mutation_delay=0.2)
    yield world
    world.close()


def new_hunt(sim, args: str = "pause=TRUE") -> H.Hunt:
    rows, logs = run_world_query(sim, "SELECT hunt(artifacts='Generic.Client.Info', "
                                      f"include_labels='finance', {args}) AS H FROM scope()")
    assert logs == []
    hunt = sim.hunt("root", rows[0]["H"]["HuntId"])
    assert hunt is not None
    return hunt


def call(sim, expression: str, roles=("administrator",)):
    rows, logs = run_world_query(sim, f"SELECT {expression} AS V FROM scope()", roles)
    return rows[0]["V"], logs


def settle(sim, predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the mutation never applied"
        time.sleep(0.01)


def online(sim, label: str) -> set[str]:
    return {c.client_id for c in sim.clients("root")
            if c.online and label in [x.lower() for x in c.labels]}


def test_start_and_stop_apply_after_the_hunt_manager(sim):
    hunt = new_hunt(sim)
    value, logs = call(sim, f"hunt_update(hunt_id='{hunt.hunt_id}', start=TRUE)")
    assert (value, logs) == (hunt.hunt_id, [])
    assert hunt.state == H.PAUSED and hunt.scheduled == 0  # not yet: the change is queued
    settle(sim, lambda: hunt.state == H.RUNNING)
    assert hunt.start_time > hunt.create_time
    assert set(hunt.flows) == online(sim, "finance") != set()
    value, logs = call(sim, f"hunt_update(hunt_id='{hunt.hunt_id}', stop=TRUE)")
    assert (value, logs) == (hunt.hunt_id, [])
    settle(sim, lambda: hunt.state == H.STOPPED)
    row = hunt.row()
    assert row["state"] == "STOPPED" and row["stats"]["stopped"] is True
    # a stopped hunt can be started again: a new start time, nobody scheduled twice
    scheduled = hunt.scheduled
    call(sim, f"hunt_update(hunt_id='{hunt.hunt_id}', start=TRUE, stop=TRUE)")  # start wins
    settle(sim, lambda: hunt.state == H.RUNNING)
    assert hunt.scheduled == scheduled and hunt.row()["stats"]["stopped"] is False


def test_description_expiry_and_labels(sim):
    hunt = new_hunt(sim, "pause=TRUE, tags=['Triage']")
    value, logs = call(sim, f"hunt_update(hunt_id='{hunt.hunt_id}', description='phase 2', "
                            "expires=now() + 7200)")
    assert (value, logs) == (hunt.hunt_id, [])
    settle(sim, lambda: hunt.description == "phase 2")
    assert abs(hunt.expires / 1e6 - (time.time() + 7200)) < 60
    value, logs = call(sim, f"hunt_update(hunt_id='{hunt.hunt_id}', add_labels=['b', 'TRIAGE'], "
                            "del_labels='triage')")
    assert (value, logs) == (["b"], [])  # case-folded; the value is the new labels
    settle(sim, lambda: hunt.tags == ["b"])
    value, _ = call(sim, f"hunt_update(hunt_id='{hunt.hunt_id}', del_labels='B')")
    assert value == []
    settle(sim, lambda: hunt.tags == [])
    value, logs = call(sim, f"hunt_update(hunt_id='{hunt.hunt_id}', expires=now() - 10)")
    assert value is None and logs == ["hunt_update: expiry time spectified is in the past."]
    value, logs = call(sim, "hunt_update(hunt_id='H.NOSUCHHUNT', stop=TRUE)")
    assert (value, logs) == ("H.NOSUCHHUNT", [])  # the mutation goes nowhere, silently
    value, logs = call(sim, "hunt_update(hunt_id='H.NOSUCHHUNT', add_labels='x')")
    assert value is None and logs == ["hunt_update: <nil>"]


def test_updates_need_start_hunt(sim):
    hunt = new_hunt(sim)
    for expression in (f"hunt_update(hunt_id='{hunt.hunt_id}', start=TRUE)",
                       f"hunt_add(hunt_id='{hunt.hunt_id}', client_id='C.1')"):
        value, logs = call(sim, expression, roles=("reader",))
        name = expression.split("(")[0]
        assert value is None
        assert logs == [f"{name}: PermissionDenied: Permission denied: [START_HUNT]"]
    time.sleep(0.3)
    assert hunt.state == H.PAUSED and hunt.scheduled == 0


def test_hunt_add_schedules_one_client_whatever_the_condition(sim):
    hunt = new_hunt(sim, "pause=TRUE")
    outsider = next(c for c in sim.clients("root")
                    if c.online and "finance" not in [x.lower() for x in c.labels])
    value, logs = call(sim, f"hunt_add(hunt_id='{hunt.hunt_id}', client_id='{outsider.client_id}')")
    assert (value, logs) == (outsider.client_id, [])
    settle(sim, lambda: outsider.client_id in hunt.flows)
    assert hunt.scheduled == 1 and hunt.state == H.PAUSED  # paused and not a finance host
    flow = next(iter(sim.hunt_flows(hunt)))
    assert flow.session_id == H.hunt_flow_id(hunt.hunt_id)
    assert sim.wait_flow(flow)
    settle(sim, lambda: hunt.finished == 1)
    # again: the hunt already ran there, nothing happens
    call(sim, f"hunt_add(hunt_id='{hunt.hunt_id}', client_id='{outsider.client_id}')")
    time.sleep(0.3)
    assert hunt.scheduled == 1 and len(hunt.table) == 1


def test_hunt_add_relaunch_and_existing_flow(sim):
    hunt = new_hunt(sim, "pause=TRUE")
    client = next(c for c in sim.clients("root") if c.online)
    call(sim, f"hunt_add(hunt_id='{hunt.hunt_id}', client_id='{client.client_id}')")
    settle(sim, lambda: hunt.finished == 1)
    value, logs = call(sim, f"hunt_add(hunt_id='{hunt.hunt_id}', "
                            f"client_id='{client.client_id}', relaunch=TRUE)")
    assert logs == [] and value.startswith("F.") and not value.endswith(".H")
    settle(sim, lambda: len(hunt.table) == 2)
    assert [flow_id for _, flow_id in hunt.table] == [H.hunt_flow_id(hunt.hunt_id), value]
    # an assigned flow counts as scheduled, finished and with results at once (its rows so far)
    assert (hunt.scheduled, hunt.finished, hunt.with_results) == (2, 2, 2)
    flows, _ = run_world_query(sim, f"SELECT FlowId FROM hunt_flows(hunt_id='{hunt.hunt_id}')")
    assert [r["FlowId"] for r in flows] == [H.hunt_flow_id(hunt.hunt_id), value]
    relaunched = sim.flow("root", client.client_id, value)
    assert relaunched is not None and relaunched.artifacts == ["Generic.Client.Info"]
    # an existing collection joins the hunt as it is
    other = next(c for c in sim.clients("root") if c.online and c is not client)
    made, _ = run_world_query(sim, f"SELECT collect_client(client_id='{other.client_id}', "
                                   "artifacts='Generic.Client.Info').flow_id AS F FROM scope()")
    flow_id = made[0]["F"]
    value, logs = call(sim, f"hunt_add(hunt_id='{hunt.hunt_id}', client_id='{other.client_id}', "
                            f"flow_id='{flow_id}')")
    assert (value, logs) == (other.client_id, [])
    settle(sim, lambda: len(hunt.table) == 3)
    assert hunt.table[-1] == (other.client_id, flow_id)


def test_hunt_add_refusals(sim):
    hunt = new_hunt(sim)
    value, logs = call(sim, f"hunt_add(hunt_id='{hunt.hunt_id}', client_id='server')")
    assert value is None and logs == ["hunt_add: The server can not participate in a hunt"]
    value, logs = call(sim, "hunt_add(hunt_id='H.NOSUCHHUNT', client_id='C.1', relaunch=TRUE)")
    assert value is None and logs == ["hunt_add: Hunt id not found H.NOSUCHHUNT"]
    # without relaunch an unknown hunt or client is only in the server's own log
    assert call(sim, "hunt_add(hunt_id='H.NOSUCHHUNT', client_id='C.1')") == ("C.1", [])
    assert call(sim, f"hunt_add(hunt_id='{hunt.hunt_id}', client_id='C.1')") == ("C.1", [])
    time.sleep(0.3)
    assert hunt.table == []


def test_an_expired_hunt_takes_no_clients_when_started():
    world = World(seed=7, mutation_delay=0.0)
    try:
        hunt = new_hunt(world)
        hunt.expires = int((time.time() - 5) * 1e6)
        assert world.start_hunt("root", hunt.hunt_id)
        assert hunt.state == H.RUNNING and hunt.table == []
    finally:
        world.close()
