"""CollectPanel: pick clients and an artifact, press Collect, watch progress, read results.

The collection runs in a :class:`CollectJob` on a background thread (launch, poll each flow's
state and row count, fetch results as each flow finishes), so the notebook stays responsive
and other cells can run meanwhile. The panel only renders the job. The job is remembered with
the panel's state: re-running the cell shows the same collection, still updating.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from velonb.widgets._html import STYLE, esc, frame_html, table
from velonb.widgets._state import WidgetBase, ipywidgets
from velonb.widgets.artifacts import ArtifactPicker
from velonb.widgets.clients import ClientPicker

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CollectJob", "CollectPanel"]

POLL_S = 0.5  # seconds between two looks at the flows' state...
MAX_REFRESH_PER_S = 20  # ...or longer, so that at most this many flow reads run per second


def _flow_done(flow: Any) -> bool:
    done = getattr(flow, "done", None)
    if isinstance(done, bool):
        return done
    return str(getattr(flow, "state", "")) in ("FINISHED", "ERROR")


def _result_names(info: Any, artifact: str) -> list[str]:
    names = getattr(info, "result_names", None)
    if names:
        return [str(n) for n in names]
    sources = [s for s in getattr(info, "sources", []) or [] if s]
    return [f"{artifact}/{s}" for s in sources] or [artifact]


def _tab_title(name: str) -> str:
    """"Generic.Client.Info/Users" -> "Users"; "Windows.System.Pslist" -> "Pslist"."""
    return name.rsplit("/", 1)[-1] if "/" in name else name.rsplit(".", 1)[-1]


class CollectJob:
    """One collection of one artifact on several clients, driven by a background thread.

    ``flows`` (one Flow per client), ``results`` (result set name -> DataFrame of every
    finished client's rows, with ``ClientId`` and ``Hostname`` columns in front), ``state``
    (``starting``, ``running``, ``done``, ``failed``, ``cancelled``, ``timed out``), ``error``.
    ``listener`` is called (from the thread) after every change.
    """

    def __init__(self, conn: Any, clients: Mapping[str, str], artifact: str,
                 parameters: Mapping[str, Any], *, timeout: float = 600) -> None:
        self.conn = conn
        self.clients = dict(clients)  # client id -> hostname
        self.artifact = artifact
        self.parameters = dict(parameters)
        self.timeout = timeout
        self.flows: list[Any] = []
        self.results: dict[str, pd.DataFrame] = {}
        self.per_flow: dict[str, dict[str, pd.DataFrame]] = {}
        self.state = "starting"
        self.error = ""
        self.notes: list[str] = []
        self.started = time.monotonic()
        self.finished: float | None = None
        self.listener: Callable[[CollectJob], Any] | None = None
        self._cancel = threading.Event()
        self._lock = threading.RLock()
        self._thread = threading.Thread(target=self._run, name="velonb-collect", daemon=True)

    def start(self) -> CollectJob:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> CollectJob:
        """Block until the job ends (or ``timeout`` seconds pass)."""
        self._thread.join(timeout)
        return self

    def cancel(self) -> None:
        """Cancel the flows still running; the job ends as ``cancelled``."""
        self._cancel.set()

    # -- the thread ------------------------------------------------------------------------------

    def _notify(self) -> None:
        listener = self.listener
        if listener is not None:
            # A rendering problem must not stop the collection.
            with contextlib.suppress(Exception):
                listener(self)

    def _run(self) -> None:
        try:
            # Offline clients are announced with a warning: show it here, not in another cell.
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                launched = self.conn.collect(list(self.clients), self.artifact,
                                             self.parameters or None, wait=False)
            self.notes = [str(w.message) for w in caught]
            with self._lock:
                self.flows = list(launched) if isinstance(launched, list | tuple) \
                    else [launched]
                self.state = "running"
            self._notify()
            self._poll()
        except Exception as err:  # shown in the panel, kept in .error
            with self._lock:
                self.state, self.error = "failed", f"{type(err).__name__}: {err}"
        finally:
            self.finished = time.monotonic()
            self._notify()

    def _poll(self) -> None:
        deadline = self.started + self.timeout
        info = self.conn.artifact(self.artifact)
        names = _result_names(info, self.artifact)
        while True:
            for flow in self.flows:
                if flow.flow_id in self.per_flow:
                    continue
                if not _flow_done(flow):
                    flow.refresh()
                if _flow_done(flow):
                    self._fetch(flow, names)
            self._notify()
            if all(f.flow_id in self.per_flow for f in self.flows):
                self.state = "done"
                return
            if self._cancel.is_set():
                for flow in self.flows:
                    if not _flow_done(flow):
                        flow.cancel()
                self.state = "cancelled"
                return
            if time.monotonic() > deadline:
                self.state = "timed out"
                return
            # Each pending flow costs one small query per round: slow down for big fleets.
            pending = sum(1 for f in self.flows if f.flow_id not in self.per_flow)
            self._cancel.wait(max(POLL_S, pending / MAX_REFRESH_PER_S))

    def _fetch(self, flow: Any, names: list[str]) -> None:
        import pandas as pd

        frames: dict[str, pd.DataFrame] = {}
        if str(getattr(flow, "state", "")) == "FINISHED":
            for name in names:
                try:
                    frames[name] = flow.results(name)
                except Exception as err:  # one missing source must not hide the others
                    frames[name] = pd.DataFrame({"error": [f"{type(err).__name__}: {err}"]})
        with self._lock:
            self.per_flow[flow.flow_id] = frames
            self.results = self._combine(names)

    def _combine(self, names: list[str]) -> dict[str, pd.DataFrame]:
        import pandas as pd

        out = {}
        for name in names:
            parts = []
            for flow in self.flows:
                frame = self.per_flow.get(flow.flow_id, {}).get(name)
                if frame is None:
                    continue
                frame = frame.copy()
                host = self.clients.get(flow.client_id) or getattr(flow, "hostname", "")
                if "Hostname" not in frame.columns:
                    frame.insert(0, "Hostname", host)
                if "ClientId" not in frame.columns:
                    frame.insert(0, "ClientId", flow.client_id)
                parts.append(frame)
            if parts:
                out[name] = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return out

    def progress_rows(self) -> list[tuple[str, str, str, str, str, str]]:
        """(host, client id, flow id, state, rows, status) per client."""
        with self._lock:
            by_client = {f.client_id: f for f in self.flows}
            rows = []
            for client_id, host in self.clients.items():
                flow = by_client.get(client_id)
                if flow is None:
                    rows.append((host, client_id, "", self.state, "", ""))
                    continue
                state = str(getattr(flow, "state", ""))
                rows.append((host, client_id, flow.flow_id, state,
                             f"{int(getattr(flow, 'rows', 0) or 0):,}",
                             str(getattr(flow, "status", "") or "")))
            return rows

    def summary(self) -> str:
        elapsed = (self.finished or time.monotonic()) - self.started
        lines = [f"{self.artifact} on {len(self.clients)} client"
                 f"{'s' if len(self.clients) != 1 else ''}: {self.state} ({elapsed:.1f}s)"]
        if self.parameters:
            lines.append("  parameters: " + ", ".join(f"{k}={v!r}"
                                                      for k, v in self.parameters.items()))
        lines += [f"  {h} {c} {f} {s} {r} rows {st}".rstrip()
                  for h, c, f, s, r, st in self.progress_rows()]
        lines += [f"  result {name}: {len(frame):,} rows" for name, frame in self.results.items()]
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


class CollectPanel(WidgetBase):
    """A ClientPicker, an ArtifactPicker and a Collect button: collect the artifact from the
    chosen clients, with per-client progress (state, rows) and the results as tables, one tab
    per artifact source, when each client finishes.

    ``.flows`` and ``.results`` (result set name -> DataFrame, see :class:`CollectJob`) hold the
    last collection; ``collect()`` starts one from Python (as the button does) and returns its
    :class:`CollectJob`; ``wait()`` blocks until it ends. ``timeout`` bounds the waiting, in
    seconds. ``search``, ``clients`` (ids), ``artifact`` and ``parameters`` pre-fill the pickers
    (e.g. from papermill parameters). Pickers, and the last collection, are remembered when the
    cell is re-run.
    """

    def __init__(self, conn: Any, *, search: str = "", artifact: str | None = None,
                 parameters: Mapping[str, Any] | None = None, clients: Any = None,
                 type: str = "client",
                 timeout: float = 600, max_rows_shown: int = 100, key: str | None = None,
                 remember: bool = True) -> None:
        w = ipywidgets()

        super().__init__(conn, key=key, remember=remember)
        self.timeout = timeout
        self.max_rows_shown = max_rows_shown
        self.clients = ClientPicker(conn, search, value=clients, remember=remember,
                                    _parent_key=self.key)
        self.artifacts = ArtifactPicker(conn, type, artifact=artifact, parameters=parameters,
                                        remember=remember, _parent_key=self.key)
        self.collect_button = w.Button(description="Collect", icon="play",
                                       button_style="primary")
        self.collect_button.add_class("velonb-collect-button")
        self.cancel_button = w.Button(description="Cancel", icon="stop", disabled=True)
        self.status = w.HTML()
        self.status.add_class("velonb-collect-status")
        self.progress = w.HTML()
        self.progress.add_class("velonb-collect-progress")
        self.tabs = w.Tab(children=[])
        self.tabs.add_class("velonb-results")
        self.widget = w.VBox([
            w.HTML(STYLE),
            w.HTML("<h4>1. Clients</h4>"), self.clients.widget,
            w.HTML("<h4>2. Artifact</h4>"), self.artifacts.widget,
            w.HBox([self.collect_button, self.cancel_button, self.status]),
            self.progress, self.tabs,
        ])
        self.widget.add_class("velonb-collect-panel")
        self._shown: tuple[str, ...] = ()
        self._render_lock = threading.Lock()
        self.job: CollectJob | None = self._restored().get("job")
        if self.job is not None:
            self.job.listener = self._render
        self._render(self.job)
        self.collect_button.on_click(lambda _: self._on_click())
        self.cancel_button.on_click(lambda _: self.cancel())
        self.clients.on_change(lambda _: self._render(self.job))
        self.artifacts.on_change(lambda _: self._render(self.job))

    # -- actions ---------------------------------------------------------------------------------

    def _on_click(self) -> None:
        try:
            self.collect()
        except ValueError as err:
            self.status.value = f'<span class="velonb-error">{esc(err)}</span>'

    def collect(self) -> CollectJob:
        """Start collecting the chosen artifact from the chosen clients (in the background)."""
        if self.job is not None and self.job.running:
            raise ValueError("a collection is still running: wait for it or cancel it")
        if not self.clients.value:
            raise ValueError("choose at least one client first")
        artifact, parameters = self.artifacts.value
        if artifact is None:
            raise ValueError("choose an artifact first")
        errors = self.artifacts.errors
        if errors:
            name, message = next(iter(errors.items()))
            raise ValueError(f"fix parameter {name}: {message}")
        job = CollectJob(self.conn, self.clients.hostnames, artifact, parameters,
                         timeout=self.timeout)
        job.listener = self._render
        self.job = job
        self._save()
        self._render(job)
        return job.start()

    def wait(self, timeout: float | None = None) -> dict[str, pd.DataFrame]:
        """Block until the current collection ends; returns ``.results``."""
        if self.job is not None:
            self.job.wait(timeout)
            self._render(self.job)
        return self.results

    def cancel(self) -> None:
        """Cancel the running collection."""
        if self.job is not None:
            self.job.cancel()

    @property
    def flows(self) -> list[Any]:
        """The last collection's Flows (one per client)."""
        return list(self.job.flows) if self.job is not None else []

    @property
    def results(self) -> dict[str, pd.DataFrame]:
        """The last collection's results: result set name -> DataFrame."""
        return dict(self.job.results) if self.job is not None else {}

    # -- rendering -------------------------------------------------------------------------------

    def _render(self, job: CollectJob | None) -> None:
        with self._render_lock:
            self._render_locked(job)

    def _render_locked(self, job: CollectJob | None) -> None:
        running = job is not None and job.finished is None  # (the thread's last notify
        # comes while it is still alive)
        self.collect_button.disabled = running
        self.cancel_button.disabled = not running
        if job is None:
            ready = self._readiness()
            self.status.value = f'<span class="velonb-help">{esc(ready)}</span>'
            return
        elapsed = (job.finished or time.monotonic()) - job.started
        css = "velonb-error" if job.state in ("failed", "timed out") else "velonb-help"
        text = f"{job.artifact}: {job.state} ({elapsed:.1f}s)"
        if job.error:
            text += f": {job.error}"
        self.status.value = f'<span class="{css}">{esc(text)}</span>'
        self.progress.value = table(("host", "client", "flow", "state", "rows", "status"),
                                    job.progress_rows())
        names = tuple(job.results)
        if names != self._shown:
            w = ipywidgets()

            children = []
            for name in names:
                child = w.HTML(frame_html(job.results[name], self.max_rows_shown))
                child.add_class("velonb-result-table")
                children.append(child)
            self.tabs.children = children
            self.tabs.titles = tuple(_tab_title(n) for n in names)
            self._shown = names

    def _readiness(self) -> str:
        missing = []
        if not self.clients.value:
            missing.append("choose clients")
        if self.artifacts.artifact is None:
            missing.append("choose an artifact")
        return "Ready to collect." if not missing else "To collect: " + ", ".join(missing) + "."

    # -- state and text --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"job": self.job}

    def summary(self) -> str:
        lines = ["CollectPanel", *("  " + line for line in self.clients.summary().splitlines()),
                 *("  " + line for line in self.artifacts.summary().splitlines())]
        if self.job is not None:
            lines += ["  " + line for line in self.job.summary().splitlines()]
        else:
            lines.append(f"  {self._readiness()}")
        return "\n".join(lines)
