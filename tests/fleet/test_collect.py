"""collect(), Flow and waiting: parameters reaching the endpoint, failures, offline clients,
cancellation, permissions, timeouts, interrupts and monitoring while a collection finishes."""

from __future__ import annotations

import _thread
import re
import threading
import time
import warnings

import pandas as pd
import pytest

from velonb.errors import PermissionDeniedError
from velonb.fleet import (
    ArtifactParameterError,
    CollectionFailedWarning,
    DryRun,
    FleetError,
    Flow,
    OfflineClientWarning,
    WaitInterrupted,
    WaitTimeout,
)

FINDER = "Windows.Search.FileFinder"
IMPLANT = "C:\\ProgramData\\Microsoft\\DeviceSync\\msdtcsvc.exe"


def test_glob_parameter_reaches_the_endpoint(connect_as):
    conn = connect_as("investigator")
    flow = conn.collect("WKS-FIN-0042", FINDER,
                        {"Glob": "C:/ProgramData/Microsoft/DeviceSync/*"}, progress=False)
    assert isinstance(flow, Flow) and flow.state == "FINISHED" and flow.rows == 1
    found = flow.results()
    assert list(found["OSPath"]) == [IMPLANT] and found["Size"].iloc[0] == 91_136
    assert isinstance(found["MTime"].dtype, pd.DatetimeTZDtype)
    other = conn.collect("WKS-FIN-0042", FINDER, {"Glob": "C:/Windows/System32/*.exe"},
                         progress=False)
    names = set(other.results()["OSPath"])
    assert IMPLANT not in names and "C:\\Windows\\System32\\cmd.exe" in names
    spec = other.row["request"]["specs"][0]
    assert spec["artifact"] == FINDER
    assert {"key": "Glob", "value": "C:/Windows/System32/*.exe", "comment": ""} in \
        spec["parameters"]["env"]
    # the launch is shown with its bindings; the glob is bound, never pasted into the VQL
    assert isinstance(other.vql, DryRun) and "System32" not in other.vql.vql
    assert other.vql.env["Spec"] == {FINDER: {"Glob": "C:/Windows/System32/*.exe"}}
    assert other.created is not None
    listed = conn.flows("WKS-FIN-0042")
    assert {flow.flow_id, other.flow_id} <= set(listed["flow_id"])
    assert listed.set_index("flow_id").loc[other.flow_id, "state"] == "FINISHED"
    assert isinstance(listed["created"].dtype, pd.DatetimeTZDtype)
    assert len(other.results(max_rows=3)) == 3


def test_bad_parameters_fail_before_launch(connect_as):
    conn = connect_as("investigator")
    before = len(conn.flows("WKS-FIN-0057"))
    with pytest.raises(ArtifactParameterError, match="valid parameters"):
        conn.collect("WKS-FIN-0057", FINDER, {"Globs": "C:/*"}, progress=False)
    with pytest.raises(ArtifactParameterError, match="choices"):
        conn.collect("WKS-FIN-0057", FINDER, {"Accessor": "zip"}, progress=False)
    with pytest.raises(FleetError, match="client_event"):
        conn.collect("WKS-FIN-0057", "Generic.Client.Stats", progress=False)
    plan = conn.collect("WKS-FIN-0057", FINDER, {"Glob": "C:/x"}, dry_run=True)
    assert isinstance(plan, DryRun) and "collect_client" in plan.vql
    assert len(conn.flows("WKS-FIN-0057")) == before  # nothing was launched


def test_several_clients_and_multi_source_results(connect_as):
    conn = connect_as("admin")
    flows = conn.collect(["WKS-HR-0013", "DC-01"], "Generic.Client.Info", progress=False)
    assert [f.hostname for f in flows] == ["WKS-HR-0013", "DC-01"]
    assert all(f.state == "FINISHED" for f in flows)
    info = conn.artifact("Generic.Client.Info")
    sources = [s for s in info.sources if s]
    with pytest.raises(FleetError, match="several result sets"):
        flows[0].results()
    basic = flows[0].results(source=sources[0])
    assert len(basic) >= 1
    assert len(flows[1].results(f"Generic.Client.Info/{sources[0]}")) >= 1


