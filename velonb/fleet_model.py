"""The fleet helpers' data: clients, artifact definitions with typed parameters, dry runs.

Units are the server's: a client's ``first_seen_at`` is epoch seconds, ``last_seen_at`` epoch
microseconds; flow and hunt times are microseconds. Everything here turns them into tz-aware
UTC datetimes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from velonb.fleet_errors import ArtifactParameterError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ONLINE_WITHIN", "ArtifactInfo", "ArtifactParameter", "Client", "DryRun", "from_micros",
    "from_seconds", "plain", "type_columns",
]

# A client counts as online when it was seen this recently. Velociraptor clients keep a
# connection open and the server refreshes last_seen_at at least every poll (max_poll, 60 s by
# default), so ten minutes of silence means the client is gone, not merely slow.
ONLINE_WITHIN = dt.timedelta(minutes=10)


def parse_duration(value: dt.timedelta | float | str) -> dt.timedelta:
    """A timedelta from seconds or text such as ``90``, ``'15m'``, ``'2h'``, ``'7d'``."""
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float):
        return dt.timedelta(seconds=float(value))
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90, '15m', '2h', '7d')")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return dt.timedelta(seconds=float(match.group(1)) * unit)


def expiry_time(value: dt.datetime | dt.timedelta | float | str) -> dt.datetime:
    """An aware datetime: ``value`` itself (naive means UTC) or that long from now."""
    when = value if isinstance(value, dt.datetime) else (
        dt.datetime.now(dt.UTC) + parse_duration(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def from_seconds(value: Any) -> dt.datetime | None:
    """Epoch seconds -> UTC datetime (0/None -> None)."""
    return dt.datetime.fromtimestamp(float(value), dt.UTC) if value else None


def from_micros(value: Any) -> dt.datetime | None:
    """Epoch microseconds -> UTC datetime (0/None -> None)."""
    return dt.datetime.fromtimestamp(float(value) / 1e6, dt.UTC) if value else None


def plain(value: Any) -> Any:
    """numpy/pandas scalars and containers from a DataFrame row -> plain Python values."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return plain(tolist())
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    return value


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as plain dicts; NaN/NaT/NA become None."""
    import pandas as pd

    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for key, value in row.items():
            if not isinstance(value, list | dict | tuple) and value is not None:
                try:
                    if pd.isna(value):
                        value = None
                except (TypeError, ValueError):
                    pass
            clean[str(key)] = plain(value)
        out.append(clean)
    return out


@dataclass
class DryRun:
    """The VQL and bindings a helper would send, without sending them (``dry_run=True``)."""

    vql: str
    env: dict[str, Any] = field(default_factory=dict)
    org_id: str = ""
    description: str = ""

    def bindings(self) -> list[tuple[str, str, str]]:
        """(name, VQL type, value as sent) of every bound variable."""
        from velonb.params import bind

        return bind(self.env).describe()

    def __str__(self) -> str:
        lines = [f"-- {self.description}"] if self.description else []
        lines.append(self.vql.strip())
        if self.env:
            lines.append("-- bindings (sent in VQLCollectorArgs.env, never pasted into the VQL):")
            lines += [f"--   {name} ({kind}) = {value}" for name, kind, value in self.bindings()]
        lines.append(f"-- org: {self.org_id or 'root'}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


@dataclass
class Client:
    """One enrolled endpoint, as ``clients()`` reports it (times are UTC datetimes)."""

    client_id: str
    hostname: str
    fqdn: str = ""
    os: str = ""
    release: str = ""
    labels: list[str] = field(default_factory=list)
    last_ip: str = ""
    agent_version: str = ""
    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    org_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def online(self) -> bool:
        """Seen within :data:`ONLINE_WITHIN`."""
        return is_online(self.last_seen)

    def last_seen_text(self) -> str:
        """'3 minutes ago (2026-08-21 10:00 UTC)' style text."""
        if self.last_seen is None:
            return "never"
        return f"{ago(self.last_seen)} ({self.last_seen:%Y-%m-%d %H:%M:%S} UTC)"

    @classmethod
    def from_row(cls, row: Mapping[str, Any], org_id: str = "") -> Client:
        """From a ``clients()`` row."""
        os_info = row.get("os_info") or {}
        agent = row.get("agent_information") or {}
        return cls(
            client_id=str(row.get("client_id", "")),
            hostname=str(os_info.get("hostname", "")),
            fqdn=str(os_info.get("fqdn", "")),
            os=str(os_info.get("system", "")),
            release=str(os_info.get("release", "")),
            labels=list(row.get("labels") or []),
            last_ip=str(row.get("last_ip", "")),
            agent_version=str(agent.get("version", "")),
            first_seen=from_seconds(row.get("first_seen_at")),
            last_seen=from_micros(row.get("last_seen_at")),
            org_id=org_id,
            raw=dict(row),
        )

    def as_record(self) -> dict[str, Any]:
        """The row of the ``clients()`` DataFrame."""
        return {
            "client_id": self.client_id, "hostname": self.hostname, "fqdn": self.fqdn,
            "os": self.os, "release": self.release, "labels": list(self.labels),
            "last_ip": self.last_ip, "agent_version": self.agent_version,
            "first_seen": self.first_seen, "last_seen": self.last_seen, "online": self.online,
            "mac_addresses": list((self.raw.get("os_info") or {}).get("mac_addresses") or []),
            "raw": self.raw,
        }

    def __str__(self) -> str:
        state = "online" if self.online else f"offline, last seen {self.last_seen_text()}"
        return f"{self.hostname} ({self.client_id}, {self.os}, {state})"


def is_online(last_seen: dt.datetime | None) -> bool:
    return last_seen is not None and dt.datetime.now(dt.UTC) - last_seen <= ONLINE_WITHIN


def ago(when: dt.datetime) -> str:
    """A rough 'N units ago'."""
    seconds = (dt.datetime.now(dt.UTC) - when).total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds / size
            return f"{n:.1f} {unit}s ago" if n < 10 else f"{n:.0f} {unit}s ago"
    return f"{max(seconds, 0):.0f} seconds ago"


# -- artifact definitions ------------------------------------------------------------------------

_BOOL_TRUE = {"y", "yes", "true", "1", "t", "on"}
_BOOL_FALSE = {"n", "no", "false", "0", "f", "off", ""}


@dataclass
class ArtifactParameter:
    """One declared parameter of an artifact."""

    name: str
    type: str = ""
    default: str = ""
    description: str = ""
    choices: list[str] = field(default_factory=list)
    friendly_name: str = ""
    validating_regex: str = ""

    def convert(self, value: Any, artifact: str = "") -> str:
        """``value`` as the string the server expects for this parameter type (or raise)."""
        where = f"parameter {self.name!r} of {artifact}" if artifact else f"parameter {self.name!r}"
        kind = (self.type or "string").lower()
        try:
            text = _convert(kind, value, self.choices)
        except (ValueError, TypeError) as err:
            raise ArtifactParameterError(
                f"{where} ({kind}): {err}", hint=_type_hint(kind, self.choices)) from None
        if self.validating_regex and not re.search(self.validating_regex, text):
            raise ArtifactParameterError(
                f"{where}: {text!r} does not match its validating regex {self.validating_regex!r}")
        return text


def _type_hint(kind: str, choices: list[str]) -> str:
    return {
        "bool": "pass True/False (or 'Y'/'N')",
        "int": "pass an integer", "int64": "pass an integer", "float": "pass a number",
        "timestamp": "pass a datetime, a date, epoch seconds or an ISO 8601 string",
        "choices": f"pass one of {choices}", "multichoice": f"pass a list from {choices}",
        "regex": "pass a valid regular expression (RE2 syntax)",
        "csv": "pass CSV text with a header line, a list of dicts or a DataFrame",
        "json": "pass JSON text or a JSON-serialisable value",
        "json_array": "pass a list (or JSON text of an array)",
    }.get(kind, "pass a string")


def _timestamp_text(value: Any) -> str:
    import pandas as pd

    if isinstance(value, str):
        if not value.strip():
            return ""
        stamp = pd.Timestamp(value)  # raises ValueError on garbage
    elif isinstance(value, bool):
        raise TypeError("a bool is not a time")
    elif isinstance(value, int | float):
        stamp = pd.Timestamp(float(value), unit="s")
    elif isinstance(value, dt.datetime | dt.date) or hasattr(value, "to_pydatetime"):
        stamp = pd.Timestamp(value)
    else:
        raise TypeError(f"{type(value).__name__} is not a time")
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return str(stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S")) + (
        f".{stamp.microsecond:06d}".rstrip("0") if stamp.microsecond else "") + "Z"


def _csv_text(value: Any) -> str:
    if isinstance(value, str):
        rows = list(csv.reader(io.StringIO(value.strip())))
        if not rows or not rows[0]:
            raise ValueError("CSV text needs a header line")
        return value
    if hasattr(value, "to_csv"):
        return str(value.to_csv(index=False))
    if isinstance(value, list | tuple) and all(isinstance(r, Mapping) for r in value) and value:
        names = list(dict.fromkeys(k for r in value for k in r))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(value)
        return out.getvalue()
    raise TypeError(f"{type(value).__name__} is not CSV")


def _convert(kind: str, value: Any, choices: list[str]) -> str:
    if kind == "bool":
        if isinstance(value, bool):
            return "Y" if value else "N"
        if isinstance(value, str) and value.strip().lower() in _BOOL_TRUE | _BOOL_FALSE:
            return "Y" if value.strip().lower() in _BOOL_TRUE else "N"
        if isinstance(value, int) and value in (0, 1):
            return "Y" if value else "N"
        raise ValueError(f"{value!r} is not a bool")
    if kind in ("int", "int64", "uint64"):
        if isinstance(value, bool) or (not isinstance(value, int | str) and not hasattr(
                value, "item")):
            raise TypeError(f"{value!r} is not an integer")
        return str(int(str(value).strip()) if isinstance(value, str) else int(value))
    if kind in ("float", "number"):
        if isinstance(value, bool):
            raise TypeError(f"{value!r} is not a number")
        return repr(float(value))
    if kind == "timestamp":
        return _timestamp_text(value)
    if kind == "choices":
        text = str(value)
        if choices and text not in choices:
            raise ValueError(f"{text!r} is not one of the choices {choices}")
        return text
    if kind == "multichoice":
        items = json.loads(value) if isinstance(value, str) else list(value)
        bad = [i for i in items if choices and i not in choices]
        if bad:
            raise ValueError(f"{bad} not among the choices {choices}")
        return json.dumps(items)
    if kind in ("regex", "regex_array") and isinstance(value, str):
        if kind == "regex" and "\\p" not in value and "\\P" not in value:
            try:
                re.compile(value)
            except re.error as err:
                raise ValueError(f"{value!r} is not a valid regex: {err}") from None
        return value
    if kind == "csv":
        return _csv_text(value)
    if kind in ("json", "json_array", "regex_array"):
        if isinstance(value, str):
            parsed = json.loads(value)  # JSONDecodeError is a ValueError
            if kind != "json" and not isinstance(parsed, list):
                raise ValueError("JSON text is not an array")
            return value
        if kind != "json" and not isinstance(value, list | tuple):
            raise TypeError(f"{type(value).__name__} is not a list")
        from velonb.params import to_jsonable

        return json.dumps(to_jsonable(value))
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


@dataclass
class ArtifactInfo:
    """An artifact definition: typed parameters, sources and result column types."""

    name: str
    type: str
    description: str = ""
    author: str = ""
    parameters: list[ArtifactParameter] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # source names ("" for an unnamed one)
    column_types: dict[str, str] = field(default_factory=dict)
    required_permissions: list[str] = field(default_factory=list)
    precondition: str = ""
    tags: list[str] = field(default_factory=list)
    raw: str = field(default="", repr=False)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ArtifactInfo:
        """From an ``artifact_definitions()`` row."""
        return cls(
            name=str(row.get("name", "")),
            type=str(row.get("type", "")).lower(),
            description=str(row.get("description", "")),
            author=str(row.get("author", "")),
            parameters=[
                ArtifactParameter(
                    name=str(p.get("name", "")), type=str(p.get("type") or ""),
                    default=str(p.get("default") or ""),
                    description=str(p.get("description") or ""),
                    choices=list(p.get("choices") or []),
                    friendly_name=str(p.get("friendly_name") or ""),
                    validating_regex=str(p.get("validating_regex") or ""))
                for p in row.get("parameters") or []
            ],
            sources=[str(s.get("name") or "") for s in row.get("sources") or []],
            column_types={str(c.get("name")): str(c.get("type") or "")
                          for c in row.get("column_types") or [] if c.get("name")},
            required_permissions=list(row.get("required_permissions") or []),
            precondition=str(row.get("precondition") or ""),
            tags=list((row.get("metadata") or {}).get("tags") or []),
            raw=str(row.get("raw") or ""),
        )

    def parameter(self, name: str) -> ArtifactParameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    @property
    def result_names(self) -> list[str]:
        """Names its results are stored under: "Name" or "Name/Source" per source."""
        named = [s for s in self.sources if s]
        return [f"{self.name}/{s}" for s in named] if named else [self.name]

    def validate(self, parameters: Mapping[str, Any] | None) -> dict[str, str]:
        """Check ``parameters`` against the definition; return them as the server's strings."""
        out: dict[str, str] = {}
        for name, value in (parameters or {}).items():
            param = self.parameter(name)
            if param is None:
                import difflib

                valid = [p.name for p in self.parameters]
                close = difflib.get_close_matches(name, valid, n=3)
                raise ArtifactParameterError(
                    f"{self.name} has no parameter {name!r}"
                    + (f" (did you mean {', '.join(close)}?)" if close else ""),
                    hint=f"valid parameters: {', '.join(valid) if valid else '(none)'}")
            if value is None:
                continue  # None: keep the artifact's default
            out[name] = param.convert(value, self.name)
        return out

    def parameters_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([{"name": p.name, "type": p.type or "string", "default": p.default,
                              "choices": p.choices, "description": p.description}
                             for p in self.parameters])

    def __str__(self) -> str:
        lines = [f"{self.name} ({self.type})"]
        if self.description:
            lines.append("  " + self.description.strip().splitlines()[0])
        for p in self.parameters:
            extra = f" choices={p.choices}" if p.choices else ""
            lines.append(f"  - {p.name}: {p.type or 'string'} = {p.default!r}{extra}")
        if any(self.sources):
            lines.append(f"  sources: {', '.join(s for s in self.sources if s)}")
        return "\n".join(lines)


