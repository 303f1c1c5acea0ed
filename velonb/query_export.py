"""``Connection.query_to_parquet``: a result streamed into plain Parquet, whatever its size.

Parts are decoded by the query's decode workers straight into Arrow tables
(`velonb._frames_table.part_table`), handed over in order and written by `ParquetSink` on its
own thread; a failure keeps nothing and says so.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from velonb.errors import (
    CacheError,
    QueryError,
    QueryInterrupted,
    QueryTimeout,
    ResponseDecodeError,
    StreamBrokenError,
)
from velonb.query_result import Progress, QueryResult

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from velonb.cache_sink import ParquetSummary

#: written parts that may wait for the writer thread before the receiving side waits for it
_MAX_PENDING_WRITES = 8


class ExportMixin:
    """``query_to_parquet``; :class:`~velonb.query.Connection` inherits it."""

    if TYPE_CHECKING:
        def build_request(self, vql: str, *, env: Mapping[str, Any] | None = None,
                          org_id: str | None = None, timeout: float | None = None,
                          ) -> Any: ...

        def _run(self, request: Any, result: QueryResult, *, timeout: float | None,
                 max_rows: int | None, progress: Callable[[Progress], None] | None,
                 streaming: bool = False, duration: float | None = None,
                 tables: Callable[[pa.Table], None] | None = None,
                 ) -> Iterator[pd.DataFrame]: ...

        def _finish(self, result: QueryResult, *, strict: bool) -> None: ...

    def query_to_parquet(
        self,
        vql: str,
        path: str | os.PathLike[str],
        *,
        env: Mapping[str, Any] | None = None,
        partition_by: str | list[str] | None = None,
        org_id: str | None = None,
        timeout: float | None = None,
        max_rows: int | None = None,
        progress: Callable[[Progress], None] | None = None,
        overwrite: bool = False,
    ) -> ParquetSummary:
        """Stream a result straight to Parquet with bounded memory (for results beyond RAM).

        ``path`` becomes one Parquet file, or with ``partition_by`` a hive-partitioned dataset
        directory (``Col=value/part-N.parquet``). Columns that appear later, or change type,
        are merged into one schema (earlier files are rewritten). The output is plain Parquet:
        pyarrow.dataset, DuckDB, Polars or Spark read it without velonb. Every SELECT of the
        query lands in the same output. Returns a summary (rows, files, schema, logs).
        """
        timeout = timeout or 0  # exports are deliberate and may be long: no default limit
        request = self.build_request(vql, env=env, org_id=org_id, timeout=timeout)
        result = QueryResult(vql=vql, org_id=request.org_id, max_rows=max_rows)
        try:
            return self._export(request, result, path, partition_by=partition_by,
                                overwrite=overwrite, timeout=timeout, max_rows=max_rows,
                                progress=progress)
        except (QueryInterrupted, QueryTimeout, ResponseDecodeError, StreamBrokenError) as err:
            if err.result is result:
                _export_failed(err, path)
            raise

    def _export(self, request: Any, result: QueryResult, path: str | os.PathLike[str], *,
                partition_by: str | list[str] | None, overwrite: bool, timeout: float,
                max_rows: int | None, progress: Callable[[Progress], None] | None,
                ) -> ParquetSummary:
        from velonb.cache_sink import ParquetSink

        with ParquetSink(path, partition_by=partition_by, overwrite=overwrite) as sink:
            # the sink writes on its own thread, a few parts behind the decoding (converting a
            # part to Arrow and Parquet is ~40% of the work); its errors surface here, in order
            writing: collections.deque[Future[None]] = collections.deque()

            def written() -> None:
                """Wait for the oldest write; its OSError (a full disk...) as a CacheError."""
                try:
                    writing.popleft().result()
                except OSError as err:
                    raise CacheError(
                        f"could not write {sink.path}: {err.strerror or err}; the query was "
                        f"cancelled after {sink.rows} rows and no output was kept",
                        hint="free some space or choose another path, then run it again",
                    ) from err

            with ThreadPoolExecutor(1, thread_name_prefix="velonb-parquet") as writer:

                def write(table: pa.Table) -> None:
                    writing.append(writer.submit(sink.write_table, table))
                    while writing and (len(writing) > _MAX_PENDING_WRITES or writing[0].done()):
                        written()

                try:
                    for _ in self._run(request, result, timeout=timeout, max_rows=max_rows,
                                       progress=progress, tables=write):
                        pass
                    while writing:
                        written()
                finally:
                    for pending in writing:  # after a failure: stop before the sink cleans up
                        pending.cancel()
            self._finish(result, strict=False)
        return sink.summary(result)


def _export_failed(err: QueryError, path: str | os.PathLike[str]) -> None:
    """Reword a query_to_parquet failure: an export keeps nothing, so there is no err.partial."""
    step = {
        QueryInterrupted: "the server query was cancelled",
        QueryTimeout: "raise timeout= or narrow the query, then run the export again",
        ResponseDecodeError: "run the export again, or report the server version",
        StreamBrokenError: "run the export again when the server is back",
    }
    then = next(text for kind, text in step.items() if isinstance(err, kind))
    err.hint = f"nothing was written to {os.fspath(path)} (an export is all or nothing); {then}"
    err.args = (f"{err.message}\n  -> {err.hint}",)

