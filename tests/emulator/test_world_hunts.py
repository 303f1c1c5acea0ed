"""Hunts: hunt() (conditions, pause, expiry), hunts(), hunt_results() extra columns and
hunt_flows() (vql/server/hunts, services/hunt_dispatcher)."""

from __future__ import annotations

import json
import time

import pytest
from wire_helpers import run_world_query

from velonb.emulator.world import World

HUNT_COLUMNS = [
    "hunt_id", "version", "create_time", "creator", "start_time", "expires",
    "hunt_description", "tags", "start_request", "condition", "client_limit", "stats",
    "artifacts", "artifact_sources", "state", "org_ids",
]
STATS_COLUMNS = [
    "total_clients_scheduled", "total_clients_with_results", "total_clients_without_results",
    "total_clients_with_errors", "total_uploaded_bytes", "total_collected_rows",
    "total_finished_clients", "stopped", "available_downloads", "last_client_table_scan",
]


@pytest.fixture
def sim():
    world = World(seed=7, flow_delay=0.0, hunt_client_delay=0.0)
    yield world
    world.close()


def make_hunt(sim, args: str, roles=("administrator",), org="root"):
    rows, logs = run_world_query(sim, f"SELECT hunt(artifacts='Generic.Client.Info', {args}) "
                                      "AS H FROM scope()", roles, org=org)
    return rows[0]["H"], logs


def wait_hunt(sim, hunt_id, org="root"):
    hunt = sim.hunt(org, hunt_id)
    assert hunt is not None
    for flow in sim.hunt_flows(hunt):
        assert sim.wait_flow(flow)
    return hunt


def test_hunt_request_shape_and_conditions(sim):
    result, logs = make_hunt(sim, "description='by label', include_labels='finance', "
                                  "exclude_labels='vip', tags=['Tag1', 'Tag2']")
    assert logs == []
    assert list(result) == ["HuntId", "Request"]
    request = result["Request"]
    assert result["HuntId"].startswith("H.") and len(result["HuntId"]) == 15
    assert request["hunt_id"] == result["HuntId"]
    assert request["hunt_description"] == "by label" and request["tags"] == ["Tag1", "Tag2"]
    assert request["condition"] == {"excluded_labels": {"label": ["vip"]},
                                    "UnionField": {"Labels": {"label": ["finance"]}}}
    assert request["state"] == 2 and request["stats"] == {}  # reflection: int enum, omitempty
    assert request["start_request"]["flow_id"] == "F." + result["HuntId"][2:] + ".H"
    assert isinstance(request["create_time"], int) and request["expires"] > request["create_time"]
    hunt = wait_hunt(sim, result["HuntId"])
    hosts = {sim.client("root", c).hostname for c in hunt.flows}
    assert hosts == {"WKS-FIN-0057"}  # finance, not vip, online (WKS-FIN-0061 is offline)

    result, logs = make_hunt(sim, "os='linux', include_labels='finance', exclude_labels='x'")
    assert logs == ["hunt: Both OS and label conditions set, ignoring include label conditions"]
    assert result["Request"]["condition"] == {"UnionField": {"Os": {"os": 2}}}
    hunt = wait_hunt(sim, result["HuntId"])
    assert {sim.client("root", c).system for c in hunt.flows} == {"linux"}
    assert len(hunt.flows) == len([c for c in sim.clients("root")
                                   if c.system == "linux" and c.online])

    result, logs = make_hunt(sim, "os='solaris'")
    assert result is None
    assert logs == ["hunt: OS condition invalid solaris (should be linux, windows, darwin)"]


