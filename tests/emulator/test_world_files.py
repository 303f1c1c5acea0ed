"""flow_results() (vql/server/flows/results.go) and read_file() with the fs and data accessors
(vql/filesystem/filesystem.go, accessors/file_store, accessors/data)."""

from __future__ import annotations

import pytest
from wire_helpers import run_world_query

from velonb.emulator.filestore import FileStore
from velonb.emulator.world import World


@pytest.fixture
def sim():
    world = World(seed=7, flow_delay=0.0)
    world.attach(FileStore())
    yield world
    world.close()


def host(world: World, name: str) -> str:
    return next(c.client_id for c in world.clients("root") if c.hostname == name)


def finished_flow(world: World, client_id: str, artifacts: str):
    rows, logs = run_world_query(world, f"SELECT collect_client(client_id='{client_id}', "
                                        f"artifacts={artifacts}) AS C FROM scope()")
    assert logs == []
    flow = world.flow("root", client_id, rows[0]["C"]["flow_id"])
    assert world.wait_flow(flow) and flow.state == 2
    return flow


# --- flow_results ---------------------------------------------------------------------------


def test_flow_results_reads_like_source(sim):
    cid = host(sim, "DC-01")
    flow = finished_flow(sim, cid, "'Generic.Client.Info'")
    name = next(n for n in flow.results if flow.results[n])
    art, src = name.split("/")
    expected, _ = run_world_query(sim, f"SELECT * FROM source(client_id='{cid}', "
                                       f"flow_id='{flow.session_id}', artifact='{name}')")
    assert expected
    rows, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                      f"flow_id='{flow.session_id}', artifact='{name}')")
    assert rows == expected and logs == []
    rows, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                      f"flow_id='{flow.session_id}', artifact='{art}', "
                                      f"source='{src}')")
    assert rows == expected and logs == []


def test_flow_results_defaults_to_the_first_artifact(sim):
    cid = host(sim, "DC-01")
    flow = finished_flow(sim, cid, "['Generic.Client.Info', 'Windows.System.Pslist']")
    assert flow.artifacts[0] == "Generic.Client.Info"
    sources = [n for n in flow.results if n.startswith("Generic.Client.Info/")]
    src = sources[0].split("/")[1]
    rows, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                      f"flow_id='{flow.session_id}', source='{src}')")
    assert rows == flow.results[sources[0]] and logs == []
    # Without a source the artifact's own (unnamed) result set is read: there is none here.
    rows, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                      f"flow_id='{flow.session_id}')")
    assert rows == [] and logs == []


def test_flow_results_errors(sim):
    cid = host(sim, "DC-01")
    _, logs = run_world_query(sim, "SELECT * FROM flow_results(client_id='C.1')")
    assert logs == ["flow_results: Field flow_id is required"]
    _, logs = run_world_query(sim, "SELECT * FROM flow_results(flow_id='F.1')")
    assert logs == ["flow_results: Field client_id is required"]
    _, logs = run_world_query(sim, "SELECT * FROM flow_results(flow_id='F.1', client_id='C.1', "
                                   "count=1)")
    assert logs == ["flow_results: Unexpected arg count"]
    _, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                   "flow_id='F.NOSUCH')")
    assert logs == [f"flow_results: Flow not found: F.NOSUCH in client '{cid}'"]
    _, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                   "flow_id='F.NOSUCH', artifact='No.Such')")
    assert logs == ["source: Artifact No.Such not known"]
    rows, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                      "flow_id='F.NOSUCH', artifact='Generic.Client.Info')")
    assert rows == [] and logs == []
    # READ_RESULTS is checked before the arguments are parsed.
    _, logs = run_world_query(sim, "SELECT * FROM flow_results()", roles=())
    assert logs == ["flow_results: PermissionDenied: Permission denied: [READ_RESULTS]"]
    rows, logs = run_world_query(sim, f"SELECT * FROM flow_results(client_id='{cid}', "
                                      "flow_id='F.NOSUCH', artifact='Generic.Client.Info')",
                                 roles=("reader",))
    assert rows == [] and logs == []


# --- read_file: fs --------------------------------------------------------------------------


def test_read_file_fs_reads_the_filestore(sim):
    sim.filestore.put(["downloads", "C.1", "F.1", "x.zip"], b"PK\x03\x04hello")
    rows, logs = run_world_query(
        sim, "SELECT read_file(filename='fs:/downloads/C.1/F.1/x.zip', accessor='fs') AS A, "
             "read_file(filename='/downloads/C.1/F.1/x.zip', accessor='fs', offset=4) AS B, "
             "read_file(filename='downloads/C.1/F.1/x.zip', accessor='fs', offset=4, "
             "length=2) AS C, "
             "read_file(filename=['downloads', 'C.1', 'F.1/x.zip'], accessor='fs') AS D, "
             "read_file(filename='fs:/DOWNLOADS/c.1/F.1/X.ZIP', accessor='fs') AS E "
             "FROM scope()")
    assert logs == []
    row = rows[0]
    assert row["A"] == "PK\x03\x04hello" and row["B"] == "hello" and row["C"] == "he"
    assert row["D"] == row["A"]  # list items' components are appended
    assert row["E"] == row["A"]  # getCorrectCase: a case-insensitive match