def test_failing_artifact_ends_in_error(connect_as):
    conn = connect_as("investigator")
    with pytest.warns(CollectionFailedWarning, match="Security.evtx"):
        flow = conn.collect("SRV-WEB-01", "Windows.EventLogs.RDPAuth", progress=False)
    assert flow.state == "ERROR" and "parse_evtx" in flow.status
    logs = flow.logs()
    assert list(logs.columns) == ["client_time", "level", "message"]
    assert isinstance(logs["client_time"].dtype, pd.DatetimeTZDtype)
    assert logs["message"].iloc[0] == "Starting query execution for Windows.EventLogs.RDPAuth."
    assert logs["message"].iloc[-1].startswith("Collection Windows.EventLogs.RDPAuth is done")
    errors = logs[logs["level"] == "ERROR"]
    assert errors["message"].str.contains("Security.evtx").any()
    assert len(logs) == flow.row["total_logs"]


def test_logs_of_a_collection_with_results_and_uploads(connect_as):
    conn = connect_as("investigator")
    flow = conn.collect("WKS-FIN-0042", "Windows.Search.FileFinder",
                        {"Glob": "C:/ProgramData/Microsoft/DeviceSync/*", "Upload_File": "Y"},
                        progress=False)
    logs = flow.logs()
    assert list(logs["level"]) == ["INFO", "DEFAULT", "DEFAULT", "INFO"]
    assert re.fullmatch(rf"{FINDER}: Time 0: {FINDER}: Sending response part 0 "
                        r"\d+(\.\d)? (B|kB) \(1 rows\)\.", logs["message"].iloc[1])
    assert logs["message"].iloc[2] == f"{FINDER}: Uploaded 1 files."
    now = pd.Timestamp.now(tz="UTC")
    assert ((now - logs["client_time"]) < pd.Timedelta(minutes=1)).all()


def test_logs_fall_back_to_query_status_on_servers_without_flow_logs(tmp_path):
    from velonb.emulator import Emulator
    from velonb.emulator.world import World

    world = World(seed=7, flow_delay=0.0)
    del world.registry.plugins["flow_logs"]  # as on a server older than flow_logs()
    emu = Emulator(users={"investigator": ["investigator"]}, world=world)
    emu.start()
    try:
        import velonb

        conn = velonb.connect(emu.write_api_client_config(tmp_path / "api.yaml",
                                                          name="investigator", roles=None))
        with pytest.warns(CollectionFailedWarning):
            flow = conn.collect("SRV-WEB-01", "Windows.EventLogs.RDPAuth", progress=False)
        logs = flow.logs()
        assert "GENERIC_ERROR" in set(logs["status"])
        assert logs["error_message"].str.contains("Security.evtx").any()
        conn.close()
    finally:
        emu.stop(grace=0)
        world.close()


def test_offline_client_is_queued_not_waited_for_and_cancelled(connect_as):
    conn = connect_as("investigator")
    start = time.monotonic()
    with pytest.warns(OfflineClientWarning, match=r"offline, last seen .*days ago.*queued"):
        flow = conn.collect("WKS-FIN-0061", "Windows.System.Pslist", progress=False)
    assert time.monotonic() - start < 10
    assert not flow.done
    flow.cancel()
    assert flow.state == "ERROR" and "Cancelled" in flow.status
    assert flow.refresh().state == "ERROR"


