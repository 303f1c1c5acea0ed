"""``%%vql``, ``%vql`` and ``%vql_config``: thin IPython magics over :class:`velonb.Connection`.

Argument parsing lives in :mod:`velonb.magic_args`, rendering in :mod:`velonb.display`; every cell
ends in the same ``Connection.execute()`` / ``Connection.stream()`` as Python code.

Errors: bad options raise IPython's ``UsageError`` (one red line). velonb errors are re-raised
as they are (so the cell fails and Run-All stops) with a short rendering instead of a traceback,
unless ``--debug`` or the ``debug`` setting asks for the full one.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    cell_magic,
    line_cell_magic,
    line_magic,
    magics_class,
    needs_local_scope,
)
from IPython.core.magic import no_var_expand as _no_var_expand
from traitlets import TraitError

from velonb import display as show
from velonb.errors import QueryError, VelonbError, VQLWarning
from velonb.magic_args import (
    VQL_OPTIONS,
    MagicArgumentError,
    Template,
    VqlArgs,
    expand_parameters,
    parse_config_line,
    parse_vql_line,
    resolve_parameters,
)
from velonb.magics_artifact import ARTIFACT_HELP
from velonb.settings import Velonb

if TYPE_CHECKING:
    import pandas as pd

    from velonb.cache import Cache, Policy
    from velonb.query import Connection, Progress, QueryResult

RESULT_VAR = "_vql_result"
PARTIAL_VAR = "_vql_partial"
REQUEST_VAR = "_vql_request"

VQL_HELP = """Run VQL on the Velociraptor server; the result is a pandas DataFrame.

Forms::

    %%vql [DEST] [options]          cell form: the VQL is the cell body
    VQL ...
    %vql [options] VQL              line form: df = %vql SELECT * FROM clients()

Without DEST the DataFrame is displayed (at most display_rows rows; the summary says when
rows are hidden) and is the cell's result. With DEST it is stored in that variable and a
one-line summary is shown. Several SELECT statements show each result; DEST (or the cell
result) is the last one. After every cell, _vql_result is the velonb QueryResult: all
statements (.frames), the server log (.logs, .errors), timings (.elapsed).

Parameters: {name} or {name.attr} (no spaces, outside quotes and comments) binds the Python
value of `name` from the notebook as a VQL variable through the query env: the value never
enters the VQL text, so quotes, newlines or VQL in it stay a literal value. Types arrive typed:
str, int, float, bool, None, list/tuple/set, dict, datetime/date, pandas Series/Index/Timestamp,
numpy arrays and scalars, and a DataFrame (a list of row dicts). An unknown name is an error
before anything is sent. {{name}} writes a literal {name}. Every other brace is VQL, so
foreach(row=..., query={ SELECT ... }) works as usual. Do not quote a parameter:
WHERE Name = {name}, not '{name}' (that is an error). --dry-run shows what would be sent.

While the query runs a progress line shows rows, parts, MB, elapsed and the latest server log
line. A kernel interrupt cancels the query on the server; the rows received so far are kept in
_vql_partial (with --stream also in DEST) and the cell fails, so Run-All stops there. A
timeout does the same. Server ERROR lines are shown in a log panel under the summary (or fail
the cell with --strict). Errors are short messages; --debug shows the full traceback.

Cache: --cache [TTL] replays a cached result (Parquet + JSON sidecar, see velonb.cache) when
one younger than TTL exists, else runs the query and stores it; --refresh always runs and
stores. %vql_config --cache 2h makes that the session default, %vql_config --offline (or
VELONB_OFFLINE=1, or a case unpacked with `velonb unpack`) answers every cell from the cache
without connecting. The summary says when a result came from the cache, and how old it is.

Session defaults: %vql_config (see %vql_config?) or %config Velonb.<setting> = value.

