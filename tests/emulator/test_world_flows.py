"""Collections: collect_client -> System.Flow.Completion -> flows()/get_flow()/source(); offline
clients, failing artifacts, cancel_flow (vql/server/flows, services/launcher)."""

from __future__ import annotations

import json
import re
import time

import pytest
from wire_helpers import query_args, run_world_query

from velonb.emulator.world import World
from velonb.emulator.world.model import CollectionOutput

FLOW_COLUMNS = [
    "client_id", "session_id", "request", "previous_flows", "backtrace", "create_time",
    "start_time", "active_time", "inflight_time", "total_uploaded_files",
    "total_expected_uploaded_bytes", "total_uploaded_bytes", "total_collected_rows",
    "total_logs", "total_requests", "outstanding_requests", "transactions_outstanding",
    "next_response_id", "execution_duration", "state", "status", "artifacts_with_results",
    "query_stats", "uploaded_files", "user_notified", "logs", "dirty", "total_loads",
]
REQUEST_COLUMNS = [
    "creator", "user_data", "client_id", "flow_id", "urgent", "summary", "artifacts", "specs",
    "cpu_limit", "iops_limit", "progress_timeout", "timeout", "max_rows", "max_logs",
    "max_upload_bytes", "trace_freq_sec", "allow_custom_overrides", "log_batch_time",
    "compiled_collector_args", "ops_per_second",
]
STAT_COLUMNS = [
    "status", "error_message", "backtrace", "duration", "last_active", "first_active",
    "names_with_response", "Artifact", "log_rows", "uploaded_files", "uploaded_bytes",
    "expected_uploaded_bytes", "result_rows", "query_id", "total_queries",
    "transactions_outstanding",
]


@pytest.fixture
def sim():
    world = World(seed=7, flow_delay=0.0)
    yield world
    world.close()


def host(world: World, name: str, org: str = "root") -> str:
    return next(c.client_id for c in world.clients(org) if c.hostname == name)


def collect(world, vql_args: str, roles=("administrator",)):
    rows, logs = run_world_query(world, f"SELECT collect_client({vql_args}) AS C FROM scope()",
                                 roles)
    return rows[0]["C"], logs


def stream(stub, *vql, **fields):
    rows, logs = [], []
    for message in stub.Query(query_args(*vql, **fields)):
        if message.Response:
            rows += json.loads(message.Response)
        elif message.log:
            logs.append(message.log)
    return rows, logs


def test_collect_wait_and_read_back_over_grpc(raw_stub, make_config, world):
    stub = raw_stub(make_config("admin"), options=[("grpc.max_receive_message_length", 2**27)])
    cid = host(world, "WKS-FIN-0042")
    rows, logs = stream(
        stub,
        f"LET collection <= collect_client(client_id='{cid}', "
        "artifacts='Windows.System.Pslist')\n"
        "SELECT * FROM watch_monitoring(artifact='System.Flow.Completion') "
        "WHERE FlowId = collection.flow_id LIMIT 1",
        timeout=20)
    assert len(rows) == 1, logs
    event = rows[0]
    assert list(event) == ["Timestamp", "Flow", "FlowId", "ClientId", "_ts", "_Source"]
    assert event["ClientId"] == cid and event["_Source"] == "System.Flow.Completion"
    assert abs(event["Timestamp"] - time.time()) < 60 and isinstance(event["_ts"], int)
    flow = event["Flow"]
    assert flow["state"] == 2 and flow["session_id"] == event["FlowId"]  # reflection: int enum
    assert "request" not in flow and "status" not in flow  # omitempty, partial stats context
    assert flow["artifacts_with_results"] == ["Windows.System.Pslist"]
    assert flow["total_collected_rows"] > 10
    assert "status" not in flow["query_stats"][0]  # OK (0) is omitted
    fid = event["FlowId"]
    assert fid.startswith("F.") and len(fid) == 15

    rows, logs = stream(stub, f"SELECT * FROM flows(client_id='{cid}', flow_id='{fid}')",
                        f"SELECT get_flow(client_id='{cid}', flow_id='{fid}') AS G FROM scope()",
                        f"SELECT * FROM source(client_id='{cid}', flow_id='{fid}', "
                        "artifact='Windows.System.Pslist', count=5)")
    listed, got, results = rows[0], rows[1]["G"], rows[2:]
    assert list(listed) == [*FLOW_COLUMNS, "AvailableDownloads"]
    assert list(got) == [*FLOW_COLUMNS, "AvailableDownloads"]
    assert listed["state"] == "FINISHED" and listed["status"] == ""
    assert list(listed["request"]) == REQUEST_COLUMNS
    assert listed["request"]["max_upload_bytes"] == 1073741824
    assert list(listed["query_stats"][0]) == STAT_COLUMNS
    assert listed["query_stats"][0]["status"] == "OK"
    assert listed["total_collected_rows"] == flow["total_collected_rows"]
    assert listed["create_time"] <= listed["start_time"] <= listed["active_time"]  # µs
    assert listed["create_time"] > 1_000_000_000_000_000
    assert len(results) == 5 and "Pid" in results[0] and "Name" in results[0]


