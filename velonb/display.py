"""What the magics show: live progress, the result summary, the server-log panel, dry runs, errors.

Every object here has both an HTML and a plain-text form (``_repr_html_`` and ``__repr__``), so
notebooks, terminal IPython and saved outputs all read well. IPython is imported lazily.
"""

from __future__ import annotations

import html
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from velonb.cache import CacheStatus
    from velonb.magic_args import Template
    from velonb.query import LogLine, Progress

# Quick queries never show a progress line; slower ones update it at most this often.
PROGRESS_DELAY_S = 0.3
PROGRESS_EVERY_S = 0.2
_STYLE = "font-family:monospace;font-size:90%;"
#: Output mime type recording which cache entries a cell used (read by ``velonb pack``).
CACHE_MIME = "application/vnd.velonb.cache+json"


class _Rich:
    """Base of displayable objects: subclasses give text() and html()."""

    def text(self) -> str:
        raise NotImplementedError

    def html(self) -> str:
        return f'<pre style="{_STYLE}margin:0">{html.escape(self.text())}</pre>'

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())


class Line(_Rich):
    """One line of text, optionally with a CSS colour in HTML."""

    def __init__(self, text: str, color: str = "#555") -> None:
        self._text = text
        self.color = color

    def text(self) -> str:
        return self._text

    def html(self) -> str:
        return (f'<div style="{_STYLE}color:{self.color}">'
                f"{html.escape(self._text)}</div>")


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 100_000 else f"{nbytes / 1e3:.1f} kB"


def _short(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def progress_text(progress: Progress) -> str:
    """``⏳ 12,000 rows · 12 parts · 1.3 MB · 2.1s · <latest server log line>``."""
    text = (f"⏳ {progress.rows:,} rows · {progress.parts} parts · {_mb(progress.bytes)} · "
            f"{progress.elapsed:.1f}s")
    if progress.last_log:
        text += f" · {_short(progress.last_log, 70)}"
    return text


def _frontend(shell: Any, mode: str) -> str:
    if mode != "auto":
        return mode
    return "notebook" if getattr(shell, "kernel", None) is not None else "terminal"


class ProgressReporter:
    """The live progress line: a display handle updated in place, or a ``\\r`` line on stderr.

    Pass it as the ``progress=`` callback; call :meth:`finish` when the query is over: the line
    is replaced by the summary (notebook) or erased (terminal).
    """

    def __init__(self, shell: Any, mode: str = "auto") -> None:
        self.mode = _frontend(shell, mode)
        self._handle: Any = None
        self._shown = False
        self._last = 0.0
        self._width = 0

    def __call__(self, progress: Progress) -> None:
        if self.mode == "off" or progress.elapsed < PROGRESS_DELAY_S:
            return
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_S:
            return
        self._last = now
        self.show(progress_text(progress))

    def show(self, text: str) -> None:
        """Show ``text`` as the current progress line."""
        if self.mode == "notebook":
            from IPython.display import display

            if self._handle is None:
                self._handle = display(Line(text), display_id=True)
            else:
                self._handle.update(Line(text))
        elif self.mode == "terminal":
            padded = text.ljust(self._width)
            self._width = len(text)
            sys.stderr.write("\r" + padded)
            sys.stderr.flush()
        self._shown = True

    def finish(self, final: _Rich | None = None) -> bool:
        """End the line; True when ``final`` took its place (so it needs no display of its own)."""
        if not self._shown:
            return False
        if self.mode == "terminal":
            sys.stderr.write("\r" + " " * self._width + "\r")
            sys.stderr.flush()
            return False
        if self._handle is not None:
            self._handle.update(final if final is not None else Line(""))
            return final is not None
        return False


# --- results ----------------------------------------------------------------------------------


@dataclass(repr=False)
class Summary(_Rich):
    """One line after a query: rows x columns per statement, elapsed, org, where the data is."""

    frames: Sequence[pd.DataFrame]
    elapsed: float
    org: str = ""
    dest: str | None = None
    truncated: bool = False
    max_rows: int | None = None
    errors: int = 0
    warnings: int = 0
    streamed: bool = False
    notes: list[str] = field(default_factory=list)
    cache: CacheStatus | None = None

    def text(self) -> str:
        shapes = [f"{len(f):,} rows x {len(f.columns)} columns" for f in self.frames]
        if not shapes:
            body = "no rows (no SELECT statement)"
        elif len(shapes) == 1:
            body = shapes[0]
        else:
            body = f"{len(shapes)} statements: " + ", ".join(
                f"[{i}] {len(f):,} x {len(f.columns)}" for i, f in enumerate(self.frames))
        parts = [("✔ " if not self.errors else "⚠ ") + body, f"{self.elapsed:.2f}s"]
        if self.org not in ("", "root"):
            parts.append(f"org {self.org}")
        if self.streamed:
            parts.append("streamed")
        if self.truncated:
            parts.append(f"cut at --max-rows {self.max_rows}: more rows were available")
        if self.errors:
            parts.append(f"{self.errors} server error{'s' if self.errors > 1 else ''} "
                         "(log below; --strict makes them fail the cell)")
        elif self.warnings:
            parts.append(f"{self.warnings} server warning{'s' if self.warnings > 1 else ''}")
        if self.dest:
            parts.append(f"→ {self.dest}" + (" (last statement; all: _vql_result.frames)"
                                             if len(self.frames) > 1 else ""))
        note = self.cache.note() if self.cache is not None else ""
        return " · ".join(parts + ([note] if note else []) + self.notes)

    def html(self) -> str:
        color = "#a40" if self.errors or self.truncated else "#264"
        return Line(self.text(), color).html()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.text(), "text/html": self.html()}
        record = cache_record(self.cache)
        if record:
            bundle[CACHE_MIME] = record
        return bundle