Options:
"""


def _options_help() -> str:
    lines = []
    for flag, metavar, _, text in VQL_OPTIONS:
        head = f"{flag} {metavar}" if metavar else flag
        lines.append(f"  {head:<22} {text}")
    return "\n".join(lines)


VQL_HELP += _options_help() + "\n"

CONFIG_HELP = """Connect, set session defaults, or show the connection and settings.

    %vql_config                           show connection and settings (secrets masked)
    %vql_config CONFIG_PATH_OR_PROFILE    connect with an api_client.yaml or a saved profile
    %vql_config --org O1234               default org of every query
    %vql_config --timeout 600 --max-rows 100000 --display-rows 30 --strict --debug
    %vql_config timeout=600 display_rows=30      the same as NAME=VALUE

Settings are also traitlets: %config Velonb.timeout = 600 (%config Velonb lists them).
    %vql_config --cache 2h                cache every cell's result for 2 hours (on: forever)
    %vql_config --offline                 replay every cell from the cache; never connect
    %vql_config --cache-dir .velonb-cache a per-notebook cache directory

Settings: timeout, max_rows, display_rows, stream_rows, strict, debug, progress
(auto/notebook/terminal/off), cache (off/on/TTL/refresh/replay), offline, cache_dir and
cache_max_size. Without any %vql_config the first %%vql connects by discovery
(velonb.connect(): $VELONB_API_CONFIG, ... ~/.pyvelociraptorrc).
"""


def _present(err: BaseException, *, debug: bool, template: Template | None) -> BaseException:
    """Prepare a velonb error for the cell: a short rendering unless debugging."""
    if debug:
        if err.__context__ is not None:
            err.__suppress_context__ = False
        return err
    lines = show.error_lines(err, template)
    # IPython (and ipykernel) show _render_traceback_() instead of the traceback.
    setattr(err, "_render_traceback_", lambda: lines)  # noqa: B010
    return err


def _bindable(value: Any) -> Any:
    """A DataFrame becomes a list of row dicts (missing values as None); the rest as is."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        frame = value.astype(object).where(value.notna(), None)
        return frame.to_dict(orient="records")
    return value


