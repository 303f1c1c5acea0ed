"""Generated protobuf code matches protos/, speaks the real wire names, coexists with others."""

import subprocess
import sys
import textwrap
from pathlib import Path

from velonb._proto import api_pb2, api_pb2_grpc, vql_pb2

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_protos():
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--check"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def _numbers(message) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_field_numbers_are_the_real_servers():
    assert _numbers(vql_pb2.VQLRequest) == {"Name": 2, "VQL": 1}
    assert _numbers(vql_pb2.VQLEnv) == {"key": 1, "value": 2, "comment": 3}
    args = _numbers(vql_pb2.VQLCollectorArgs)
    assert {k: args[k] for k in ("Query", "env", "max_row", "max_wait", "timeout", "cpu_limit",
                                 "org_id", "ops_per_second", "max_row_buffer_size")} == {
        "Query": 2, "env": 3, "max_row": 4, "max_wait": 6, "timeout": 25, "cpu_limit": 30,
        "org_id": 35, "ops_per_second": 24, "max_row_buffer_size": 37}
    assert _numbers(vql_pb2.VQLResponse) == {
        "Response": 1, "Columns": 2, "Query": 3, "timestamp": 4, "query_id": 5, "part": 6,
        "total_rows": 7, "types": 8, "log": 9, "JSONLResponse": 10, "query_start_row": 11,
        "org_id": 12, "uncompressed_size": 13, "byte_offset": 14, "CompressedJsonResponse": 15}
    assert _numbers(api_pb2.VFSFileBuffer) == {
        "client_id": 1, "offset": 3, "length": 4, "data": 5, "components": 6, "org_id": 7,
        "padding": 8}
    assert api_pb2.VFSFileBuffer.DESCRIPTOR.fields_by_name["padding"].has_presence
    assert vql_pb2.VQLRequest.DESCRIPTOR.full_name == "proto.VQLRequest"


def test_method_paths_on_the_wire():
    source = Path(api_pb2_grpc.__file__).read_text()
    for method in ("Query", "VFSGetBuffer", "Check"):
        assert f"'/proto.API/{method}'" in source
    service = api_pb2.DESCRIPTOR.services_by_name["API"]
    assert service.full_name == "proto.API"
    assert service.methods_by_name["Query"].output_type.full_name == "proto.VQLResponse"


def test_coexists_with_another_proto_package_in_the_default_pool(tmp_path):
    """pyvelociraptor registers proto.VQLRequest etc. in the default pool; we must not collide."""
    out = tmp_path / "other"
    out.mkdir()
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'protos'}",
                    f"--python_out={out}", "vql.proto", "api.proto"], check=True)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(out)!r})
        import api_pb2 as theirs            # default descriptor pool, like pyvelociraptor
        from velonb._proto import api_pb2 as ours, vql_pb2
        import api_pb2 as again
        from google.protobuf import descriptor_pool
        assert descriptor_pool.Default().FindMessageTypeByName("proto.VQLRequest")
        wire = theirs.VFSFileBuffer(client_id="C.1", offset=5).SerializeToString()
        assert ours.VFSFileBuffer.FromString(wire).offset == 5
        print("ok")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_bytes_view_of_the_query_stream_mirrors_vql_response():
    """velonb reads the Query stream as VQLResponseBytes: every field as VQLResponse's, except
    that Response is bytes (the same length-delimited wire type), so any message parses."""
    from google.protobuf.descriptor import FieldDescriptor

    from velonb._proto import velonb_wire_pb2

    def shape(message):
        return {f.name: (f.number, f.type, f.is_repeated,
                         f.message_type.full_name if f.message_type else None)
                for f in message.DESCRIPTOR.fields}

    real, ours = shape(vql_pb2.VQLResponse), shape(velonb_wire_pb2.VQLResponseBytes)
    assert real.pop("Response")[1] == FieldDescriptor.TYPE_STRING
    assert ours.pop("Response")[1] == FieldDescriptor.TYPE_BYTES
    assert ours == real
    sent = vql_pb2.VQLResponse(Response='[{"Name":"caf\u00e9"}]', Columns=["Name"], query_id=2,
                               part=7, log="", timestamp=1733300000000000, org_id="O1234")
    sent.Query.Name, sent.Query.VQL = "q", "SELECT 1 FROM scope()"
    got = velonb_wire_pb2.VQLResponseBytes.FromString(sent.SerializeToString())
    assert got.Response == sent.Response.encode("utf-8")
    assert (list(got.Columns), got.query_id, got.part, got.timestamp, got.org_id) == (
        ["Name"], 2, 7, 1733300000000000, "O1234")
    assert (got.Query.Name, got.Query.VQL) == ("q", "SELECT 1 FROM scope()")
