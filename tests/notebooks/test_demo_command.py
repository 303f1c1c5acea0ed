"""``velonb demo`` as a process: the emulator alone (--no-lab), and with JupyterLab, which must
serve the printed URL and leave no process behind after Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

import velonb
from tests.notebooks.conftest import NOTEBOOKS
from velonb.demo import prepare_workdir


class Lines:
    """The lines a process prints, read on a thread, so tests can wait for one."""

    def __init__(self, proc: Any) -> None:
        self.seen: list[str] = []
        self._queue: Queue[str] = Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: Any) -> None:
        for line in proc.stdout:
            self._queue.put(line)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except Empty:
                continue
            self.seen.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.seen)}")

    def rest(self, timeout: float = 1.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Empty):
                self.seen.append(self._queue.get(timeout=0.1))
        return "".join(self.seen)


def _port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def _kernel_connection(pid: int) -> dict[str, Any] | None:
    """The connection file of an ipykernel process (its ``-f`` argument), or None."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    if "ipykernel_launcher" not in " ".join(argv) or "-f" not in argv:
        return None
    return json.loads(Path(argv[argv.index("-f") + 1]).read_text())


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment contains ``marker`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                status = (entry / "status").read_text()
                if "State:\tZ" not in status:
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_no_lab_serves_the_demo_world_until_ctrl_c(demo_process):
    proc = demo_process("--no-lab")
    lines = Lines(proc)
    address = lines.wait_for(r"API server on (\S+)", 30).group(1)
    config = lines.wait_for(r"API client config .*: (\S+api_client\.yaml)", 10).group(1)
    lines.wait_for("Press Ctrl-C to stop", 10)
    assert os.stat(config).st_mode & 0o777 == 0o600
    assert os.stat(Path(config).parent).st_mode & 0o777 == 0o700
    with velonb.connect(config) as conn:
        clients = conn.query("SELECT client_id FROM clients()")
        assert len(clients) == 16
        assert conn.query("SELECT whoami() AS Me FROM scope()").Me[0] == "analyst"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert "JupyterLab" not in lines.rest()
    assert not _port_open(address)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_lab_serves_the_url_and_leaves_no_process_behind(demo_process, tmp_path):
    proc = demo_process()
    lines = Lines(proc)
    config = lines.wait_for(r"API client config .*: (\S+api_client\.yaml)", 30).group(1)
    workdir = Path(lines.wait_for(r"originals stay clean\): (\S+)", 10).group(1))
    url = lines.wait_for(r"(http://127\.0\.0\.1:\d+/lab\?token=\S+)", 10).group(1)
    lines.wait_for("JupyterLab is ready", 90)
    with urllib.request.urlopen(url, timeout=10) as page:
        assert page.status == 200
    base, token = url.split("/lab?token=")
    headers = {"Authorization": f"token {token}"}
    listing = urllib.request.Request(f"{base}/api/contents", headers=headers)
    with urllib.request.urlopen(listing, timeout=10) as reply:
        names = {item["name"] for item in json.load(reply)["content"]}
    assert {p.name for p in NOTEBOOKS.glob("0*.ipynb")} <= names
    assert workdir != NOTEBOOKS and (workdir / "05-triage-one-host.ipynb").exists()
    start = urllib.request.Request(f"{base}/api/kernels", data=b'{"name": "python3"}',
                                   headers=headers, method="POST")
    with urllib.request.urlopen(start, timeout=30) as reply:
        assert reply.status == 201
    marker = f"VELONB_API_CONFIG={config}"
    deadline = time.monotonic() + 30
    while len(_processes_with(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(_processes_with(marker)) >= 2  # JupyterLab and the kernel got the config
    # the kernel talks to JupyterLab over Unix sockets, not loopback TCP other users can reach
    transports = [_kernel_connection(pid) for pid in _processes_with(marker)]
    assert [info["transport"] for info in transports if info] == ["ipc"], transports
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(f"{base}/api/contents", timeout=10)  # no token, no entry
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    deadline = time.monotonic() + 10
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(marker) == []
    assert "stopping" in lines.rest()


def test_working_copy_keeps_the_previous_session(tmp_path):
    sources = sorted(NOTEBOOKS.glob("0*.ipynb"))[:2]
    workdir = tmp_path / "notebooks"
    prepare_workdir(workdir, sources, fresh=True)
    (workdir / sources[0].name).write_text("edited")
    prepare_workdir(workdir, sources, fresh=True)
    assert (workdir / sources[0].name).read_bytes() == sources[0].read_bytes()
    assert (tmp_path / "notebooks.previous" / sources[0].name).read_text() == "edited"
    (workdir / sources[1].name).write_text("mine")
    assert prepare_workdir(workdir, sources, fresh=False) == []  # never overwrites
    assert (workdir / sources[1].name).read_text() == "mine"
