"""label() and client/server metadata (vql/server/labels.go, vql/server/clients/metadata.go):
what they return, what they change, and who may call them."""

from __future__ import annotations

import pytest
from wire_helpers import run_world_query

from velonb.emulator.world import World


@pytest.fixture
def sim():
    world = World(seed=7, flow_delay=0.0)
    yield world
    world.close()


def _cid(world: World, hostname: str = "DC-01") -> str:
    return next(c.client_id for c in world.clients("root") if c.hostname == hostname)


def test_label_set_check_remove(sim):
    cid = _cid(sim)
    rows, logs = run_world_query(sim, f"SELECT label(client_id='{cid}', labels=['Triage', ''], "
                                      "op='set') AS L FROM scope()", ("investigator",))
    assert logs == []
    assert rows[0]["L"] == {"ClientId": cid, "Labels": ["Triage", ""], "Op": "set"}  # golden
    assert "Triage" in sim.client("root", cid).labels
    run_world_query(sim, f"SELECT label(client_id='{cid}', labels='TRIAGE', op='set') "
                         "FROM scope()")
    assert [x for x in sim.client("root", cid).labels if x.lower() == "triage"] == ["Triage"]
    found, _ = run_world_query(sim, "SELECT client_id FROM clients(search='label:triage')")
    assert [r["client_id"] for r in found] == [cid]
    rows, _ = run_world_query(sim, f"SELECT label(client_id='{cid}', labels=['triage', 'all'], "
                                   f"op='check') AS Has, label(client_id='{cid}', "
                                   "labels=['nope'], op='check') AS Missing FROM scope()")
    assert rows[0]["Has"]["Op"] == "check" and rows[0]["Missing"] is False
    run_world_query(sim, f"SELECT label(client_id='{cid}', labels='triage', op='remove') "
                         "FROM scope()")
    assert "Triage" not in sim.client("root", cid).labels
    before = list(sim.client("root", cid).labels)
    rows, _ = run_world_query(sim, f"SELECT label(client_id='{cid}', labels='x') AS L "
                                   "FROM scope()")
    assert rows[0]["L"]["Op"] == "" and sim.client("root", cid).labels == before  # no op


def test_label_errors_and_permissions(sim):
    cid = _cid(sim)
    rows, logs = run_world_query(sim, f"SELECT label(client_id='{cid}', labels='x', op='set') "
                                      "AS L FROM scope()", ("reader",))
    assert rows == [{"L": None}]
    assert logs == ["label: PermissionDenied: Permission denied: [LABEL_CLIENT]"]
    rows, logs = run_world_query(sim, "SELECT label(client_id='DC-01', labels='x', op='set') "
                                      "AS L FROM scope()")
    assert rows == [{"L": None}] and logs == ["label: ClientId is not valid"]
    _, logs = run_world_query(sim, f"SELECT label(client_id='{cid}') FROM scope()")
    assert logs == ["label: Field labels is required"]


def test_client_and_server_metadata(sim):
    cid = _cid(sim)
    rows, logs = run_world_query(sim, f"SELECT client_set_metadata(client_id='{cid}', "
                                      "Case='IR-7', Count=3, Ratio=1234567.0, Seen=TRUE) AS S "
                                      "FROM scope()", ("investigator",))
    assert rows == [{"S": True}] and logs == []
    got, _ = run_world_query(sim, f"SELECT client_metadata(client_id='{cid}') AS M FROM scope()")
    meta = got[0]["M"]
    assert {k: meta[k] for k in ("Case", "Count", "Ratio", "Seen")} == {
        "Case": "IR-7", "Count": "3", "Ratio": "1.234567e+06", "Seen": "true"}  # %v strings
    run_world_query(sim, f"SELECT client_set_metadata(client_id='{cid}', "
                         "metadata=dict(Case=NULL, Owner='ana')) FROM scope()")
    got, _ = run_world_query(sim, f"SELECT client_metadata(client_id='{cid}') AS M FROM scope()")
    assert "Case" not in got[0]["M"] and list(got[0]["M"])[-1] == "Owner"

    _, logs = run_world_query(sim, "SELECT server_set_metadata(Ticket='T-1') FROM scope()",
                              ("investigator",))
    assert logs == ["server_set_metadata: PermissionDenied: Permission denied: [SERVER_ADMIN]"]
    rows, logs = run_world_query(sim, "SELECT server_set_metadata(Ticket='T-1') AS S, "
                                      "server_metadata() AS M, "
                                      "client_metadata(client_id='server') AS C FROM scope()")
    assert logs == [] and rows == [{"S": True, "M": {"Ticket": "T-1"}, "C": {"Ticket": "T-1"}}]
    rows, _ = run_world_query(sim, "SELECT server_metadata() AS M FROM scope()", org="O1234")
    assert rows == [{"M": {}}]  # per org
    _, logs = run_world_query(sim, "SELECT server_metadata() FROM scope()", ("api",))
    assert logs == ["server_metadata: PermissionDenied: Permission denied: [SERVER_ADMIN]"]
