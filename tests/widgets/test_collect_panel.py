"""CollectPanel: the Collect button launches in the background, shows progress and results."""

from __future__ import annotations

import pytest

from tests.widgets.conftest import host_id
from velonb.emulator.world.incident import INCIDENT
from velonb.widgets import CollectPanel


def _ready(conn, hosts, artifact, **params) -> CollectPanel:
    panel = CollectPanel(conn, key="test")
    panel.clients.value = [host_id(conn, h) for h in hosts]
    panel.artifacts.artifact = artifact
    for name, value in params.items():
        panel.artifacts.set_parameter(name, value)
    return panel


def test_collect_button_runs_in_background_and_shows_the_result_table(conn):
    panel = _ready(conn, ["WKS-FIN-0042"], "Windows.System.Pslist",
                   ProcessRegex="(?i)powershell|winword")
    assert "Ready to collect" in panel.status.value
    panel.collect_button.click()
    assert panel.job is not None  # the click returned at once; the job runs on a thread
    results = panel.wait(60)
    assert panel.job.state == "done", panel.job.summary()
    [flow] = panel.flows
    assert flow.state == "FINISHED" and flow.flow_id.startswith("F.")
    frame = results["Windows.System.Pslist"]
    assert {"ClientId", "Hostname", "Name", "CommandLine"} <= set(frame.columns)
    assert set(frame["Hostname"]) == {"WKS-FIN-0042"}
    assert any("powershell" in str(c).lower() for c in frame["CommandLine"])
    assert INCIDENT.powershell_cmdline in set(frame["CommandLine"])
    # Progress and result tables in the widget.
    assert "FINISHED" in panel.progress.value and "WKS-FIN-0042" in panel.progress.value
    assert panel.tabs.titles == ("Pslist",)
    html = panel.tabs.children[0].value
    assert "<table" in html and "powershell" in html.lower() and f"{len(frame)} rows" in html
    assert not panel.collect_button.disabled and panel.cancel_button.disabled
    assert "done" in panel.status.value


def test_several_clients_and_sources_make_one_table_per_source(conn):
    panel = _ready(conn, ["WKS-FIN-0042", "DC-01"], "Generic.Client.Info")
    panel.collect()
    results = panel.wait(60)
    assert len(panel.flows) == 2 and all(f.state == "FINISHED" for f in panel.flows)
    basic = results["Generic.Client.Info/BasicInformation"]
    assert sorted(basic["Hostname"]) == ["DC-01", "WKS-FIN-0042"]
    assert "Generic.Client.Info/Users" in results
    assert "BasicInformation" in panel.tabs.titles and "Users" in panel.tabs.titles
    assert len(panel.tabs.children) == len(results)


def test_collect_refuses_what_is_not_ready(conn):
    panel = CollectPanel(conn, key="not-ready")
    with pytest.raises(ValueError, match="choose at least one client"):
        panel.collect()
    panel.collect_button.click()  # the button shows the same message instead of raising
    assert "choose at least one client" in panel.status.value
    panel.clients.value = [host_id(conn, "DC-01")]
    with pytest.raises(ValueError, match="choose an artifact"):
        panel.collect()
    panel.artifacts.artifact = "Windows.Search.FileFinder"
    panel.artifacts.set_parameter("VSS_MAX_AGE_DAYS", "many")
    with pytest.raises(ValueError, match="fix parameter VSS_MAX_AGE_DAYS"):
        panel.collect()
    assert panel.job is None


def test_offline_client_is_queued_and_can_be_cancelled(conn):
    offline = conn.clients().query("not online")
    assert not offline.empty
    panel = CollectPanel(conn, key="offline", timeout=30)
    panel.clients.value = [offline["client_id"].iloc[0]]
    panel.artifacts.artifact = "Generic.Client.Info"
    job = panel.collect()
    for _ in range(100):
        if job.flows:
            break
        job.wait(0.05)
    assert job.running and job.flows[0].state == "RUNNING"
    assert any("offline" in note.lower() for note in job.notes)
    panel.cancel_button.click()
    panel.wait(30)
    assert job.state == "cancelled" and panel.flows[0].state == "ERROR"
    assert panel.results == {}


def test_launch_errors_are_shown(conn, monkeypatch):
    panel = _ready(conn, ["DC-01"], "Windows.System.Pslist")

    def refuse(*_a, **_k):
        raise PermissionError("not allowed")

    monkeypatch.setattr(conn, "collect", refuse)
    panel.collect()
    panel.wait(10)
    assert panel.job.state == "failed" and "not allowed" in panel.job.error
    assert "velonb-error" in panel.status.value and "not allowed" in panel.status.value


def test_rerunning_the_cell_keeps_pickers_and_the_collection(conn):
    panel = _ready(conn, ["WKS-FIN-0042"], "Windows.System.Pslist", ProcessRegex="cmd")
    panel.collect()
    panel.wait(60)
    again = CollectPanel(conn, key="test")
    assert again.clients.value == panel.clients.value
    assert again.artifacts.value == ("Windows.System.Pslist", {"ProcessRegex": "cmd"})
    assert again.flows == panel.flows
    assert again.results.keys() == panel.results.keys()
    assert again.tabs.titles == ("Pslist",)  # rendered at once


def test_text_summary(conn):
    panel = _ready(conn, ["WKS-FIN-0042"], "Windows.System.Pslist", ProcessRegex="cmd")
    assert "To collect" not in panel.summary() and "Ready to collect." in panel.summary()
    panel.collect()
    panel.wait(60)
    text = panel._repr_mimebundle_()["text/plain"]
    lines = text.splitlines()
    assert lines[0] == "CollectPanel"
    assert "  ClientPicker: search 'all': 16 matches; selected 1" in lines
    assert any(line.startswith("  Windows.System.Pslist on 1 client: done") for line in lines)
    assert any("WKS-FIN-0042" in line and "FINISHED" in line for line in lines)
    assert any(line.startswith("    result Windows.System.Pslist: ") for line in lines)


def test_arguments_prefill_the_pickers_like_papermill_parameters(conn):
    wks = host_id(conn, "WKS-FIN-0042")
    panel = CollectPanel(conn, key="prefill", clients=[wks], artifact="Windows.System.Pslist",
                         parameters={"ProcessRegex": "cmd"})
    assert panel.clients.value == [wks]
    assert panel.artifacts.value == ("Windows.System.Pslist", {"ProcessRegex": "cmd"})
    assert "Ready to collect." in panel.status.value