def test_hunts_row_shape_and_stats(sim):
    result, _ = make_hunt(sim, "description='all windows', os='windows'")
    hunt = wait_hunt(sim, result["HuntId"])
    rows, logs = run_world_query(sim, f"SELECT * FROM hunts(hunt_id='{hunt.hunt_id}')")
    assert logs == []
    row = rows[0]
    assert list(row) == HUNT_COLUMNS
    assert list(row["stats"]) == STATS_COLUMNS
    assert row["state"] == "RUNNING" and row["condition"]["os"] == {"os": "WINDOWS"}
    assert row["condition"]["labels"] == {"label": []}
    assert row["stats"]["total_clients_scheduled"] == len(hunt.flows) > 3
    assert row["stats"]["total_finished_clients"] == len(hunt.flows)
    assert row["stats"]["total_clients_with_results"] == len(hunt.flows)
    assert row["stats"]["total_collected_rows"] > 0
    assert row["artifacts"] == ["Generic.Client.Info"]
    assert all(s.startswith("Generic.Client.Info") for s in row["artifact_sources"])
    assert row["org_ids"] == ["root"]
    assert row["create_time"] > 1_000_000_000_000_000  # µs
    listed, _ = run_world_query(sim, "SELECT hunt_id FROM hunts()")
    assert {r["hunt_id"] for r in listed} == {hunt.hunt_id}


def test_hunt_results_and_hunt_flows(sim):
    result, _ = make_hunt(sim, "include_labels='servers'")
    hunt = wait_hunt(sim, result["HuntId"])
    hid = hunt.hunt_id
    rows, logs = run_world_query(sim, f"SELECT * FROM hunt_results(hunt_id='{hid}')")
    assert logs == [] and rows
    first = hunt.artifact_sources[0]
    # ordereddict.Set (the version velociraptor pins) moves a key the row has to the end:
    # BasicInformation rows carry their own Fqdn, which still ends the row
    assert any(rs and "Fqdn" in rs[0] for f in sim.hunt_flows(hunt) for rs in f.results.values())
    for row in rows:
        assert list(row)[-4:] == ["FlowId", "ClientId", "_OrgId", "Fqdn"]
    clients = {c.client_id: c for c in sim.clients("root")}
    for row in rows:
        assert row["FlowId"] == "F." + hid[2:] + ".H" and row["_OrgId"] == "root"
        assert row["Fqdn"] == clients[row["ClientId"]].fqdn
    named, _ = run_world_query(sim, f"SELECT * FROM hunt_results(hunt_id='{hid}', "
                                    f"artifact='{first}')")
    assert named == rows
    via_source, _ = run_world_query(sim, f"SELECT * FROM source(hunt_id='{hid}', "
                                         f"artifact='{first}')")
    assert via_source == rows
    _, logs = run_world_query(sim, f"SELECT * FROM hunt_results(hunt_id='{hid}', artifact='X')")
    assert logs == [f"hunt_results: artifact X not available in hunt. Available artifacts are "
                    f"{', '.join(hunt.artifact_sources)}"]
    _, logs = run_world_query(sim, "SELECT * FROM hunt_results(hunt_id='H.NOPE')")
    assert logs == ["hunt_results: Hunt not found"]

    flows, logs = run_world_query(sim, f"SELECT * FROM hunt_flows(hunt_id='{hid}')")
    assert logs == [] and len(flows) == len(hunt.flows)
    assert list(flows[0]) == ["HuntId", "ClientId", "FlowId", "Flow"]
    assert flows[0]["Flow"]["state"] == "FINISHED"
    # the flow record without its request file: the reduced request WriteFlow keeps
    assert flows[0]["Flow"]["request"]["client_id"] == flows[0]["ClientId"]
    assert flows[0]["Flow"]["request"]["artifacts"] == ["Generic.Client.Info"]
    assert flows[0]["Flow"]["request"]["specs"] == []
    basic, _ = run_world_query(sim, f"SELECT * FROM hunt_flows(hunt_id='{hid}', basic_info=TRUE)")
    assert [(r["ClientId"], r["FlowId"]) for r in basic] == \
        [(r["ClientId"], r["FlowId"]) for r in flows]
    record = basic[0]["Flow"]
    assert list(record) == list(flows[0]["Flow"])
    assert (record["client_id"], record["session_id"]) == (basic[0]["ClientId"], basic[0]["FlowId"])
    assert record["state"] == "UNSET" and record["create_time"] == 0
    assert record["query_stats"] == [] and record["request"]["artifacts"] == []
    paged, _ = run_world_query(sim, f"SELECT * FROM hunt_flows(hunt_id='{hid}', start_row=2)")
    assert paged == flows[2:]


