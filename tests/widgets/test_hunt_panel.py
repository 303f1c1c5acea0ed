"""HuntPanel in Python (no browser): the counters and flows refresh in the background while the
hunt runs, Start/Stop work from the buttons, and the watch ends when nothing can change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import velonb
from tests.fleet.conftest import private_emulator
from velonb.emulator import Emulator
from velonb.widgets import HuntPanel


@pytest.fixture(scope="module")
def hunts_emulator() -> Iterator[Emulator]:
    with private_emulator(flow_delay=0.5, hunt_client_delay=0.2, mutation_delay=0.3) as emu:
        yield emu


@pytest.fixture
def connect(hunts_emulator: Emulator, tmp_path: Path) -> Iterator[Any]:
    made: list[Any] = []

    def make(name: str = "investigator") -> Any:
        path = hunts_emulator.write_api_client_config(tmp_path / f"{name}.yaml", name=name,
                                                      roles=None)  # the users as set up
        made.append(velonb.connect(path))
        return made[-1]

    yield make
    for conn in made:
        conn.close()


def until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_start_watch_and_stop_from_the_buttons(connect):
    conn = connect()
    hunt = conn.create_hunt("Windows.System.Pslist", description="panel", labels="finance",
                            paused=True)
    panel = HuntPanel(conn, hunt.hunt_id, refresh_s=0.2)
    try:
        assert panel.progress.state == "PAUSED" and panel.flows.empty
        assert panel.stop_button.disabled is False and panel.start_button.disabled is False
        panel.start_button.click()  # runs in the background: the kernel is not held
        assert panel.start_button.disabled and "starting" in panel.status.value
        until(lambda: panel.progress.state == "RUNNING" and panel.progress.scheduled == 2
              and panel.progress.outstanding == 0)
        assert panel.bar.value == panel.bar.max == 2 and panel.bar.bar_style == "success"
        assert "2 of 2 scheduled clients answered" in panel.counts.value
        assert panel.table.value.count("FINISHED") == 2 and "velonb-grid" in panel.table.value
        assert "WKS-FIN-0042" in panel.table.value and "WKS-FIN-0057" in panel.table.value
        assert panel.watching  # still running: clients may check in later
        panel.stop_button.click()
        until(lambda: panel.progress.state == "STOPPED")
        until(lambda: not panel.watching, timeout=5)  # settled: the watch ends by itself
        assert "stopped" in panel.status.value and panel.stop_button.disabled
        text = repr(panel)
        assert text.startswith(f"HuntPanel {hunt.hunt_id} 'panel': STOPPED")
        assert "2 of 2 scheduled clients answered" in text
    finally:
        panel.close()


def test_refusals_show_in_the_panel(connect):
    owner = connect()
    hunt = owner.create_hunt("Windows.System.Pslist", description="x", labels="it",
                             paused=True)
    panel = HuntPanel(connect("apiuser"), hunt.hunt_id, refresh_s=0.2)
    try:
        panel.start_button.click()
        until(lambda: "PermissionDeniedError" in panel.status.value and not panel._busy)
        assert "START_HUNT" in panel.status.value and panel.progress.state == "PAUSED"
    finally:
        panel.close()


def test_rerunning_the_cell_keeps_one_watch_per_hunt(connect):
    conn = connect()
    hunt = conn.create_hunt("Windows.System.Pslist", description="y", labels="it")
    first = HuntPanel(conn, hunt, refresh_s=0.2)
    second = HuntPanel(conn, hunt.hunt_id, refresh_s=0.2)
    try:
        until(lambda: not first.watching, timeout=5)
        assert second.watching
    finally:
        first.close()
        second.close()