def test_collect_client_return_shape_and_parameters(sim):
    cid = host(sim, "WKS-FIN-0042")
    result, logs = collect(sim, f"client_id='{cid}', artifacts='Windows.System.Pslist', "
                                "env=dict(ProcessRegex='svc', Undeclared='x')")
    assert logs == []
    assert list(result) == ["flow_id", "request"]
    request = result["request"]
    assert list(request) == REQUEST_COLUMNS
    assert request["creator"] == "admin" and request["client_id"] == cid
    assert request["flow_id"] == result["flow_id"]
    assert request["specs"] == [{
        "artifact": "Windows.System.Pslist",
        "parameters": {"env": [{"key": "ProcessRegex", "value": "svc", "comment": ""}]},
        "cpu_limit": 0, "max_batch_wait": 0, "max_batch_rows": 0, "max_batch_rows_buffer": 0,
        "timeout": 0}]
    plain, _ = collect(sim, f"client_id='{cid}', artifacts='Windows.System.Pslist'")
    assert plain["request"]["specs"] == []
    spec, _ = collect(sim, f"client_id='{cid}', artifacts='Windows.System.Pslist', "
                           "spec=dict(`Windows.System.Pslist`=dict(ProcessRegex='cmd'))")
    assert spec["request"]["specs"][0]["parameters"]["env"][0]["value"] == "cmd"
    flow = sim.flow("root", cid, result["flow_id"])
    assert flow is not None and sim.wait_flow(flow)
    assert all("svc" in row["Name"].lower() or "svc" in str(row.get("CommandLine", "")).lower()
               for row in flow.results["Windows.System.Pslist"])


@pytest.mark.parametrize(("args", "log"), [
    ("client_id='{cid}', artifacts='No.Such.Artifact'", "collect_client: Unknown artifact "
                                                        "No.Such.Artifact"),
    ("client_id='C.00000000000000aa', artifacts='Windows.System.Pslist'",
     "collect_client: Client ID C.00000000000000aa not known in this org: NotFoundError"),
    ("client_id='WKS-FIN-0042', artifacts='Windows.System.Pslist'",
     "collect_client: ClientId is not valid"),
    ("client_id='{cid}'", "collect_client: Field artifacts is required"),
    ("client_id='{cid}', artifacts='X', spec=dict(`No.Such`=dict())",
     'collect_client: Parameter refers to an unknown artifact (No.Such). The parameter should be'
     ' of the form {"Custom.Artifact.Name":{"arg":"value"}}'),
])
def test_collect_client_failures(sim, args, log):
    result, logs = collect(sim, args.format(cid=host(sim, "DC-01")))
    assert result is None and logs == [log]


