"""``velonb demo``: the emulator with the demo world, JupyterLab on the investigation notebooks,
or every notebook executed headless.

* ``velonb demo`` starts the emulator (``World(seed=7)``, collections taking about a second, as
  on a real fleet) on 127.0.0.1, writes its api_client.yaml into velonb's private state directory
  (0700), copies the notebooks into a working directory (the shipped copies stay output-free) and
  starts JupyterLab there, in its own process group, with ``VELONB_API_CONFIG`` in its
  environment. Ctrl-C (or SIGTERM/SIGHUP) stops JupyterLab, its kernels and the emulator.
* ``--no-lab`` runs only the emulator.
* ``--execute OUTDIR`` runs every notebook in a fresh kernel and writes the executed notebooks
  (and HTML reports, when nbconvert is installed) to OUTDIR; the exit status says if one failed.

The notebooks ship inside the wheel as ``velonb/notebooks/`` (pyproject maps the repository's
``notebooks/`` there); in a source checkout ``notebooks/`` itself is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from velonb.emulator import Emulator

__all__ = [
    "DEMO_ROLES",
    "DEMO_USER",
    "NotebookRun",
    "execute_notebooks",
    "kernel_env",
    "notebook_sources",
    "prepare_workdir",
    "run",
    "start_demo_emulator",
    "stop_process_tree",
]

DEMO_USER = "analyst"
# Least privilege for the notebooks: query and read (api) plus collect and hunt (investigator).
DEMO_ROLES = ("api", "investigator")
#: the event artifact the demo user may push findings to (Connection.push_events)
FINDINGS_QUEUE = "Custom.Notebook.Findings"
FLOW_DELAY = 1.0  # seconds a collection takes in the demo world
HUNT_CLIENT_DELAY = 0.2  # seconds between two clients of a hunt starting
DISCOVERY_VARS = ("VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG",
                  "VELONB_PROFILE", "VELONB_OFFLINE", "VELONB_CACHE_DIR")
LAB_START_TIMEOUT = 90.0
PACKAGE_NOTEBOOKS = Path(__file__).resolve().parent / "notebooks"


# -- notebooks ---------------------------------------------------------------------------------


def notebooks_dir() -> Path:
    """Where the notebooks come from: the checkout's ``notebooks/`` if this is one, else the
    copies shipped in the package."""
    root = Path(__file__).resolve().parents[1]
    repo = root / "notebooks"
    if (root / "pyproject.toml").is_file() and any(repo.glob("*.ipynb")):
        return repo
    return PACKAGE_NOTEBOOKS


def notebook_sources(directory: Path | None = None) -> list[Path]:
    """The demo notebooks (``NN-name.ipynb``), in order."""
    return sorted((directory or notebooks_dir()).glob("[0-9][0-9]-*.ipynb"))


def prepare_workdir(workdir: Path, sources: Sequence[Path], *, fresh: bool) -> list[Path]:
    """Copy ``sources`` into ``workdir``. ``fresh``: the previous working copy is moved to
    ``<workdir>.previous`` first; otherwise only missing notebooks are added (never overwritten)."""
    if fresh and workdir.exists() and any(workdir.iterdir()):
        previous = workdir.with_name(workdir.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        workdir.rename(previous)
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    copied = []
    for source in sources:
        target = workdir / source.name
        if not target.exists():
            shutil.copyfile(source, target)
            copied.append(target)
    return copied


def kernel_env(config: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for JupyterLab and kernels: this one, minus other velonb/pyvelociraptor
    discovery and cache variables, plus ``VELONB_API_CONFIG=config``."""
    env = {k: v for k, v in (base if base is not None else os.environ).items()
           if k not in DISCOVERY_VARS}
    env["VELONB_API_CONFIG"] = str(config)
    return env


# -- the emulator ------------------------------------------------------------------------------


