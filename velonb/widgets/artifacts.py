"""ArtifactPicker: find an artifact by name or description and fill its parameter form."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from velonb.widgets._html import STYLE, esc
from velonb.widgets._state import WidgetBase, ipywidgets
from velonb.widgets.form import Field, build_fields

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ArtifactPicker"]

Value = tuple[str | None, dict[str, Any]]


class ArtifactPicker(WidgetBase):
    """Choose an artifact (filter by words of its name or description), read its description,
    and fill the parameter form built from its definition.

    ``.value`` is ``(artifact, parameters)`` exactly as ``conn.collect(client, artifact,
    parameters)`` takes them: only parameters changed from their defaults, as Python values
    (bool, int, text). ``.errors`` maps parameter names to validation messages (``.valid``
    is True when there are none). ``.artifact`` and ``.parameters`` are settable;
    ``set_parameter(name, value)`` changes one input. ``on_change(fn)`` calls ``fn(value)``.
    The filter, artifact and parameters are remembered when the cell is re-run.
    """

    def __init__(self, conn: Any, type: str = "client", *, artifact: str | None = None,
                 parameters: Mapping[str, Any] | None = None, filter: str = "",
                 key: str | None = None, remember: bool = True,
                 on_change: Callable[[Value], Any] | None = None,
                 _parent_key: str = "") -> None:
        w = ipywidgets()

        super().__init__(conn, key=key, remember=remember, parent_key=_parent_key,
                         part="artifacts")
        self.type = type
        self._callbacks: list[Callable[[Value], Any]] = [on_change] if on_change else []
        self._catalog: list[dict[str, Any]] = []
        self._info: Any = None
        self.fields: dict[str, Field] = {}
        self._syncing = False
        self.error = ""

        self.filter_box = w.Text(value=filter, description="Filter",
                                 placeholder="words of the name or description",
                                 layout=w.Layout(width="520px"))
        self.filter_box.add_class("velonb-artifact-filter")
        self.list = w.Select(options=[], rows=8, layout=w.Layout(width="520px"))
        self.list.add_class("velonb-artifact-list")
        self.count = w.HTML()
        self.description = w.HTML()
        self.description.add_class("velonb-artifact-description")
        self.form = w.VBox([])
        self.form.add_class("velonb-param-form")
        self.widget = w.VBox([w.HTML(STYLE), self.filter_box, self.count, self.list,
                              self.description, self.form])
        self.widget.add_class("velonb-artifact-picker")

        self._load_catalog()
        saved = self._restored((type, artifact, sorted((parameters or {}).items()), filter))
        self._restoring = True
        try:
            self.filter_box.value = saved.get("filter", filter)
            self._apply_filter()
            name = saved.get("artifact", artifact)
            if name:
                self.artifact = name
                self.parameters = saved.get("parameters", parameters) or {}
        finally:
            self._restoring = False
        self._save()

        self.filter_box.observe(lambda _: self._apply_filter(), names="value")
        self.list.observe(self._on_list, names="value")

    # -- catalog and filter ----------------------------------------------------------------------

    def _load_catalog(self) -> None:
        try:
            frame = self.conn.artifacts(type=self.type)
        except Exception as err:  # shown in the widget
            self.error = f"{type(err).__name__}: {err}"
            self.count.value = f'<span class="velonb-error">{esc(self.error)}</span>'
            return
        keep = [c for c in ("name", "description", "type") if c in frame.columns]
        self._catalog = sorted((dict(r) for r in frame[keep].to_dict("records")),
                               key=lambda r: str(r.get("name", "")))

    @property
    def catalog(self) -> pd.DataFrame:
        """Every artifact of this type (name, description, type)."""
        import pandas as pd

        return pd.DataFrame(self._catalog)

    def names(self) -> list[str]:
        """The artifact names that pass the filter."""
        words = self.filter_box.value.lower().split()
        out = []
        for row in self._catalog:
            text = f"{row.get('name', '')} {row.get('description', '')}".lower()
            if all(word in text for word in words):
                out.append(str(row["name"]))
        return out

    def _apply_filter(self) -> None:
        names = self.names()
        current = self.artifact
        if current and current not in names:
            names = [current, *names]
        self._syncing = True
        try:
            self.list.options = names
            self.list.value = current if current in names else None
        finally:
            self._syncing = False
        total = len(self._catalog)
        self.count.value = (f'<span class="velonb-help">{len(self.names())} of {total} '
                            f"{esc(self.type)} artifacts</span>")
        self._save()

    def _on_list(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None or change["new"] == self.artifact:
            return
        self.artifact = change["new"]

    # -- the chosen artifact ---------------------------------------------------------------------

    @property
    def artifact(self) -> str | None:
        """The chosen artifact's name (None before a choice)."""
        return str(self._info.name) if self._info is not None else None

    @artifact.setter
    def artifact(self, name: str | None) -> None:
        if name is None:
            self._info, self.fields = None, {}
            self.form.children, self.description.value = (), ""
        else:
            self._info = self.conn.artifact(name)  # UnknownArtifactError names close matches
            self._build_form()
        self._syncing = True
        try:
            if self.artifact and self.artifact not in self.list.options:
                self.list.options = [self.artifact, *self.list.options]
            self.list.value = self.artifact
        finally:
            self._syncing = False
        self._changed()

    @property
    def info(self) -> Any:
        """The chosen artifact's definition (``conn.artifact(name)``), or None."""
        return self._info

    def _build_form(self) -> None:
        w = ipywidgets()

        info = self._info
        text = str(getattr(info, "description", "") or "").strip()
        sources = [s for s in getattr(info, "sources", []) or [] if s]
        extra = f"<br><i>sources: {esc(', '.join(sources))}</i>" if sources else ""
        self.description.value = (f'<div class="velonb-help" style="white-space: pre-wrap">'
                                  f"<b>{esc(info.name)}</b>: {esc(text)}{extra}</div>")
        fields = build_fields(info, self._changed)
        self.fields = {f.name: f for f in fields}
        rows: list[Any] = [f.row for f in fields]
        if not rows:
            rows = [w.HTML('<span class="velonb-help">This artifact has no parameters.</span>')]
        self.form.children = tuple(rows)

    @property
    def parameters(self) -> dict[str, Any]:
        """The parameters changed from their defaults, as Python values."""
        return {name: f.raw() for name, f in self.fields.items() if f.changed()}

    @parameters.setter
    def parameters(self, values: Mapping[str, Any]) -> None:
        unknown = [n for n in values if n not in self.fields]
        if unknown:
            raise KeyError(f"{self.artifact} has no parameter {unknown[0]!r} "
                           f"(parameters: {', '.join(self.fields) or 'none'})")
        with self._quiet():
            for field in self.fields.values():
                field.set(values.get(field.name, field.default))
        self._changed()

    def set_parameter(self, name: str, value: Any) -> None:
        """Put ``value`` in parameter ``name``'s input."""
        if name not in self.fields:
            raise KeyError(f"{self.artifact} has no parameter {name!r} "
                           f"(parameters: {', '.join(self.fields) or 'none'})")
        self.fields[name].set(value)

    @property
    def errors(self) -> dict[str, str]:
        """Parameter name -> why its input is not valid."""
        out = {}
        for name, field in self.fields.items():
            problem = field.error()
            if problem:
                out[name] = problem
        return out

    @property
    def valid(self) -> bool:
        return self.artifact is not None and not self.errors

    @property
    def value(self) -> Value:
        """``(artifact, parameters)`` as ``collect()`` takes them."""
        return self.artifact, self.parameters

    @value.setter
    def value(self, value: Value | str) -> None:
        name, params = (value, {}) if isinstance(value, str) else value
        self.artifact = name
        if name is not None:
            self.parameters = params or {}

    def on_change(self, callback: Callable[[Value], Any]) -> None:
        """Call ``callback(value)`` after every change of artifact or parameter."""
        self._callbacks.append(callback)

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        self._syncing = True
        try:
            yield
        finally:
            self._syncing = False

    def _changed(self) -> None:
        if self._syncing:
            return
        self._save()
        for callback in list(self._callbacks):
            callback(self.value)

    # -- state and text --------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"filter": self.filter_box.value, "artifact": self.artifact,
                "parameters": self.parameters}

    def summary(self) -> str:
        if self.artifact is None:
            text = f"ArtifactPicker: no artifact chosen ({len(self.names())} {self.type} " \
                   "artifacts match the filter)"
            return text + (f"\n  error: {self.error}" if self.error else "")
        lines = [f"ArtifactPicker: {self.artifact}"]
        params = self.parameters
        lines += [f"  {k} = {v!r}" for k, v in params.items()] or ["  (default parameters)"]
        lines += [f"  invalid {k}: {msg}" for k, msg in self.errors.items()]
        return "\n".join(lines)
