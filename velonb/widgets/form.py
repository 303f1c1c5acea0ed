"""The parameter form of an artifact: one input per declared parameter, typed, validated.

Each parameter type gets the input an analyst expects: a checkbox for ``bool``, a drop-down for
``choices``, a multi-select for ``multichoice``, a text area for ``csv``/``json``/``yara`` and
multi-line defaults, text boxes for the rest (``int``, ``timestamp``, ``regex`` are checked as
they are typed). Values are validated with the definition's own rules (the fleet model's
``ArtifactParameter.convert``, the same check ``collect()`` makes), and the message appears next
to the input.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

from velonb.widgets._html import esc
from velonb.widgets._state import ipywidgets

__all__ = ["Field", "build_fields"]

TEXTAREA_TYPES = {"csv", "json", "json_array", "regex_array", "yara", "starlark", "xml",
                  "textarea"}
INT_TYPES = {"int", "int64", "uint64"}
FLOAT_TYPES = {"float", "number"}
SKIPPED_TYPES = {"hidden"}
_TRUE = {"y", "yes", "true", "1", "t", "on"}


def _attr(param: Any, name: str, default: Any = "") -> Any:
    if isinstance(param, dict):
        return param.get(name, default)
    return getattr(param, name, default)


class Field:
    """One parameter's input widget, its label and its message line."""

    def __init__(self, param: Any, artifact: str, on_change: Callable[[], None]) -> None:
        w = ipywidgets()

        self.param = param
        self.artifact = artifact
        self.name = str(_attr(param, "name"))
        self.kind = str(_attr(param, "type") or "string").lower()
        self.default = str(_attr(param, "default") or "")
        self.choices = [str(c) for c in (_attr(param, "choices", None) or [])]
        self.description = str(_attr(param, "description") or "").strip()
        label = str(_attr(param, "friendly_name") or "") or self.name
        self.input = self._make_input()
        self.input.add_class("velonb-param")
        self.input.add_class(f"velonb-param-{re.sub(r'[^A-Za-z0-9_-]', '_', self.name)}")
        self.message = w.HTML()
        self.label = w.HTML(f'<b style="word-break: break-all">{esc(label)}</b>',
                            layout=w.Layout(width="220px", min_width="220px"))
        if self.description:
            self.label.tooltip = self.description
        self._on_change = on_change
        self.input.observe(self._observed, names="value")
        help_line = w.HTML(f'<div class="velonb-help">{esc(self.description)}</div>') \
            if self.description else None
        row = w.HBox([self.label, w.VBox([self.input, *([help_line] if help_line else [])]),
                      self.message])
        self.row = row
        self.check()

    def _observed(self, _change: dict[str, Any]) -> None:
        self.check()
        self._on_change()

    # -- inputs ----------------------------------------------------------------------------------

    def _make_input(self) -> Any:
        w = ipywidgets()

        wide = w.Layout(width="420px")
        kind, default = self.kind, self.default
        if kind == "bool":
            return w.Checkbox(value=default.strip().lower() in _TRUE, indent=False)
        if kind == "choices" and self.choices:
            options = self.choices if default in self.choices or not default \
                else [default, *self.choices]
            return w.Dropdown(options=options, value=default or options[0], layout=wide)
        if kind == "multichoice" and self.choices:
            try:
                initial = [c for c in json.loads(default or "[]") if c in self.choices]
            except (ValueError, TypeError):
                initial = []
            return w.SelectMultiple(options=self.choices, value=initial, layout=wide,
                                    rows=min(len(self.choices), 6))
        if kind == "redacted":
            return w.Password(value=default, layout=wide)
        placeholder = {"timestamp": "e.g. 2026-01-31T12:00:00Z (empty: none)",
                       "regex": "a regular expression (RE2)",
                       "csv": "CSV with a header line", "json": "JSON",
                       "json_array": "a JSON array"}.get(kind, "")
        if kind in INT_TYPES:
            placeholder = "a whole number (empty: default)"
        if kind in TEXTAREA_TYPES or "\n" in default.strip():
            lines = max(3, min(12, default.count("\n") + 2))
            return w.Textarea(value=default, placeholder=placeholder, rows=lines,
                              layout=w.Layout(width="420px"))
        return w.Text(value=default, placeholder=placeholder, layout=wide,
                      continuous_update=True)

    # -- values ----------------------------------------------------------------------------------

    def raw(self) -> Any:
        """The input's value as a Python value (bool, int, list, or text)."""
        value = self.input.value
        if self.kind == "bool":
            return bool(value)
        if self.kind == "multichoice" and isinstance(value, tuple):
            return list(value)
        if self.kind in INT_TYPES | FLOAT_TYPES and isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                return int(text) if self.kind in INT_TYPES else float(text)
            except ValueError:
                return text  # check() reports it
        return value

    def set(self, value: Any) -> None:
        """Put ``value`` (a Python value or the server's text form) in the input."""
        if self.kind == "bool":
            self.input.value = value if isinstance(value, bool) else \
                str(value).strip().lower() in _TRUE
        elif self.kind == "multichoice" and hasattr(self.input, "options"):
            items = json.loads(value) if isinstance(value, str) else list(value or [])
            self.input.value = tuple(items)
        elif self.kind == "choices" and hasattr(self.input, "options"):
            if str(value) not in self.input.options:
                raise ValueError(f"{value!r} is not one of the choices {list(self.input.options)}"
                                 f" of parameter {self.name!r}")
            self.input.value = str(value)
        else:
            self.input.value = "" if value is None else str(value)

    def canonical(self, value: Any) -> str | None:
        """The server's text for ``value`` (None when it is empty or does not convert)."""
        if value is None or (isinstance(value, str) and not value.strip()
                             and self.kind != "string"):
            return None
        convert = getattr(self.param, "convert", None)
        if callable(convert):
            try:
                return str(convert(value, self.artifact))
            except Exception:
                return None
        if isinstance(value, bool):
            return "Y" if value else "N"
        return json.dumps(value) if isinstance(value, list) else str(value)

    def changed(self) -> bool:
        """True when the input differs from the parameter's default."""
        value = self.raw()
        if self.kind == "bool":
            return bool(value) != (self.default.strip().lower() in _TRUE)
        mine = self.canonical(value)
        if mine is None:
            return False
        default = self.canonical(self.default)
        return mine != (default if default is not None else self.default)

    def error(self) -> str | None:
        """Why the current input is not a valid value, or None."""
        value = self.raw()
        text = value if isinstance(value, str) else None
        if value is None or (text is not None and not text.strip()):
            return None
        if self.kind in INT_TYPES and not isinstance(value, int):
            return f"{text!r} is not a whole number"
        if self.kind in FLOAT_TYPES and not isinstance(value, int | float):
            return f"{text!r} is not a number"
        if text is not None:
            problem = _text_problem(self.kind, text)
            if problem:
                return problem
        convert = getattr(self.param, "convert", None)
        if callable(convert):
            try:
                convert(value, self.artifact)
            except Exception as err:
                message = str(err).split("\n")[0]
                return message.split("): ", 1)[-1] if "): " in message else message
        return None

    def check(self) -> str | None:
        """Validate and show the message; returns the error (or None)."""
        problem = self.error()
        if problem:
            self.message.value = f'<span class="velonb-error">⚠ {esc(problem)}</span>'
        elif self.changed():
            self.message.value = '<span class="velonb-ok">✓ changed</span>'
        else:
            self.message.value = ""
        return problem