def test_collect_client_permissions(sim):
    cid = host(sim, "DC-01")
    for roles, log in ((("api",), "collect_client: PermissionDenied: User admin is not allowed "
                                  "to launch flows COLLECT_CLIENT."),
                       (("investigator",), None)):
        result, logs = collect(sim, f"client_id='{cid}', artifacts='Generic.Client.Info'", roles)
        assert (result is None) == (log is not None)
        assert logs == ([log] if log else [])
    result, logs = collect(sim, "client_id='server', artifacts='Generic.Client.Info'",
                           ("investigator",))
    assert result is None
    assert logs == ["collect_client: PermissionDenied: User admin is not allowed to launch "
                    "flows COLLECT_SERVER."]


def test_offline_client_never_finishes_and_cancel(sim):
    cid = host(sim, "WKS-FIN-0061")
    assert not sim.client("root", cid).online
    result, _ = collect(sim, f"client_id='{cid}', artifacts='Windows.System.Pslist'")
    fid = result["flow_id"]
    sub = sim.bus.subscribe("root", "System.Flow.Completion")
    time.sleep(sim.pickup_delay + 0.3)
    rows, logs = run_world_query(sim, f"SELECT state, status, query_stats FROM flows("
                                      f"client_id='{cid}') WHERE session_id = '{fid}'")
    assert rows == [{"state": "RUNNING", "status": "", "query_stats": []}]
    assert sub.queue.empty()

    rows, logs = run_world_query(sim, f"SELECT cancel_flow(client_id='{cid}', flow_id='{fid}') "
                                      "AS C FROM scope()", ("api",))
    assert rows == [{"C": None}]
    assert logs == ["cancel_flow: PermissionDenied: Permission denied: [COLLECT_CLIENT]"]
    rows, logs = run_world_query(sim, f"SELECT cancel_flow(client_id='{cid}', flow_id='{fid}') "
                                      "AS C FROM scope()")
    assert rows == [{"C": {"flow_id": fid}}] and logs == []
    rows, _ = run_world_query(sim, f"SELECT get_flow(client_id='{cid}', flow_id='{fid}') AS G "
                                   "FROM scope()")
    assert rows[0]["G"]["state"] == "ERROR"
    assert rows[0]["G"]["status"] == "Cancelled by VQL query"
    rows, logs = run_world_query(sim, f"SELECT get_flow(client_id='{cid}', flow_id='F.NOPE') "
                                      "AS G FROM scope()")
    assert rows == [{"G": None}] and logs == [f"get_flow: Flow not found: F.NOPE in client '{cid}'"]
    sub.close()


def test_failing_artifact_ends_in_error(sim, monkeypatch):
    def broken(flow, artifact, params):
        return CollectionOutput(logs=["boom"], error="Symbol Foo not found")

    monkeypatch.setattr(sim, "_collect", broken)
    sub = sim.bus.subscribe("root", "System.Flow.Completion")
    cid = host(sim, "DC-01")
    result, _ = collect(sim, f"client_id='{cid}', artifacts='Generic.Client.Info'")
    event = sub.queue.get(timeout=5)
    sub.close()
    assert event["FlowId"] == result["flow_id"]
    assert event["Flow"]["state"] == 3 and event["Flow"]["status"] == "Symbol Foo not found"
    assert event["Flow"]["query_stats"][0]["status"] == 10
    rows, _ = run_world_query(sim, f"SELECT * FROM flows(client_id='{cid}', "
                                   f"flow_id='{result['flow_id']}')")
    assert rows[0]["state"] == "ERROR" and rows[0]["status"] == "Symbol Foo not found"
    assert rows[0]["query_stats"][0]["status"] == "GENERIC_ERROR"