def test_permission_errors_name_the_permission(connect_as):
    api = connect_as("apiuser")
    with pytest.raises(PermissionDeniedError, match="COLLECT_CLIENT") as err:
        api.collect("WKS-FIN-0042", "Windows.System.Pslist", progress=False)
    assert err.value.permission == "COLLECT_CLIENT" and "apiuser" in str(err.value)
    flow = connect_as("investigator").collect("WKS-FIN-0042", "Windows.System.Pslist",
                                              progress=False)
    readable = api.flow("WKS-FIN-0042", flow.flow_id)  # READ_RESULTS is enough to read it
    assert readable.state == "FINISHED" and len(readable.results()) == flow.rows
    with pytest.raises(PermissionDeniedError, match="COLLECT_CLIENT"):
        readable.cancel()


def test_second_org_collection(connect_as):
    conn = connect_as("admin")
    flow = conn.collect("hl-app-01", "Linux.Sys.Pslist", org_id="O1234", progress=False)
    assert flow.org_id == "O1234" and flow.state == "FINISHED" and flow.rows > 0
    assert flow.client_id.endswith("-O1234")
    assert len(flow.results()) == flow.rows
    with pytest.raises(FleetError):
        conn.collect("hl-app-01", "Linux.Sys.Pslist", progress=False)  # not in root


def test_wait_resume_timeout_and_interrupt(slow_connect):
    conn = slow_connect("investigator")
    flow = conn.collect("WKS-IT-0007", "Windows.System.Pslist", wait=False)
    assert not flow.done
    with pytest.raises(WaitTimeout, match=r"not finished after 0\.3s") as err:
        flow.wait(timeout=0.3, progress=False)
    assert err.value.flows == [flow]
    assert flow.wait(progress=False).state == "FINISHED" and flow.rows > 0

    timer = threading.Timer(0.4, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(WaitInterrupted, match=r"flow\.wait") as stopped:
            conn.collect("WKS-HR-0013", "Windows.System.Pslist", progress=False)
    finally:
        timer.cancel()
    (pending,) = stopped.value.flows
    assert not pending.done  # the collection went on
    assert pending.wait(progress=False).state == "FINISHED"


def test_events_arrive_while_a_collection_finishes(slow_connect, slow_emulator):
    conn = slow_connect("investigator")
    target = conn.client("WKS-ENG-0108")
    batches: list[pd.DataFrame] = []

    def watch() -> None:
        batches.extend(conn.monitor("System.Flow.Completion", client=target, max_rows=1,
                                    duration=20))

    watcher = threading.Thread(target=watch)
    watcher.start()
    world = slow_emulator.world
    deadline = time.monotonic() + 10
    while world.bus.watchers("root", "System.Flow.Completion") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    flow = conn.collect(target, "Windows.System.Pslist", progress=False)
    watcher.join(20)
    assert not watcher.is_alive()
    events = pd.concat(batches)
    assert list(events["FlowId"]) == [flow.flow_id]
    assert list(events["ClientId"]) == [target.client_id]
    with pytest.raises(FleetError, match="not an event artifact"):
        conn.monitor("Windows.System.Pslist")
    plan = conn.monitor("Generic.Client.Stats", dry_run=True)
    assert plan.env == {"EventArtifact": "Generic.Client.Stats", "WantClient": ""}


def test_progress_line_is_quiet_without_a_terminal(connect_as, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect_as("investigator").collect("DC-02", "Windows.System.Pslist")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_finished_results_are_cached_without_expiry(connect_as, tmp_path, monkeypatch):
    monkeypatch.setenv("VELONB_CACHE_DIR", str(tmp_path / "cache"))
    conn = connect_as("investigator")
    flow = conn.collect("WKS-FIN-0057", "Windows.System.Pslist", progress=False)
    first = flow.results(cache="1h")  # a FINISHED flow never changes: stored without expiry
    again = conn.execute("SELECT * FROM source(client_id=ClientId, flow_id=FlowId, "
                         "artifact=ResultName)", cache=True,
                         env={"ClientId": flow.client_id, "FlowId": flow.flow_id,
                              "ResultName": "Windows.System.Pslist"})
    assert again.cache is not None and len(again.frame) == len(first) == flow.rows
    assert again.cache.source == "cache"
