"""The CSV twin of an export's result sets, as ``json/csv.go`` ConvertJSONL writes it: the
first row's keys are the header, strings go in as they are (a leading ``=``, ``+``, ``@``, tab
or line break gets a tab, against spreadsheet formula injection), null is empty, anything else
is re-encoded as fastjson does (numbers verbatim, strings with special characters in Go's
``strconv.Quote`` form), and ``encoding/csv`` quotes what needs it."""

from __future__ import annotations

import json
from typing import Any

from velonb.emulator.gojson import dumps


class JSONNumber(str):
    """A JSON number kept as its text (fastjson re-encodes numbers verbatim)."""


def _go_quote(text: str) -> str:
    """strconv.Quote, which fastjson falls back on for strings with special characters."""
    named = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
             "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = ['"']
    for char in text:
        code = ord(char)
        if char in named:
            out.append(named[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif not char.isprintable() and char != " ":
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return "".join(out) + '"'


def fastjson_value(value: Any) -> str:
    """fastjson ``Value.MarshalTo``: compact, numbers verbatim, plain strings unescaped."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, JSONNumber):
        return str(value)
    if isinstance(value, str):
        if '"' in value or "\\" in value or any(ord(c) < 0x20 for c in value):
            return _go_quote(value)
        return '"' + value + '"'
    if isinstance(value, list):
        return "[" + ",".join(fastjson_value(v) for v in value) + "]"
    pairs = (fastjson_value(k) + ":" + fastjson_value(v) for k, v in value.items())
    return "{" + ",".join(pairs) + "}"


def _excel_safe(text: str) -> str:
    """sanitizeExcelFormulas: a cell that a spreadsheet would run as a formula gets a tab."""
    return "\t" + text if text[:1] in ("=", "+", "@", "\t", "\r", "\n") else text


def _csv_field(text: str) -> str:
    """encoding/csv: quoted when it holds a comma, quote or line break, or starts with space."""
    if text == "":
        return text
    if text == "\\." or any(c in text for c in ',"\r\n') or text[0].isspace():
        return '"' + text.replace('"', '""') + '"'
    return text


class CSVEncoder:
    """json.CSVEncoder: the first row's keys (then any extra keys) are the header; later rows
    fill those columns only."""

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.index: dict[str, int] = {}

    def encode(self, line: str, extra: dict[str, Any] | None = None) -> str:
        """One JSONL row as CSV (the header first, on the first call); extra values (a hunt
        export's FlowId, ClientId, Fqdn) fill their columns last."""
        try:
            row = json.loads(line, parse_int=JSONNumber, parse_float=JSONNumber)
        except ValueError:
            return ""
        if not isinstance(row, dict):
            return ""
        out = ""
        if not self.columns:
            self.columns = [*row, *(extra or {})]
            self.index = {name: i for i, name in enumerate(self.columns)}  # later wins
            if not self.columns:
                return ""
            out = ",".join(_csv_field(c) for c in self.columns) + "\n"
        cells = [""] * len(self.columns)
        for key, value in row.items():
            if key not in self.index:
                continue
            if value is None:
                cells[self.index[key]] = ""
            elif isinstance(value, str) and not isinstance(value, JSONNumber):
                cells[self.index[key]] = _excel_safe(value)
            else:
                cells[self.index[key]] = _excel_safe(fastjson_value(value))
        for key, value in (extra or {}).items():
            if key in self.index:
                text = value if isinstance(value, str) else dumps(value)
                cells[self.index[key]] = _excel_safe(text)
        return out + ",".join(_csv_field(c) for c in cells) + "\n"


def with_context(line: str, extra: dict[str, Any]) -> str:
    """writeJsonObject: the row's own keys and values (fastjson) then the extra ones."""
    row = json.loads(line, parse_int=JSONNumber, parse_float=JSONNumber)
    pieces = [fastjson_value(k) + ":" + fastjson_value(v) for k, v in row.items()]
    pieces += ['"' + k + '":' + dumps(v) for k, v in extra.items()]
    return "{" + ",".join(pieces) + "}"
