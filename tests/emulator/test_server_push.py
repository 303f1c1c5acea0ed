"""PushEvents (api/events.go): who may publish, what the rows become (``_Sender``, ``_ts``,
``_Source``), what watch_monitoring()/monitoring() then see, and each refusal's status."""

from __future__ import annotations

import json
import threading

import grpc
import pytest
from wire_helpers import query_args

from velonb._proto import api_pb2
from velonb.emulator.server import append_jsonl_item

QUEUE = "Custom.Notebook.Findings"


def push(stub, jsonl: bytes, artifact: str = QUEUE, **kw):
    return stub.PushEvents(api_pb2.PushEventRequest(artifact=artifact, jsonl=jsonl, **kw),
                           timeout=10)


def rows_of(stub, vql: str) -> list[dict]:
    rows: list[dict] = []
    for message in stub.Query(query_args(vql), timeout=20):
        if message.Response:
            rows += json.loads(message.Response)
    return rows


@pytest.fixture
def publisher(emulator, make_config, raw_stub):
    emulator.add_user("pusher", ["api"])
    emulator.grant_publish("pusher", [QUEUE, "Nope.Not.Here", "Generic.Client.Stats",
                                      "Windows.System.Pslist"])
    return raw_stub(make_config("pusher"))


def test_only_listed_queues_and_no_role_grants_it(raw_stub, make_config):
    for user in ("apiuser", "admin"):  # administrators need publish_queues too
        with pytest.raises(grpc.RpcError) as caught:
            push(raw_stub(make_config(user)), b'{"a":1}\n', client_id="server")
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert caught.value.details() == f"Permission denied: PUBLISH {user} to {QUEUE}"


def test_pushed_rows_reach_watchers_and_the_store(publisher, world):
    seen: list[dict] = []
    watching = threading.Thread(target=lambda: seen.extend(rows_of(
        publisher, f"SELECT * FROM watch_monitoring(artifact='{QUEUE}') LIMIT 2")))
    watching.start()
    while world.bus.watchers("root", QUEUE) == 0:
        watching.join(0.01)
    assert push(publisher, b'{"Host":"WKS-FIN-0042","Score":9}\n{"Host":"DC-01","Score":3}',
                client_id="server") == api_pb2.Empty()
    watching.join(10)
    assert [list(r) for r in seen] == [["Host", "Score", "_Sender", "_ts", "_Source"]] * 2
    assert [r["Host"] for r in seen] == ["WKS-FIN-0042", "DC-01"]
    assert {r["_Sender"] for r in seen} == {"pusher"}
    assert {r["_Source"] for r in seen} == {QUEUE}  # watch_monitoring names the artifact
    stored = rows_of(publisher, f"SELECT * FROM monitoring(client_id='server', "
                                f"artifact='{QUEUE}') WHERE _Sender = 'pusher'")
    assert [r["Host"] for r in stored][-2:] == ["WKS-FIN-0042", "DC-01"]
    assert stored[-1]["_Source"] == "pusher"  # the journal's writer, as stored


def test_a_json_array_is_accepted_without_sender(publisher):
    # AppendJsonlItem only adds _Sender before a "}" that ends a line; an array has none
    push(publisher, b'[{"Host":"array-1"},{"Host":"array-2"}]', client_id="server")
    stored = rows_of(publisher, f"SELECT * FROM monitoring(client_id='server', "
                                f"artifact='{QUEUE}') WHERE Host =~ '^array-'")
    assert [r["Host"] for r in stored] == ["array-1", "array-2"]
    assert all("_Sender" not in r and r["_Source"] == "pusher" for r in stored)


@pytest.mark.parametrize(("artifact", "client_id", "jsonl", "code", "details"), [
    ("Nope.Not.Here", "server", b'{"a":1}', "UNKNOWN", "Artifact Nope.Not.Here not known"),
    (QUEUE, "C.0123456789abcdef", b'{"a":1}', "UNKNOWN",
     "Only servers can write to a SERVER_EVENT artifact_type"),
    ("Generic.Client.Stats", "", b'{"a":1}', "UNKNOWN",
     "Client ID invalid to write to a CLIENT artifact_type: ClientId not provided"),
    ("Generic.Client.Stats", "WKS-1", b'{"a":1}', "UNKNOWN",
     "Client ID invalid to write to a CLIENT artifact_type: ClientId is not valid"),
    (QUEUE, "server", b'{"a":1', "UNAVAILABLE", "unexpected end of JSON input"),
    (QUEUE, "server", b'oops', "UNAVAILABLE", "invalid character 'o' looking for beginning "
                                              "of value"),
])
def test_refusals(publisher, artifact, client_id, jsonl, code, details):
    with pytest.raises(grpc.RpcError) as caught:
        push(publisher, jsonl, artifact=artifact, client_id=client_id)
    assert caught.value.code() == getattr(grpc.StatusCode, code)
    assert caught.value.details() == details


def test_unknown_user_and_org(raw_stub, make_config, publisher):
    with pytest.raises(grpc.RpcError) as caught:
        push(raw_stub(make_config("nobody-here", roles=None)), b'{"a":1}', client_id="server")
    assert (caught.value.code(), caught.value.details()) == (grpc.StatusCode.NOT_FOUND,
                                                             "Not Found")
    with pytest.raises(grpc.RpcError) as caught:
        push(publisher, b'{"a":1}', client_id="server", org_id="ONOPE")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_collection_rows_join_the_flow(publisher, world):
    from wire_helpers import run_world_query

    cid = next(c.client_id for c in world.clients("root") if c.hostname == "DC-01")
    rows, _ = run_world_query(world, f"SELECT collect_client(client_id='{cid}', "
                                     "artifacts='Windows.System.Pslist') AS C FROM scope()")
    flow = world.flow("root", cid, rows[0]["C"]["flow_id"])
    assert world.wait_flow(flow) and not flow.lazy_results
    before = list(flow.result_rows("Windows.System.Pslist"))
    push(publisher, b'{"Pid":1,"Name":"pushed.exe"}', artifact="Windows.System.Pslist",
         client_id=cid, flow_id=flow.session_id)
    after = list(flow.result_rows("Windows.System.Pslist"))
    assert after[:-1] == before and after[-1] == {"Pid": 1, "Name": "pushed.exe",
                                                  "_Sender": "pusher"}


def test_append_jsonl_item_is_go_s():
    assert append_jsonl_item(b"", "_Sender", "u") == b""
    assert append_jsonl_item(b'{"a":1}\n{"b":{"c":2}}', "_Sender", "u<") == \
        b'{"a":1,"_Sender":"u\\u003c"}\n{"b":{"c":2},"_Sender":"u\\u003c"}\n'