def test_paused_hunt_schedules_nothing_until_started(sim):
    result, _ = make_hunt(sim, "pause=TRUE")
    assert result["Request"]["state"] == 1 and "start_time" not in result["Request"]
    hunt = sim.hunt("root", result["HuntId"])
    assert hunt.flows == {} and hunt.scheduled == 0
    assert sim.start_hunt("root", hunt.hunt_id)
    wait_hunt(sim, hunt.hunt_id)
    assert hunt.scheduled == len([c for c in sim.clients("root") if c.online])


def test_hunt_expiry_and_permissions(sim):
    rows, logs = run_world_query(sim, "SELECT hunt(artifacts='Generic.Client.Info', pause=TRUE, "
                                      "expires=now() + 18000).Request.expires AS E, "
                                      "now() AS N FROM scope()")
    assert logs == [] and abs(rows[0]["E"] - (rows[0]["N"] + 18000) * 1_000_000) < 5_000_000
    result, logs = make_hunt(sim, "pause=TRUE, expires=now() - 18000")
    assert result is None
    assert len(logs) == 1 and logs[0].startswith("hunt: expiry time ")
    assert logs[0].endswith(" +0000 UTC in the past")
    result, logs = make_hunt(sim, "pause=TRUE", roles=("api",))
    assert result is None and logs == ["hunt: PermissionDenied: Permission denied: [START_HUNT]"]
    result, logs = make_hunt(sim, "pause=TRUE", roles=("investigator",))
    assert result is not None and logs == []
    rows, logs = run_world_query(sim, "SELECT hunt(artifacts='No.Such') AS H FROM scope()")
    assert rows == [{"H": None}] and logs == ["hunt: Unknown artifact No.Such"]


def test_hunts_are_per_org(sim):
    result, _ = make_hunt(sim, "description='second org'", org="O1234")
    hunt = wait_hunt(sim, result["HuntId"], org="O1234")
    assert {c.endswith("-O1234") for c in hunt.flows} == {True}
    rows, _ = run_world_query(sim, "SELECT hunt_id FROM hunts()")
    assert rows == []
    rows, _ = run_world_query(sim, "SELECT hunt_id FROM hunts()", org="O1234")
    assert rows == [{"hunt_id": hunt.hunt_id}]
    rows, _ = run_world_query(sim, f"SELECT _OrgId FROM hunt_results(hunt_id='{hunt.hunt_id}')",
                              org="O1234")
    assert rows and {r["_OrgId"] for r in rows} == {"O1234"}


def test_hunt_clients_finish_over_time():
    world = World(seed=7, hunt_client_delay=0.2, pickup_delay=0.0)
    try:
        result, _ = make_hunt(world, "os='windows'")
        hunt = world.hunt("root", result["HuntId"])
        assert hunt.scheduled > 3
        time.sleep(0.3)
        assert 0 < hunt.finished < hunt.scheduled
        wait_hunt(world, hunt.hunt_id)
        assert hunt.finished == hunt.scheduled
    finally:
        world.close()