def test_flows_lists_history_and_unknown_client(sim):
    cid = host(sim, "SRV-FS-01")
    rows, logs = run_world_query(sim, f"SELECT session_id, request.artifacts AS A, state "
                                      f"FROM flows(client_id='{cid}')")
    assert logs == []
    client = sim.client("root", cid)
    assert rows[0] == {"session_id": client.last_interrogate_flow_id,
                       "A": ["Generic.Client.Info"], "state": "FINISHED"}
    rows, logs = run_world_query(sim, "SELECT * FROM flows(client_id='C.00000000000000aa')")
    assert rows == [] and logs == [
        "flows: unable to get client C.00000000000000aa: Client ID C.00000000000000aa not "
        "known in this org: NotFoundError"]


def test_source_modes_and_scope_defaults(sim):
    cid = host(sim, "DC-01")
    result, _ = collect(sim, f"client_id='{cid}', artifacts='Generic.Client.Info'")
    flow = sim.flow("root", cid, result["flow_id"])
    assert sim.wait_flow(flow)
    names = list(flow.results)
    assert all(name.startswith("Generic.Client.Info/") for name in names)
    name = next(n for n in names if flow.results[n])
    art, src = name.split("/")
    full, _ = run_world_query(sim, f"SELECT * FROM source(client_id='{cid}', "
                                   f"flow_id='{flow.session_id}', artifact='{name}')")
    assert full == flow.results[name] and full
    split, _ = run_world_query(sim, f"SELECT * FROM source(client_id='{cid}', "
                                    f"flow_id='{flow.session_id}', artifact='{art}', "
                                    f"source='{src}')")
    assert split == full
    env = {"ClientId": cid, "FlowId": flow.session_id, "ArtifactName": name}
    by_env, logs = run_world_query(sim, "SELECT * FROM source()", env=env)
    assert by_env == full and logs == []
    limited, _ = run_world_query(sim, "SELECT * FROM source(start_row=0, count=1)", env=env)
    assert limited == full[:1]
    _, logs = run_world_query(sim, f"SELECT * FROM source(artifact='{name}')")
    assert logs == ["source: source: client_id and flow_id should be specified for non event "
                    "artifacts."]
    _, logs = run_world_query(sim, "SELECT * FROM source(artifact='No.Such', client_id='C.1', "
                                   "flow_id='F.1')")
    assert logs == ["source: Artifact No.Such not known"]
    rows, logs = run_world_query(sim, f"SELECT * FROM source(client_id='{cid}', "
                                      f"flow_id='F.NOSUCHFLOW123', artifact='{name}')")
    assert rows == [] and logs == []
    _, logs = run_world_query(sim, "SELECT * FROM source(artifact='X')", roles=())
    assert logs == ["uploads: PermissionDenied: Permission denied: [READ_RESULTS]"]


def test_flow_delay_shows_in_progress_then_finished():
    world = World(seed=7, flow_delay=0.6, pickup_delay=0.05)
    try:
        cid = host(world, "DC-01")
        result, _ = collect(world, f"client_id='{cid}', artifacts='Generic.Client.Info'")
        flow = world.flow("root", cid, result["flow_id"])
        query = f"SELECT state, query_stats.status AS S, inflight_time FROM flows(" \
                f"client_id='{cid}', flow_id='{flow.session_id}')"
        assert run_world_query(world, query)[0][0]["state"] == "RUNNING"
        time.sleep(0.25)
        rows, _ = run_world_query(world, query)
        assert rows[0]["state"] == "IN_PROGRESS" and set(rows[0]["S"]) == {"PROGRESS"}
        assert abs(rows[0]["inflight_time"] - time.time()) < 5  # Unix seconds, while in flight
        row = run_world_query(world, f"SELECT in_flight_flows FROM clients(client_id='{cid}')")
        assert flow.session_id in row[0][0]["in_flight_flows"]
        assert not flow.done.is_set()
        assert world.wait_flow(flow, 5)
        rows, _ = run_world_query(world, query)
        assert rows[0]["state"] == "FINISHED" and set(rows[0]["S"]) == {"OK"}
        assert rows[0]["inflight_time"] == 0  # read from the client's in-flight map
        row = run_world_query(world, f"SELECT in_flight_flows FROM clients(client_id='{cid}')")
        assert row[0][0]["in_flight_flows"] == {}
    finally:
        world.close()


