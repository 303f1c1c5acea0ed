"""The Query RPC's message stream, as Velociraptor's ``api/query.go`` + vfilter produce it.

One ``QueryStream`` per call.  Its iterator yields, in order: the log ``Starting query
execution.``; for each VQLRequest and each statement in it, the engine's logs and, for a SELECT,
its parts - each preceded by ``Time <s>: <Name>: Sending response part <n> <bytes> (<rows> rows).``
A part ships when a new row arrives and the batch already holds ``max_row`` rows, when the
``max_wait`` timer fires with rows pending (0 means 10 s), and always at the end of the statement
(so an empty SELECT still sends ``[]``).  ``query_id`` counts LET statements too.

The statement's row producer runs in its own thread feeding a bounded deque, so the timer fires
while a plugin blocks and memory stays bounded whatever the result size.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from velonb._proto import vql_pb2
from velonb.emulator import gojson

__all__ = ["Caller", "QueryStream", "go_duration", "humanize_bytes"]

_QUEUE_HIGH = 4096  # rows buffered between the producer thread and the batcher
_DEFAULT_MAX_WAIT = 10


def humanize_bytes(size: int) -> str:
    """``humanize.Bytes`` of go-humanize v1.0.1 (SI units, one decimal below 10)."""
    if size < 10:
        return f"{size} B"
    import math

    exponent = math.floor(math.log(size) / math.log(1000))
    suffix = ("B", "kB", "MB", "GB", "TB", "PB", "EB")[exponent]
    value = math.floor(size / math.pow(1000, exponent) * 10 + 0.5) / 10
    return f"{value:.1f} {suffix}" if value < 10 else f"{value:.0f} {suffix}"


def go_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String()`` (e.g. ``2.000318625s``, ``1m0.5s``, ``150ms``)."""
    sign = "-" if nanoseconds < 0 else ""
    value = abs(nanoseconds)
    if value == 0:
        return "0s"
    if value < 1_000_000_000:
        for scale, unit, width in ((1_000_000, "ms", 6), (1_000, "\u00b5s", 3), (1, "ns", 0)):
            if value >= scale:
                whole, frac = divmod(value, scale)
                tail = f".{frac:0{width}d}".rstrip("0") if frac else ""
                return f"{sign}{whole}{tail}{unit}"
    seconds, frac = divmod(value, 1_000_000_000)
    text = f"{seconds % 60}" + (f".{frac:09d}".rstrip("0") if frac else "") + "s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes >= 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Caller:
    """Who runs the query and with what rights in which org."""

    principal: str
    permissions: frozenset[str]
    org_id: str = "root"
    org_name: str = "<root>"


class _RowPump(threading.Thread):
    """Runs one statement in its own thread, pushing rows into a bounded deque."""

    def __init__(
        self,
        run: Callable[[], Iterator[dict[str, Any]] | None],
        cancel: threading.Event,
        wake: threading.Event,
        log: Callable[[str], None],
    ) -> None:
        super().__init__(name="velonb-vql-rows", daemon=True)
        self.buf: collections.deque[dict[str, Any]] = collections.deque()
        self.finished = False
        self.space = threading.Event()
        self.space.set()
        self._run = run
        self._cancel = cancel
        self._wake = wake
        self._log = log

    def run(self) -> None:
        buf, wake, cancel, space = self.buf, self._wake, self._cancel, self.space
        try:
            rows = self._run()
            if rows is None:
                return
            try:
                for row in rows:
                    if cancel.is_set():
                        break
                    buf.append(row)
                    if not wake.is_set():
                        wake.set()
                    if len(buf) >= _QUEUE_HIGH:
                        space.clear()
                        while len(buf) >= _QUEUE_HIGH and not cancel.is_set():
                            space.wait(0.05)
            finally:
                close = getattr(rows, "close", None)
                if close is not None:
                    close()
        except Exception as err:  # an engine bug must not kill the stream silently
            self._log(f"ERROR:{type(err).__name__}: {err}")
        finally:
            self.finished = True
            wake.set()


