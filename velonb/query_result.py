"""What a query returns: its statements' frames, its log lines, progress, and how the server's
own errors and timeout lines become warnings or exceptions (`finish_result`)."""

from __future__ import annotations

import datetime as dt
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from velonb.errors import (
    PermissionDeniedError,
    QueryTimeout,
    VQLRuntimeError,
    VQLSyntaxError,
    VQLWarning,
)

if TYPE_CHECKING:
    import pandas as pd

    from velonb.cache import CacheStatus
    from velonb.frames import FrameBuilder

#: the VQLRequest name of the user's query (the typed-parameters prelude has its own)
REQUEST_NAME = "velonb"

_LEVEL = re.compile(r"^(DEFAULT|ERROR|INFO|WARN|WARNING|DEBUG|ALERT):")
_PARSE_POSITION = re.compile(r"(\d+):(\d+): (.*)$", re.DOTALL)


@dataclass(frozen=True)
class LogLine:
    """One server log message: when it was sent, its level (ERROR, WARN, ...) and its text."""

    timestamp: dt.datetime
    message: str
    level: str = "INFO"

    @property
    def is_error(self) -> bool:
        return self.level == "ERROR"

    def __str__(self) -> str:
        return f"{self.timestamp:%H:%M:%S} {self.message}"


def classify_log(message: str) -> str:
    """The level of a server log line: its ``LEVEL:`` prefix, or ERROR for known failure shapes."""
    match = _LEVEL.match(message)
    if match:
        level = match.group(1)
        return "WARN" if level == "WARNING" else level
    if (message.startswith("VQL Error:") or "Permission denied" in message
            or "Timeout Error" in message or re.match(r"^\w+: \w*Error", message)):
        return "ERROR"
    return "INFO"


@dataclass
class StatementResult:
    """The rows of one SELECT statement, identified as the server does (request, query_id)."""

    request: str
    query_id: int
    vql: str
    builder: FrameBuilder
    parts: int = 0
    _frame: pd.DataFrame | None = None
    cached_rows: int | None = None  # rows of a result replayed from the cache

    @property
    def rows(self) -> int:
        return self.builder.rows if self.cached_rows is None else self.cached_rows

    @property
    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            # the statement's stream has ended: its parts are freed as the columns are built
            self._frame = self.builder.to_frame(release=True)
        return self._frame


@dataclass
class Progress:
    """Live counters of a running query, passed to ``progress`` callbacks after every message."""

    rows: int = 0
    parts: int = 0
    bytes: int = 0
    started: float = field(default_factory=time.monotonic)
    last_log: str = ""

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class QueryResult:
    """Everything one Query call returned: each statement's frame, every log line, timings."""

    vql: str
    org_id: str
    statements: list[StatementResult] = field(default_factory=list)
    logs: list[LogLine] = field(default_factory=list)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    elapsed: float = 0.0
    first_row_after: float | None = None
    bytes_received: int = 0
    truncated: bool = False
    max_rows: int | None = None
    complete: bool = False
    cache: CacheStatus | None = None  # set when the cache was used: hit (source) or stored
    exported_rows: int = 0  # rows query_to_parquet received and decoded (in no frame)

    @property
    def frame(self) -> pd.DataFrame:
        """The DataFrame of the final SELECT statement (empty if there was none)."""
        if self.statements:
            return self.statements[-1].frame
        import pandas as pd

        return pd.DataFrame()

    @property
    def frames(self) -> list[pd.DataFrame]:
        """One DataFrame per SELECT statement, in the order the server ran them."""
        return [statement.frame for statement in self.statements]

    def frame_for(self, query_id: int) -> pd.DataFrame:
        """The frame of the statement with this ``query_id`` (LETs count, as on the server)."""
        for statement in self.statements:
            if statement.query_id == query_id and statement.request == REQUEST_NAME:
                return statement.frame
        raise KeyError(f"no SELECT statement with query_id {query_id}; "
                       f"have {[s.query_id for s in self.statements]}")

    @property
    def rows(self) -> int:
        return self.exported_rows + sum(statement.rows for statement in self.statements)

    @property
    def parts(self) -> int:
        return sum(statement.parts for statement in self.statements)

    @property
    def errors(self) -> list[LogLine]:
        return [line for line in self.logs if line.is_error]

    @property
    def warnings(self) -> list[LogLine]:
        return [line for line in self.logs if line.level in ("WARN", "ALERT")]

    def summary(self) -> str:
        frame = self.frame if self.statements else None
        shape = "no rows" if frame is None else f"{len(frame)} rows x {len(frame.columns)} columns"
        extra = f" (cut at max_rows={self.max_rows})" if self.truncated else ""
        org = f", org {self.org_id}" if self.org_id not in ("", "root") else ""
        note = self.cache.note() if self.cache is not None else ""
        return f"{shape}{extra} in {self.elapsed:.2f}s{org}" + (f", {note}" if note else "")

    def __repr__(self) -> str:
        return (f"<QueryResult {self.summary()}; {len(self.statements)} SELECT statement(s), "
                f"{len(self.logs)} log lines, {len(self.errors)} errors>")


