"""uploads() rows (vql/server/flows/uploads.go) and byte-exact downloads through VFSGetBuffer
by ``Upload.Components``, in the root org and in another org."""

from __future__ import annotations

import json

import grpc
import pytest
from wire_helpers import query_args, run_world_query

from velonb._proto import api_pb2
from velonb.emulator.world import incident

UPLOAD_COLUMNS = ["Timestamp", "started", "vfs_path", "Type", "_Components", "file_size",
                  "_accessor", "_client_components", "uploaded_size", "client_path", "Upload"]


def finder(world, host: str, glob: str, org: str = "root"):
    """Run FileFinder with uploads on ``host``; returns the finished flow."""
    cid = next(c.client_id for c in world.clients(org) if c.hostname == host)
    rows, logs = run_world_query(
        world, f"SELECT collect_client(client_id='{cid}', artifacts='Windows.Search.FileFinder', "
               f"env=dict(Glob='{glob}', Upload_File='Y')) AS C FROM scope()", org=org)
    assert logs == []
    flow = world.flow(org, cid, rows[0]["C"]["flow_id"])
    assert world.wait_flow(flow) and flow.state == 2
    return flow


def download(stub, components, org_id="", chunk=64 * 1024) -> bytes:
    data, offset = b"", 0
    while True:
        buf = stub.VFSGetBuffer(api_pb2.VFSFileBuffer(components=components, offset=offset,
                                                      length=chunk, org_id=org_id))
        if not buf.data:
            return data
        data += buf.data
        offset += len(buf.data)


def test_uploads_rows_and_byte_exact_download(raw_stub, make_config, world):
    flow = finder(world, "WKS-FIN-0042", "C:/ProgramData/Microsoft/DeviceSync/*")
    stub = raw_stub(make_config("apiuser"), options=[("grpc.max_receive_message_length", 2**26)])
    rows = []
    for message in stub.Query(query_args("SELECT * FROM uploads()",
                                         env={"ClientId": flow.client_id,
                                              "FlowId": flow.session_id})):
        if message.Response:
            rows += json.loads(message.Response)
    assert len(rows) == 1
    row = rows[0]
    assert list(row) == UPLOAD_COLUMNS
    path = "C:\\ProgramData\\Microsoft\\DeviceSync\\msdtcsvc.exe"
    components = ["clients", flow.client_id, "collections", flow.session_id, "uploads", "auto",
                  "C:", "ProgramData", "Microsoft", "DeviceSync", "msdtcsvc.exe"]
    assert row["client_path"] == path and row["Type"] == "" and row["_accessor"] == "auto"
    assert row["vfs_path"] == "fs:/" + "/".join(components)
    assert row["_Components"] == components
    assert row["_client_components"] == components[6:]
    assert row["started"].endswith(" +0000 UTC") and isinstance(row["Timestamp"], int)
    expected = incident.implant_bytes()
    assert row["file_size"] == row["uploaded_size"] == len(expected)
    assert row["Upload"] == {"Path": path, "Size": len(expected), "StoredSize": len(expected),
                             "Components": components, "Accessor": "auto", "UploadId": 0}
    assert download(stub, row["Upload"]["Components"]) == expected
    # client_id= makes the components relative to clients/<client_id>/
    relative = stub.VFSGetBuffer(api_pb2.VFSFileBuffer(client_id=flow.client_id,
                                                       components=components[2:], length=2))
    assert relative.data == b"MZ"


def test_uploads_in_hunt_mode_and_other_org(raw_stub, make_config, world):
    flow = finder(world, "hl-app-01", "/etc/passwd", org="O1234")  # a linux box: no uploads
    assert flow.uploads == []
    flow = finder(world, "HL-WKS-001", "C:/Windows/Prefetch/*.pf", org="O1234")
    assert len(flow.uploads) > 1
    rows, logs = run_world_query(world, f"SELECT Upload FROM uploads(client_id='{flow.client_id}'"
                                        f", flow_id='{flow.session_id}')", org="O1234")
    assert logs == [] and len(rows) == len(flow.uploads)
    stub = raw_stub(make_config("admin"))
    first = rows[0]["Upload"]
    data = download(stub, first["Components"], org_id="O1234")
    assert len(data) == first["Size"] > 0
    with pytest.raises(grpc.RpcError) as err:  # not in the root org's file store
        download(stub, first["Components"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    rows, logs = run_world_query(world, "SELECT hunt(artifacts='Windows.Search.FileFinder', "
                                        "include_labels='finance', spec=dict(`Windows.Search."
                                        "FileFinder`=dict(Glob='C:/ProgramData/Microsoft/"
                                        "DeviceSync/*', Upload_File='Y'))) AS H FROM scope()")
    hunt = world.hunt("root", rows[0]["H"]["HuntId"])
    for hflow in world.hunt_flows(hunt):
        assert world.wait_flow(hflow)
    rows, logs = run_world_query(world, f"SELECT * FROM uploads(hunt_id='{hunt.hunt_id}')")
    assert logs == [] and rows
    assert list(rows[0]) == [*UPLOAD_COLUMNS, "ClientId", "FlowId"]
    assert {r["FlowId"] for r in rows} == {"F." + hunt.hunt_id[2:] + ".H"}