def test_read_file_fs_reads_an_upload(sim):
    cid = host(sim, "WKS-FIN-0042")
    rows, logs = run_world_query(
        sim, f"SELECT collect_client(client_id='{cid}', artifacts='Windows.Search.FileFinder', "
             "env=dict(Glob='C:/ProgramData/Microsoft/DeviceSync/*', Upload_File='Y')) AS C "
             "FROM scope()")
    flow = sim.flow("root", cid, rows[0]["C"]["flow_id"])
    assert sim.wait_flow(flow) and flow.uploads
    record = flow.uploads[0]
    data = sim.filestore.get(record.components)
    assert data
    rows, logs = run_world_query(
        sim, f"SELECT read_file(filename=vfs_path, accessor='fs') AS Data FROM uploads("
             f"client_id='{cid}', flow_id='{flow.session_id}')")
    assert logs == [] and rows[0]["Data"].encode("utf-8", "surrogateescape") == data


def test_read_file_fs_in_another_org():
    world = World(seed=7, flow_delay=0.0)
    try:
        store = FileStore()
        world.attach(store)
        org = next(o for o in world.orgs if o != "root")
        store.put(["orgs", org, "public", "a.txt"], b"org file")
        store.put(["public", "a.txt"], b"root file")
        rows, logs = run_world_query(world, "SELECT read_file(filename='/public/a.txt', "
                                            "accessor='fs') AS X FROM scope()", org=org)
        assert rows[0]["X"] == "org file" and logs == []
        rows, _ = run_world_query(world, "SELECT read_file(filename='/public/a.txt', "
                                         "accessor='fs') AS X FROM scope()")
        assert rows[0]["X"] == "root file"
    finally:
        world.close()


def test_read_file_fs_failures(sim):
    sim.filestore.put(["public", "dir", "f.txt"], b"x")
    cases = {
        "filename='/public/missing.txt', accessor='fs'":
            "read_file: fs:/public/missing.txt: NotFoundError",
        "filename='fs:/nope/a/b', accessor='fs'": "read_file: fs:/nope/a/b: NotFoundError",
        "filename='fs:', accessor='fs'": "read_file: fs:: Invalid path",
        "filename='/public/dir', accessor='fs'": "read_file: read fs:/public/dir: is a directory",
        "filename='/public/dir/f.txt', accessor='fs', length='x'":
            "read_file: Field length should be an int not string.",
        "accessor='fs'": "read_file: Field filename is required",
        "filename='/a', accessor='fs', foo=1": "read_file: Unexpected arg foo",
        "filename=dict(), accessor='fs'":
            "read_file: Field filename Expecting a path arg type, not *ordereddict.Dict",
    }
    for args, log in cases.items():
        rows, logs = run_world_query(sim, f"SELECT read_file({args}) AS X FROM scope()")
        assert rows == [{"X": ""}] and logs == [log], args


def test_read_file_fs_needs_server_admin(sim):
    sim.filestore.put(["public", "a.txt"], b"secret")
    rows, logs = run_world_query(sim, "SELECT read_file(filename='/public/a.txt', "
                                      "accessor='fs') AS X FROM scope()",
                                 roles=("investigator",))
    assert rows == [{"X": ""}]
    assert logs == ["read_file: Field filename Accessor fs: PermissionDenied: Permission "
                    "denied: [SERVER_ADMIN]"]


# --- read_file: data and other accessors ----------------------------------------------------


def test_read_file_data_accessor(sim):
    rows, logs = run_world_query(
        sim, "SELECT read_file(filename='hello world', accessor='data') AS A, "
             "read_file(filename='hello world', accessor='data', offset=6, length=3) AS B "
             "FROM scope()", roles=("reader",))
    assert logs == [] and rows == [{"A": "hello world", "B": "wor"}]


def test_read_file_other_accessors(sim):
    rows, logs = run_world_query(sim, "SELECT read_file(filename='/etc/passwd') AS X, "
                                      "read_file(filename='/x', accessor='nope') AS Y "
                                      "FROM scope()")
    assert rows == [{"X": "", "Y": ""}]
    assert logs == [
        "read_file: Field filename Accessor auto is not supported by the emulator "
        "(only fs and data)",
        "read_file: Field filename Unknown filesystem accessor nope",
    ]
