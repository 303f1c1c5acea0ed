"""Hunts (label / OS conditions, results, flows, progress) and downloads (resumable, byte-exact,
safe names, another org)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from velonb.download import safe_relpath
from velonb.emulator.world import flows as F
from velonb.emulator.world import incident
from velonb.errors import PermissionDeniedError
from velonb.fleet import DownloadInterrupted, DryRun, HuntConditionError, UnknownHuntError


def _finished(hunt, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        progress = hunt.progress()
        if progress.scheduled and progress.outstanding == 0:
            return progress
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)


def test_hunt_by_label(connect_as):
    conn = connect_as("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", {"ProcessRegex": "(?i)winword|cmd"},
                            description="finance pslist", labels="finance")
    assert hunt.state == "RUNNING" and hunt.artifacts == ["Windows.System.Pslist"]
    assert isinstance(hunt.vql, DryRun) and "finance" not in hunt.vql.vql
    progress = _finished(hunt)
    assert progress.scheduled == 2  # WKS-FIN-0061 is offline: never scheduled
    flows = hunt.flows()
    hosts = {conn.client(cid).hostname for cid in flows["client_id"]}
    assert hosts == {"WKS-FIN-0042", "WKS-FIN-0057"}
    results = hunt.results()
    assert set(results["ClientId"]) <= set(flows["client_id"])
    assert results["Name"].str.contains("(?i)winword|cmd").all()
    listed = conn.hunts(state="running")
    row = listed.set_index("hunt_id").loc[hunt.hunt_id]
    assert row["labels"] == ["finance"] and row["description"] == "finance pslist"
    assert conn.hunt(hunt.hunt_id).description == "finance pslist"


def test_hunt_by_os_and_conditions(connect_as):
    conn = connect_as("investigator")
    hunt = conn.create_hunt("Linux.Sys.Pslist", description="linux boxes", os="linux")
    _finished(hunt)
    hosts = {conn.client(cid).hostname for cid in hunt.flows()["client_id"]}
    assert hosts == {"lnx-web-01", "lnx-db-01", "lnx-bastion-01"}
    assert set(hunt.results()["Fqdn"].str.split(".").str[0]) == hosts
    assert conn.hunts().set_index("hunt_id").loc[hunt.hunt_id, "os"] == "linux"
    with pytest.raises(HuntConditionError, match="labels OR an OS"):
        conn.create_hunt("Windows.System.Pslist", description="x", labels="servers",
                         os="windows")
    paused = conn.create_hunt("Windows.System.Pslist", description="later", paused=True,
                              labels=["it"])
    assert paused.state == "PAUSED" and paused.progress().scheduled == 0
    with pytest.raises(UnknownHuntError):
        conn.hunt("H.DOESNOTEXIST")
    with pytest.raises(PermissionDeniedError, match="START_HUNT"):
        connect_as("apiuser").create_hunt("Windows.System.Pslist", description="no")


def _implant_flow(conn):
    return conn.collect("WKS-FIN-0042", "Windows.Search.FileFinder",
                        {"Glob": "C:/ProgramData/Microsoft/DeviceSync/*", "Upload_File": True},
                        progress=False)


def test_download_resumes_byte_exact(connect_as, fleet_emulator, tmp_path):
    flow = _implant_flow(connect_as("investigator"))
    (upload,) = flow.uploads().to_dict("records")
    expected = fleet_emulator.filestore.get(upload["Upload"]["Components"])
    assert expected == incident.implant_bytes()
    seen: list[int] = []

    def stop_after_40k(done: int, total: int) -> None:
        seen.append(done)
        assert total == len(expected)
        if done >= 40_000:
            raise KeyboardInterrupt

    with pytest.raises(DownloadInterrupted, match="again"):
        flow.download(tmp_path, chunk_size=16_384, progress=stop_after_40k)
    target = tmp_path / "auto" / "C" / "ProgramData" / "Microsoft" / "DeviceSync" / \
        "msdtcsvc.exe"
    part = target.with_name("msdtcsvc.exe.part")
    assert not target.exists() and part.stat().st_size == 49_152
    done = flow.download(tmp_path, chunk_size=16_384)
    assert done["resumed_from"].tolist() == [49_152] and not done["skipped"].any()
    assert target.read_bytes() == expected and not part.exists()
    again = flow.download(tmp_path)  # complete files are not fetched twice
    assert again["skipped"].tolist() == [True]


def test_download_names_are_made_safe(connect_as, fleet_emulator, tmp_path):
    conn = connect_as("investigator")
    flow = _implant_flow(conn)
    world = fleet_emulator.world
    record = world.flow("root", flow.client_id, flow.flow_id)
    nasty = {
        "C:\\Temp\\CON": b"con", "C:\\Temp\\nul.txt": b"nul",
        "\\\\?\\C:\\Users\\a:b?<x>.txt": b"colon", "D:\\Shares\\ends with dot.": b"dot",
    }
    for path, data in nasty.items():
        world._store_upload(record, path, "auto", data)
    escape = ["clients", flow.client_id, "collections", flow.flow_id, "uploads", "auto", "esc"]
    fleet_emulator.filestore.put(escape, b"escape")
    record.uploads.append(F.UploadRecord(time.time(), "../../../etc/passwd", "auto", escape,
                                         ["..", "..", "..", "etc", "passwd"], 6))
    record.uploads.append(F.UploadRecord(time.time(), "/abs/path", "../..", escape,
                                         ["/", "abs", "path"], 6))
    dest = tmp_path / "out"
    files = flow.download(dest)
    root = dest.resolve()
    written = {Path(p).resolve() for p in files["path"]}
    assert all(p.is_relative_to(root) and p.is_file() for p in written)
    relative = {p.relative_to(root).as_posix() for p in written}
    assert {"auto/C/Temp/_CON", "auto/C/Temp/_nul.txt", "auto/_/C/Users/a_b__x_.txt",
            "auto/D/Shares/ends with dot", "auto/etc/passwd", "abs/path"} <= relative
    assert not (tmp_path / "etc").exists(), relative
    assert safe_relpath(["..", "/", "C:", "CON.txt", "a\\..\\b", "COM1", "ok"]).as_posix() == \
        "C/_CON.txt/a/b/_COM1/ok"
    assert safe_relpath(["..", "."]).as_posix() == "unnamed"


def test_second_org_download(connect_as, tmp_path):
    conn = connect_as("admin", org_id="O1234")
    flow = conn.collect("HL-WKS-001", "Windows.Search.FileFinder",
                        {"Glob": "C:/Windows/Prefetch/*.pf", "Upload_File": "Y"},
                        progress=False)
    uploads = flow.uploads()
    assert len(uploads) > 1
    files = flow.download(tmp_path)
    assert len(files) == len(uploads)
    sizes = {Path(p).stat().st_size for p in files["path"]}
    assert sizes == set(uploads["file_size"])