def start_demo_emulator(config_path: Path, *, host: str = "127.0.0.1", port: int = 0,
                        seed: int = 7, empty: bool = False) -> Emulator:
    """The demo world's emulator, started, with an ``analyst`` api_client.yaml at config_path."""
    from velonb.emulator import Emulator
    from velonb.emulator.world import World

    kw: dict[str, Any] = {"flow_delay": FLOW_DELAY, "hunt_client_delay": HUNT_CLIENT_DELAY}
    world = World.empty(**kw) if empty else World(seed=seed, **kw)
    emulator = Emulator(host=host, port=port, world=world).start()
    emulator.write_api_client_config(config_path, name=DEMO_USER, roles=DEMO_ROLES)
    emulator.grant_publish(DEMO_USER, [FINDINGS_QUEUE])
    return emulator


def _stop_emulator(emulator: Emulator) -> None:
    emulator.stop(grace=1)
    close = getattr(emulator.world, "close", None)
    if close is not None:
        close()


# -- processes ---------------------------------------------------------------------------------


def _psutil() -> Any:
    """psutil (no type stubs; ipykernel and so every Jupyter kernel needs it)."""
    return importlib.import_module("psutil")


def _descendants(pid: int) -> list[Any]:
    """psutil.Process objects of every descendant of ``pid`` (kernels run in their own
    sessions, so a process-group signal does not reach them); [] without psutil."""
    try:
        psutil = _psutil()
    except ImportError:  # pragma: no cover - ipykernel depends on psutil
        return []
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _signal_group(proc: subprocess.Popen[Any], number: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.name == "posix":
            os.killpg(proc.pid, number)
        elif number == signal.SIGTERM:  # pragma: no cover - Windows
            proc.terminate()
        else:  # pragma: no cover
            proc.kill()


def stop_process_tree(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    """Stop ``proc`` (started with ``start_new_session=True``), its process group and every
    descendant: SIGTERM first (JupyterLab then shuts its kernels down), SIGKILL after timeout."""
    children = _descendants(proc.pid)
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, getattr(signal, "SIGKILL", signal.SIGTERM))
            proc.wait(5)
    if not children:
        return
    psutil = _psutil()

    alive = [c for c in children if c.is_running()]
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(alive, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(alive, timeout=5)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab."""

    proc: subprocess.Popen[bytes]
    url: str
    status_url: str
    log: Path


def private_kernel_args() -> list[str]:
    """JupyterLab options that keep its kernels off TCP: on POSIX a kernel talks to the server
    over Unix sockets in Jupyter's private runtime directory (0700), so other local users cannot
    subscribe to its outputs (forensic evidence), which ZeroMQ over loopback TCP would let them."""
    return ["--KernelManager.transport=ipc"] if os.name == "posix" else []


def start_lab(root: Path, env: dict[str, str], *, host: str, port: int, log: Path) -> Lab:
    """Start JupyterLab on ``root`` in a new process group; the token travels in the
    environment (``JUPYTER_TOKEN``), not on the command line other users can read."""
    token = secrets.token_urlsafe(24)
    port = port or _free_port(host)
    env = {**env, "JUPYTER_TOKEN": token}
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.ip={host}",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", *private_kernel_args()]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers often run as root; Lab refuses it otherwise
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdin=subprocess.DEVNULL, stdout=handle,
                                stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://{host}:{port}"
    return Lab(proc, f"{base}/lab?token={token}", f"{base}/api/status?token={token}", log)


def wait_for_lab(lab: Lab, stop: threading.Event, timeout: float = LAB_START_TIMEOUT) -> bool:
    """True once JupyterLab answers; False if it died, ``stop`` was set or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if lab.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(lab.status_url, timeout=2) as reply:  # noqa: S310
                if reply.status == 200:
                    return True
        except OSError:
            pass
        stop.wait(0.25)
    return False


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- headless execution ------------------------------------------------------------------------


@dataclass
class NotebookRun:
    """One executed notebook."""

    source: Path
    output: Path
    html: Path | None
    seconds: float
    error: str | None = None


def _html(nb: Any, path: Path) -> Path | None:
    try:
        from nbconvert import HTMLExporter
    except ImportError:
        return None
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(_without_cache_records(nb))
    path.write_text(body, encoding="utf-8")
    return path


def _without_cache_records(nb: Any) -> Any:
    """A copy of ``nb`` without the cache records of ``%%vql`` cells (for ``velonb pack``, not
    for readers): nbconvert warns about an output it cannot show, and HTML needs none of them."""
    import copy

    from velonb.display import CACHE_MIME

    nb = copy.deepcopy(nb)
    for cell in nb.get("cells", []):
        outputs = []
        for output in cell.get("outputs", []):
            data = output.get("data")
            if data is not None and CACHE_MIME in data:
                del data[CACHE_MIME]
                if not data:
                    continue
            outputs.append(output)
        if "outputs" in cell:
            cell["outputs"] = outputs
    return nb


@contextlib.contextmanager
def _private_kernel_config() -> Iterator[Any]:
    """Kernel-manager configuration for nbclient: on POSIX the kernel talks over Unix sockets in
    a new 0700 directory (removed afterwards) instead of loopback TCP; elsewhere (Windows has no
    such transport) jupyter_client's default."""
    from traitlets.config import Config

    if os.name != "posix":
        yield Config()
        return
    import tempfile

    # short and private: a Unix socket path must stay under ~100 bytes
    with tempfile.TemporaryDirectory(prefix="velonb-kernel-") as sockets:
        yield Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}})