def test_empty_world():
    world = World.empty()
    try:
        rows, logs = run_world_query(world, "SELECT * FROM clients()")
        assert rows == [] and logs == []
        rows, _ = run_world_query(world, "SELECT OrgId FROM orgs()")
        assert rows == [{"OrgId": "root"}]
        rows, _ = run_world_query(world, "SELECT name FROM artifact_definitions() "
                                         "WHERE name = 'Generic.Client.Info'")
        assert rows == [{"name": "Generic.Client.Info"}]
        result, logs = collect(world, "client_id='server', artifacts='Generic.Client.Info'")
        assert result is not None  # the server pseudo-client always exists
    finally:
        world.close()


def _flow_logs(world, client_id, flow_id, roles=("administrator",)):
    return run_world_query(world, f"SELECT * FROM flow_logs(client_id='{client_id}', "
                                  f"flow_id='{flow_id}')", roles)


def test_flow_logs_of_a_client_collection(sim):
    cid = host(sim, "DC-01")
    result, _ = collect(sim, f"client_id='{cid}', artifacts=['Windows.System.Pslist', "
                             "'Generic.Client.Info']")
    flow = sim.flow("root", cid, result["flow_id"])
    assert sim.wait_flow(flow)
    rows, logs = _flow_logs(sim, cid, flow.session_id, ("reader",))
    assert logs == []
    assert all(list(row) == ["client_time", "level", "message"] for row in rows)
    assert all(isinstance(row["client_time"], int) and row["client_time"] < 1e11 for row in rows)
    # one query per source: start, (own lines), parts, done; in query order
    stats = flow.row()["query_stats"]
    assert len(rows) == sum(s["log_rows"] for s in stats) == flow.row()["total_logs"]
    pslist = rows[:3]
    assert [r["level"] for r in pslist] == ["INFO", "DEFAULT", "INFO"]
    assert pslist[0]["message"] == "Starting query execution for Windows.System.Pslist.\n"
    count = len(flow.results["Windows.System.Pslist"])
    assert re.fullmatch(r"Windows\.System\.Pslist: Time 0: Windows\.System\.Pslist: Sending "
                        rf"response part 0 \d+(\.\d)? kB \({count} rows\)\.",
                        pslist[1]["message"])
    assert re.fullmatch(r"Collection Windows\.System\.Pslist is done after [\d.]+(µs|ms|s)\n",
                        pslist[2]["message"])
    # Generic.Client.Info/LinuxInfo does not run on Windows: its own query says so
    skipped = [r["message"] for r in rows if "Skipping" in r["message"]]
    assert skipped == ["Generic.Client.Info: Skipping query due to preconditions\n"]
    linux = next(s for s in stats if s["Artifact"] == "Generic.Client.Info"
                 and s["result_rows"] == 0)
    assert linux["log_rows"] == 3


