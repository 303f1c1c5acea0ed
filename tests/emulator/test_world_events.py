"""watch_monitoring(): every current watcher gets each published event, watching stops promptly
on cancellation, and monitoring() reads stored events back (vql/server/flows/monitoring.go)."""

from __future__ import annotations

import json
import threading
import time

import grpc
from wire_helpers import query_args, run_world_query

WATCH = "SELECT * FROM watch_monitoring(artifact='System.Flow.Completion')"


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_several_watchers_each_get_the_completion(raw_stub, make_config, world, emulator):
    before = world.bus.watchers("root", "System.Flow.Completion")
    stubs = [raw_stub(make_config(name)) for name in ("admin", "apiuser", "investigator")]
    calls = [stub.Query(query_args(WATCH, max_row=1, max_wait=1)) for stub in stubs]
    received: list[list[dict]] = [[] for _ in calls]
    target: dict[str, str] = {}
    got = [threading.Event() for _ in calls]

    def consume(index, call):
        try:
            for message in call:
                for row in json.loads(message.Response) if message.Response else ():
                    received[index].append(row)
                    if row["FlowId"] == target.get("flow_id"):
                        got[index].set()
        except grpc.RpcError:
            pass

    threads = [threading.Thread(target=consume, args=(i, c), daemon=True)
               for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: world.bus.watchers("root", "System.Flow.Completion") == before + 3)
    cid = next(c.client_id for c in world.clients("root") if c.hostname == "DC-02")
    rows, logs = run_world_query(world, f"SELECT collect_client(client_id='{cid}', "
                                        "artifacts='Generic.Client.Info') AS C FROM scope()")
    assert logs == []
    target["flow_id"] = rows[0]["C"]["flow_id"]
    for event in got:
        assert event.wait(10)
    started = time.monotonic()
    for call in calls:
        call.cancel()
    for thread in threads:
        thread.join(2)
    assert wait_for(lambda: world.bus.watchers("root", "System.Flow.Completion") == before, 1.5)
    assert time.monotonic() - started < 1.5
    events = [next(r for r in rows if r["FlowId"] == target["flow_id"]) for rows in received]
    assert events[0] == events[1] == events[2]
    assert events[0]["ClientId"] == cid and events[0]["_Source"] == "System.Flow.Completion"
    assert events[0]["Flow"]["state"] in (2, 3)


def test_watch_monitoring_stops_promptly_on_cancel_and_timeout(raw_stub, make_config,
                                                               emulator, world):
    stub = raw_stub(make_config("apiuser"))
    base = emulator.active_queries
    call = stub.Query(query_args(WATCH))
    assert next(call).log == "Starting query execution.\n"
    assert wait_for(lambda: emulator.active_queries == base + 1)
    started = time.monotonic()
    call.cancel()
    assert wait_for(lambda: emulator.active_queries == base, 1.0)
    assert time.monotonic() - started < 1.0

    started = time.monotonic()
    messages = list(stub.Query(query_args(WATCH, timeout=1)))
    assert 0.9 < time.monotonic() - started < 2.5
    assert any("Collection timed out after" in m.log for m in messages)
    assert [m.Response for m in messages if m.Response] == ["[]"]


def test_watch_monitoring_errors(world_query):
    _, logs = world_query("SELECT * FROM watch_monitoring(artifact='No.Such.Artifact')")
    assert logs == ["Artifact No.Such.Artifact not known"]
    _, logs = world_query("SELECT * FROM watch_monitoring(artifact='Windows.System.Pslist')")
    assert logs == ["watch_monitoring only supports monitoring event artifacts"]
    _, logs = world_query("SELECT * FROM watch_monitoring(artifact='System.Flow.Completion')",
                          roles=())
    assert logs == ["watch_monitoring: PermissionDenied: Permission denied: [READ_RESULTS]"]


def test_monitoring_reads_stored_events(world_query, world):
    cid = next(c.client_id for c in world.clients("root") if c.hostname == "SRV-WEB-01")
    rows, _ = world_query(f"SELECT collect_client(client_id='{cid}', "
                          "artifacts='Generic.Client.Info') AS C FROM scope()")
    flow = world.flow("root", cid, rows[0]["C"]["flow_id"])
    assert world.wait_flow(flow)
    assert wait_for(lambda: world.bus.stored("root", cid, "System.Flow.Completion"))
    rows, logs = world_query(f"SELECT * FROM monitoring(client_id='{cid}', "
                             "artifact='System.Flow.Completion')")
    assert logs == []
    mine = [r for r in rows if r["FlowId"] == flow.session_id]
    assert len(mine) == 1
    assert mine[0]["_ts"] > 1_000_000_000_000  # the timed reader reports ms
    # stored with the journal user as _Source; the reader Sets _ts again, so it ends the row
    assert list(mine[0]) == ["Timestamp", "Flow", "FlowId", "ClientId", "_Source", "_ts"]
    assert mine[0]["_Source"] == "server"
    via_source, _ = world_query(f"SELECT * FROM source(client_id='{cid}', "
                                "artifact='System.Flow.Completion')")
    assert via_source == rows
    _, logs = world_query("SELECT * FROM source(artifact='System.Flow.Completion')")
    assert logs == ["source: Artifact System.Flow.Completion is a client event artifact, "
                    "therefore a client id is required."]


