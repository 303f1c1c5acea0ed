"""HuntPanel: one hunt at a glance, kept current: its state, how many clients were scheduled and
have answered, rows and bytes so far, each client's flow, and Start/Stop buttons.

A :class:`HuntWatch` thread re-reads the hunt (one small query for the counters, one for the
flows) every ``refresh_s`` seconds while the panel is shown and the hunt can still change, so the
notebook stays free for other cells. Start and Stop run in the background too: the server
applies hunt changes from a queue, and :meth:`Hunt.start`/:meth:`Hunt.stop` wait until they show.
Re-running the cell stops the previous panel's thread and picks the same hunt up.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from velonb.widgets._html import STYLE, esc, table
from velonb.widgets._state import WidgetBase, ipywidgets, remembered

if TYPE_CHECKING:
    import pandas as pd

    from velonb.fleet_hunts import Hunt, HuntProgress

__all__ = ["HuntPanel"]

REFRESH_S = 2.0
MAX_FLOWS_SHOWN = 200


class HuntPanel(WidgetBase):
    """Watch and steer one hunt (a :class:`~velonb.fleet.Hunt` or its id).

    ``.hunt`` is the Hunt, ``.progress`` its last counters, ``.flows`` the last per-client
    table; ``start()``/``stop()`` do what the buttons do and return once the server shows the
    change; ``refresh()`` re-reads now; ``close()`` stops the background refresh (it also stops
    by itself once the hunt is stopped or paused with nothing outstanding).
    """

    def __init__(self, conn: Any, hunt: str | Hunt, *, refresh_s: float = REFRESH_S,
                 key: str | None = None, remember: bool = True) -> None:
        w = ipywidgets()
        hunt_id = hunt if isinstance(hunt, str) else hunt.hunt_id
        super().__init__(conn, key=key if key is not None else hunt_id, remember=remember)
        self._restored(hunt_id)
        previous = (remembered(self.key) or {}).get("panel")
        if isinstance(previous, HuntPanel):
            previous.close()  # the cell was re-run: one thread per hunt
        self.hunt: Hunt = conn.hunt(hunt_id) if isinstance(hunt, str) else hunt
        self.refresh_s = refresh_s
        self.progress: HuntProgress | None = None
        self.flows: pd.DataFrame | None = None
        self.message = ""
        self.error = ""
        self._busy = False
        self._hosts: dict[str, str] = {}  # client id -> hostname
        self._closed = threading.Event()
        self._lock = threading.RLock()
        self.title = w.HTML()
        self.bar = w.IntProgress(value=0, min=0, max=1, description="answered",
                                 bar_style="info", layout=w.Layout(width="420px"))
        self.counts = w.HTML()
        self.counts.add_class("velonb-hunt-counts")
        self.start_button = w.Button(description="Start", icon="play", button_style="success")
        self.start_button.add_class("velonb-hunt-start")
        self.stop_button = w.Button(description="Stop", icon="stop", button_style="danger")
        self.stop_button.add_class("velonb-hunt-stop")
        self.status = w.HTML()
        self.status.add_class("velonb-hunt-status")
        self.table = w.HTML()
        self.table.add_class("velonb-hunt-flows")
        self.widget = w.VBox([w.HTML(STYLE), self.title, w.HBox([self.bar, self.counts]),
                              w.HBox([self.start_button, self.stop_button, self.status]),
                              self.table])
        self.widget.add_class("velonb-hunt-panel")
        self.start_button.on_click(lambda _: self._in_background(self.start, "starting"))
        self.stop_button.on_click(lambda _: self._in_background(self.stop, "stopping"))
        self._save()
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name=f"velonb-hunt-{hunt_id}",
                                        daemon=True)
        self._thread.start()

    # -- actions ---------------------------------------------------------------------------------

    def refresh(self) -> HuntPanel:
        """Re-read the hunt's counters and flows, and redraw."""
        try:
            progress = self.hunt.progress()
            flows = self.hunt.flows()
        except Exception as err:  # shown in the panel; the next round tries again
            with self._lock:
                self.error = f"{type(err).__name__}: {err}"
        else:
            self._learn_hostnames(flows)
            with self._lock:
                self.progress, self.flows, self.error = progress, flows, ""
        self._render()
        return self

    def _learn_hostnames(self, flows: pd.DataFrame) -> None:
        """Hostnames of clients new to the table (one query for all of them, once each)."""
        from velonb.fleet_labels import clients_by_id

        new = [str(c) for c in flows["client_id"].dropna().unique() if c not in self._hosts]
        if new:
            found = clients_by_id(self.conn, new, self.hunt.org_id)
            for client_id in new:  # unknown ones too: asked once
                client = found.get(client_id)
                self._hosts[client_id] = client.hostname if client is not None else ""

    def start(self) -> HuntPanel:
        """Start (or restart) the hunt; returns once the server shows it RUNNING."""
        self.hunt.start()
        self.message = f"started {_now()}"
        self._wake()
        return self.refresh()

    def stop(self) -> HuntPanel:
        """Stop the hunt; returns once the server shows it STOPPED."""
        self.hunt.stop()
        self.message = f"stopped {_now()}"
        return self.refresh()

    def close(self) -> None:
        """Stop refreshing in the background."""
        self._closed.set()

    @property
    def watching(self) -> bool:
        """True while the background refresh runs."""
        return self._thread.is_alive()

    def _in_background(self, action: Any, doing: str) -> None:
        if self._busy:
            return

        def run() -> None:
            try:
                action()
            except Exception as err:  # e.g. PermissionDeniedError: shown, not raised
                with self._lock:
                    self.error = f"{type(err).__name__}: {err}"
            finally:
                self._busy = False
                self._render()

        self._busy = True
        self.message = f"{doing}…"
        self._render()
        threading.Thread(target=run, name=f"velonb-hunt-{doing}", daemon=True).start()

    def _wake(self) -> None:
        if not self._thread.is_alive() and not self._closed.is_set():
            self._thread = threading.Thread(target=self._watch, daemon=True,
                                            name=f"velonb-hunt-{self.hunt.hunt_id}")
            self._thread.start()

    # -- the thread ------------------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closed.wait(self.refresh_s):
            with contextlib.suppress(Exception):  # a rendering problem must not end the watch
                self.refresh()
            if self._settled():
                return

    def _settled(self) -> bool:
        """Nothing will change until someone starts the hunt again."""
        now = self.progress
        return (now is not None and now.state != "RUNNING" and now.outstanding == 0
                and not self._busy)

    # -- rendering -------------------------------------------------------------------------------

    def _render(self) -> None:
        with self._lock:
            hunt, now, flows = self.hunt, self.progress, self.flows
            artifacts = ", ".join(hunt.artifacts)
            self.title.value = (f"<h4>Hunt {esc(hunt.hunt_id)}: {esc(hunt.description)}</h4>"
                                f'<span class="velonb-help">{esc(artifacts)}</span>')
            state = now.state if now is not None else hunt.state
            self.start_button.disabled = self._busy or state == "RUNNING"
            self.stop_button.disabled = self._busy or state == "STOPPED"
            if now is not None:
                self.bar.max = max(now.scheduled, 1)
                self.bar.value = min(now.finished, self.bar.max)
                self.bar.bar_style = "success" if now.outstanding == 0 and now.scheduled \
                    else "info"
                self.counts.value = esc(_counts(now))
            css = "velonb-error" if self.error else "velonb-help"
            text = self.error or self.message
            self.status.value = (f"<b>{esc(state)}</b> "
                                 f'<span class="{css}">{esc(text)}</span>')
            if flows is not None:
                rows = [(self._hosts.get(str(r.client_id), ""), str(r.client_id), str(r.flow_id),
                         str(r.state), _int(r.rows), str(r.status or ""))
                        for r in flows.head(MAX_FLOWS_SHOWN).itertuples()]
                more = len(flows) - len(rows)
                self.table.value = table(("host", "client", "flow", "state", "rows", "status"),
                                         rows) \
                    + (f'<span class="velonb-help">… {more} more</span>' if more > 0 else "")

    # -- state and text --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"panel": self}

    def summary(self) -> str:
        now = self.progress
        lines = [f"HuntPanel {self.hunt.hunt_id} {self.hunt.description!r}: "
                 f"{now.state if now is not None else self.hunt.state}"]
        if now is not None:
            lines.append("  " + _counts(now))
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


def _counts(now: HuntProgress) -> str:
    errors = f", {now.with_errors} failed" if now.with_errors else ""
    return (f"{now.finished} of {now.scheduled} scheduled clients answered "
            f"({now.with_results} with results{errors}) · {now.rows:,} rows · "
            f"{now.uploaded_bytes / 1e6:.1f} MB uploaded")


def _int(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return ""


def _now() -> str:
    return time.strftime("%H:%M:%S")
