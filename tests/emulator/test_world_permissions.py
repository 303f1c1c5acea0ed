"""Which role gets rows and which gets the PermissionDenied log, per plugin/function, as the real
server checks them (acls/roles.go; the check each plugin makes)."""

from __future__ import annotations

import grpc
import pytest
from wire_helpers import query_args

ROLES = ("api", "reader", "investigator", "administrator", "artifact_writer")
READ = {"api", "reader", "investigator", "administrator"}
COLLECT = {"investigator", "administrator"}
ADMIN = {"administrator"}
READ_EMPTY = frozenset(READ)  # allowed, but this world may have no rows for it


def cases(world):
    cid = next(c.client_id for c in world.clients("root") if c.hostname == "DC-01")
    hid = "H.NOPE"
    denied = "PermissionDenied: Permission denied: [{}]"
    return [
        # (query, roles that succeed, log when denied)
        ("SELECT * FROM clients()", READ, "clients: " + denied.format("READ_RESULTS")),
        (f"SELECT client_info(client_id='{cid}') AS X FROM scope()", READ,
         "client_info: " + denied.format("READ_RESULTS")),
        (f"SELECT * FROM flows(client_id='{cid}')", READ,
         "flows: " + denied.format("READ_RESULTS")),
        ("SELECT * FROM artifact_definitions(names='Generic.Client.Info')", READ,
         "artifact_definitions: " + denied.format("READ_RESULTS")),
        (f"SELECT * FROM source(client_id='{cid}', flow_id='{{fid}}', "
         "artifact='Generic.Client.Info/BasicInformation')", READ,
         "uploads: " + denied.format("READ_RESULTS")),
        (f"SELECT * FROM uploads(client_id='{cid}', flow_id='{{fid}}')", READ_EMPTY,
         "uploads: " + denied.format("READ_RESULTS")),
        ("SELECT * FROM hunts()", READ_EMPTY, "hunts: " + denied.format("READ_RESULTS")),
        (f"SELECT * FROM hunt_results(hunt_id='{hid}')", READ_EMPTY,
         "hunt_results: " + denied.format("READ_RESULTS")),
        (f"SELECT * FROM hunt_flows(hunt_id='{hid}')", READ_EMPTY,
         "hunt_flows: " + denied.format("READ_RESULTS")),
        (f"SELECT * FROM monitoring(client_id='{cid}', artifact='System.Flow.Completion')",
         READ_EMPTY,
         "monitoring: " + denied.format("READ_RESULTS")),
        (f"SELECT get_flow(client_id='{cid}', flow_id='{{fid}}') AS X FROM scope()", COLLECT,
         "get_flow: " + denied.format("COLLECT_CLIENT")),
        (f"SELECT collect_client(client_id='{cid}', artifacts='Generic.Client.Info') AS X "
         "FROM scope()", COLLECT, "collect_client: PermissionDenied: User admin is not allowed "
                                  "to launch flows COLLECT_CLIENT."),
        ("SELECT hunt(artifacts='Generic.Client.Info', pause=TRUE) AS X FROM scope()", COLLECT,
         "hunt: " + denied.format("START_HUNT")),
        ("SELECT * FROM info()", ADMIN, "info: " + denied.format("MACHINE_STATE")),
        ("SELECT * FROM orgs()", set(ROLES), None),
        ("SELECT whoami() AS X, org().id AS Y FROM scope()", set(ROLES), None),
    ]


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(world, world_query, role):
    cid = next(c.client_id for c in world.clients("root") if c.hostname == "DC-01")
    world.flows("root", cid)  # the enrolment interrogation exists
    fid = world.client("root", cid).last_interrogate_flow_id
    for vql, allowed, log in cases(world):
        rows, logs = world_query(vql.replace("{fid}", fid), roles=(role,))
        if role in allowed:
            assert not any("PermissionDenied" in line for line in logs), (vql, role, logs)
            if not isinstance(allowed, frozenset):
                assert rows and rows[0].get("X", "") is not None, (vql, role, logs)
        else:
            assert log in logs, (vql, role, logs)
            assert all(r.get("X") is None for r in rows), (vql, role, rows)
            assert rows == [] or list(rows[0]) == ["X"], (vql, role, rows)
    if role not in READ:  # (with READ_RESULTS it would block, waiting for events)
        _, logs = world_query("SELECT * FROM watch_monitoring(artifact='System.Flow.Completion')",
                              roles=(role,))
        assert logs == ["watch_monitoring: PermissionDenied: Permission denied: [READ_RESULTS]"]


def test_reader_cannot_query_at_all_and_api_sees_fleet(raw_stub, make_config):
    stub = raw_stub(make_config("reader"))
    with pytest.raises(grpc.RpcError) as err:
        list(stub.Query(query_args("SELECT * FROM clients()")))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    stub = raw_stub(make_config("apiuser"))
    messages = list(stub.Query(query_args(
        "SELECT client_id FROM clients() LIMIT 2",
        "SELECT collect_client(client_id='C.0', artifacts='Generic.Client.Info') FROM scope()")))
    logs = [m.log for m in messages if m.log]
    assert any(m.Response and m.Response != "[]" for m in messages)
    assert "collect_client: PermissionDenied: User apiuser is not allowed to launch flows " \
           "COLLECT_CLIENT.\n" in logs
