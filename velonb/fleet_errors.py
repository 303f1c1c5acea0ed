"""Errors and warnings of the fleet helpers (re-exported by :mod:`velonb.fleet`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from velonb.errors import ParameterError, PermissionDeniedError, QueryError, VelonbError

if TYPE_CHECKING:
    from velonb.fleet_flows import Flow

__all__ = [
    "AmbiguousClientError", "ArtifactDefinitionError", "ArtifactParameterError",
    "CollectionFailedWarning", "DownloadError", "DownloadInterrupted", "FleetError",
    "HuntConditionError", "OfflineClientWarning",
    "UnknownArtifactError", "UnknownClientError", "UnknownFlowError", "UnknownHuntError",
    "WaitInterrupted", "WaitTimeout", "permission_error",
]


class FleetError(VelonbError):
    """A fleet helper could not do what was asked (see the subclasses)."""


class UnknownClientError(FleetError):
    """No client has that id or hostname in the org."""


class AmbiguousClientError(FleetError):
    """A hostname matches several clients; ``candidates`` lists them (client_id, last seen)."""

    def __init__(self, message: str, *, candidates: Sequence[Any] = (), hint: str | None = None):
        self.candidates = list(candidates)
        super().__init__(message, hint=hint)


class UnknownArtifactError(FleetError):
    """No artifact of that name on the server (``suggestions`` holds close names)."""

    def __init__(self, message: str, *, suggestions: Sequence[str] = (), hint: str | None = None):
        self.suggestions = list(suggestions)
        super().__init__(message, hint=hint)


class ArtifactParameterError(FleetError, ParameterError):
    """An artifact parameter is unknown, or its value does not fit the parameter's type."""


class ArtifactDefinitionError(FleetError, ValueError):
    """The server (or velonb, before sending) refused an artifact definition; the message says
    why, as the server put it."""


class HuntConditionError(FleetError):
    """A hunt condition the server cannot express (e.g. labels *and* an OS)."""


class UnknownFlowError(FleetError):
    """No flow with that id on that client."""


class UnknownHuntError(FleetError):
    """No hunt with that id in the org."""


class WaitTimeout(FleetError, QueryError):
    """Waiting for collections ran out of time; they go on. ``flows`` holds every Flow."""

    def __init__(self, message: str, *, flows: Sequence[Flow] = (), hint: str | None = None):
        self.flows = list(flows)
        super().__init__(message, hint=hint)


class WaitInterrupted(FleetError, KeyboardInterrupt):
    """Waiting was interrupted (Ctrl-C); the collections go on. ``flows`` holds every Flow."""

    def __init__(self, message: str, *, flows: Sequence[Flow] = (), hint: str | None = None):
        self.flows = list(flows)
        super().__init__(message, hint=hint)


class DownloadError(FleetError):
    """An upload could not be downloaded completely (size mismatch, server refusal)."""


class DownloadInterrupted(FleetError, KeyboardInterrupt):
    """A download was interrupted; the partial ``.part`` files resume on the next call."""


class OfflineClientWarning(UserWarning):
    """A collection was queued for a client that is offline: it runs when the client returns."""


class CollectionFailedWarning(UserWarning):
    """A collection ended in the ERROR state (the Flow's ``status`` says why)."""


_PERMISSION_PATTERNS = (
    re.compile(r"Permission denied: \[([A-Z_]+)\]"),
    re.compile(r"not allowed to launch flows ([A-Z_]+)"),
    re.compile(r"[Pp]ermission denied:? ([A-Z_]{4,})"),
)


def permission_error(messages: Sequence[str], user: str, what: str) -> PermissionDeniedError | None:
    """A PermissionDeniedError naming the permission found in server log ``messages``."""
    for message in messages:
        for pattern in _PERMISSION_PATTERNS:
            match = pattern.search(message)
            if match:
                permission = match.group(1)
                return PermissionDeniedError(
                    f"{what} needs the {permission} permission, which user {user!r} does not "
                    f"hold in this org (server said: {message.strip()})",
                    permission=permission,
                    hint=f"ask an administrator: velociraptor acl grant {user} "
                         f"'{{\"{permission.lower()}\": true}}' --merge, or use a role with it "
                         "(investigator can collect and hunt)",
                )
    return None
