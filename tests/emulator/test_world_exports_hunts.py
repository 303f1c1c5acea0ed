"""create_hunt_download() (createHuntDownloadFile, generateCombinedResults): file names, the
combined results with FlowId/ClientId/Fqdn, each flow under <host>-<client>, and the export
listed in hunts(hunt_id=)."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from wire_helpers import run_world_query

from velonb.emulator.gojson import dumps
from velonb.emulator.world import World
from velonb.emulator.world.exports import iter_members


@pytest.fixture(scope="module")
def hunted():
    world = World(seed=7, flow_delay=0.0)
    rows, logs = run_world_query(
        world, "SELECT hunt(artifacts='Windows.System.Pslist', description='implant', "
               "os='windows', spec=dict(`Windows.System.Pslist`=dict(ProcessRegex='msdtc'))) "
               "AS H FROM scope()")
    assert logs == []
    hunt = world.hunt("root", rows[0]["H"]["HuntId"])
    deadline = time.monotonic() + 20
    while not (hunt.scheduled and hunt.finished >= hunt.scheduled):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield world, hunt
    world.close()


def _export(world, hunt_id, args="", roles=("administrator",)):
    rows, logs = run_world_query(world, f"SELECT create_hunt_download(hunt_id='{hunt_id}', "
                                        f"wait=TRUE{args}) AS D FROM scope()", roles)
    return rows[0]["D"], logs


def test_names_follow_the_hunt_path_manager(hunted):
    world, hunt = hunted
    hid = hunt.hunt_id
    cases = {"": f"{hid}.zip", ", only_combined=TRUE": f"{hid}-summary.zip",
             ", only_combined=TRUE, base='json-'": f"json-{hid}-summary.zip",
             ", password='pw'": f"{hid}_locked.zip"}
    for args, name in cases.items():
        spec, _ = _export(world, hid, args)
        assert str(spec) == f"fs:/downloads/hunts/{hid}/{name}"  # golden downloads.out.yaml
        assert spec.vql_associative(None, "Components")[0] == ["downloads", "hunts", hid, name]


def test_combined_results_and_each_flow(hunted):
    world, hunt = hunted
    spec, logs = _export(world, hunt.hunt_id, ", format='csv'")
    assert logs == []
    members = dict(iter_members(world.read_file("root", list(spec.components))))
    names = list(members)
    assert names[:3] == ["hunt_info.json", "results/All Windows.System.Pslist.json",
                         "results/All Windows.System.Pslist.csv"]
    info = json.loads(members["hunt_info.json"])
    assert info["hunt_id"] == hunt.hunt_id and info["create_time"] == str(hunt.create_time)
    combined = [json.loads(line) for line in
                members["results/All Windows.System.Pslist.json"].splitlines()]
    expected, _ = run_world_query(world, f"SELECT * FROM hunt_results(hunt_id='{hunt.hunt_id}', "
                                         "artifact='Windows.System.Pslist')")
    assert len(combined) == len(expected) > 0
    assert {r["ClientId"] for r in combined} == {r["ClientId"] for r in expected}
    assert list(combined[0])[-3:] == ["FlowId", "ClientId", "Fqdn"]
    first = next(r for r in expected if r["Pid"] == combined[0]["Pid"]
                 and r["ClientId"] == combined[0]["ClientId"])
    assert combined[0]["Fqdn"] == first["Fqdn"] and combined[0]["FlowId"] == first["FlowId"]
    header = members["results/All Windows.System.Pslist.csv"].decode().splitlines()[0]
    assert header.endswith(",FlowId,ClientId,Fqdn")
    # every scheduled client has its own directory, named <hostname>-<client id>
    for flow in world.hunt_flows(hunt):
        host = world.client("root", flow.client_id).hostname
        assert f"{host}-{flow.client_id}/collection_context.json" in names
        if flow.artifacts_with_results():
            assert f"{host}-{flow.client_id}/results/Windows.System.Pslist.json" in names
    summary, _ = _export(world, hunt.hunt_id, ", only_combined=TRUE, format='json'")
    only = [n for n, _ in iter_members(world.read_file("root", list(summary.components)))]
    assert only == ["hunt_info.json", "results/All Windows.System.Pslist.json"]


def test_listed_in_the_hunt_and_errors(hunted):
    world, hunt = hunted
    spec, _ = _export(world, hunt.hunt_id, ", base='listed-'")
    rows, _ = run_world_query(world, f"SELECT stats FROM hunts(hunt_id='{hunt.hunt_id}')")
    files = rows[0]["stats"]["available_downloads"]["files"]
    (record,) = [f for f in files if f["name"] == f"listed-{hunt.hunt_id}"]
    data = world.read_file("root", list(spec.components))
    assert list(record) == ["name", "path", "type", "complete", "size", "date", "stats"]
    assert record["complete"] is True and record["size"] == len(data)
    assert record["stats"]["hash"] == hashlib.sha256(data).hexdigest()
    assert list(record["stats"])[:3] == ["timestamp", "total_uploaded_files",
                                         "total_uploaded_bytes"]
    listing, _ = run_world_query(world, "SELECT hunt_id, stats FROM hunts()")
    mine = next(r for r in listing if r["hunt_id"] == hunt.hunt_id)
    assert mine["stats"]["available_downloads"] == {"files": []}  # only GetHunt fills it
    value, logs = _export(world, "H.NOPE")
    assert value is None and logs == ["create_hunt_download: Hunt not found"]
    value, logs = _export(world, hunt.hunt_id, roles=("reader",))
    assert value is None and logs == [
        "create_hunt_download: PermissionDenied: Permission denied: [PREPARE_RESULTS]"]
    assert dumps(value) == "null"
