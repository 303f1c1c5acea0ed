"""The simulated fleet's data types, shared by the world's data (fleet, catalog, results) and its
mechanics (flows, hunts, events, plugins)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

ROOT_ORG = "root"
ROOT_ORG_NAME = "<root>"


@dataclass
class Client:
    """One enrolled endpoint. Times are in the real units: first_seen_at s, last_seen_at µs."""

    client_id: str  # C.<16 hex>, or C.<16 hex>-<ORGID> outside the root org
    org_id: str
    hostname: str
    fqdn: str
    system: str  # "windows" | "linux" | "darwin"
    release: str  # Platform + PlatformVersion, unspaced as the server stores it, e.g.
    # "Microsoft Windows 10 Enterprise10.0.19045 Build 19045"
    machine: str  # "amd64" | "arm64"
    mac_addresses: list[str]
    last_ip: str  # as the server stores it, e.g. "10.20.1.15:53012"
    labels: list[str]
    agent_version: str  # e.g. "0.7.1"
    agent_build_time: str  # RFC 3339
    first_seen_at: int  # epoch seconds
    last_seen_at: int  # epoch microseconds
    online: bool  # an offline client never runs collections
    role: str = ""  # free text for the world's own use: "workstation", "dc", "web", ...
    metadata: dict[str, str] = field(default_factory=dict)
    platform: str = ""  # info() Platform, e.g. "Microsoft Windows 11 Enterprise", "ubuntu"
    platform_version: str = ""  # info() PlatformVersion, e.g. "10.0.22631 Build 22631", "22.04"
    kernel_version: str = ""  # info() KernelVersion
    ip: str = ""  # the primary interface address (last_ip without the port)
    domain: str = ""  # DNS domain of the fqdn
    users: list[str] = field(default_factory=list)  # interactive users (first is the main one)
    boot_time: int = 0  # epoch seconds of the last boot
    # Server-side bookkeeping the mechanics keep up to date (clients() columns).
    last_interrogate_flow_id: str = ""
    last_interrogate_artifact_name: str = ""
    last_hunt_timestamp: int = 0
    last_event_table_version: int = 0
    last_label_timestamp: int = 0
    in_flight_flows: dict[str, int] = field(default_factory=dict)


@dataclass
class Parameter:
    """One artifact parameter as in an artifact definition."""

    name: str
    type: str = ""  # "", "string", "bool", "int", "choices", "timestamp", "regex", "csv", ...
    default: str = ""
    description: str = ""
    choices: list[str] = field(default_factory=list)
    friendly_name: str = ""
    validating_regex: str = ""


@dataclass
class Source:
    """One source of an artifact ("" for an artifact with a single unnamed source)."""

    name: str = ""
    description: str = ""
    query: str = ""
    precondition: str = ""
    notebook: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ArtifactDefinition:
    """An artifact as the server's repository holds it."""

    name: str
    type: str  # "client" | "client_event" | "server" | "server_event" | "notebook" | "internal"
    description: str = ""
    author: str = ""
    parameters: list[Parameter] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    column_types: list[dict[str, str]] = field(default_factory=list)  # {name, type, description}
    precondition: str = ""
    required_permissions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    basic: bool = False
    hidden: bool = False
    references: list[str] = field(default_factory=list)
    raw: str = ""  # the YAML text of the definition
    aliases: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)  # the older singular key of real YAML
    implied_permissions: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    export: str = ""
    built_in: bool = True

    def parameter(self, name: str) -> Parameter | None:
        """The parameter called ``name``, or None."""
        for p in self.parameters:
            if p.name == name:
                return p
        return None

    def defaults(self) -> dict[str, str]:
        """Every parameter's default value (strings, as the server passes them)."""
        return {p.name: p.default for p in self.parameters}

    def result_names(self) -> list[str]:
        """Names results are stored under: "Name" for one unnamed source, else "Name/Source"."""
        named = [s.name for s in self.sources if s.name]
        if not named:
            return [self.name]
        return [f"{self.name}/{s}" for s in named]


@dataclass
class UploadedFile:
    """A file an artifact uploads from the endpoint."""

    client_path: str  # as on the endpoint, e.g. "C:\\Users\\bob\\AppData\\Local\\Temp\\svc.exe"
    accessor: str  # "auto" | "ntfs" | "file"
    data: bytes
    mtime: dt.datetime | None = None


@dataclass
class CollectionOutput:
    """What running one artifact on one client produces."""

    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # result name -> rows
    uploads: list[UploadedFile] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)  # "LEVEL:message", the first source's query
    source_logs: dict[str, list[str]] = field(default_factory=dict)  # result name -> lines
    error: str | None = None  # set: the flow ends in ERROR with this status


def org_key(org_id: str) -> str:
    """The key the world stores an org under: "" and "root" are both the root org."""
    return ROOT_ORG if org_id in ("", ROOT_ORG) else org_id
