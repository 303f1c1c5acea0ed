"""Fixtures of the notebook and ``velonb demo`` tests.

``demo_run`` runs ``velonb demo --execute OUTDIR`` once per session in a subprocess, as a
newcomer would: every notebook executed against the demo emulator. The checks of the findings,
the offline replay from packed cases and the secret scan all read that one run.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
# The investigation notebooks of this suite (01-03 have their own tests).
INVESTIGATIONS = ("04-getting-started", "05-triage-one-host", "06-fleet-hunt",
                  "07-live-monitoring", "08-file-collection")
DISCOVERY = ("VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG",
             "VELONB_PROFILE", "VELONB_OFFLINE", "VELONB_CACHE_DIR")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def clean_env(state: Path, **extra: str) -> dict[str, str]:
    """This environment without velonb discovery variables, with private state/cache dirs."""
    env = {k: v for k, v in os.environ.items() if k not in DISCOVERY}
    env.update(XDG_STATE_HOME=str(state / "state"), XDG_CACHE_HOME=str(state / "cache"),
               PYTHONUNBUFFERED="1", **extra)
    return env


def velonb_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "velonb.cli", *args]


def outputs_text(nb: Any) -> str:
    """Everything the code cells show: streams, every mime type, error tracebacks."""
    out = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                out.append(output.text)
            elif output.output_type == "error":
                out.append(ANSI.sub("", "\n".join(output.traceback)))
            else:
                out += [v if isinstance(v, str) else json.dumps(v)
                        for k, v in output.get("data", {}).items() if k != "image/png"]
    return "\n".join(out)


def errors(nb: Any) -> list[tuple[str, str]]:
    """(cell source start, error name) of every error output."""
    return [(cell.source[:60], o.ename) for cell in nb.cells if cell.cell_type == "code"
            for o in cell.get("outputs", []) if o.output_type == "error"]


@dataclass
class DemoRun:
    outdir: Path
    config: Path
    stdout: str
    returncode: int
    seconds: float

    def notebook(self, stem: str) -> Any:
        return nbformat.read(self.outdir / f"{stem}.ipynb", as_version=4)


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``velonb demo --execute OUTDIR`` in a subprocess (the emulator is gone once it returns)."""
    base = tmp_path_factory.mktemp("demo-execute")
    outdir = base / "out"
    started = time.monotonic()
    run = subprocess.run(velonb_cmd("demo", "--execute", str(outdir), "--timeout", "300"),
                         env=clean_env(base), cwd=base, capture_output=True, text=True,
                         timeout=600)
    config = base / "state" / "velonb" / "demo" / "api_client.yaml"
    return DemoRun(outdir, config, run.stdout + run.stderr, run.returncode,
                   time.monotonic() - started)


@pytest.fixture
def demo_process(tmp_path: Path) -> Iterator[Any]:
    """Factory: start ``velonb demo ARGS`` in a subprocess; every one is stopped at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(velonb_cmd("demo", *args), env=clean_env(tmp_path),
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
