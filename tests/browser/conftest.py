"""A real JupyterLab on loopback (isolated dirs, random port, token) and Debian's Chromium.

The server runs in its own process group with every ``JUPYTER*``/IPython directory under
tmp; the fixture asks it to shut down (kernels included) and then ends the group, so nothing
outlives the test. The browser is never downloaded: ``/usr/bin/chromium`` or the test skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from velonb.demo import private_kernel_args

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("VELONB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
START_TIMEOUT_S = 60


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives JupyterLab in a real Chromium")


@dataclass
class Lab:
    """A running JupyterLab: where it listens, its token, its root directory."""

    url: str
    token: str
    root: Path
    log: Path

    def lab_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(url: str, method: str = "GET", timeout: float = 5) -> int:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return int(reply.status)


def _lab_settings(settings: Path) -> None:
    """No news or update checks (no network, no toast over the widgets); start the notebook's
    kernel without asking."""
    apputils = settings / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True, exist_ok=True)
    (apputils / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    notebook = settings / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True, exist_ok=True)
    (notebook / "tracker.jupyterlab-settings").write_text(
        json.dumps({"autoStartDefaultKernel": True}))


@pytest.fixture(scope="module")
def lab(emulator: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab serving a tmp root holding notebooks/03-collect-with-widgets.ipynb, whose
    kernels find the emulator through ``VELONB_API_CONFIG``."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "03-collect-with-widgets.ipynb", root)
    config = emulator.write_api_client_config(base / "api_client.yaml", name="admin")
    dirs = {name: base / name for name in ("config", "data", "runtime", "ipython", "settings",
                                           "workspaces")}
    for path in dirs.values():
        path.mkdir()
    _lab_settings(dirs["settings"])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "VELONB_", "VELOCIRAPTOR_"))}
    env.update({
        "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "IPYTHONDIR": str(dirs["ipython"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "JUPYTER_PLATFORM_DIRS": "1", "VELONB_API_CONFIG": str(config),
        "VELONB_CACHE_DIR": str(base / "cache"), "PYTHONUNBUFFERED": "1",
    })
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.extension_manager=readonly",  # no PyPI look-ups
        *private_kernel_args(),  # as `velonb demo` starts it: kernels on Unix sockets
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    running = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{running.log_tail()}")
            try:
                if _request(f"{running.url}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not start in {START_TIMEOUT_S}s:\n"
                            f"{running.log_tail()}")
            time.sleep(0.25)
        yield running
    finally:
        _stop(server, running)


def _stop(server: subprocess.Popen[bytes], lab: Lab) -> None:
    """Ask the server to shut down (it stops its kernels), then end its process group."""
    if server.poll() is None:
        with contextlib.suppress(OSError):
            _request(f"{lab.url}/api/shutdown?token={lab.token}", method="POST")
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.terminate()
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
    # Anything left in the process group we started (a stuck kernel): end it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/screenshots/<test name>/ under the repo root (gitignored), emptied."""
    where = SCREENSHOTS / request.node.name
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    return where