def test_generic_client_stats_history(world_query, world):
    if "Generic.Client.Stats" not in world.catalog:
        return
    cid = next(c.client_id for c in world.clients("root") if c.online)
    rows, logs = world_query(f"SELECT * FROM monitoring(client_id='{cid}', "
                             "artifact='Generic.Client.Stats', start_time=now() - 3600)")
    assert logs == []
    assert rows and all(isinstance(r["_ts"], int) for r in rows)
    # the client's rows + ClientId (MonitoringVQLResponse), _Source = the sending client
    assert all(list(r)[-3:] == ["ClientId", "_Source", "_ts"] for r in rows)
    assert {(r["ClientId"], r["_Source"]) for r in rows} == {(cid, cid)}
    stamps = [r["_ts"] for r in rows]
    assert stamps == sorted(stamps) and stamps[0] >= (time.time() - 3700) * 1000


def test_monitoring_a_server_event_ignores_the_client_id(world_query, world):
    cid = next(c.client_id for c in world.clients("root") if c.online)
    end = int(time.time()) - 60
    query = ("SELECT * FROM monitoring(client_id='{}', artifact='Server.Monitor.Health', "
             f"source='Prometheus', start_time={end - 600}, end_time={end})")
    server, logs = world_query(query.format("server"))
    assert server and logs == []
    client, _ = world_query(query.format(cid))
    assert client == server


def test_connected_clients_keep_being_seen():
    from velonb.emulator.world import World

    sim = World(seed=7, flow_delay=0.0)
    try:
        online = [c for c in sim.clients("root") if c.online]
        offline = [c for c in sim.clients("root") if not c.online]
        lags = {c.client_id: time.time() - c.last_seen_at / 1e6 for c in online}
        seen_offline = {c.client_id: c.last_seen_at for c in offline}
        time.sleep(1.2)
        for client in sim.clients("root"):
            if client.online:  # last_seen_at follows the clock at the client's poll lag
                assert abs(time.time() - client.last_seen_at / 1e6 - lags[client.client_id]) < 0.5
                assert 0 < lags[client.client_id] < 60
            else:
                assert client.last_seen_at == seen_offline[client.client_id]
    finally:
        sim.close()


def test_watching_a_client_event_artifact_streams_what_connected_clients_send():
    import datetime as dt

    from velonb.emulator import vql as engine
    from velonb.emulator.acl import role_permissions
    from velonb.emulator.world import World

    sim = World(seed=7, flow_delay=0.0)
    clock = [dt.datetime.now(dt.UTC)]

    def advancing() -> dt.datetime:  # 20 s pass between two looks: two stats ticks
        clock[0] += dt.timedelta(seconds=20)
        return clock[0]

    sim.current_time = advancing  # type: ignore[method-assign]
    logs: list[str] = []
    scope = engine.Scope({}, principal="admin", permissions=role_permissions(["reader"], "root"),
                         org_id="root", org_name="<root>", log=logs.append, world=sim,
                         registry=sim.registry)
    rows = []
    try:
        (statement,) = engine.parse("SELECT * FROM watch_monitoring("
                                    "artifact='Generic.Client.Stats') LIMIT 30")
        for row in engine.execute(statement, scope) or ():
            rows.append(row)
    finally:
        sim.close()
    assert logs == [] and len(rows) == 30
    online = {c.client_id for c in sim.clients("root") if c.online}
    assert {r["ClientId"] for r in rows} <= online and len({r["ClientId"] for r in rows}) > 1
    # the client's row, ClientId (MonitoringVQLResponse), _ts (s); _Source = the artifact
    assert all(list(r) == ["Timestamp", "CPU", "RSS", "CPUPercent", "ClientId", "_ts", "_Source"]
               for r in rows)
    assert {r["_Source"] for r in rows} == {"Generic.Client.Stats"}
    stamps = [r["_ts"] for r in rows]
    assert stamps == sorted(stamps) and all(s % 10 == 0 for s in stamps)
