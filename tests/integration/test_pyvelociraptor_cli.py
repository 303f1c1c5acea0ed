"""pyvelociraptor's own CLIs against the emulator: ``pyvelociraptor_fetch_flow_uploads``
downloads a FileFinder collection's uploads byte for byte (``SELECT Upload.Components AS
Components FROM uploads(flow_id=FlowId, client_id=ClientId)`` with env ClientId/FlowId, then
VFSGetBuffer in 1 MiB chunks until an empty buffer) or, with ``--zip``, the flow's export;
``pyvelociraptor_push_event`` pushes JSONL into an event queue."""

from __future__ import annotations

import subprocess

import pytest
from wire_helpers import run_world_query

pytestmark = pytest.mark.slow


def test_fetch_flow_uploads_is_byte_exact(pyvelo_python, emulator, world, tmp_path):
    config = emulator.write_api_client_config(tmp_path / "api.yaml", name="apiuser",
                                              roles=("api",))
    cid = next(c.client_id for c in world.clients("root") if c.hostname == "WKS-FIN-0057")
    rows, logs = run_world_query(
        world, f"SELECT collect_client(client_id='{cid}', artifacts='Windows.Search.FileFinder', "
               "env=dict(Glob='C:/Windows/Prefetch/*.pf', Upload_File='Y')) AS C FROM scope()")
    assert logs == []
    flow = world.flow("root", cid, rows[0]["C"]["flow_id"])
    assert world.wait_flow(flow) and len(flow.uploads) > 1
    out = tmp_path / "out"
    out.mkdir()
    cli = pyvelo_python.parent / "pyvelociraptor_fetch_flow_uploads"
    run = subprocess.run([str(cli), "--config", str(config), "--output", str(out) + "/",
                          cid, flow.session_id], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Fetching file") == len(flow.uploads)
    fetched = {p.name: p.read_bytes() for p in out.iterdir()}
    assert emulator.filestore is not None
    expected = {record.components[-1]: emulator.filestore.get(record.components)
                for record in flow.uploads}
    assert fetched == expected
    assert all(len(data) == record.size for record in flow.uploads
               for data in [fetched[record.components[-1]]])


def test_fetch_flow_uploads_zip_gets_the_export(pyvelo_python, emulator, world, tmp_path):
    """``--zip``: ``create_flow_download(wait=TRUE, ...).Components``, then VFSGetBuffer."""
    import io
    import zipfile

    config = emulator.write_api_client_config(tmp_path / "api.yaml", name="analyst1",
                                              roles=("analyst",))
    cid = next(c.client_id for c in world.clients("root") if c.hostname == "WKS-FIN-0057")
    rows, _ = run_world_query(
        world, f"SELECT collect_client(client_id='{cid}', artifacts='Windows.Search.FileFinder', "
               "env=dict(Glob='C:/Windows/Prefetch/*.pf', Upload_File='Y')) AS C FROM scope()")
    flow = world.flow("root", cid, rows[0]["C"]["flow_id"])
    assert world.wait_flow(flow)
    out = tmp_path / "out"
    out.mkdir()
    cli = pyvelo_python.parent / "pyvelociraptor_fetch_flow_uploads"
    run = subprocess.run([str(cli), "--config", str(config), "--output", str(out) + "/", "--zip",
                          cid, flow.session_id], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    name = f"WKS-FIN-0057-{cid}-{flow.session_id}.zip"
    (fetched,) = out.iterdir()
    assert fetched.name == name
    stored = world.read_file("root", ["downloads", cid, flow.session_id, name])
    assert fetched.read_bytes() == stored
    names = zipfile.ZipFile(io.BytesIO(stored)).namelist()
    assert sum(n.startswith("uploads/auto/C%3A/Windows/Prefetch/") for n in names) == \
        len(flow.uploads) > 1


def test_push_event_cli_reaches_the_queue(pyvelo_python, emulator, world, tmp_path):
    """pyvelociraptor's own ``pyvelociraptor_push_event`` (PushEvents with JSONL)."""
    import json

    emulator.add_user("pyvelo-pusher", ["api"])
    emulator.grant_publish("pyvelo-pusher", ["Custom.Notebook.Findings"])
    config = emulator.write_api_client_config(tmp_path / "api.yaml", name="pyvelo-pusher")
    cli = pyvelo_python.parent / "pyvelociraptor_push_event"
    event = json.dumps([{"Host": "WKS-FIN-0042", "Verdict": "infected"}, {"Host": "DC-01"}])
    run = subprocess.run([str(cli), str(config), "Custom.Notebook.Findings", event],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    stored = [r for r in world.bus.stored("root", "server", "Custom.Notebook.Findings")
              if r.get("_Sender") == "pyvelo-pusher"]
    assert [(r["Host"], r.get("Verdict")) for r in stored] == [("WKS-FIN-0042", "infected"),
                                                              ("DC-01", None)]