@magics_class
class VelonbMagics(Magics):
    """The magics; the session (connection, default org, settings) lives on this object."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.settings = Velonb(parent=shell)
        self.connection: Connection | None = None
        self.org: str | None = None
        self._saved_rows: tuple[Any, Any] | None = None

    @property
    def ip(self) -> Any:
        """The shell these magics are registered on."""
        assert self.shell is not None
        return self.shell

    # -- session ---------------------------------------------------------------------------------

    def connect(self) -> Connection:
        """The session connection; the first call discovers the config (velonb.connect())."""
        if self.connection is None or self.connection.closed:
            from velonb.query import connect

            self.connection = connect()
        return self.connection

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None
        self._restore_display_rows()
        from velonb.cache import set_cache_dir, set_offline

        if self.settings.offline is not None:
            set_offline(None)
        if self.settings.cache_dir is not None:
            set_cache_dir(None)

    # -- cache -----------------------------------------------------------------------------------

    def _offline(self) -> bool:
        from velonb.cache import is_offline

        return is_offline() or self.settings.cache == "replay"

    def _policy(self, args: VqlArgs) -> Policy | None:
        from velonb.cache import Policy

        setting = self.settings.cache
        if setting in ("replay",):
            setting = "on"
        return Policy.from_args(args.cache if args.cache is not None else setting, args.refresh)

    def _cache(self) -> Cache:
        from velonb.cache import Cache

        return Cache(max_bytes=self.settings.cache_max_size)

    def _session(self, offline: bool) -> Connection | None:
        """The connection; offline, only if a config is at hand (it is never used to connect)."""
        if not offline:
            return self.connect()
        try:
            return self.connect()
        except VelonbError:
            return None

    def _store(self, name: str, value: Any) -> None:
        self.ip.user_ns[name] = value

    # -- %%vql -----------------------------------------------------------------------------------

    @needs_local_scope
    @_no_var_expand
    @line_cell_magic
    def vql(self, line: str, cell: str | None = None, local_ns: Any = None) -> Any:
        try:
            args = parse_vql_line(line, cell=cell is not None)
        except MagicArgumentError as err:
            raise UsageError(str(err)) from None
        if args.help:
            print(VQL_HELP)
            return None
        text = cell if cell is not None else args.vql
        if not text.strip():
            raise UsageError("%%vql: no VQL to run; write the query in the cell body"
                             if cell is not None else "%vql: no VQL after the options")
        debug = args.debug or self.settings.debug
        template: Template | None = None
        try:
            template = expand_parameters(text)
            namespace = {**self.ip.user_ns, **(local_ns or {})}
            env = {name: _bindable(value)
                   for name, value in resolve_parameters(template, namespace).items()}
            clash = sorted(set(env) & set(args.env))
            if clash:
                raise UsageError(f"%%vql: {clash} is both a {{parameter}} and an --env KEY")
            env.update(args.env)
            return self._run(args, template, env)
        except VelonbError as err:
            raise _present(err, debug=debug, template=template) from None

    def _run(self, args: VqlArgs, template: Template, env: dict[str, Any]) -> Any:
        from velonb.params import bind

        bindings = bind(env)  # unsupported types fail here, before connecting
        offline = self._offline()
        conn = self.connect() if args.dry_run else self._session(offline)
        org = args.org if args.org is not None else self.org
        timeout = args.timeout or self.settings.timeout
        max_rows = args.max_rows or self.settings.max_rows
        if args.dry_run:
            assert conn is not None
            request = conn.build_request(template.text, env=env, org_id=org, timeout=timeout)
            self._store(REQUEST_VAR, request)
            show_request = show.DryRun(request, bindings.describe(), template.params)
            from IPython.display import display

            display(show_request)
            return None
        assert conn is not None or offline
        if args.stream:
            return self._run_stream(args, conn, template, env, org, timeout, max_rows)
        reporter = show.ProgressReporter(self.shell, "off" if args.quiet else
                                         self.settings.progress)
        strict = args.strict or self.settings.strict
        try:
            with warnings.catch_warnings(), self._offline_scope(offline):
                warnings.simplefilter("ignore", VQLWarning)  # shown in the log panel instead
                if conn is None:
                    from velonb.cache_run import replay

                    result = replay(template.text, env=env, org_id=org, max_rows=max_rows,
                                    strict=strict, cache=self._cache())
                else:
                    result = conn.execute(template.text, env=env, org_id=org, timeout=timeout,
                                          max_rows=max_rows, strict=strict, progress=reporter,
                                          cache=self._policy(args), cache_dir=self._cache())
        except VelonbError as err:
            partial = err.result if isinstance(err, QueryError) else None
            reporter.finish(show.Line(f"⏹ stopped after {_rows(partial)} rows", "#a40"))
            if isinstance(err, QueryError):
                self._keep_partial(err, args.dest)
            raise
        self._store(RESULT_VAR, result)
        if args.dest:
            self._store(args.dest, result.frame)
        return self._show_result(args, result, reporter)

    @staticmethod
    def _offline_scope(offline: bool) -> contextlib.AbstractContextManager[None]:
        from velonb.cache import offline as offline_mode

        return offline_mode() if offline else contextlib.nullcontext()

    def _user(self) -> str:
        return self.connection.config.user if self.connection is not None else "<api user>"

    def _show_result(self, args: VqlArgs, result: QueryResult,
                     reporter: show.ProgressReporter) -> Any:
        from IPython.display import display

        frames = result.frames
        rows = args.rows or self.settings.display_rows
        summary = show.Summary(frames, result.elapsed, org=result.org_id, dest=args.dest,
                               truncated=result.truncated, max_rows=result.max_rows,
                               errors=len(result.errors), warnings=len(result.warnings),
                               cache=result.cache)
        last = result.frame
        if not args.dest and len(last) > rows:
            summary.notes.append(f"showing {rows} of {len(last):,} rows (display_rows; the "
                                 "whole frame is the cell result and _vql_result.frame)")
        if not args.quiet:
            if not reporter.finish(summary):
                display(summary)
            if result.errors or result.warnings:
                display(show.LogPanel(result.logs, user=self._user()))
        else:
            reporter.finish()
            show.record_cache_use(result.cache)
        if args.dest:
            return None
        import pandas as pd

        for i, frame in enumerate(frames[:-1]):
            display(show.Line(f"[{i}] statement {i + 1} of {len(frames)}: {len(frame):,} rows",
                              "#06c"))
            with pd.option_context("display.max_rows", rows, "display.min_rows", rows):
                display(frame)
        self._limit_display_rows(rows)
        return last

    def _run_stream(self, args: VqlArgs, conn: Connection | None, template: Template,
                    env: dict[str, Any], org: str | None, timeout: float | None,
                    max_rows: int | None) -> Any:
        import pandas as pd

        from velonb.query import QueryResult

        live = show.LiveTable(self.shell, "off" if args.quiet else self.settings.progress,
                              args.keep or self.settings.stream_rows)
        frames: list[pd.DataFrame] = []
        latest: list[Progress] = []
        result = QueryResult(vql=template.text, org_id=org or "")

        def on_progress(progress: Progress) -> None:
            latest[:] = [progress]

        if conn is None:
            from velonb.cache_run import stream_cached

            source = stream_cached(None, template.text, env=env, org_id=org or "",
                                   max_rows=max_rows, duration=args.duration, policy=None,
                                   live=None, result=result, cache=self._cache())
        else:
            source = conn.stream(template.text, env=env, org_id=org, timeout=timeout,
                                 max_rows=max_rows, duration=args.duration,
                                 strict=args.strict or self.settings.strict,
                                 progress=on_progress, result=result,
                                 cache=self._policy(args), cache_dir=self._cache())
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", VQLWarning)
                for frame in source:
                    frames.append(frame)
                    live.update(frames, latest[0] if latest else None)
        except QueryError as err:
            collected = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
            self._store(PARTIAL_VAR, collected)
            self._store(RESULT_VAR, err.result)
            where = f"{args.dest} and {PARTIAL_VAR}" if args.dest else PARTIAL_VAR
            if args.dest:
                self._store(args.dest, collected)
            err.add_note(f"  the {len(collected):,} rows streamed so far are in {where}")
            raise
        finally:
            live.finish()
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        self._store(RESULT_VAR, result)
        if args.dest:
            self._store(args.dest, frame)
        if not args.quiet:
            from IPython.display import display

            display(show.Summary([frame], result.elapsed, org=result.org_id, dest=args.dest,
                                 truncated=max_rows is not None and len(frame) >= max_rows,
                                 max_rows=max_rows, errors=len(result.errors),
                                 warnings=len(result.warnings), streamed=True,
                                 cache=result.cache))
            if result.errors or result.warnings:
                display(show.LogPanel(result.logs, user=self._user()))
        else:
            show.record_cache_use(result.cache)
        if args.dest:
            return None
        self._limit_display_rows(args.rows or self.settings.display_rows)
        return frame

    def _keep_partial(self, err: QueryError, dest: str | None) -> None:
        """Keep the rows of a failed or interrupted query reachable, and say where."""
        if err.result is None:
            return
        self._store(RESULT_VAR, err.result)
        self._store(PARTIAL_VAR, err.partial)
        if err.result.rows:
            err.add_note(f"  the {err.result.rows:,} rows received so far are in {PARTIAL_VAR} "
                         f"(all statements and the server log: {RESULT_VAR})"
                         + (f"; {dest} was not changed" if dest else ""))

    # -- display_rows for the cell result --------------------------------------------------------

    def _limit_display_rows(self, rows: int) -> None:
        """Let pandas show ``rows`` rows of the cell result, until the cell has finished."""
        import pandas as pd

        if self._saved_rows is None:
            self._saved_rows = (pd.get_option("display.max_rows"),
                                pd.get_option("display.min_rows"))
            self.ip.events.register("post_execute", self._restore_display_rows)
        pd.set_option("display.max_rows", rows, "display.min_rows", rows)

    def _restore_display_rows(self) -> None:
        if self._saved_rows is None:
            return
        import pandas as pd

        max_rows, min_rows = self._saved_rows
        pd.set_option("display.max_rows", max_rows, "display.min_rows", min_rows)
        self._saved_rows = None
        with contextlib.suppress(ValueError):
            self.ip.events.unregister("post_execute", self._restore_display_rows)

    # -- %vql_config -----------------------------------------------------------------------------

    @_no_var_expand
    @cell_magic
    def vql_artifact(self, line: str, cell: str) -> None:
        from velonb.magics_artifact import run_artifact_cell

        try:
            run_artifact_cell(self, line, cell)
        except VelonbError as err:
            raise _present(err, debug=self.settings.debug, template=None) from None

    @line_magic
    def vql_config(self, line: str) -> None:
        from IPython.display import display

        try:
            args = parse_config_line(line)
        except MagicArgumentError as err:
            raise UsageError(str(err)) from None
        try:
            for name, value in args.settings.items():
                setattr(self.settings, name, value)
        except TraitError as err:
            raise UsageError(f"%vql_config: {err}") from None
        if args.org is not None:
            self.org = None if args.org.lower() in ("", "root") else args.org
        if args.config_path or args.profile:
            from velonb.query import connect

            offline = self._offline()
            try:
                conn = connect(args.config_path, profile=args.profile)
                if not offline:
                    conn.check()
            except VelonbError as err:
                if not offline:
                    raise _present(err, debug=self.settings.debug, template=None) from None
                display(show.Line(f"offline: not using {args.config_path or args.profile} "
                                  f"({err.message}); cells replay from the cache", "#a40"))
                return
            if self.connection is not None:
                self.connection.close()
            self.connection = conn
        display(self._config_panel())

    def _config_panel(self) -> show.ConfigPanel:
        connection: dict[str, str] = {}
        problem = ""
        try:
            conn = self.connect()
            connection = dict(conn.config.describe())
            connection["private key"] = "<masked>"
        except VelonbError as err:
            problem = err.message + (f"\n  -> {err.hint}" if err.hint else "")
        connection["org"] = self.org or "root"
        from velonb.cache import default_cache_dir

        connection["cache"] = (f"{default_cache_dir()}"
                               + (" (OFFLINE: replaying from the cache)" if self._offline()
                                  else ""))
        if self._offline() and problem:
            problem = ""  # offline needs no connection
        return show.ConfigPanel(connection, self.settings.as_rows(), problem)


def _rows(result: QueryResult | None) -> int:
    return 0 if result is None else result.rows


VelonbMagics.vql.__doc__ = VQL_HELP
VelonbMagics.vql_config.__doc__ = CONFIG_HELP
VelonbMagics.vql_artifact.__doc__ = ARTIFACT_HELP


def load_ipython_extension(shell: Any) -> None:
    """Register %%vql, %vql, %vql_config and %%vql_artifact (and the Velonb settings for
    %config)."""
    magics = VelonbMagics(shell)
    shell.register_magics(magics)
    shell.configurables.append(magics.settings)


def unload_ipython_extension(shell: Any) -> None:
    """Remove the magics and close the session's connection."""
    registry = shell.magics_manager.registry
    magics = registry.pop("VelonbMagics", None)
    for kind, name in (("line", "vql"), ("cell", "vql"), ("line", "vql_config"),
                       ("cell", "vql_artifact")):
        shell.magics_manager.magics[kind].pop(name, None)
    if magics is not None:
        magics.close()
        if magics.settings in shell.configurables:
            shell.configurables.remove(magics.settings)
