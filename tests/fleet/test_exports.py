"""Flow.export(): the server's export zip (create_flow_download), downloaded and verified."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest

from velonb.emulator.world import incident
from velonb.errors import PermissionDeniedError
from velonb.fleet import DownloadError, DownloadInterrupted

IMPLANT = "uploads/auto/C%3A/ProgramData/Microsoft/DeviceSync/msdtcsvc.exe"


def _implant_flow(conn):
    return conn.collect("WKS-FIN-0042", "Windows.Search.FileFinder",
                        {"Glob": "C:/ProgramData/Microsoft/DeviceSync/*", "Upload_File": True},
                        progress=False)


def test_export_holds_results_log_and_uploads(connect_as, tmp_path):
    conn = connect_as("investigator")
    flow = _implant_flow(conn)
    export = flow.export(tmp_path)
    name = f"WKS-FIN-0042-{flow.client_id}-{flow.flow_id}.zip"
    assert export.path == (tmp_path / name).resolve() and export.path.is_file()
    data = export.path.read_bytes()
    assert export.size == len(data) and export.sha256 == hashlib.sha256(data).hexdigest()
    assert export.server_path == f"fs:/downloads/{flow.client_id}/{flow.flow_id}/{name}"
    with zipfile.ZipFile(export.path) as archive:
        names = archive.namelist()
        assert names == ["client_info.json", "collection_context.json", "log.json",
                         "results/Windows.Search.FileFinder.json", "uploads.json",
                         "uploads.json.index", IMPLANT]
        assert archive.read(IMPLANT) == incident.implant_bytes()
        (row,) = [json.loads(line) for line in archive.read(
            "results/Windows.Search.FileFinder.json").splitlines()]
        assert row["OSPath"].endswith("msdtcsvc.exe")
        results = flow.results()
        assert row["Size"] == results["Size"].iloc[0]
        (upload,) = [json.loads(line) for line in archive.read("uploads.json").splitlines()]
        assert upload["_Components"] == ["uploads", "auto", "C:", "ProgramData", "Microsoft",
                                         "DeviceSync", "msdtcsvc.exe"]
        context = json.loads(archive.read("collection_context.json"))
        assert context["session_id"] == flow.flow_id and context["state"] == 2
        info = json.loads(archive.read("client_info.json"))
        assert info["hostname"] == "WKS-FIN-0042"
        log = [json.loads(line) for line in archive.read("log.json").splitlines()]
        assert len(log) == len(flow.logs())
    again = flow.export(tmp_path)  # a new zip (new member times) replaces the old one
    assert again.path == export.path and again.verified


def test_export_csv_and_csv_only(connect_as, tmp_path):
    conn = connect_as("investigator")
    flow = conn.collect("WKS-FIN-0042", "Windows.System.Pslist", progress=False)
    both = flow.export(tmp_path / "both", format="csv", name="both")
    only = flow.export(tmp_path / "only", format="csv_only", name="only")
    assert both.path.name == "both.zip" and only.path.name == "only.zip"
    with zipfile.ZipFile(both.path) as archive:
        names = archive.namelist()
        assert "results/Windows.System.Pslist.json" in names
        table = archive.read("results/Windows.System.Pslist.csv").decode()
    with zipfile.ZipFile(only.path) as archive:
        assert "results/Windows.System.Pslist.json" not in archive.namelist()
        assert archive.read("results/Windows.System.Pslist.csv").decode() == table
    import pandas as pd

    frame = pd.read_csv(io.StringIO(table))
    results = flow.results()
    assert list(frame.columns) == list(results.columns)
    assert frame["Pid"].tolist() == results["Pid"].tolist()
    assert frame["Name"].tolist() == results["Name"].tolist()


def test_export_interrupted_then_verified(connect_as, tmp_path):
    tmp_path = tmp_path / "out"  # the connector keeps its configs in tmp_path
    flow = _implant_flow(connect_as("investigator"))

    def stop_after_two_chunks(done: int, total: int) -> None:
        assert total > 8192
        if done >= 8192:
            raise KeyboardInterrupt

    with pytest.raises(DownloadInterrupted, match="again"):
        flow.export(tmp_path, name="implant", chunk_size=4096, progress=stop_after_two_chunks)
    assert not list(tmp_path.iterdir())  # no partial zip is left to be mistaken for evidence
    done = flow.export(tmp_path, name="implant", chunk_size=4096)
    assert done.verified and zipfile.ZipFile(done.path).read(IMPLANT) == incident.implant_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["implant.zip"]


def test_export_refuses_a_zip_that_does_not_match_the_server(connect_as, fleet_emulator,
                                                              tmp_path, monkeypatch):
    tmp_path = tmp_path / "out"
    flow = _implant_flow(connect_as("investigator"))
    store = fleet_emulator.filestore
    real_read = store.read

    def flip_a_byte(components, offset, length):
        data = real_read(components, offset, length)
        if components and components[0] == "downloads" and data and offset == 0:
            return bytes([data[0] ^ 1]) + data[1:]
        return data

    monkeypatch.setattr(store, "read", flip_a_byte)
    with pytest.raises(DownloadError, match="SHA-256"):
        flow.export(tmp_path)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_export_errors_are_named(connect_as, tmp_path):
    tmp_path = tmp_path / "out"
    conn = connect_as("investigator")
    flow = _implant_flow(conn)
    with pytest.raises(ValueError, match="csv_only"):
        flow.export(tmp_path, format="xml")
    api_flow = connect_as("apiuser").flow(flow.client_id, flow.flow_id)
    with pytest.raises(PermissionDeniedError, match="PREPARE_RESULTS"):
        api_flow.export(tmp_path)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_a_server_refusal_is_named(connect_as, tmp_path, monkeypatch):
    import velonb.exports as flow_export

    flow = _implant_flow(connect_as("investigator"))
    monkeypatch.setattr(flow_export, "EXPORT_VQL",
                        flow_export.EXPORT_VQL.replace("format=Format", "format='xml'"))
    with pytest.raises(DownloadError, match="Unknown format parameter xml"):
        flow.export(tmp_path / "out")


def test_password_export(connect_as, tmp_path, capsys):
    pyzipper = pytest.importorskip("pyzipper")  # an independent WinZip AES implementation
    secret = "s3cret-Passw0rd"
    flow = _implant_flow(connect_as("investigator"))
    export = flow.export(tmp_path / "out", password=secret)
    assert export.path.name == f"WKS-FIN-0042-{flow.client_id}-{flow.flow_id}_locked.zip"
    assert export.verified and secret not in repr(export) + str(export)
    assert secret not in "".join(capsys.readouterr())
    raw = export.path.read_bytes()
    assert b"This program cannot be run in DOS mode" not in raw  # AV sees no PE inside
    with pyzipper.AESZipFile(export.path) as archive:
        inner = archive.read("data.zip", pwd=secret.encode())
    with zipfile.ZipFile(io.BytesIO(inner)) as archive:
        assert archive.read(IMPLANT) == incident.implant_bytes()


def test_hunt_export_combined_and_per_client(connect_as, tmp_path):
    import time

    conn = connect_as("investigator")
    hunt = conn.create_hunt("Windows.System.Pslist", {"ProcessRegex": "msdtc"},
                            description="export me", os="windows")
    deadline = time.monotonic() + 20
    while not ((p := hunt.progress()).scheduled and p.outstanding == 0):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    results = hunt.results()
    export = hunt.export(tmp_path / "out", format="csv")
    assert export.path.name == f"{hunt.hunt_id}.zip" and export.verified
    with zipfile.ZipFile(export.path) as archive:
        import pandas as pd

        combined = pd.read_csv(io.BytesIO(archive.read("results/All Windows.System.Pslist.csv")))
        assert sorted(combined["ClientId"]) == sorted(results["ClientId"])
        assert set(combined["Fqdn"]) == set(results["Fqdn"])
        hosts = {n.split("/")[0] for n in archive.namelist() if n.endswith("client_info.json")}
        assert len(hosts) == p.scheduled
    summary = hunt.export(tmp_path / "out", only_combined=True)
    assert summary.path.name == f"{hunt.hunt_id}-summary.zip"
    assert zipfile.ZipFile(summary.path).namelist() == [
        "hunt_info.json", "results/All Windows.System.Pslist.json"]
    with pytest.raises(PermissionDeniedError, match="PREPARE_RESULTS"):
        connect_as("apiuser").hunt(hunt.hunt_id).export(tmp_path / "out")