def cache_record(status: CacheStatus | None) -> dict[str, Any] | None:
    """The cache entry a cell used, as JSON kept in the cell's output (for ``velonb pack``)."""
    if status is None or not status.ref:
        return None
    return {"entries": [status.ref], "source": status.source}


def record_cache_use(status: CacheStatus | None) -> None:
    """Record the cache entry of a cell that shows nothing else (--quiet): an invisible output."""
    record = cache_record(status)
    if record:
        from IPython.display import display

        display({CACHE_MIME: record}, raw=True)


_PERMISSION = re.compile(r"Permission denied: \[([A-Z_]+)\]")


@dataclass(repr=False)
class LogPanel(_Rich):
    """The server's log lines, errors highlighted (shown when there are warnings or errors)."""

    lines: Sequence[LogLine]
    user: str = "<api user>"

    def _hints(self) -> list[str]:
        found = {m.group(1) for line in self.lines if line.is_error
                 for m in [_PERMISSION.search(line.message)] if m}
        return [f"the API user lacks {perm}: grant it with velociraptor acl grant {self.user} "
                f"'{{\"{perm.lower()}\": true}}' --merge, or use a role that has it"
                for perm in sorted(found)]

    def text(self) -> str:
        out = ["server log:"]
        out += [f"  {line.level:<5} {line.timestamp:%H:%M:%S} {line.message}"
                for line in self.lines]
        out += [f"  -> {hint}" for hint in self._hints()]
        return "\n".join(out)

    def html(self) -> str:
        rows = []
        for line in self.lines:
            style = ("background:#fdd;color:#900;font-weight:bold" if line.is_error else
                     "background:#ffd" if line.level in ("WARN", "ALERT") else "color:#666")
            rows.append(f'<tr style="{style}"><td>{line.level}</td>'
                        f"<td>{line.timestamp:%H:%M:%S}</td>"
                        f'<td style="text-align:left">{html.escape(line.message)}</td></tr>')
        hints = "".join(f'<div style="color:#900">→ {html.escape(h)}</div>'
                        for h in self._hints())
        return (f'<details open style="{_STYLE}"><summary>server log ({len(self.lines)} lines)'
                f'</summary><table style="{_STYLE}">{"".join(rows)}</table>{hints}</details>')


@dataclass(repr=False)
class DryRun(_Rich):
    """The exact request a cell would send: each VQL request, every env pair, typed parameters."""

    request: Any
    parameters: list[tuple[str, str, str]]  # (variable, type, value as sent)
    references: dict[str, str]  # variable -> Python reference of the {name} parameter

    def text(self) -> str:
        out = [f"dry run: nothing was sent (org {self.request.org_id or 'root'}, timeout "
               f"{self.request.timeout or 'server default'}, max_row {self.request.max_row})"]
        for i, query in enumerate(self.request.Query, 1):
            out.append(f"-- request {i} ({query.Name}):")
            out.append(query.VQL)
        out.append("-- env (sent as strings):")
        out += [f"  {env.key} = {env.value}" for env in self.request.env] or ["  (none)"]
        if self.parameters:
            out.append("-- parameters:")
            for name, kind, value in self.parameters:
                origin = f" from {{{self.references[name]}}}" if name in self.references else ""
                out.append(f"  {name} ({kind}){origin} = {value}")
        return "\n".join(out)


