"""Every notebook runs headless against the demo emulator (``velonb demo --execute``) and shows
the planted incident; the investigations replay offline from packed cases; no output carries a
secret."""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from wire_helpers import load_api_config

from tests.notebooks.conftest import (
    INVESTIGATIONS,
    NOTEBOOKS,
    DemoRun,
    clean_env,
    errors,
    outputs_text,
    velonb_cmd,
)
from velonb.demo import execute_notebooks
from velonb.emulator.world import World
from velonb.emulator.world.incident import INCIDENT

CHAIN = "WINWORD.EXE -> cmd.exe -> powershell.exe -> msdtcsvc.exe"
BEACON = f"{INCIDENT.beacon_ip}:{INCIDENT.beacon_port}"


def _offline_windows_hosts() -> list[str]:
    world = World(seed=7)
    try:
        return sorted(c.hostname for c in world.clients("root")
                      if c.system == "windows" and not c.online)
    finally:
        world.close()


def check_findings(stem: str, text: str, *, live: bool) -> None:
    """The facts of incident.py each notebook must have found in the data."""
    if stem == "04-getting-started":
        assert "from cache" in text
        assert "WKS-FIN-0042" in text and "WKS-FIN-0057" in text  # the finance label
    elif stem == "05-triage-one-host":
        assert f"process chain: {CHAIN}" in text
        assert f"external endpoints: {BEACON}" in text
        assert f"WMI consumer {INCIDENT.wmi_consumer}" in text
        assert INCIDENT.binary_sha256 in text and INCIDENT.user in text
        assert f"https://{BEACON}/" in text  # decoded from the encoded PowerShell
    elif stem == "06-fleet-hunt":
        assert f"beacon: {BEACON}, process {INCIDENT.binary_name}" in text
        for host in INCIDENT.compromised_hosts:
            assert re.search(rf"{host}\s+INFECTED", text), host
        assert re.search(r"DC-01\s+touched", text)
        assert f"stolen account(s): {INCIDENT.stolen_account}" in text
        assert f"service {INCIDENT.service_name}" in text
        if live:
            assert re.search(r"published [1-9]\d* affected hosts to Custom\.Notebook\.Findings",
                             text)
            marked = re.search(r"labelled ([1-9]\d*) affected hosts ir-affected: (.+)", text)
            assert marked and marked.group(2).split(", ") == sorted(INCIDENT.touched_hosts)
    elif stem == "07-live-monitoring":
        seen = re.search(r"(\d+) of (\d+) scheduled clients seen live", text)
        assert seen and seen.group(1) == seen.group(2) != "0", seen
        assert ", ".join(_offline_windows_hosts()) in text
        if live:  # the sweep is stopped once read (the server applies it from its queue)
            assert re.search(r"hunt H\.\w+ is STOPPED: offline clients will not run it", text)
    elif stem == "08-file-collection":
        assert f"sha256 {INCIDENT.binary_sha256}" in text
        assert ", ".join(sorted(INCIDENT.compromised_hosts)) in text
        assert "all hashes agree" in text
        if live:
            assert "downloaded 3 files" in text and f"addresses in the strings: {BEACON}" in text
            assert "exported 3 collections as password-protected zips" in text


def test_demo_execute_runs_every_notebook(demo_run: DemoRun):
    shipped = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    assert demo_run.returncode == 0, demo_run.stdout[-3000:]
    assert f"{len(shipped)} of {len(shipped)} notebooks ran cleanly" in demo_run.stdout
    # the HTML reports leave out the cells' cache records: nbconvert has nothing to warn about
    assert "not able to be represented" not in demo_run.stdout, demo_run.stdout[-3000:]
    # kernels run on private Unix sockets: ipykernel has no plain-TCP warning to print
    assert "without encryption" not in demo_run.stdout, demo_run.stdout[-3000:]
    for name in shipped:
        executed = demo_run.outdir / name
        assert executed.exists() and executed.with_suffix(".html").stat().st_size > 10_000
        nb = nbformat.read(executed, as_version=4)
        tagged = [c.source[:60] for c in nb.cells if "raises-exception" in
                  c.metadata.get("tags", [])]
        assert [src for src, _ in errors(nb) if src not in tagged] == [], name
    assert not list(NOTEBOOKS.glob(".velonb-cache")), "the repository copies stay clean"


