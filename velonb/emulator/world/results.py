"""What each artifact returns on each simulated host: ``collect`` and the event/server feeds.

Rows use the real artifacts' column names, order and value types. Everything is deterministic
for (client, artifact, parameters, seed, ``now``'s UTC date); parameters filter the host's state
the way the real queries do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from velonb.emulator.world.catalog import definition
from velonb.emulator.world.fleet import build_fleet, day_start
from velonb.emulator.world.model import ArtifactDefinition, Client, CollectionOutput
from velonb.emulator.world.results_common import parse_int
from velonb.emulator.world.results_events import bulk_pslist_rows, client_stats, health
from velonb.emulator.world.results_info import client_info
from velonb.emulator.world.results_render import (
    bash_history,
    file_finder,
    linux_netstat,
    linux_pslist,
    linux_users,
    mac_users_rows,
    prefetch,
    rdp_auth,
    services_rows,
    task_scheduler,
    windows_netstat,
    windows_pslist,
    windows_users,
    wmi_events,
)

__all__ = ["bulk_pslist_rows", "collect", "event_rows", "server_event_rows", "server_rows"]


@dataclass
class Ctx:
    """One collection: the client, the artifact, its parameters (defaults filled) and the output."""

    client: Client
    artifact: ArtifactDefinition
    params: dict[str, str]
    seed: int
    now: dt.datetime
    out: CollectionOutput = field(default_factory=CollectionOutput)

    def emit(self, source: str, rows: list[dict[str, Any]]) -> None:
        """Store ``rows`` as the results of ``source`` ("" for the unnamed source)."""
        name = f"{self.artifact.name}/{source}" if source else self.artifact.name
        self.out.results.setdefault(name, []).extend(rows)

    def log(self, message: str, level: str = "INFO", source: str = "") -> None:
        """Add a log line the way a client query logs it (``LEVEL:message``), from the query of
        ``source`` (default: the artifact's first source)."""
        if source:
            name = f"{self.artifact.name}/{source}"
            self.out.source_logs.setdefault(name, []).append(f"{level}:{message}")
        else:
            self.out.logs.append(f"{level}:{message}")


Handler = Callable[[Ctx], None]
_HANDLERS: dict[str, Handler] = {
    "Generic.Client.Info": client_info,
    "Windows.System.Pslist": windows_pslist,
    "Windows.Network.Netstat": windows_netstat,
    "Windows.Sys.Users": windows_users,
    "Windows.Forensics.Prefetch": prefetch,
    "Windows.System.Services": services_rows,
    "Windows.Persistence.PermanentWMIEvents": wmi_events,
    "Windows.EventLogs.RDPAuth": rdp_auth,
    "Windows.Search.FileFinder": file_finder,
    "Windows.System.TaskScheduler": task_scheduler,
    "Linux.Sys.Pslist": linux_pslist,
    "MacOS.Sys.Pslist": linux_pslist,
    "Linux.Network.Netstat": linux_netstat,
    "Linux.Sys.Users": linux_users,
    "Linux.Sys.BashHistory": bash_history,
    "MacOS.System.Users": mac_users_rows,
}
# Which OS each artifact's precondition accepts (None: no precondition).
_PRECONDITIONS: dict[str, tuple[str, ...] | None] = {
    "Linux.Sys.Pslist": ("linux", "darwin"),
    "MacOS.Sys.Pslist": ("linux", "darwin"),
    "Linux.Network.Netstat": ("linux",),
    "Linux.Sys.Users": ("linux",),
    "Linux.Sys.BashHistory": None,
    "MacOS.System.Users": None,
    "Generic.Client.Info": None,
    "Windows.Forensics.Prefetch": None,  # no precondition: the glob finds nothing elsewhere
}


def _allowed(name: str, system: str) -> bool:
    if name in _PRECONDITIONS:
        systems = _PRECONDITIONS[name]
        return systems is None or system in systems
    if name.startswith("Windows."):
        return system == "windows"
    return True


def _params(artifact: ArtifactDefinition, given: dict[str, str]) -> dict[str, str]:
    merged = artifact.defaults()
    for key, value in given.items():
        merged[key] = "" if value is None else str(value)
    return merged


def _resolve(artifact: ArtifactDefinition | str) -> ArtifactDefinition:
    """A definition, or a built-in name looked up in the catalog (unknown: an empty client one)."""
    if isinstance(artifact, ArtifactDefinition):
        return artifact
    return definition(artifact) or ArtifactDefinition(name=artifact, type="client")


def collect(client: Client, artifact: ArtifactDefinition | str, parameters: dict[str, str], *,
            seed: int = 7, now: dt.datetime) -> CollectionOutput:
    """Run ``artifact`` on ``client``: result rows per source, uploads, logs, or an error.

    ``results`` has an entry for every source that ran (its rows may be empty); a source whose
    precondition fails does not run and logs "Skipping query due to preconditions". Log lines
    are ``LEVEL:message`` strings. Missing parameters take the definition's defaults.
    """
    now = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    artifact = _resolve(artifact)
    ctx = Ctx(client, artifact, _params(artifact, parameters), seed, now)
    if artifact.type not in ("client", ""):
        ctx.log(f"{artifact.name}: a {artifact.type} artifact is not collected from a client",
                "ERROR")
        ctx.out.error = f"Artifact {artifact.name} is of type {artifact.type}, not client"
        return ctx.out
    handler = _HANDLERS.get(artifact.name)
    if not _allowed(artifact.name, client.system):
        ctx.log(f"{artifact.name}: Skipping query due to preconditions")
        return ctx.out
    if handler is None:  # a definition we have no generator for: runs, returns nothing
        for result in artifact.result_names():
            ctx.out.results[result] = []
        ctx.log(f"{artifact.name}: no rows")
        return ctx.out
    handler(ctx)
    return ctx.out


def event_rows(client: Client, artifact: ArtifactDefinition | str, start: dt.datetime,
               end: dt.datetime, *, seed: int = 7) -> list[dict[str, Any]]:
    """Rows a client_event artifact wrote in [start, end), as monitoring() returns them.

    Each row carries ``_ts`` (epoch s, as the server's event journal adds it). Generic.Client.Stats
    has a row every ``Frequency`` (10) s while the client was online; artifacts without a
    generator (System.Flow.Completion is written by the flow mechanics) give [].
    """
    artifact = _resolve(artifact)
    if artifact.name == "Generic.Client.Stats":
        freq = parse_int(artifact.defaults().get("Frequency"), 10)
        return client_stats(client, _aware(start), _aware(end), seed=seed, frequency=freq)
    return []


def server_event_rows(artifact: ArtifactDefinition | str, start: dt.datetime, end: dt.datetime, *,
                      seed: int = 7, connected: int | None = None) -> list[dict[str, Any]]:
    """Rows a server_event artifact wrote in [start, end) (each with ``_ts``, epoch s)."""
    artifact = _resolve(artifact)
    if artifact.name == "Server.Monitor.Health":
        if connected is None:
            connected = sum(c.online for c in build_fleet(seed, _aware(end)) if c.org_id == "root")
        return health(_aware(start), _aware(end), seed=seed, connected=connected)
    return []


def server_rows(artifact: ArtifactDefinition | str, parameters: dict[str, str], *,
                now: dt.datetime, seed: int = 7) -> CollectionOutput:
    """Results of a server artifact, or the recent hour of a server_event artifact.

    Server.Monitor.Health gives its Prometheus source for the hour before ``now``.
    Server.Utils.CollectClient needs the flow mechanics (clients → collect_client → wait →
    source), so here it only logs that and returns no rows.
    """
    now = _aware(now)
    artifact = _resolve(artifact)
    out = CollectionOutput()
    if artifact.type == "server_event":
        rows = server_event_rows(artifact, now - dt.timedelta(hours=1), now, seed=seed)
        for name in artifact.result_names():
            out.results[name] = rows
        return out
    if artifact.name == "Server.Utils.CollectClient":
        params = _params(artifact, parameters)
        out.results[artifact.name] = []
        out.logs.append(f"INFO:Server.Utils.CollectClient: collecting {params['ArtifactName']} "
                        f"from {params['Client']} is done by the flow mechanics")
        return out
    out.results.update({name: [] for name in artifact.result_names()})
    return out


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def day_of(now: dt.datetime) -> str:
    """The world's day key of ``now`` (UTC date)."""
    return day_start(_aware(now)).date().isoformat()