def _timestamp(micros: int) -> dt.datetime:
    if not micros:
        return dt.datetime.now(dt.UTC)
    return dt.datetime.fromtimestamp(micros / 1e6, dt.UTC)


def _syntax_error(message: str, result: QueryResult) -> VQLSyntaxError:
    body = message.removeprefix("VQL Error:").strip().removesuffix(".")
    match = _PARSE_POSITION.search(body)
    line = int(match.group(1)) if match else None
    column = int(match.group(2)) if match else None
    snippet = body[: match.start()].strip() if match else body
    text = "VQL syntax error"
    if line is not None:
        text += f" at line {line}, column {column}: {match.group(3).strip() if match else ''}"
    if snippet:
        text += f"\n{snippet}"
    return VQLSyntaxError(text, snippet=snippet, line=line, column=column, result=result)


def finish_result(result: QueryResult, *, strict: bool, user: str, stacklevel: int = 4) -> None:
    """Raise for the server's timeout line; surface ERROR lines as warnings or errors."""
    timeout_line = next(
        (line for line in result.logs if "Collection timed out" in line.message), None
    )
    if timeout_line is not None:
        raise QueryTimeout(
            f"the server stopped the query at its timeout after {result.rows} rows: "
            f"{_strip_markup(timeout_line.message)}",
            result=result,
            hint="raise timeout= (seconds) or narrow the query; err.partial has the rows sent",
        )
    errors = [line for line in result.errors if "Collection timed out" not in line.message]
    if not errors:
        return
    if strict:
        first = errors[0]
        match = re.search(r"Permission denied: \[([A-Z_]+)\]", first.message)
        if match:
            raise PermissionDeniedError(
                f"the query needs the {match.group(1)} permission: {first.message}",
                permission=match.group(1),
                hint=f"grant it with: velociraptor acl grant {user} "
                     f"'{{\"{match.group(1).lower()}\": true}}' --merge, or use a role "
                     "that has it",
            )
        raise VQLRuntimeError(
            "the server reported errors while running the query:\n"
            + "\n".join(f"  {line.message}" for line in errors),
            result=result,
            hint="the rows that were returned are in err.partial; strict=False only warns",
        )
    shown = "\n".join(f"  {line.message}" for line in errors[:5])
    more = f"\n  ... and {len(errors) - 5} more (see result.errors)" if len(errors) > 5 else ""
    warnings.warn(f"the server logged {len(errors)} error(s) while running the query:\n"
                  f"{shown}{more}", VQLWarning, stacklevel=stacklevel)


def _strip_markup(text: str) -> str:
    return re.sub(r"</?[a-z]*>", "", text)