class QueryStream:
    """Iterate to get the VQLResponse messages of one Query call; ``cancel()`` on client loss."""

    def __init__(self, args: Any, caller: Caller, *, world: Any = None) -> None:
        self._args = args
        self._caller = caller
        self._world = world
        self._max_row = int(args.max_row)
        self._max_wait = int(args.max_wait) or _DEFAULT_MAX_WAIT
        self._logs: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._cancel = threading.Event()  # the scope's context: timeout or client gone
        self._client_gone = threading.Event()
        self._log_lock = threading.Lock()
        self._pump: _RowPump | None = None

    # -- context ------------------------------------------------------------------------
    def cancel(self) -> None:
        """The client went away: stop producers now, send nothing more."""
        self._client_gone.set()
        self._cancel.set()
        self._wake.set()
        pump = self._pump
        if pump is not None:
            pump.space.set()

    def log(self, message: str) -> None:
        """The scope logger: a ``{timestamp, log}`` message unless the context is done."""
        if self._cancel.is_set():
            return
        if not message.endswith("\n"):
            message += "\n"
        with self._log_lock:
            self._logs.append(vql_pb2.VQLResponse(timestamp=_now_us(), log=message))
        self._wake.set()

    def _on_timeout(self, started_ns: int) -> None:
        if self._cancel.is_set():
            return
        elapsed = go_duration(time.perf_counter_ns() - started_ns)
        self.log(f"collect: <red>Timeout Error:</> Collection timed out after {elapsed}")
        self._cancel.set()
        self._wake.set()

    def _drain_logs(self) -> Iterator[Any]:
        logs = self._logs
        while logs:
            yield logs.popleft()

    # -- the stream ---------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        timer: threading.Timer | None = None
        if self._args.timeout > 0:
            timer = threading.Timer(
                float(self._args.timeout), self._on_timeout, args=(time.perf_counter_ns(),)
            )
            timer.daemon = True
            timer.start()
        try:
            for message in self._run():
                if self._client_gone.is_set():
                    return
                yield message
            if not self._client_gone.is_set():
                yield from self._drain_logs()
        finally:
            if timer is not None:
                timer.cancel()
            self._cancel.set()
            pump = self._pump
            if pump is not None:
                pump.space.set()

    def _make_scope(self) -> Any:
        from velonb.emulator import vql

        env = {item.key: item.value for item in self._args.env}
        caller = self._caller
        return vql.Scope(
            env,
            principal=caller.principal,
            permissions=caller.permissions,
            org_id=caller.org_id,
            org_name=caller.org_name,
            log=self.log,
            cancel=self._cancel,
            world=self._world,
            registry=getattr(self._world, "registry", None),
        )

    def _run(self) -> Iterator[Any]:
        from velonb.emulator import vql

        scope = self._make_scope()
        self.log("Starting query execution.")
        for request in self._args.Query:
            try:
                statements = vql.parse(request.VQL)
            except vql.VQLParseError as err:
                self.log(f"VQL Error: {err}.")
                return
            query_start = _now_us()
            for query_id, statement in enumerate(statements):
                yield from self._drain_logs()
                if self._cancel.is_set():
                    # Go still runs the statement on a done context: a SELECT ships "[]".
                    if statement.let_name is None:
                        yield self._response(request, query_id, 0, "[]", [])
                    continue
                yield from self._statement(scope, request, query_id, statement, query_start)
        yield from self._drain_logs()

    def _response(
        self, request: Any, query_id: int, part: int, payload: str, columns: list[str]
    ) -> Any:
        return vql_pb2.VQLResponse(
            Response=payload,
            Columns=columns,
            Query=request,
            timestamp=_now_us(),
            query_id=query_id,
            part=part,
        )

    def _ship_encoded(
        self, request: Any, query_id: int, encoded: Any, query_start: int
    ) -> Iterator[Any]:
        """Ship rows the world encoded already, in parts of ``max_row`` rows."""
        for part, (payload, columns, count, size) in enumerate(encoded.parts(self._max_row)):
            if self._cancel.is_set():
                return
            response = self._response(request, query_id, part, payload, columns)
            self.log(
                f"Time {(response.timestamp - query_start) // 1_000_000}: {request.Name}: "
                f"Sending response part {part} {humanize_bytes(size)} ({count} rows)."
            )
            yield from self._drain_logs()
            yield response

    def _statement(
        self, scope: Any, request: Any, query_id: int, statement: Any, query_start: int
    ) -> Iterator[Any]:
        from velonb.emulator import vql

        is_let = statement.let_name is not None
        fast = getattr(self._world, "fast_statement", None)
        if fast is not None and not is_let and self._max_row > 0:
            encoded = fast(statement, scope)  # pre-encoded rows (the world's large hunt)
            if encoded is not None:
                yield from self._ship_encoded(request, query_id, encoded, query_start)
                return
        zone = gojson.resolve_zone(_resolve(scope, "TZ"))
        pump = _RowPump(lambda: vql.execute(statement, scope), self._cancel, self._wake, self.log)
        self._pump = pump
        pump.start()
        buf, wake, cancel = pump.buf, self._wake, self._cancel
        max_row, max_wait = self._max_row, self._max_wait
        rows: list[dict[str, Any]] = []
        part = 0
        deadline = time.monotonic() + max_wait
        monotonic = time.monotonic

        def ship() -> Iterator[Any]:
            nonlocal rows, part
            if is_let:  # LET output is discarded by query.go
                rows = []
                part += 1
                return
            try:
                payload = gojson.dumps_rows(rows, zone)
            except (TypeError, ValueError) as err:
                self.log(f"Unable to serialize: {err}")
                return
            columns = list(rows[0].keys()) if rows else []
            size = len(payload) if payload.isascii() else len(payload.encode("utf-8"))
            response = self._response(request, query_id, part, payload, columns)
            self.log(
                f"Time {(response.timestamp - query_start) // 1_000_000}: {request.Name}: "
                f"Sending response part {part} {humanize_bytes(size)} ({len(rows)} rows)."
            )
            yield from self._drain_logs()
            yield response
            rows = []
            part += 1

        while True:
            if self._logs:
                yield from self._drain_logs()
            if cancel.is_set():
                break
            now = monotonic()
            if now >= deadline:
                if rows:
                    yield from ship()
                deadline = monotonic() + max_wait
                continue
            if buf:
                while buf:
                    row = buf.popleft()
                    if len(rows) >= max_row:
                        yield from ship()
                        deadline = monotonic() + max_wait
                    rows.append(row if isinstance(row, dict) else dict(row))
                    if len(rows) & 255 == 0 and (monotonic() >= deadline or self._logs):
                        break
                if not pump.space.is_set():
                    pump.space.set()
                continue
            if pump.finished:
                if buf:
                    continue
                break
            wake.clear()
            if buf or pump.finished or self._logs or cancel.is_set():
                continue
            wake.wait(max(0.0, deadline - monotonic()))
        pump.space.set()
        if self._client_gone.is_set():
            return
        yield from ship()  # the remaining batch always ships, even empty
        if not cancel.is_set():
            pump.join()
            yield from self._drain_logs()


def _resolve(scope: Any, name: str) -> Any:
    """A scope variable if the engine exposes a resolver (``TZ`` picks the JSON time zone)."""
    for attr in ("resolve", "get"):
        getter = getattr(scope, attr, None)
        if callable(getter):
            try:
                value = getter(name)
            except (KeyError, LookupError):
                return None
            if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], bool):
                return value[0] if value[1] else None
            return value
    env = getattr(scope, "env", None)
    return env.get(name) if isinstance(env, dict) else None
