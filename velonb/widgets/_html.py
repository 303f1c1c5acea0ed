"""Small HTML helpers shared by the widgets: escaping, relative times, the stylesheet."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

# One stylesheet, shipped in an HTML widget next to the controls: monospace match lists (so
# their columns line up), compact tables, coloured validation messages.
STYLE = """<style>
.velonb-table select, .velonb-mono { font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; white-space: pre; }
.velonb-table select option { white-space: pre; }
.velonb-grid { overflow-x: auto; max-width: 100%; }
.velonb-grid table { border-collapse: collapse; font-size: 12px; }
.velonb-grid th, .velonb-grid td { padding: 2px 8px; border-bottom: 1px solid #ddd;
  text-align: left; vertical-align: top; white-space: nowrap; }
.velonb-grid th { background: var(--jp-layout-color2, #f3f3f3); }
.velonb-error { color: #c0392b; } .velonb-ok { color: #1e8449; }
.velonb-help { color: #777; font-size: 11px; }
.velonb-online { color: #1e8449; } .velonb-offline { color: #999; }
</style>"""

ONLINE = "●"
OFFLINE = "○"


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def ago(when: Any, now: dt.datetime | None = None) -> str:
    """'42s ago', '5m ago', '3h ago', '12d ago' ('never' for a missing time)."""
    import pandas as pd

    if when is None or (not isinstance(when, str) and pd.isna(when)):
        return "never"
    stamp = pd.Timestamp(when)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    seconds = ((now or dt.datetime.now(dt.UTC)) - stamp.to_pydatetime()).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{max(int(seconds), 0)}s ago"


def cut(text: str, width: int) -> str:
    """``text`` fitted into ``width`` characters (cut with an ellipsis, or padded)."""
    text = text.replace("\n", " ")
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.ljust(width)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, raw: bool = False) -> str:
    """An HTML table (cells escaped unless ``raw``)."""
    cell = (lambda v: str(v)) if raw else esc
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f'<div class="velonb-grid"><table><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></div>"


def _cell(value: Any, width: int = 80) -> str:
    """A result cell as one short line of text (dicts and lists from VQL included)."""
    import pandas as pd

    if value is None or (not isinstance(value, list | dict | tuple) and pd.isna(value)):
        return ""
    text = str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def frame_html(frame: pd.DataFrame, max_rows: int) -> str:
    """A DataFrame's first ``max_rows`` rows as an escaped HTML table, with a row count; long
    cells are cut to one line (the DataFrame keeps everything)."""
    shown = frame.head(max_rows).map(_cell)
    note = (f"{len(frame):,} rows" if len(frame) <= max_rows
            else f"{len(frame):,} rows (first {max_rows} shown)")
    body = str(shown.to_html(index=False, escape=True, border=0, classes="velonb-result"))
    return f'<div class="velonb-grid"><div class="velonb-help">{note}</div>{body}</div>'