@pytest.mark.parametrize("stem", INVESTIGATIONS)
def test_live_outputs_show_the_findings(demo_run: DemoRun, stem: str):
    assert demo_run.returncode == 0, demo_run.stdout[-3000:]
    nb = demo_run.notebook(stem)
    check_findings(stem, outputs_text(nb), live=True)


@pytest.fixture(scope="module")
def offline_runs(demo_run: DemoRun, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """Each investigation packed from the demo run, unpacked, executed with no server at all
    (the demo's emulator stopped when its process ended) and no API config."""
    assert demo_run.returncode == 0, demo_run.stdout[-3000:]
    base = tmp_path_factory.mktemp("offline")
    env = clean_env(base)
    cases: dict[str, Path] = {}
    for stem in INVESTIGATIONS:
        archive = base / f"{stem}.zip"
        for command in (("pack", str(demo_run.outdir / f"{stem}.ipynb"), "-o", str(archive)),
                        ("unpack", str(archive), str(base / stem))):
            done = subprocess.run(velonb_cmd(*command), env=env, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, done.stdout + done.stderr
        cases[stem] = base / stem / f"{stem}.ipynb"

    def replay(stem: str) -> tuple[Path, object]:
        notebook = cases[stem]
        runs = execute_notebooks([notebook], notebook.parent, env, timeout=120, html=False)
        assert runs[0].error is None, (stem, runs[0].error)
        return notebook, nbformat.read(notebook, as_version=4)

    with ThreadPoolExecutor(len(INVESTIGATIONS)) as pool:
        return dict(zip(INVESTIGATIONS, pool.map(replay, INVESTIGATIONS), strict=True))


@pytest.mark.parametrize("stem", INVESTIGATIONS)
def test_offline_replay_from_a_packed_case(offline_runs, stem: str):
    notebook, nb = offline_runs[stem]
    assert errors(nb) == []
    text = outputs_text(nb)
    assert "offline replay from cache" in text
    check_findings(stem, text, live=False)
    assert not (notebook.parent / "downloads").exists()  # nothing fetched: no server


def test_no_secret_in_any_output(demo_run: DemoRun, offline_runs):
    assert demo_run.config.exists(), "the demo keeps its api_client.yaml in the state dir"
    config = load_api_config(demo_run.config)
    pem = config["client_private_key"]
    secrets = [line for line in pem.splitlines() if len(line) > 20 and "-----" not in line]
    assert secrets
    files = [*demo_run.outdir.glob("*.ipynb"), *demo_run.outdir.glob("*.html"),
             *(path for path, _ in offline_runs.values())]
    texts = [p.read_text(encoding="utf-8") for p in files]
    for archive in {path.parent.parent for path, _ in offline_runs.values()}.pop().glob("*.zip"):
        with zipfile.ZipFile(archive) as zf:
            texts += [zf.read(n).decode("utf-8", "replace") for n in zf.namelist()]
    sidecars = list((demo_run.outdir / ".velonb-cache").rglob("*.json"))
    texts += [p.read_text(encoding="utf-8") for p in sidecars]
    assert len(files) >= 2 * len(INVESTIGATIONS) and sidecars
    for text in texts:
        assert "PRIVATE KEY" not in text
        for line in secrets:
            assert line not in text


@pytest.mark.skipif(os.name != "posix", reason="Unix-socket kernels are POSIX only")
def test_executed_kernels_talk_over_private_unix_sockets(tmp_path: Path):
    probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import json, os, stat\n"
        "from ipykernel.connect import get_connection_info\n"
        "info = json.loads(get_connection_info())\n"
        "mode = stat.S_IMODE(os.stat(os.path.dirname(info['ip'])).st_mode)\n"
        "print(info['transport'], oct(mode), info['ip'])")])
    source = tmp_path / "probe.ipynb"
    nbformat.write(probe, source)
    runs = execute_notebooks([source], tmp_path / "out", clean_env(tmp_path), timeout=120,
                             html=False)
    assert runs[0].error is None, runs[0].error
    executed = nbformat.read(tmp_path / "out" / "probe.ipynb", as_version=4)
    transport, mode, socket_prefix = outputs_text(executed).split()
    assert (transport, mode) == ("ipc", "0o700")
    assert not Path(socket_prefix).parent.exists()  # removed with the kernel
