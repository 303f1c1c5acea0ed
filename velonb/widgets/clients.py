"""ClientPicker: search the fleet with the server's syntax and choose one or more clients."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from velonb.widgets._html import OFFLINE, ONLINE, STYLE, ago, cut, esc
from velonb.widgets._state import WidgetBase, ipywidgets

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ClientPicker"]

COLUMNS = ("client_id", "hostname", "fqdn", "os", "release", "labels", "last_ip",
           "agent_version", "first_seen", "last_seen", "online")
_WIDTHS = (("hostname", 18), ("os", 8), ("release", 22), ("labels", 22), ("last seen", 9))
HELP = ("host:NAME · label:NAME · ip:10.1.* · mac:… · C.<client id> · * globs · all "
        "(empty: all clients)")


def _header() -> str:
    names = "  ".join(cut(name, width) for name, width in _WIDTHS)
    return f"  {names}  client id"


def _line(row: dict[str, Any]) -> str:
    labels = row.get("labels")
    label_text = ",".join(map(str, labels)) if isinstance(labels, list | tuple) else ""
    marker = ONLINE if bool(row.get("online")) else OFFLINE
    cells = (str(row.get("hostname") or "?"), str(row.get("os") or ""),
             str(row.get("release") or ""), label_text, ago(row.get("last_seen")))
    text = "  ".join(cut(c, w) for c, (_, w) in zip(cells, _WIDTHS, strict=True))
    return f"{marker} {text}  {row.get('client_id', '')}"


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    keep = [c for c in COLUMNS if c in frame.columns]
    return [{str(k): v for k, v in r.items()} for r in frame[keep].to_dict("records")]


class ClientPicker(WidgetBase):
    """Search clients (``host:``, ``label:``, ``ip:``, ``mac:``, client ids, ``*`` globs, ``all``)
    and pick them from a table of matches: hostname, OS, labels, last seen, ● online / ○ offline.

    ``.value`` is the list of chosen client ids (settable), ``.selected`` their rows as a
    DataFrame, ``.matches`` the rows of the last search. The choice accumulates across searches
    (search ``label:finance``, pick two, search ``host:DC-01``, pick it: three chosen) unless
    ``multiple=False``. ``on_change(fn)`` calls ``fn(value)`` whenever the choice changes.
    Search, choice and mode are remembered when the cell is re-run (see velonb.widgets._state).
    """

    def __init__(self, conn: Any, search: str = "", *, multiple: bool = True, limit: int = 500,
                 value: Iterable[str] | None = None, key: str | None = None,
                 remember: bool = True, on_change: Callable[[list[str]], Any] | None = None,
                 _parent_key: str = "") -> None:
        w = ipywidgets()

        super().__init__(conn, key=key, remember=remember, parent_key=_parent_key,
                         part="clients")
        self.multiple = multiple
        self.limit = limit
        self._callbacks: list[Callable[[list[str]], Any]] = [on_change] if on_change else []
        self._chosen: dict[str, dict[str, Any]] = {}
        self._matches: list[dict[str, Any]] = []
        self._total = 0
        self._syncing = False
        self._quiet_box = False
        self.error = ""

        self.search_box = w.Text(value=search, placeholder=HELP, continuous_update=False,
                                 description="Search", layout=w.Layout(width="520px"))
        self.search_box.add_class("velonb-client-search")
        self.search_button = w.Button(description="Search", icon="search",
                                      layout=w.Layout(width="90px"))
        self.search_button.add_class("velonb-client-search-button")
        self.status = w.HTML()
        self.status.add_class("velonb-client-status")
        self.header = w.HTML(f'<div class="velonb-mono">{esc(_header())}</div>')
        select = w.SelectMultiple if multiple else w.Select
        self.table = select(options=[], rows=10, layout=w.Layout(width="100%"))
        self.table.add_class("velonb-table")
        self.table.add_class("velonb-client-table")
        self.chosen_label = w.HTML()
        self.chosen_label.add_class("velonb-client-chosen")
        self.clear_button = w.Button(description="Clear", layout=w.Layout(width="70px"))
        self.widget = w.VBox([
            w.HTML(STYLE),
            w.HBox([self.search_box, self.search_button]),
            self.status, self.header, self.table,
            w.HBox([self.chosen_label, self.clear_button]),
        ])
        self.widget.add_class("velonb-client-picker")

        initial = list(value) if value is not None else None
        saved = self._restored((search, multiple, initial))
        self._restoring = True
        try:
            self._chosen = {r["client_id"]: r for r in saved.get("chosen", [])}
            self.search_box.value = saved.get("search", search)
            self.search(self.search_box.value)
            if initial is not None and not saved:
                self.value = initial
        finally:
            self._restoring = False
        self._render_chosen()
        self._save()

        self.search_box.observe(self._on_box, names="value")
        self.search_button.on_click(lambda _: self.search())
        self.clear_button.on_click(lambda _: self.clear())
        self.table.observe(self._on_table, names="value")

    # -- searching -------------------------------------------------------------------------------

    def search(self, text: str | None = None) -> pd.DataFrame:
        """Run a search (``text``, or the search box's) and show its matches; returns them.

        An error (bad syntax, no permission) is shown in the widget and kept in ``.error``.
        """
        if text is not None and text != self.search_box.value:
            self._quiet_box = True
            try:
                self.search_box.value = text
            finally:
                self._quiet_box = False
        query = self.search_box.value.strip()
        try:
            frame = self.conn.clients(search=query or None)
        except Exception as err:  # shown to the analyst; the widget stays usable
            self.error = f"{type(err).__name__}: {err}"
            self.status.value = f'<span class="velonb-error">{esc(self.error)}</span>'
            return self.matches
        self.error = ""
        rows = _records(frame)
        rows.sort(key=lambda r: (not bool(r.get("online")), str(r.get("hostname", "")).lower()))
        self._total = len(rows)
        self._matches = rows[: self.limit]
        online = sum(1 for r in rows if r.get("online"))
        shown = f", first {self.limit} shown" if len(rows) > self.limit else ""
        self.status.value = (f'<span class="velonb-help">{len(rows)} match'
                             f'{"es" if len(rows) != 1 else ""} ({online} online{shown}) '
                             f"for {esc(query or 'all')}</span>")
        self._show_matches()
        self._save()
        return self.matches

    def _on_box(self, _change: dict[str, Any]) -> None:
        if not self._quiet_box:
            self.search()

    def _show_matches(self) -> None:
        self._syncing = True
        try:
            self.table.options = [(_line(r), r["client_id"]) for r in self._matches]
            visible = [r["client_id"] for r in self._matches if r["client_id"] in self._chosen]
            if self.multiple:
                self.table.value = tuple(visible)
            else:
                self.table.value = visible[0] if visible else None
        finally:
            self._syncing = False

    @property
    def matches(self) -> pd.DataFrame:
        """The rows of the last search (up to ``limit``)."""
        import pandas as pd

        return pd.DataFrame(self._matches, columns=[c for c in COLUMNS])

    # -- choosing --------------------------------------------------------------------------------

    def _on_table(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        new = change["new"]
        picked = set(new) if self.multiple else ({new} if new is not None else set())
        by_id = {r["client_id"]: r for r in self._matches}
        if self.multiple:
            for client_id in by_id:
                if client_id in picked:
                    self._chosen.setdefault(client_id, by_id[client_id])
                else:
                    self._chosen.pop(client_id, None)
        elif picked:
            client_id = next(iter(picked))
            self._chosen = {client_id: by_id[client_id]}
        self._changed()

    @property
    def value(self) -> list[str]:
        """The chosen client ids, in the order they were chosen."""
        return list(self._chosen)

    @value.setter
    def value(self, ids: Iterable[str] | str | None) -> None:
        wanted = [ids] if isinstance(ids, str) else list(ids or [])
        if not self.multiple:
            wanted = wanted[-1:]
        known = {r["client_id"]: r for r in self._matches}
        chosen: dict[str, dict[str, Any]] = {}
        for client_id in wanted:
            row = known.get(client_id) or self._chosen.get(client_id) or self._lookup(client_id)
            if row is None:
                raise ValueError(f"no client {client_id!r} on this server/org")
            chosen[client_id] = row
        self._chosen = chosen
        self._show_matches()
        self._changed()

    def _lookup(self, client_id: str) -> dict[str, Any] | None:
        rows = _records(self.conn.clients(search=client_id))
        return next((r for r in rows if r["client_id"] == client_id), None)

    @property
    def selected(self) -> pd.DataFrame:
        """The chosen clients' rows (columns of ``conn.clients()``)."""
        import pandas as pd

        return pd.DataFrame(list(self._chosen.values()), columns=list(COLUMNS))

    @property
    def hostnames(self) -> dict[str, str]:
        """client id -> hostname of the chosen clients."""
        return {k: str(r.get("hostname") or k) for k, r in self._chosen.items()}

    def clear(self) -> None:
        """Unselect every client."""
        self.value = []

    def on_change(self, callback: Callable[[list[str]], Any]) -> None:
        """Call ``callback(value)`` after every change of the choice."""
        self._callbacks.append(callback)

    def _changed(self) -> None:
        self._render_chosen()
        self._save()
        for callback in list(self._callbacks):
            callback(self.value)

    def _render_chosen(self) -> None:
        if not self._chosen:
            self.chosen_label.value = '<span class="velonb-help">no client selected</span>'
            return
        names = ", ".join(
            f'<span class="velonb-{"online" if r.get("online") else "offline"}">'
            f'{ONLINE if r.get("online") else OFFLINE}</span> {esc(r.get("hostname") or k)}'
            for k, r in self._chosen.items())
        self.chosen_label.value = f"<b>Selected ({len(self._chosen)}):</b> {names}"

    # -- state and text --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"search": self.search_box.value, "chosen": list(self._chosen.values())}

    def summary(self) -> str:
        query = self.search_box.value.strip() or "all"
        lines = [f"ClientPicker: search {query!r}: {self._total} match"
                 f"{'es' if self._total != 1 else ''}; selected {len(self._chosen)}"]
        for client_id, row in self._chosen.items():
            state = "online" if row.get("online") else f"offline, seen {ago(row.get('last_seen'))}"
            lines.append(f"  {row.get('hostname') or '?'} ({client_id}, {row.get('os') or '?'}, "
                         f"{state})")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)