async def _execute_one(source: Path, outdir: Path, env: dict[str, str], timeout: float,
                       html: bool, gate: asyncio.Semaphore) -> NotebookRun:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    async with gate:
        nb = nbformat.read(source, as_version=4)
        started = time.monotonic()
        error = None
        with _private_kernel_config() as kernel_config:
            client = NotebookClient(nb, config=kernel_config, timeout=timeout,
                                    kernel_name="python3",
                                    resources={"metadata": {"path": str(outdir)}})
            try:
                await client.async_execute(env=env)
            except CellExecutionError as err:
                first = str(err).strip().splitlines()
                error = next((line for line in reversed(first) if line.strip()), "cell failed")
            except Exception as err:  # a kernel that died or timed out: report, go on
                error = f"{type(err).__name__}: {err}"
        seconds = time.monotonic() - started
    output = outdir / source.name
    nbformat.write(nb, output)
    page = _html(nb, output.with_suffix(".html")) if html else None
    return NotebookRun(source, output, page, seconds, error)


def execute_notebooks(sources: Sequence[Path], outdir: Path, env: dict[str, str], *,
                      timeout: float = 600, jobs: int = 4, html: bool = True,
                      report: Callable[[NotebookRun], None] | None = None) -> list[NotebookRun]:
    """Execute each notebook in a new kernel (``env``: its environment), working directory
    ``outdir``, ``jobs`` at a time; write ``outdir/<name>.ipynb`` (+ ``.html``)."""
    outdir.mkdir(parents=True, exist_ok=True)

    async def main() -> list[NotebookRun]:
        gate = asyncio.Semaphore(max(1, jobs))

        async def one(source: Path) -> NotebookRun:
            done = await _execute_one(source, outdir, env, timeout, html, gate)
            if report is not None:
                report(done)
            return done

        return list(await asyncio.gather(*(one(s) for s in sources)))

    return asyncio.run(main())


# -- the command -------------------------------------------------------------------------------


def _connect_help(config: Path, out: TextIO) -> None:
    print("Connect from a shell:", file=out)
    print(f"    export VELONB_API_CONFIG={config}\n", file=out)
    print("and then in Python / Jupyter:", file=out)
    print("    import velonb", file=out)
    print("    conn = velonb.connect()", file=out)
    print('    conn.query("SELECT * FROM clients()")\n', file=out)


def _run_execute(args: Any, config: Path, out: TextIO) -> int:
    outdir = Path(args.execute).absolute()
    sources = notebook_sources()
    html = importlib.util.find_spec("nbconvert") is not None
    print(f"Executing {len(sources)} notebooks into {outdir}"
          + ("" if html else " (nbconvert is not installed: no HTML reports)"), file=out)

    def report(done: NotebookRun) -> None:
        state = "ok    " if done.error is None else "FAILED"
        print(f"  {state} {done.source.name} ({done.seconds:.1f}s)"
              + (f": {done.error}" if done.error else ""), file=out, flush=True)

    runs = execute_notebooks(sources, outdir, kernel_env(config), timeout=args.timeout,
                             jobs=args.jobs, html=html, report=report)
    failed = [r for r in runs if r.error]
    print(f"{len(runs) - len(failed)} of {len(runs)} notebooks ran cleanly; executed notebooks"
          f"{' and HTML reports' if html else ''} are in {outdir}", file=out)
    return 1 if failed else 0