def test_hunt_object_encodes_as_protojson_but_reads_as_go_fields(sim):
    from velonb.emulator import gojson

    sub = sim.bus.subscribe("root", "System.Hunt.Creation")
    rows, _ = run_world_query(sim, "SELECT hunt(artifacts='Windows.System.Pslist', "
                                   "description='json', include_labels='finance', "
                                   "exclude_labels='vip', timeout=30, spec=dict("
                                   "`Windows.System.Pslist`=dict(ProcessRegex='svc'))) AS H "
                                   "FROM scope()")
    result = rows[0]["H"]
    request = result["Request"]
    assert request["state"] == 2 and isinstance(request["create_time"], int)  # member access
    encoded = json.loads(gojson.dumps(result))["Request"]  # json.MarshalHuntProtobuf
    assert list(encoded) == ["hunt_id", "create_time", "creator", "start_time", "expires",
                             "hunt_description", "start_request", "condition", "stats",
                             "artifacts", "artifact_sources", "state", "org_ids"]
    assert encoded["create_time"] == str(request["create_time"])
    assert encoded["state"] == "RUNNING" and encoded["stats"] == {}
    assert encoded["condition"] == {"excluded_labels": {"label": ["vip"]},
                                    "labels": {"label": ["finance"]}}
    start = encoded["start_request"]
    assert start["max_upload_bytes"] == "1073741824" and start["timeout"] == "30"
    assert "client_id" not in start and "summary" not in start  # unset: omitted
    assert start["specs"] == [{"artifact": "Windows.System.Pslist",
                               "parameters": {"env": [{"key": "ProcessRegex", "value": "svc"}]}}]
    linux, _ = make_hunt(sim, "os='linux', pause=TRUE")
    encoded = json.loads(gojson.dumps(linux["Request"]))
    assert encoded["condition"] == {"os": {"os": "LINUX"}} and encoded["state"] == "PAUSED"
    assert "start_time" not in encoded  # a paused hunt has not started
    event = sub.queue.get(timeout=5)
    sub.close()
    assert json.loads(gojson.dumps(event["Hunt"]))["create_time"] == str(request["create_time"])


def test_hunts_listing_shows_the_summary_request(sim):
    result, _ = make_hunt(sim, "description='x', timeout=30, spec=dict("
                               "`Generic.Client.Info`=dict(Foo='1'))")
    hid = result["HuntId"]
    full, _ = run_world_query(sim, f"SELECT start_request FROM hunts(hunt_id='{hid}')")
    assert full[0]["start_request"]["timeout"] == 30 and full[0]["start_request"]["specs"]
    summary = {"creator": "admin", "artifacts": ["Generic.Client.Info"], "summary": True}
    for vql in (f"SELECT start_request FROM hunts(hunt_id='{hid}', summary=TRUE)",
                "SELECT start_request FROM hunts()"):
        rows, _ = run_world_query(sim, vql)
        request = rows[0]["start_request"]
        assert list(request) == list(full[0]["start_request"])
        assert {k: v for k, v in request.items() if v not in ("", 0, False, [])} == summary


def test_client_rows_never_show_the_housekeeping_timestamps(sim):
    result, _ = make_hunt(sim, "os='windows'")
    hunt = wait_hunt(sim, result["HuntId"])
    cid = next(iter(hunt.flows))
    assert sim.client("root", cid).last_hunt_timestamp  # the record keeps it...
    rows, _ = run_world_query(sim, f"SELECT last_hunt_timestamp, last_event_table_version, "
                                   f"last_label_timestamp, client_info(client_id='{cid}')"
                                   f".last_hunt_timestamp AS Info FROM clients(client_id='{cid}')")
    assert rows == [{"last_hunt_timestamp": 0, "last_event_table_version": 0,  # ...the API not
                     "last_label_timestamp": 0, "Info": 0}]  # (indexing _FastGetApiClient)


def test_a_hunt_in_several_orgs_returns_the_last_orgs_copy(sim):
    made, logs = make_hunt(sim, "description='both', org_id=['root', 'O1234']")
    assert logs == []
    root, second = sim.hunt("root", made["HuntId"]), sim.hunt("O1234", made["HuntId"])
    assert root is not None and second is not None  # one id in both orgs
    assert root.org_ids == ["root", "O1234"] and second.org_ids == []  # only root's lists them
    assert "org_ids" not in made["Request"]  # create.go: new_hunt is the last org's hunt
    made, _ = make_hunt(sim, "description='root last', org_id=['O1234', 'root']")
    assert made["Request"]["org_ids"] == ["O1234", "root"]
