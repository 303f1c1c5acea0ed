"""create_flow_download() (vql/server/downloads/downloads.go, reporting/container.go,
json/csv.go): the zip's members, names and encodings, its AvailableDownloads record, its
errors, and the zip read back byte-exact through VFSGetBuffer in another org."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile

import pytest
from wire_helpers import run_world_query

from velonb._proto import api_pb2
from velonb.emulator.gojson import dumps
from velonb.emulator.world import World
from velonb.emulator.world.exports import FSPathSpec, go_indent, iter_members, zip_component


@pytest.fixture
def sim():
    world = World(seed=7, flow_delay=0.0)
    yield world
    world.close()


def _collect(world: World, host: str, artifacts: str, env: str = "dict()", org: str = "root"):
    cid = next(c.client_id for c in world.clients(org) if c.hostname == host)
    rows, logs = run_world_query(world, f"SELECT collect_client(client_id='{cid}', "
                                        f"artifacts={artifacts}, env={env}) AS C FROM scope()",
                                 org=org)
    assert logs == []
    flow = world.flow(org, cid, rows[0]["C"]["flow_id"])
    assert world.wait_flow(flow) and flow.state == 2
    return flow


def _export(world: World, flow, args: str = "", org: str = "root", roles=("administrator",)):
    rows, logs = run_world_query(
        world, f"SELECT create_flow_download(client_id='{flow.client_id}', "
               f"flow_id='{flow.session_id}', wait=TRUE{args}) AS D FROM scope()", roles, org=org)
    return rows[0]["D"], logs


def test_pathspec_name_and_members(sim):
    flow = _collect(sim, "WKS-FIN-0042", "['Windows.Search.FileFinder', 'Windows.System.Pslist']",
                    "dict(Glob='C:/ProgramData/Microsoft/DeviceSync/*', Upload_File='Y')")
    spec, logs = _export(sim, flow)
    name = f"WKS-FIN-0042-{flow.client_id}-{flow.session_id}.zip"
    assert isinstance(spec, FSPathSpec)
    assert str(spec) == f"fs:/downloads/{flow.client_id}/{flow.session_id}/{name}"
    components = ["downloads", flow.client_id, flow.session_id, name]
    assert spec.vql_associative(None, "Components") == (components, True)
    src = (f"/clients/{flow.client_id}/collections/{flow.session_id}/uploads/auto/C:/"
           "ProgramData/Microsoft/DeviceSync/msdtcsvc.exe")
    assert logs == [f"DEBUG: downloadFlowToZip: Copy file from {src} to /uploads/auto/C:/"
                    "ProgramData/Microsoft/DeviceSync/msdtcsvc.exe\n"]
    members = dict(iter_members(sim.read_file("root", list(spec.components))))
    assert list(members) == [
        "client_info.json", "collection_context.json", "log.json",
        "results/Windows.Search.FileFinder.json", "results/Windows.System.Pslist.json",
        "uploads.json", "uploads.json.index",
        "uploads/auto/C%3A/ProgramData/Microsoft/DeviceSync/msdtcsvc.exe"]
    # result sets are the stored JSONL, unchanged
    lines = members["results/Windows.System.Pslist.json"].decode().splitlines()
    rows, _ = run_world_query(sim, f"SELECT * FROM source(client_id='{flow.client_id}', "
                                   f"flow_id='{flow.session_id}', "
                                   "artifact='Windows.System.Pslist')")
    assert lines == [dumps(row) for row in rows]
    # uploads.json: the stored metadata row, its _Components now inside the zip; one index
    # entry per row (offset | 1<<40)
    (upload,) = [json.loads(line) for line in members["uploads.json"].splitlines()]
    assert list(upload) == ["Timestamp", "started", "vfs_path", "Type", "_Components",
                            "file_size", "_accessor", "_client_components", "uploaded_size"]
    assert upload["vfs_path"] == "C:\\ProgramData\\Microsoft\\DeviceSync\\msdtcsvc.exe"
    assert upload["_Components"] == ["uploads", "auto", "C:", "ProgramData", "Microsoft",
                                     "DeviceSync", "msdtcsvc.exe"]
    assert struct.unpack("<Q", members["uploads.json.index"]) == (1 << 40,)
    context = json.loads(members["collection_context.json"])
    assert context["state"] == 2 and context["session_id"] == flow.session_id
    assert "status" not in context["query_stats"][0]  # OK is 0: omitted
    assert "inflight_time" not in context and "dirty" not in context  # omitempty
    info = json.loads(members["client_info.json"])
    assert list(info)[:4] == ["client_id", "hostname", "fqdn", "system"]
    assert members["client_info.json"].startswith(b'{\n "client_id": "C.')


def test_formats_and_csv_encoding(sim):
    flow = _collect(sim, "WKS-FIN-0042", "'Windows.System.Pslist'")
    crafted = [{"A": "=cmd|' /C calc'!A0", "B": "x,y", "C": None, "D": {"k": 'v"q', "l": "<b>"},
                "E": 1.5e-07, "F": " lead", "G": True, "H": [1, "a"], "I": 12345678901234567890},
               {"B": "second", "A": "plain", "Z": "not a column"}]
    flow.lazy_results["Windows.System.Pslist"] = lambda: iter(crafted)
    csv_spec, logs = _export(sim, flow, ", format='csv', name='both'")
    assert logs == [] and csv_spec.components[-1] == "both.zip"
    members = dict(iter_members(sim.read_file("root", list(csv_spec.components))))
    assert list(members) == ["client_info.json", "collection_context.json", "log.json",
                             "log.csv", "results/Windows.System.Pslist.json",
                             "results/Windows.System.Pslist.csv"]
    assert members["results/Windows.System.Pslist.csv"].decode() == (
        "A,B,C,D,E,F,G,H,I\n"
        "\"\t=cmd|' /C calc'!A0\",\"x,y\",,\"{\"\"k\"\":\"\"v\\\"\"q\"\",\"\"l\"\":\"\"<b>\"\"}\","
        "1.5e-7,\" lead\",true,\"[1,\"\"a\"\"]\",12345678901234567890\n"
        "plain,second,,,,,,,\n")
    assert members["log.csv"].decode().splitlines()[0] == "client_time,level,message"
    only, _ = _export(sim, flow, ", format='csv_only', name='only'")
    names = [n for n, _ in iter_members(sim.read_file("root", list(only.components)))]
    assert names == ["client_info.json", "collection_context.json", "log.csv",
                     "results/Windows.System.Pslist.csv"]


def test_available_downloads_and_summary(sim):
    flow = _collect(sim, "DC-01", "'Windows.System.Pslist'")
    query = (f"SELECT AvailableDownloads FROM flows(client_id='{flow.client_id}', "
             f"flow_id='{flow.session_id}')")
    rows, _ = run_world_query(sim, query)
    assert rows[0]["AvailableDownloads"] == {}
    spec, _ = _export(sim, flow, ", name='first'")
    _export(sim, flow, ", name='a-second'")
    rows, _ = run_world_query(sim, query)
    files = rows[0]["AvailableDownloads"]["files"]
    assert [f["name"] for f in files] == ["a-second", "first"]  # the directory's listing order
    first = files[1]
    data = sim.read_file("root", list(spec.components))
    assert list(first) == ["name", "path", "type", "complete", "size", "stats"]
    assert first["path"] == "/".join(spec.components) and first["type"] == "zip"
    assert first["complete"] is True and first["size"] == len(data)
    stats = first["stats"]
    assert stats["hash"] == hashlib.sha256(data).hexdigest()
    assert stats["total_compressed_bytes"] == len(data)
    assert stats["total_container_files"] == len(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert stats["components"] == list(spec.components) and stats["type"] == "zip"
    summary, _ = run_world_query(sim, query.replace("')", "', summary=TRUE)"))
    assert summary[0]["AvailableDownloads"] is None


def test_errors_permissions_and_unknown_flow(sim):
    flow = _collect(sim, "DC-01", "'Windows.System.Pslist'")
    value, logs = _export(sim, flow, ", format='xml'")
    assert value is None and logs == [
        "create_flow_download: Unknown format parameter xml either 'json', 'jsonl', 'csv' or "
        "'csv_only'."]
    value, logs = _export(sim, flow, roles=("api",))
    assert value is None and logs == [
        "create_flow_download: PermissionDenied: Permission denied: [PREPARE_RESULTS]"]
    rows, logs = run_world_query(sim, "SELECT create_flow_download(flow_id='F.X') FROM scope()")
    assert rows == [{"create_flow_download(flow_id='F.X')": None}]
    assert logs == ["create_flow_download: Field client_id is required"]
    # an unknown flow still gets a zip: the client record only (no context, no log)
    rows, logs = run_world_query(sim, f"SELECT create_flow_download(client_id='{flow.client_id}',"
                                      " flow_id='F.NOPE', wait=TRUE) AS D FROM scope()")
    data = sim.read_file("root", list(rows[0]["D"].components))
    assert [n for n, _ in iter_members(data)] == ["client_info.json"]


def test_zip_names_and_indent_follow_go():
    assert zip_component("C:") == "C%3A"
    assert zip_component(".hidden") == "%2Ehidden"
    assert zip_component("trailing. ") == "trailing.%20"
    assert zip_component("a/b\\c*?|<>%\"") == "a%2Fb%5Cc%2A%3F%7C%3C%3E%25%22"
    assert zip_component("Windows.Network.NetstatEnriched/Netstat") == \
        "Windows.Network.NetstatEnriched%2FNetstat"  # golden downloads.out.yaml
    value = {"a": [], "b": {}, "c": [1, {"d": "x,y: {z}"}], "e": "quote \" and \\"}
    compact = json.dumps(value, separators=(",", ":"))
    assert go_indent(compact) == json.dumps(value, indent=" ")


def test_export_read_back_through_vfs_in_another_org(emulator, raw_stub, make_config):
    world = emulator.world
    flow = _collect(world, "HL-WKS-001", "'Windows.Search.FileFinder'",
                    "dict(Glob='C:/Windows/Prefetch/*.pf', Upload_File='Y')", org="O1234")
    spec, logs = _export(world, flow, org="O1234")
    assert len(logs) == len(flow.uploads) > 1
    stub = raw_stub(make_config("admin"))
    data, offset = b"", 0
    while True:
        buf = stub.VFSGetBuffer(api_pb2.VFSFileBuffer(components=list(spec.components),
                                                      offset=offset, length=65536,
                                                      org_id="O1234"))
        if not buf.data:
            break
        data += buf.data
        offset += len(buf.data)
    assert data == world.read_file("O1234", list(spec.components))
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sum(n.startswith("uploads/auto/C%3A/Windows/Prefetch/") for n in names) == \
        len(flow.uploads)


def test_password_export_is_an_aes_zip_holding_the_container(sim):
    pyzipper = pytest.importorskip("pyzipper")  # an independent WinZip AES implementation
    flow = _collect(sim, "WKS-FIN-0042", "'Windows.Search.FileFinder'",
                    "dict(Glob='C:/ProgramData/Microsoft/DeviceSync/*', Upload_File='Y')")
    spec, logs = _export(sim, flow, ", password='correct horse ✓'")
    assert spec.components[-1] == f"WKS-FIN-0042-{flow.client_id}-{flow.session_id}_locked.zip"
    assert all("correct horse" not in line for line in logs)
    outer = sim.read_file("root", list(spec.components))
    assert b"msdtcsvc" not in outer and b"This program cannot" not in outer
    plain = zipfile.ZipFile(io.BytesIO(outer))
    (info,) = plain.infolist()
    assert info.filename == "data.zip" and info.compress_type == 99 and info.flag_bits & 1
    with pyzipper.AESZipFile(io.BytesIO(outer)) as archive:
        with pytest.raises(RuntimeError):
            archive.read("data.zip", pwd=b"wrong")
        inner = archive.read("data.zip", pwd="correct horse ✓".encode())
    names = [n for n, _ in iter_members(inner)]
    assert names[:2] == ["client_info.json", "collection_context.json"]
    assert "uploads/auto/C%3A/ProgramData/Microsoft/DeviceSync/msdtcsvc.exe" in names
    rows, _ = run_world_query(sim, f"SELECT AvailableDownloads FROM flows(client_id="
                                   f"'{flow.client_id}', flow_id='{flow.session_id}')")
    (record,) = rows[0]["AvailableDownloads"]["files"]
    assert record["stats"]["hash"] == hashlib.sha256(outer).hexdigest()
    assert record["stats"]["total_container_files"] == len(names)