def _run_lab(args: Any, config: Path, state: Path, out: TextIO,
             serve: Callable[[TextIO], None]) -> int:
    if importlib.util.find_spec("jupyterlab") is None:
        print("JupyterLab is not installed (pip install jupyterlab, or the dev extra). "
              "The emulator runs on; velonb demo --execute OUTDIR runs the notebooks "
              "without a browser.\n", file=out)
        serve(out)
        return 0
    workdir = Path(args.workdir).absolute() if args.workdir else state / "notebooks"
    prepare_workdir(workdir, notebook_sources(), fresh=not args.workdir)
    lab = start_lab(workdir, kernel_env(config), host=args.host, port=args.lab_port,
                    log=state / "jupyterlab.log")
    print(f"Notebooks (a working copy, the originals stay clean): {workdir}", file=out)
    print(f"JupyterLab log: {lab.log}\n", file=out)
    print(f"    {lab.url}\n", file=out)
    print("Open that URL (JupyterLab takes a few seconds to start) and begin with "
          "04-getting-started.ipynb.", file=out)
    print("Press Ctrl-C to stop JupyterLab, its kernels and the emulator.", file=out, flush=True)
    stop = threading.Event()

    def watch() -> None:
        if wait_for_lab(lab, stop):
            print("JupyterLab is ready.", file=out, flush=True)
        elif not stop.is_set():
            print(f"JupyterLab did not start; the end of its log:\n{_log_tail(lab.log)}",
                  file=out, flush=True)
            os.kill(os.getpid(), signal.SIGTERM)  # ends serve() in the main thread

    watcher = threading.Thread(target=watch, name="velonb-demo-lab", daemon=True)
    watcher.start()
    try:
        serve(out)
    finally:
        stop.set()
        with _shielded():  # a second Ctrl-C must not cut the cleanup short
            stop_process_tree(lab.proc)
            watcher.join(5)
    return 0


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Ignore SIGINT, SIGTERM and SIGHUP for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [n for n in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None))
               if n is not None]
    saved = {n: signal.signal(n, signal.SIG_IGN) for n in numbers}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _interrupt_on(*signals: Any) -> dict[Any, Any]:
    """SIGTERM and SIGHUP (a closed terminal) stop the demo like Ctrl-C, so JupyterLab, which
    runs in its own session, is never left behind. Returns the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {number: signal.signal(number, _raise_interrupt) for number in signals
            if number is not None}


def run(args: Any, config: Path, out: TextIO, serve: Callable[[TextIO], None]) -> int:
    """The ``velonb demo`` command (``serve`` blocks until Ctrl-C or SIGTERM)."""
    previous = _interrupt_on(signal.SIGTERM, getattr(signal, "SIGHUP", None))
    try:
        return _run(args, config, out, serve)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _run(args: Any, config: Path, out: TextIO, serve: Callable[[TextIO], None]) -> int:
    emulator = start_demo_emulator(config, host=args.host, port=args.port, seed=args.seed,
                                   empty=args.empty)
    try:
        print(f"velonb demo: emulated Velociraptor API server on {emulator.address}", file=out)
        print(f"Simulated deployment: {emulator.world!r}", file=out)
        print(f"API client config (user {DEMO_USER!r}, roles {', '.join(DEMO_ROLES)}): "
              f"{config}\n", file=out, flush=True)
        if not notebook_sources() and not args.no_lab:
            print(f"no notebooks found in {notebooks_dir()}: is the installation complete?",
                  file=out)
            return 1
        if args.execute:
            return _run_execute(args, config, out)
        _connect_help(config, out)
        if args.no_lab:
            print("Press Ctrl-C to stop.", file=out, flush=True)
            serve(out)
            return 0
        return _run_lab(args, config, config.parent, out, serve)
    finally:
        with _shielded():
            _stop_emulator(emulator)
