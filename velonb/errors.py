"""One exception tree for everything velonb raises; every message says what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from velonb.query import QueryResult


class VelonbError(Exception):
    """Base of every velonb error. ``hint`` holds the suggested next step, also in ``str()``."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  -> {hint}")


# --- configuration -------------------------------------------------------------------------------


class ConfigError(VelonbError):
    """The api_client config is missing, unreadable, malformed or unusable."""


class ConfigNotFoundError(ConfigError):
    """No api_client config could be found in any of the places velonb looks."""


class KeyPasswordError(ConfigError):
    """The private key is encrypted and no (correct) password was given."""


class CertificateExpiredError(ConfigError):
    """The API client certificate is expired (or not yet valid)."""


# --- connection and server refusals -----------------------------------------------------------


class ConnectionFailedError(VelonbError):
    """The server could not be reached or the connection broke before any answer."""


class TLSError(ConnectionFailedError):
    """The TLS handshake failed: unknown CA, pinned name mismatch, rejected certificate."""


class ServerRefusedError(VelonbError):
    """The server understood the request and refused it."""


class PermissionDeniedError(ServerRefusedError):
    """The API user lacks a permission (ANY_QUERY, READ_RESULTS, ...) in that org."""

    def __init__(self, message: str, *, permission: str | None = None, hint: str | None = None):
        self.permission = permission
        super().__init__(message, hint=hint)


class UserNotFoundError(ServerRefusedError):
    """The certificate's user has no user record on the server."""


class OrgNotFoundError(ServerRefusedError):
    """The requested org does not exist on the server."""


class InvalidRequestError(ServerRefusedError):
    """The server rejected the request as malformed (e.g. no query, bad pathspec)."""


# --- queries -------------------------------------------------------------------------------------


class QueryError(VelonbError):
    """A query failed. ``result`` keeps whatever arrived before the failure (may be None)."""

    def __init__(self, message: str, *, result: QueryResult | None = None, hint: str | None = None):
        self.result = result
        super().__init__(message, hint=hint)

    @property
    def partial(self) -> Any:
        """The DataFrame of the rows received before the failure (empty when none arrived)."""
        if self.result is None:
            import pandas as pd

            return pd.DataFrame()
        return self.result.frame


class VQLSyntaxError(QueryError):
    """The server could not parse the VQL; ``snippet`` marks the failing position with ``|``."""

    def __init__(
        self,
        message: str,
        *,
        snippet: str = "",
        line: int | None = None,
        column: int | None = None,
        result: QueryResult | None = None,
    ) -> None:
        self.snippet = snippet
        self.line = line
        self.column = column
        super().__init__(message, result=result, hint="fix the VQL at the marked position")


class VQLRuntimeError(QueryError):
    """The server logged ``ERROR:`` lines while running the query (raised with strict=True)."""


class QueryTimeout(QueryError):
    """The server stopped the query at its timeout; ``partial`` holds the rows sent until then."""


class StreamBrokenError(QueryError):
    """The stream broke mid-way (server died, connection reset); ``partial`` holds rows so far."""


class ResponseDecodeError(QueryError):
    """A response part could not be decoded as the server's JSON."""


class QueryInterrupted(QueryError, KeyboardInterrupt):
    """The query was interrupted (Ctrl-C / kernel interrupt) and cancelled on the server."""


class VQLWarning(UserWarning):
    """Server-side ``ERROR:`` / ``WARN:`` log lines of a query that still returned rows."""


class ConfigWarning(UserWarning):
    """A usable config with a problem to fix soon (expiring certificate, open file permissions)."""


class ParameterError(VelonbError):
    """A query parameter has an invalid name or a type that cannot be bound."""


# --- cache ---------------------------------------------------------------------------------------


class CacheError(VelonbError):
    """The result cache could not store or read an entry (damaged file, unsupported column)."""


class CacheMiss(CacheError):
    """Offline, and the cache holds no result for this query. ``vql`` names the query."""

    def __init__(self, message: str, *, vql: str = "", hint: str | None = None) -> None:
        self.vql = vql
        super().__init__(message, hint=hint)


class CacheWarning(UserWarning):
    """The cache was skipped (disk full, damaged entry, unbounded event query); the query ran."""
