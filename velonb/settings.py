"""Session settings of the notebook magics, as traitlets: ``%config Velonb.timeout = 600``."""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Enum, Float, Int, TraitError, validate
from traitlets.config import Configurable

CACHE_POLICIES = ("off", "use", "refresh", "replay")


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
    cache = Enum(
        CACHE_POLICIES, "off",
        help="Result cache policy. Coming with the cache issue: the values are validated now, but "
             "until it lands every query runs on the server.",
    ).tag(config=True)

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