def test_flow_logs_parts_follow_max_batch_rows(sim, monkeypatch):
    cid = host(sim, "DC-01")
    result, _ = collect(sim, f"client_id='{cid}', artifacts='Windows.System.Pslist'")
    flow = sim.flow("root", cid, result["flow_id"])
    assert sim.wait_flow(flow)
    count = len(flow.results["Windows.System.Pslist"])
    monkeypatch.setitem(flow.request, "specs", [{"artifact": "Windows.System.Pslist",
                                                 "max_batch_rows": 10}])
    rows, _ = _flow_logs(sim, cid, flow.session_id)
    parts = [r["message"] for r in rows if "Sending response part" in r["message"]]
    assert len(parts) == -(-count // 10) == flow.query_stats[0].count_logs(False, 10) - 2
    assert parts[-1].endswith(f"({count - 10 * (len(parts) - 1)} rows).")
    assert [int(p.split(" part ")[1].split()[0]) for p in parts] == list(range(len(parts)))


def test_flow_logs_of_a_server_collection_unknown_flows_and_permissions(sim):
    result, _ = collect(sim, "client_id='server', artifacts='Server.Utils.CollectClient', "
                             "env=dict(ArtifactName='Generic.Client.Info', Client='DC-01')")
    flow = sim.flow("root", "server", result["flow_id"])
    assert sim.wait_flow(flow)
    rows, logs = _flow_logs(sim, "server", flow.session_id)
    assert logs == []
    assert all(list(row) == ["Timestamp", "Level", "message"] for row in rows)
    assert rows[0]["Timestamp"] > 1e15  # µs
    assert [r["message"] for r in rows[:2]] == [
        "Running query Server.Utils.CollectClient on behalf of user admin\n",
        "<green>Starting</> query Server.Utils.CollectClient execution.\n"]
    assert rows[2]["Level"] == "INFO"
    assert len(rows) == flow.row()["total_logs"]
    cid = host(sim, "DC-01")
    assert _flow_logs(sim, cid, "F.NOSUCHFLOW") == ([], [])
    rows, logs = run_world_query(sim, f"SELECT * FROM flow_logs(client_id='{cid}')")
    assert rows == [] and logs == ["flow_logs: Field flow_id is required"]
    assert _flow_logs(sim, "server", flow.session_id, ("artifact_writer",)) == (
        [], ["flow_logs: PermissionDenied: Permission denied: [READ_RESULTS]"])


def test_flow_logs_are_empty_while_the_flow_runs():
    world = World(seed=7, flow_delay=1.5)
    try:
        cid = host(world, "DC-01")
        result, _ = collect(world, f"client_id='{cid}', artifacts='Windows.System.Pslist'")
        flow = world.flow("root", cid, result["flow_id"])
        time.sleep(world.pickup_delay + 0.3)
        assert flow.query_stats and not flow.finished
        assert _flow_logs(world, cid, flow.session_id) == ([], [])
        assert flow.row()["total_logs"] == 0
        assert world.wait_flow(flow)
        assert len(_flow_logs(world, cid, flow.session_id)[0]) == flow.row()["total_logs"] == 3
    finally:
        world.close()


def test_summary_reads_the_reduced_request_and_skips_downloads(sim):
    cid = host(sim, "DC-01")
    result, _ = collect(sim, f"client_id='{cid}', artifacts='Windows.System.Pslist', "
                             "env=dict(ProcessRegex='svc'), timeout=60")
    fid = result["flow_id"]
    full, _ = run_world_query(sim, f"SELECT * FROM flows(client_id='{cid}', flow_id='{fid}')")
    brief, _ = run_world_query(sim, f"SELECT * FROM flows(client_id='{cid}', flow_id='{fid}', "
                                    "summary=TRUE)")
    assert full[0]["AvailableDownloads"] == {} and brief[0]["AvailableDownloads"] is None
    assert list(brief[0]) == list(full[0])
    request = brief[0]["request"]
    assert list(request) == REQUEST_COLUMNS
    assert request["specs"] == [] and full[0]["request"]["specs"][0]["artifact"] == \
        "Windows.System.Pslist"
    assert (request["creator"], request["flow_id"], request["artifacts"], request["timeout"]) == \
        ("admin", fid, ["Windows.System.Pslist"], 60)
    listed, _ = run_world_query(sim, f"SELECT request FROM flows(client_id='{cid}', "
                                     "summary=TRUE)")
    assert all(row["request"]["specs"] == [] for row in listed)
    got, _ = run_world_query(sim, f"SELECT get_flow(client_id='{cid}', flow_id='{fid}', "
                                  "summary=TRUE) AS G FROM scope()")
    assert got[0]["G"]["AvailableDownloads"] is None and got[0]["G"]["request"] == request
