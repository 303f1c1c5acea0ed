"""What every velonb widget shares: remembered state across cell re-runs and a text fallback.

Re-running a cell builds a new widget; the analyst expects to find the search, the selection and
the parameters they had. Each widget therefore saves a small snapshot of its state, on every
change, in a process-wide registry, and a new widget with the same *key* starts from it.

The key is, in order of preference:

* ``key="..."`` given to the constructor (use it for two pickers of one kind in one cell);
* otherwise the widget class, the connection's identity (API user, server, org) and the id of
  the notebook cell being run (JupyterLab and Notebook 7 send it with each execution), so the
  same cell re-run finds its state and another cell does not;
* outside a kernel that sends cell ids (a plain IPython shell, nbclient), class + connection.

The state is not restored when the constructor's arguments changed since it was saved (the
analyst edited the cell, or papermill injected new parameters): the new arguments win.
``remember=False`` neither restores nor saves. :func:`forget` clears the registry.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["WidgetBase", "connection_identity", "current_cell_id", "forget", "ipywidgets",
           "remembered"]

_REGISTRY: dict[str, dict[str, Any]] = {}
_LOCK = threading.Lock()


def ipywidgets() -> Any:
    """The ipywidgets module (imported on first use; it ships no type information)."""
    import ipywidgets as w  # type: ignore[import-untyped]

    return w


def connection_identity(conn: Any) -> str:
    """``user@server/org`` of a Connection: stable when the notebook reconnects."""
    config = getattr(conn, "config", None)
    user = getattr(config, "user", "?") if config is not None else "?"
    target = getattr(config, "target", "?") if config is not None else "?"
    org = getattr(conn, "org_id", "") or "root"
    return f"{user}@{target}/{org}"


def current_cell_id() -> str | None:
    """The id of the notebook cell being executed, when the front end sent one."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return None
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not hasattr(kernel, "get_parent"):
        return None
    try:
        parent = kernel.get_parent()
    except Exception:  # an old kernel or no current request: no cell id
        return None
    metadata = parent.get("metadata") if isinstance(parent, dict) else None
    cell_id = metadata.get("cellId") if isinstance(metadata, dict) else None
    return str(cell_id) if cell_id else None


def remembered(key: str) -> dict[str, Any] | None:
    """A copy of the state saved under ``key`` (None when there is none)."""
    with _LOCK:
        state = _REGISTRY.get(key)
        return dict(state) if state is not None else None


def forget(key: str | None = None) -> None:
    """Drop the state saved under ``key``, or all remembered widget state."""
    with _LOCK:
        if key is None:
            _REGISTRY.clear()
        else:
            _REGISTRY.pop(key, None)


class WidgetBase:
    """A velonb widget: ``.widget`` is its ipywidgets tree; it displays as that widget with a
    plain-text summary beside it (what nbconvert and terminals show)."""

    widget: Any  # the ipywidgets tree

    def __init__(self, conn: Any, *, key: str | None, remember: bool, parent_key: str = "",
                 part: str = "") -> None:
        self.conn = conn
        self.remember = remember
        if parent_key:
            self.key = f"{parent_key}/{part or type(self).__name__}"
        elif key is not None:
            self.key = f"{type(self).__name__}:{key}"
        else:
            cell = current_cell_id()
            self.key = f"{type(self).__name__}:{connection_identity(conn)}" + (
                f"#{cell}" if cell else "")
        self._restoring = False
        self._args = repr(None)

    # -- state -----------------------------------------------------------------------------------

    def _restored(self, args: Any = None) -> dict[str, Any]:
        """The remembered state, unless the constructor's ``args`` differ from those it was
        saved with: an edited cell starts from its new arguments (papermill parameters too)."""
        self._args = repr(args)
        if not self.remember:
            return {}
        saved = remembered(self.key) or {}
        if saved.get("_args", self._args) != self._args:
            return {}
        return saved

    def _state(self) -> dict[str, Any]:
        """The snapshot to remember (subclasses)."""
        return {}

    def _save(self) -> None:
        if not self.remember or self._restoring:
            return
        state = {**self._state(), "_args": self._args}
        with _LOCK:
            _REGISTRY[self.key] = state

    # -- display ---------------------------------------------------------------------------------

    def summary(self) -> str:
        """A plain-text account of the widget's state (subclasses)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return self.summary()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.widget._repr_mimebundle_() or {})
        data["text/plain"] = self.summary()
        return data

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())