def _text_problem(kind: str, text: str) -> str | None:
    """A readable message for text that does not parse as ``kind`` (the common cases)."""
    if kind == "regex" and "\\p" not in text and "\\P" not in text:
        try:
            re.compile(text)
        except re.error as err:
            return f"not a valid regex: {err}"
    elif kind in ("json", "json_array"):
        try:
            parsed = json.loads(text)
        except ValueError as err:
            return f"not valid JSON: {err}"
        if kind == "json_array" and not isinstance(parsed, list):
            return "must be a JSON array ([...])"
    elif kind == "csv":
        rows = list(csv.reader(io.StringIO(text.strip())))
        if not rows or not any(rows[0]):
            return "CSV needs a header line"
        width = len(rows[0])
        bad = [i + 1 for i, r in enumerate(rows) if r and len(r) != width]
        if bad:
            return f"line {bad[0]} has a different number of columns than the header"
    elif kind == "timestamp":
        import pandas as pd

        try:
            pd.Timestamp(text.strip())
        except (ValueError, TypeError):
            return f"{text.strip()!r} is not a time (try 2026-01-31T12:00:00Z)"
    return None


def build_fields(info: Any, on_change: Callable[[], None]) -> list[Field]:
    """A Field per visible parameter of an artifact definition."""
    name = str(_attr(info, "name"))
    return [Field(p, name, on_change) for p in (_attr(info, "parameters", None) or [])
            if str(_attr(p, "type") or "").lower() not in SKIPPED_TYPES]
