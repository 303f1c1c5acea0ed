"""Session settings of the notebook magics, as traitlets: ``%config Velonb.timeout = 600``."""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Enum, Float, Int, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

CACHE_POLICIES = ("off", "on", "use", "refresh", "replay")


class Velonb(Configurable):
    """velonb settings for %%vql, set with %vql_config --name VALUE or %config Velonb.name = VALUE.

    A per-cell option (--timeout, --max-rows, --rows, --strict, --debug) overrides its setting.
    """

    timeout = Float(
        None, allow_none=True,
        help="Server-side timeout of each query in seconds (None: the server's default).",
    ).tag(config=True)
    max_rows = Int(
        None, allow_none=True,
        help="Stop receiving after this many rows; the summary says when rows were cut.",
    ).tag(config=True)
    display_rows = Int(20, help="Rows shown of a displayed result table.").tag(config=True)
    stream_rows = Int(20, help="Latest rows kept in the live table of --stream.").tag(config=True)
    strict = Bool(
        False, help="Fail a cell when the server logs ERROR lines (else show them in a panel).",
    ).tag(config=True)
    debug = Bool(False, help="Show full Python tracebacks instead of short messages.").tag(
        config=True)
    progress = Enum(
        ("auto", "notebook", "terminal", "off"), "auto",
        help="Live progress line: in-place display (notebook), a \\r line on stderr (terminal), "
             "off, or auto (notebook in a kernel, else terminal).",
    ).tag(config=True)
    cache = Unicode(
        "off",
        help="Result cache of every cell: off, on (entries never expire), a TTL such as 2h or 7d, "
             "refresh (always run, store) or replay (offline). --cache/--refresh override it.",
    ).tag(config=True)
    offline = Bool(
        None, allow_none=True,
        help="Answer every query from the cache, never connect (None: $VELONB_OFFLINE, or on "
             "for a case unpacked with velonb unpack).",
    ).tag(config=True)
    cache_dir = Unicode(
        None, allow_none=True,
        help="Cache directory (None: $VELONB_CACHE_DIR, ./.velonb-cache, the user cache dir).",
    ).tag(config=True)
    cache_max_size = Unicode(
        None, allow_none=True,
        help="Size cap of the cache such as 5GB, oldest entries evicted first (None: "
             "$VELONB_CACHE_MAX_SIZE or 5GB).",
    ).tag(config=True)

    @validate("cache")
    def _check_cache(self, proposal: dict[str, Any]) -> str:
        from velonb.magic_args import _cache_policy

        try:
            return str(_cache_policy(proposal["value"]))
        except ValueError:
            raise TraitError(f"cache must be one of {', '.join(CACHE_POLICIES)} or a TTL such "
                             f"as 2h, not {proposal['value']!r}") from None

    @validate("cache_max_size")
    def _check_size(self, proposal: dict[str, Any]) -> str | None:
        from velonb.cache import parse_size

        value = proposal["value"]
        if value is not None:
            try:
                parse_size(value)
            except ValueError as err:
                raise TraitError(str(err)) from None
        return value

    @observe("offline")
    def _sync_offline(self, change: dict[str, Any]) -> None:
        from velonb.cache import set_offline

        set_offline(change["new"])

    @observe("cache_dir")
    def _sync_cache_dir(self, change: dict[str, Any]) -> None:
        from velonb.cache import set_cache_dir

        set_cache_dir(change["new"] or None)

    @validate("timeout")
    def _check_timeout(self, proposal: dict[str, Any]) -> float | None:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError("timeout must be a positive number of seconds, or None")
        return value

    @validate("max_rows", "display_rows", "stream_rows")
    def _check_positive(self, proposal: dict[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and value <= 0:
            raise TraitError(f"{proposal['trait'].name} must be a positive integer")
        if value is None and proposal["trait"].name != "max_rows":
            raise TraitError(f"{proposal['trait'].name} must be a positive integer")
        return value

    def as_rows(self) -> list[tuple[str, str, str]]:
        """(name, value, help) of every setting, for %vql_config."""
        rows = []
        for name, trait in sorted(self.traits(config=True).items()):
            rows.append((name, repr(getattr(self, name)), trait.help.split("\n")[0]))
        return rows