class LiveTable:
    """The live table of ``--stream``: the latest ``keep`` rows and a status line, in place."""

    def __init__(self, shell: Any, mode: str, keep: int) -> None:
        self.mode = _frontend(shell, mode)
        self.keep = keep
        self.rows = 0
        self._handle: Any = None
        self._reporter = ProgressReporter(shell, "terminal" if self.mode == "terminal" else "off")

    def update(self, frames: Sequence[pd.DataFrame], progress: Progress | None) -> None:
        """Show the tail of everything received so far."""
        import pandas as pd

        self.rows = sum(len(f) for f in frames)
        status = f"⏺ live: {self.rows:,} rows"
        if progress is not None:
            status = progress_text(progress).replace("⏳", "⏺ live:", 1)
        if self.mode == "terminal":
            self._reporter.show(status)
            return
        if self.mode != "notebook":
            return
        tail = pd.concat(list(frames[-self.keep:]), ignore_index=True).tail(self.keep)
        view = _TableWithStatus(tail, f"{status} · latest {len(tail)} shown")
        if self._handle is None:
            from IPython.display import display

            self._handle = display(view, display_id=True)
        else:
            self._handle.update(view)

    def finish(self) -> None:
        self._reporter.finish()


class _TableWithStatus(_Rich):
    def __init__(self, frame: pd.DataFrame, status: str) -> None:
        self.frame = frame
        self.status = status

    def text(self) -> str:
        return f"{self.status}\n{self.frame.to_string(max_rows=len(self.frame) + 1)}"

    def html(self) -> str:
        return Line(self.status, "#06c").html() + self.frame.to_html(max_rows=len(self.frame) + 1)


# --- errors --------------------------------------------------------------------------------------

_RED, _BOLD, _RESET = "\x1b[31m", "\x1b[1m", "\x1b[0m"


def error_lines(err: BaseException, template: Template | None = None) -> list[str]:
    """A short, readable error (the cell's 'traceback'): what failed, where, and what to do."""
    from velonb.errors import VelonbError, VQLSyntaxError

    name = type(err).__name__
    message = err.message if isinstance(err, VelonbError) else str(err)
    first, _, rest = message.partition("\n")
    if isinstance(err, VQLSyntaxError) and template is not None and err.line and err.column:
        mapped = template.source_column(err.line, err.column)
        first = first.replace(f"column {err.column}", f"column {mapped}", 1)
    out = [f"{_RED}{_BOLD}{name}{_RESET}: {first}"]
    if isinstance(err, VQLSyntaxError) and template is not None and err.line is not None:
        cell_lines = template.source.splitlines()
        if 0 < err.line <= len(cell_lines):
            column = template.source_column(err.line, err.column or 1)
            out.append(f"  {err.line:>3} | {cell_lines[err.line - 1]}")
            out.append(f"      | {' ' * (column - 1)}{_RED}^{_RESET}")
        elif rest:
            out.append(rest)
    elif rest:
        out.append(rest)
    if isinstance(err, VelonbError) and err.hint:
        out.append(f"  -> {err.hint}")
    out += list(getattr(err, "__notes__", []))
    out.append("  (run with --debug, or %vql_config --debug, for the full traceback)")
    return out


@dataclass(repr=False)
class ConfigPanel(_Rich):
    """%vql_config: the connection (no secrets: describe() masks them) and every setting."""

    connection: dict[str, str]
    settings: list[tuple[str, str, str]]
    problem: str = ""

    def text(self) -> str:
        out = ["velonb connection:"]
        if self.problem:
            out.append(f"  not connected: {self.problem}")
        out += [f"  {key:<15} {value}" for key, value in self.connection.items()]
        out.append("settings (%vql_config --name VALUE, or %config Velonb.name = VALUE):")
        out += [f"  {name:<13} {value:<8} {text}" for name, value, text in self.settings]
        return "\n".join(out)

    def html(self) -> str:
        def table(rows: Sequence[Sequence[str]]) -> str:
            body = "".join("<tr>" + "".join(f'<td style="text-align:left">{html.escape(c)}</td>'
                                            for c in row) + "</tr>" for row in rows)
            return f'<table style="{_STYLE}">{body}</table>'

        problem = (f'<pre style="{_STYLE}color:#900">not connected: {html.escape(self.problem)}'
                   "</pre>" if self.problem else "")
        return (f"<b>velonb connection</b>{problem}{table(list(self.connection.items()))}"
                f"<b>settings</b> <small>(%vql_config --name VALUE, or %config Velonb.name = "
                f"VALUE)</small>{table(self.settings)}")
