"""Connection: run VQL over the API's streaming Query RPC and get typed DataFrames back."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

from velonb.errors import (
    QueryError,
    QueryInterrupted,
    QueryTimeout,
    ResponseDecodeError,
    VelonbError,
)
from velonb.fleet import FleetMixin
from velonb.params import PRELUDE_NAME, Bindings, bind
from velonb.query_export import ExportMixin
from velonb.query_result import (
    REQUEST_NAME,
    LogLine,
    Progress,
    QueryResult,
    StatementResult,
    _syntax_error,
    _timestamp,
    classify_log,
    finish_result,
)

if TYPE_CHECKING:
    import os

    import grpc
    import pandas as pd
    import pyarrow as pa

    from velonb.cache import Cache, Policy
    from velonb.config import ApiClientConfig
    from velonb.frames import DecodedPart, FrameBuilder

# Batches of 1000 rows or whatever arrived within a second: never the one-row-per-message default.
DEFAULT_BATCH_ROWS = 1000
DEFAULT_BATCH_WAIT = 1
# execute()/query() are bounded by default, like the Velociraptor GUI's 10-minute notebook cells:
# a stalled but live server must never hang a query forever. timeout=0 means no limit; event
# streams (stream()) and exports (query_to_parquet()) have no default limit.
DEFAULT_QUERY_TIMEOUT = 600.0
# Extra client-side deadline beyond the server-side timeout, in case the server ignores it.
TIMEOUT_GRACE_S = 30.0
_MAX_PENDING_PARTS = 8
#: parts decoded at once (pyarrow parses with the GIL released: one part per core)
_DECODE_WORKERS = 2

class Connection(FleetMixin, ExportMixin):
    """A connection to one Velociraptor API server: one mTLS channel, shared safely by threads."""

    def __init__(self, config: ApiClientConfig, *, org_id: str | None = None,
                 default_timeout: float = DEFAULT_QUERY_TIMEOUT) -> None:
        from velonb import transport
        from velonb._proto import api_pb2_grpc, velonb_wire_pb2, vql_pb2

        self.config = config
        self.org_id = org_id or ""
        #: seconds; used by execute()/query() when they get timeout=None (0: no limit)
        self.default_timeout = default_timeout
        self._channel: grpc.Channel | None = transport.create_channel(config)
        self._stub = api_pb2_grpc.APIStub(self._channel)
        # The Query stream read as VQLResponseBytes (protos/velonb_wire.proto): the same
        # messages, but each JSON part arrives as bytes for the decoder, never as a str.
        self._query_call = self._channel.unary_stream(
            "/proto.API/Query",
            request_serializer=vql_pb2.VQLCollectorArgs.SerializeToString,
            response_deserializer=velonb_wire_pb2.VQLResponseBytes.FromString,
        )
        self._lock = threading.Lock()

    # -- life cycle ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the channel; running calls are cancelled."""
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()

    @property
    def closed(self) -> bool:
        return self._channel is None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        org = self.org_id or "root"
        state = "closed" if self.closed else "open"
        return (f"<velonb.Connection user={self.config.user!r} server={self.config.target!r} "
                f"org={org!r} {state}>")

    def _require_open(self) -> None:
        if self._channel is None:
            raise VelonbError("this Connection is closed",
                              hint="make a new one with velonb.connect()")

    # -- requests --------------------------------------------------------------------------------

    def build_request(
        self,
        vql: str,
        *,
        env: Mapping[str, Any] | None = None,
        org_id: str | None = None,
        timeout: float | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        batch_wait: int = DEFAULT_BATCH_WAIT,
    ) -> Any:
        """The exact ``VQLCollectorArgs`` a query sends (shown by dry runs)."""
        from velonb._proto import vql_pb2

        if not isinstance(vql, str) or not vql.strip():
            raise QueryError("the VQL text is empty",
                             hint="pass a query such as SELECT * FROM info()")
        bindings: Bindings = bind(env)
        requests = []
        if bindings.prelude:
            requests.append(vql_pb2.VQLRequest(Name=PRELUDE_NAME, VQL=bindings.prelude))
        requests.append(vql_pb2.VQLRequest(Name=REQUEST_NAME, VQL=vql))
        return vql_pb2.VQLCollectorArgs(
            Query=requests,
            env=[vql_pb2.VQLEnv(key=k, value=v) for k, v in bindings.env.items()],
            max_row=batch_rows,
            max_wait=batch_wait,
            timeout=int(self.default_timeout if timeout is None else timeout),
            org_id=self.org_id if org_id is None else org_id,
        )

    def check(self, timeout: float = 10.0) -> bool:
        """True when the server answers the health check (mTLS works and it is SERVING)."""
        import grpc

        from velonb import transport
        from velonb._proto import api_pb2

        self._require_open()
        try:
            reply = self._stub.Check(api_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError as err:
            raise transport.translate_error(err, self.config) from None
        return bool(reply.status == api_pb2.HealthCheckResponse.SERVING)

    def query(self, vql: str, **kwargs: Any) -> pd.DataFrame:
        """Run ``vql`` and return the DataFrame of its final SELECT statement.

        Keyword arguments are those of :meth:`execute`.
        """
        return self.execute(vql, **kwargs).frame

    def execute(
        self,
        vql: str,
        *,
        env: Mapping[str, Any] | None = None,
        org_id: str | None = None,
        timeout: float | None = None,
        max_rows: int | None = None,
        strict: bool = False,
        progress: Callable[[Progress], None] | None = None,
        cache: bool | str | dt.timedelta | Policy | None = None,
        refresh: bool = False,
        cache_dir: Cache | str | os.PathLike[str] | None = None,
    ) -> QueryResult:
        """Run ``vql`` and return every statement's frame, all server logs and timings.

        ``env`` binds Python values as VQL variables (see :mod:`velonb.params`). ``timeout`` is
        the server-side limit in seconds (:class:`QueryTimeout` carries the partial rows); None
        uses ``default_timeout`` (600 s unless changed), 0 means no limit.
        ``max_rows`` stops receiving after that many rows (``result.truncated``). Server
        ``ERROR:`` log lines are warnings (:class:`VQLWarning`) unless ``strict=True``, which
        raises :class:`VQLRuntimeError` (or :class:`PermissionDeniedError`) instead.

        ``cache=True`` (no expiry), ``"2h"`` or a timedelta answers from the Parquet cache when
        it holds a fresh result, else runs the query and stores it; ``refresh=True`` always runs
        and stores. ``cache_dir`` picks the cache (default: velonb.cache.default_cache_dir()).
        In offline mode (velonb.offline(), $VELONB_OFFLINE=1) every query is answered from the
        cache, without the network; a miss raises :class:`~velonb.errors.CacheMiss`.
        """
        from velonb.cache import Policy, is_offline

        policy = Policy.from_args(cache, refresh)
        if policy is None and not is_offline():
            return self._execute_live(vql, env=env, org_id=org_id, timeout=timeout,
                                      max_rows=max_rows, strict=strict, progress=progress)
        from velonb.cache_run import execute_cached

        return execute_cached(
            self.config, vql, env=env, org_id=self.org_id if org_id is None else org_id,
            max_rows=max_rows, policy=policy, cache=_cache(cache_dir),
            live=lambda: self._execute_live(vql, env=env, org_id=org_id, timeout=timeout,
                                            max_rows=max_rows, strict=strict,
                                            progress=progress),
            finish=lambda result: self._finish(result, strict=strict))

    def _execute_live(self, vql: str, *, env: Mapping[str, Any] | None, org_id: str | None,
                      timeout: float | None, max_rows: int | None, strict: bool,
                      progress: Callable[[Progress], None] | None) -> QueryResult:
        timeout = self.default_timeout if timeout is None else timeout
        request = self.build_request(vql, env=env, org_id=org_id, timeout=timeout)
        result = QueryResult(vql=vql, org_id=request.org_id, max_rows=max_rows)
        for _ in self._run(request, result, timeout=timeout, max_rows=max_rows,
                           progress=progress):
            pass
        self._finish(result, strict=strict)
        return result

    def stream(
        self,
        vql: str,
        *,
        env: Mapping[str, Any] | None = None,
        org_id: str | None = None,
        timeout: float | None = None,
        max_rows: int | None = None,
        duration: float | None = None,
        strict: bool = False,
        progress: Callable[[Progress], None] | None = None,
        result: QueryResult | None = None,
        cache: bool | str | dt.timedelta | Policy | None = None,
        refresh: bool = False,
        cache_dir: Cache | str | os.PathLike[str] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Yield a DataFrame per part as it arrives (for event queries that never end).

        Stops after ``max_rows`` rows (the last frame is cut to fit) and/or ``duration`` seconds,
        cancelling the query on the server; closing the generator early cancels it too.
        Pass a ``result`` to read the server logs and timings of the stream (its rows are only
        in the yielded frames). ``cache``/``refresh`` work as in :meth:`execute`, but only a
        bounded stream (``max_rows`` or ``duration``) is cached; a hit yields one frame.
        """
        from velonb.cache import Policy, is_offline

        timeout = timeout or 0  # event streams have no default limit: duration/max_rows bound them
        request = self.build_request(vql, env=env, org_id=org_id, timeout=timeout)
        if result is None:
            result = QueryResult(vql=vql, org_id=request.org_id, max_rows=max_rows)
        else:
            result.vql, result.org_id, result.max_rows = vql, request.org_id, max_rows
        run = result

        def live() -> Iterator[pd.DataFrame]:
            yield from self._run(request, run, timeout=timeout, max_rows=max_rows,
                                 progress=progress, streaming=True, duration=duration)
            self._finish(run, strict=strict)

        policy = Policy.from_args(cache, refresh)
        if policy is None and not is_offline():
            yield from live()
            return
        from velonb.cache_run import stream_cached

        yield from stream_cached(self.config, vql, env=env, org_id=request.org_id,
                                 max_rows=max_rows, duration=duration, policy=policy, live=live,
                                 result=result, cache=_cache(cache_dir))

    # -- the streaming loop ----------------------------------------------------------------------

    def _run(
        self,
        request: Any,
        result: QueryResult,
        *,
        timeout: float | None,
        max_rows: int | None,
        progress: Callable[[Progress], None] | None,
        streaming: bool = False,
        duration: float | None = None,
        tables: Callable[[pa.Table], None] | None = None,
    ) -> Iterator[pd.DataFrame]:
        """Receive every message of one Query call into ``result``.

        In streaming mode each part is decoded at once and yielded as a DataFrame; otherwise parts
        are decoded on worker threads (overlapping the next receive) into per-statement builders,
        or, given ``tables``, into Arrow tables of plain Parquet types handed to it in order
        (cut to ``max_rows``) and not kept.
        """
        import grpc

        from velonb import transport
        from velonb.frames import FrameBuilder, frame_from_parts

        self._require_open()
        deadline = (timeout + TIMEOUT_GRACE_S) if timeout else None
        call = self._query_call(request, timeout=deadline)
        counters = Progress()
        statements: dict[tuple[str, int], StatementResult] = {}
        pending: list[tuple[Future[DecodedPart | TablePart | None], FrameBuilder]] = []
        decoder = None if streaming else ThreadPoolExecutor(_DECODE_WORKERS,
                                                            thread_name_prefix="velonb-decode")
        stopped_by_us = threading.Event()
        decode_failed = threading.Event()  # later parts are not decoded: no gap in the partial
        timer: threading.Timer | None = None
        if duration is not None:
            def _stop_after_duration() -> None:
                stopped_by_us.set()
                call.cancel()
            timer = threading.Timer(duration, _stop_after_duration)
            timer.daemon = True
            timer.start()
        received_any = False
        pending_upper = 0
        start = time.monotonic()

        def settle(limit: int) -> None:
            """Wait until at most ``limit`` parts are still decoding; count their rows."""
            nonlocal pending_upper
            while len(pending) > limit:
                future, builder = pending.pop(0)
                try:
                    decoded = future.result()
                except ResponseDecodeError as err:
                    err.result = result
                    raise
                if isinstance(decoded, TablePart):
                    builder.remember_hint(decoded.hint)
                    table = decoded.table
                    if max_rows is not None and counters.rows + table.num_rows > max_rows:
                        table = table.slice(0, max(max_rows - counters.rows, 0))
                    counters.rows += decoded.table.num_rows
                    if table.num_rows:
                        assert tables is not None
                        tables(table)
                        result.exported_rows += table.num_rows
                elif decoded is not None:
                    counters.rows += builder.append(decoded)
            if not pending:
                pending_upper = 0

        try:
            for response in call:
                received_any = True
                if response.log:
                    message = response.log.rstrip("\n")
                    line = LogLine(_timestamp(response.timestamp), message, classify_log(message))
                    result.logs.append(line)
                    counters.last_log = message
                    if message.startswith("VQL Error:"):
                        settle(0)
                        raise _syntax_error(message, result)
                    if progress:
                        progress(counters)
                    continue
                query = response.Query
                if query.Name == PRELUDE_NAME:
                    continue
                key = (query.Name, response.query_id)
                statement = statements.get(key)
                if statement is None:
                    statement = StatementResult(query.Name, response.query_id, query.VQL,
                                                FrameBuilder())
                    statements[key] = statement
                    result.statements.append(statement)
                statement.parts += 1
                payload = response.Response
                counters.parts += 1
                counters.bytes += len(payload)
                result.bytes_received += len(payload)
                if result.first_row_after is None and len(payload) > 2:
                    result.first_row_after = time.monotonic() - start
                if streaming:
                    try:
                        frame = frame_from_parts([(payload, list(response.Columns))])
                    except ResponseDecodeError as err:
                        err.result = result
                        raise
                    counters.rows += len(frame)
                    if max_rows is not None and counters.rows >= max_rows:
                        frame = frame.iloc[: len(frame) - (counters.rows - max_rows)]
                        counters.rows = max_rows
                    if progress:
                        progress(counters)
                    if len(frame):
                        yield frame
                    if max_rows is not None and counters.rows >= max_rows:
                        stopped_by_us.set()
                        break
                    continue
                assert decoder is not None
                if decode_failed.is_set():
                    settle(0)  # raises the decode error: stop receiving
                pending.append((decoder.submit(_decode_part, statement.builder, payload,
                                               list(response.Columns), statement.parts - 1,
                                               decode_failed, tables is not None),
                                statement.builder))
                if max_rows is not None:  # a scan of the payload: only when it matters
                    pending_upper += _rows_upper_bound(payload)
                settle(_MAX_PENDING_PARTS)
                if max_rows is not None and counters.rows + pending_upper > max_rows:
                    settle(0)  # the estimate is an upper bound: get exact counts before stopping
                    if counters.rows > max_rows:
                        result.truncated = True
                        stopped_by_us.set()
                        break
                if progress:
                    progress(counters)
            else:
                result.complete = True
            settle(0)
        except KeyboardInterrupt as interrupt:
            call.cancel()
            _drain_quietly(pending, result)
            result.elapsed = time.monotonic() - start
            if isinstance(interrupt, QueryInterrupted):
                raise
            raise QueryInterrupted(
                f"query interrupted after {result.rows} rows; it was cancelled on the server",
                result=result,
                hint="the rows received so far are in err.partial (all statements: err.result)",
            ) from None
        except grpc.RpcError as err:
            _drain_quietly(pending, result)
            result.elapsed = time.monotonic() - start
            if stopped_by_us.is_set() and err.code() == grpc.StatusCode.CANCELLED:
                result.complete = True  # the duration ran out: a normal end for an event query
            elif err.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise QueryTimeout(
                    f"no answer within the {timeout}s timeout (+{TIMEOUT_GRACE_S:.0f}s grace); "
                    f"the query was cancelled after {result.rows} rows",
                    result=result,
                    hint="raise timeout=, or narrow the query; err.partial has the rows so far",
                ) from None
            else:
                raise transport.translate_error(
                    err, self.config, org_id=request.org_id, result=result,
                    mid_stream=received_any,
                ) from None
        finally:
            if timer is not None:
                timer.cancel()
            call.cancel()
            if decoder is not None:
                decoder.shutdown(wait=True)
            result.elapsed = time.monotonic() - start
        if max_rows is not None and not streaming:
            for statement in result.statements:
                if statement.rows > max_rows:
                    statement._frame = statement.frame.iloc[:max_rows].reset_index(drop=True)
                    result.truncated = True

    def _finish(self, result: QueryResult, *, strict: bool) -> None:
        """Raise for the server's timeout line; surface ERROR lines as warnings or errors."""
        finish_result(result, strict=strict, user=self.config.user, stacklevel=5)


def _cache(cache_dir: Cache | str | os.PathLike[str] | None) -> Cache | None:
    from velonb.cache import Cache

    if cache_dir is None or isinstance(cache_dir, Cache):
        return cache_dir
    return Cache(cache_dir)


def _rows_upper_bound(payload: bytes) -> int:
    """An upper bound of the rows in a compact JSON array part, without parsing it.

    Rows are separated by ``},{``; nested lists of objects add more, never fewer, occurrences.
    """
    if len(payload) <= 2:
        return 0
    return payload.count(b"},{") + 1


class TablePart(NamedTuple):
    """A part decoded for ``query_to_parquet``: its table and the schema hint for the next."""

    table: pa.Table
    hint: pa.Schema | None


def _decode_part(builder: FrameBuilder, payload: bytes, columns: list[str], index: int,
                 failed: threading.Event, as_table: bool = False
                 ) -> DecodedPart | TablePart | None:
    """Decode one part on a decoder thread, unless an earlier part of the call failed.

    Parts are decoded out of order by several workers but appended in order by the receiving
    thread (`settle`, `_drain_quietly`), so the rows never have a gap. ``as_table``: an Arrow
    table of plain Parquet types (`velonb._frames_table.part_table`) instead.
    """
    if failed.is_set():
        return None
    try:
        if not as_table:
            return builder.decode(payload, columns, index)
        from velonb._frames_table import part_table

        part = builder.decode(payload, columns, index, widen=False)
        return TablePart(part_table(part), part.hint)
    except ResponseDecodeError:
        failed.set()
        raise


def _drain_quietly(pending: list[tuple[Future[DecodedPart | TablePart | None], FrameBuilder]],
                   result: QueryResult) -> None:
    """Keep the parts decoded so far, in order, up to the first that failed or was skipped
    (an export's are only counted: its output is removed after a failure)."""
    keep = True
    for future, builder in pending:
        try:
            decoded = future.result()
        except Exception:  # secondary to the failure being raised
            keep = False
            continue
        if keep and decoded is not None:
            if isinstance(decoded, TablePart):
                result.exported_rows += decoded.table.num_rows
            else:
                builder.append(decoded)
        else:
            keep = False
    pending.clear()


def connect(
    config: ApiClientConfig | str | Any | None = None,
    *,
    profile: str | None = None,
    org_id: str | None = None,
    password: str | None = None,
    default_timeout: float = DEFAULT_QUERY_TIMEOUT,
) -> Connection:
    """Connect to a Velociraptor API server.

    ``default_timeout`` (seconds) bounds every execute()/query() that passes no ``timeout``.

    ``config`` is an api_client.yaml path, an :class:`ApiClientConfig`, a dict of its keys, or
    None to discover one: the ``profile`` argument, ``$VELONB_API_CONFIG``,
    ``$VELOCIRAPTOR_API_FILE``, ``$VELOCIRAPTOR_API_CONFIG``, ``$VELONB_PROFILE``, then
    ``~/.pyvelociraptorrc``.
    """
    from velonb.config import ApiClientConfig, config_from_dict, load_config

    if isinstance(config, ApiClientConfig):
        resolved = config
    elif isinstance(config, Mapping):
        resolved = config_from_dict(config, password=password)
    else:
        resolved = load_config(config, profile=profile, password=password)
    return Connection(resolved, org_id=org_id, default_timeout=default_timeout)
