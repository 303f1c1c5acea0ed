"""VFSGetBuffer: chunked reads from the file store, errors as the real server returns them."""

from __future__ import annotations

import os

import grpc
import pytest

from velonb._proto import api_pb2
from velonb.emulator.filestore import FileStore

UPLOAD = ["clients", "C.1234567890abcdef", "collections", "F.ABC", "uploads", "auto", "C:", "x.bin"]


@pytest.fixture(scope="module")
def blob(emulator):
    data = os.urandom(2_500_000)
    emulator.filestore.put(UPLOAD, data)
    return data


def fetch(stub, components, chunk, **kw):
    out, offset = b"", 0
    while True:
        reply = stub.VFSGetBuffer(
            api_pb2.VFSFileBuffer(components=components, offset=offset, length=chunk, **kw),
            timeout=10,
        )
        assert not reply.components and not reply.client_id and reply.offset == 0
        if not reply.data:
            return out
        out += reply.data
        offset += len(reply.data)


def test_chunked_download_roundtrip(raw_stub, api_config, blob):
    assert fetch(raw_stub(api_config), UPLOAD, 1 << 20) == blob


def test_client_id_makes_components_relative(raw_stub, api_config, blob):
    stub = raw_stub(api_config)
    assert fetch(stub, UPLOAD[2:], 1 << 20, client_id="C.1234567890abcdef") == blob


def test_read_past_end_is_empty_and_offset_length_respected(raw_stub, api_config, blob):
    stub = raw_stub(api_config)
    reply = stub.VFSGetBuffer(api_pb2.VFSFileBuffer(components=UPLOAD, offset=10, length=5))
    assert reply.data == blob[10:15]
    past_end = api_pb2.VFSFileBuffer(components=UPLOAD, offset=len(blob) + 9, length=5)
    reply = stub.VFSGetBuffer(past_end)
    assert reply.data == b""


def test_no_components_is_invalid_argument(raw_stub, api_config):
    with pytest.raises(grpc.RpcError) as info:
        raw_stub(api_config).VFSGetBuffer(api_pb2.VFSFileBuffer(length=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "Invalid pathspec"


def test_missing_file_is_not_found(raw_stub, api_config):
    with pytest.raises(grpc.RpcError) as info:
        raw_stub(api_config).VFSGetBuffer(api_pb2.VFSFileBuffer(components=["nope"], length=10))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_needs_read_results(raw_stub, make_config, blob):
    stub = raw_stub(make_config("reader"))
    assert stub.VFSGetBuffer(api_pb2.VFSFileBuffer(components=UPLOAD, length=3)).data == blob[:3]
    stub = raw_stub(make_config("nobody2", roles=["artifact_writer"]))
    with pytest.raises(grpc.RpcError) as info:
        stub.VFSGetBuffer(api_pb2.VFSFileBuffer(components=UPLOAD, length=3))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "User is not allowed to view the VFS."


def test_unknown_org(raw_stub, api_config):
    with pytest.raises(grpc.RpcError) as info:
        raw_stub(api_config).VFSGetBuffer(
            api_pb2.VFSFileBuffer(components=UPLOAD, length=3, org_id="O404")
        )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == "Org not found"


def test_on_disk_filestore(tmp_path):
    store = FileStore(tmp_path)
    store.put(["a", "C:", ".."], b"hello")
    assert store.read(["a", "C:", ".."], 1, 3) == b"ell"
    assert store.read(["a"], 0, 3) == b""  # a directory
    assert store.read(["b"], 0, 3) is None
    assert store.list() == [("a", "C:", "..")]
    assert all(tmp_path in p.parents for p in tmp_path.rglob("*"))