# -- typing result columns -------------------------------------------------------------------

def _epoch_to_datetime(series: pd.Series) -> pd.Series:
    import pandas as pd

    numbers = pd.Series(pd.to_numeric(series, errors="coerce"), index=series.index)
    biggest = numbers.abs().max()
    unit: Literal["s", "ms", "us", "ns"] = "s"
    if pd.notna(biggest):
        unit = "ns" if biggest > 1e17 else "us" if biggest > 1e14 else "ms" if biggest > 1e11 \
            else "s"
    return pd.to_datetime(numbers, unit=unit, utc=True)


def type_columns(frame: pd.DataFrame, column_types: Mapping[str, str]) -> pd.DataFrame:
    """Apply an artifact's declared column types (timestamp, int, float, bool) to ``frame``."""
    import pandas as pd

    for name, kind in column_types.items():
        if name not in frame.columns:
            continue
        column = frame[name]
        kind = kind.lower()
        try:
            if kind in ("timestamp", "nano_timestamp"):
                if isinstance(column.dtype, pd.DatetimeTZDtype):
                    continue
                if pd.api.types.is_numeric_dtype(column):
                    frame[name] = _epoch_to_datetime(column)
                else:
                    frame[name] = pd.to_datetime(pd.Series(column), utc=True,
                                                 errors="coerce", format="mixed")
            elif kind in ("int", "int64", "uint64"):
                frame[name] = pd.to_numeric(column, errors="coerce").astype("Int64")
            elif kind in ("float", "number"):
                frame[name] = pd.to_numeric(column, errors="coerce").astype("float64")
            elif kind == "bool" and not pd.api.types.is_bool_dtype(column):
                frame[name] = column.astype("boolean")
        except (ValueError, TypeError, OverflowError):
            continue  # leave a column that does not fit its declared type as it came
    return frame
