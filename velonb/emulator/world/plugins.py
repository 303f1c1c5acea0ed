"""The world's VQL plugins and functions, part 1: clients, artifacts, orgs, whoami.

Each follows its Velociraptor implementation (file named in its docstring): argument names and
types, the permission checked and *when* (some check before parsing arguments, some after), and
the log line written on failure (``<name>: <error>``).  They live in ``WORLD_REGISTRY``; a query's
scope gets them when the emulator has a world (``World.registry``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from velonb.emulator.vql.registry import (
    Arg,
    Registry,
    VQLCallError,
    function,
    permission_error,
    plugin,
)
from velonb.emulator.vql.scope import Scope
from velonb.emulator.world.model import ROOT_ORG, Client

if TYPE_CHECKING:
    from velonb.emulator.world import World

__all__ = ["WORLD_REGISTRY", "check", "client_error", "search_clients", "world_of"]

WORLD_REGISTRY = Registry()
_R = WORLD_REGISTRY


def world_of(scope: Scope) -> World:
    """The scope's world (these plugins are only registered when there is one)."""
    world = scope.world
    if world is None:
        raise VQLCallError("Command can only run on the server")
    return world  # type: ignore[return-value]


def check(scope: Scope, permission: str) -> None:
    """``vql_subsystem.CheckAccess``: raise the real error text when not held."""
    if not scope.has_permission(permission):
        raise VQLCallError(permission_error((permission,)))


def client_error(client_id: str) -> str:
    """``client_info_manager.Get`` failure for an unknown client."""
    return f"Client ID {client_id} not known in this org: NotFoundError"


def known_client(world: World, org_id: str, client_id: str) -> bool:
    """The server pseudo-client always exists."""
    return client_id == "server" or world.client(org_id, client_id) is not None


# -- clients(): services/indexing ---------------------------------------------------------
def _fnmatch(pattern: str) -> str:
    """``glob.FNmatchTranslate`` (Python's fnmatch.translate, Go flavour)."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append("\\[")
            else:
                stuff = pattern[i:j].replace("\\", "\\\\")
                i = j + 1
                if stuff.startswith("!"):
                    stuff = "^" + stuff[1:]
                elif stuff.startswith("^"):
                    stuff = "\\" + stuff
                out.append(f"[{stuff}]")
        else:
            out.append(re.escape(c))
    return "".join(out) + r"\Z"


def _prefix_and_filter(term: str) -> tuple[str, re.Pattern[str] | None]:
    """``splitSearchTermIntoPrefixAndFilter``: ``pre*glob`` or ``pre/regex/``."""
    star = re.match(r"^([^*]*)([*].*)$", term, re.S)
    if star:
        try:
            return star.group(1), re.compile("(?i)" + _fnmatch(star.group(2)), re.S)
        except re.error:
            return star.group(1), re.compile(".+", re.S)
    rx = re.match(r"^([^/]*)/(.+)/$", term, re.S)
    if rx:
        try:
            return rx.group(1), re.compile("(?i)^" + rx.group(2))
        except re.error:
            return rx.group(1), re.compile(".+", re.S)
    return term, None


def _index(clients: list[Client]) -> list[tuple[str, str, Client]]:
    """The search index: (lower-cased "term/entity", term, client), sorted (a btree walk)."""
    entries: list[tuple[str, str, Client]] = []
    for c in clients:
        terms = ["all", c.client_id, "host:" + c.hostname, "host:" + c.fqdn]
        terms += ["label:" + label.lower() for label in c.labels]
        terms += ["mac:" + mac for mac in c.mac_addresses]
        terms += [f"{k}:{v}" for k, v in c.metadata.items()]
        for term in dict.fromkeys(terms):
            entries.append(((term + "/" + c.client_id).lower(), term, c))
    entries.sort(key=lambda e: e[0])
    return entries


def _search_index(clients: list[Client], term: str) -> list[Client]:
    prefix, rx = _prefix_and_filter(term)
    low = prefix.lower()
    seen: dict[str, Client] = {}
    for key, raw, client in _index(clients):
        if not key.startswith(low) or len(raw) < len(prefix):
            continue
        if rx is not None and not rx.search(raw[len(prefix):]):
            continue
        seen.setdefault(client.client_id, client)
    return list(seen.values())


def search_clients(clients: list[Client], search: str) -> list[Client]:
    """``indexer.SearchClientsChan`` over ``clients`` (raises VQLCallError on a bad operator)."""
    term = search.strip() or "all"
    if term == "all":
        operator, rest = "all", ""
    elif term[:2] in ("C.", "c."):
        operator, rest = "client", term
    elif ":" in term:
        operator, rest = term.split(":", 1)
    else:
        operator, rest = "", term
    if operator == "label" and rest == "none":
        return [c for c in clients if not c.labels]
    if operator in ("host", "all", "mac", "label"):
        return _search_index(clients, term)
    if operator == "client":
        return _search_index(clients, rest)
    if operator == "ip":
        prefix, rx = _prefix_and_filter(rest)
        return [c for c in clients if c.last_ip.startswith(prefix)
                and (rx is None or rx.search(c.last_ip))]
    if operator == "":
        return _search_index(clients, "host:" + rest)
    if operator == "recent":
        return []  # the caller's most-recently-used list: nothing viewed in the GUI
    raise VQLCallError(f"Invalid search operator {operator}")


def _client_row(client: Client) -> dict[str, Any]:
    from velonb.emulator.world import fleet

    return fleet.client_row(client)


def _server_row() -> dict[str, Any]:
    from velonb.emulator.world import fleet

    return fleet.server_client_row()


@plugin("clients", Arg("search", "str"), Arg("client_id", "str"),
        permissions=("READ_RESULTS",), registry=_R)
def clients_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the list of clients (vql/server/clients/clients.go)."""
    world = world_of(scope)
    client_id = args.get("client_id", "")
    if client_id:
        client = world.client(scope.org_id, client_id)
        if client is not None:
            yield _client_row(client)
        elif client_id == "server":
            yield _server_row()
        return
    for client in search_clients(world.clients(scope.org_id), args.get("search", "")):
        if scope.cancelled:
            return
        yield _client_row(client)


@function("client_info", Arg("client_id", "str", required=True),
          permissions=("READ_RESULTS",), registry=_R)
def client_info(scope: Scope, args: dict[str, Any]) -> object:
    """Returns client info (like the fqdn) from the datastore."""
    client = world_of(scope).client(scope.org_id, args["client_id"])
    if client is None:
        if args["client_id"] == "server":
            return _server_row()
        raise VQLCallError(client_error(args["client_id"]))
    return _client_row(client)


@function("client_metadata", Arg("client_id", "str", required=True), registry=_R)
def client_metadata(scope: Scope, args: dict[str, Any]) -> object:
    """Returns client metadata (vql/server/clients/metadata.go)."""
    check(scope, "SERVER_ADMIN" if args["client_id"] == "server" else "READ_RESULTS")
    world = world_of(scope)
    if args["client_id"] == "server":
        return dict(world.server_metadata.get(scope.org_id or "root", {}))
    client = world.client(scope.org_id, args["client_id"])
    return dict(client.metadata) if client is not None else {}


# -- artifact_definitions(): vql/server/repository.go --------------------------------------
@plugin("artifact_definitions", Arg("names", "list_str"), Arg("deps", "bool"),
        Arg("sanitize", "bool"), permissions=("READ_RESULTS",), registry=_R)
def artifact_definitions(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Dump artifact definitions."""
    from velonb.emulator.world import catalog

    world = world_of(scope)
    names = args.get("names") or []
    if not names:
        for name in sorted(world.catalog):
            yield catalog.definition_row(world.catalog[name])
        return
    seen: dict[str, Any] = {}
    for name in names:
        defn = world.definition(name)
        if defn is None:
            scope.log(f"artifact_definitions: artifact {name} not known")
            continue
        seen[defn.name] = defn
    for defn in seen.values():
        yield catalog.definition_row(defn)


# -- orgs(), org(), whoami(): vql/server/orgs, vql/server/users/whoami.go ----------------
def _nonce(world: World, org_id: str) -> str:
    digest = hashlib.sha256(f"{world.seed}/nonce/{org_id}".encode()).digest()
    import base64

    return base64.b64encode(digest[:9]).decode("ascii")


def _client_config(world: World, org_id: str) -> dict[str, Any]:
    return {
        "version": {"name": "velociraptor", "version": "0.77.2", "commit": "cd02ac663",
                    "build_time": "2026-08-20T23:41:07Z"},
        "Client": {"server_urls": ["https://10.10.0.5:8000/"], "nonce": _nonce(world, org_id),
                   "use_self_signed_ssl": True, "max_poll": 60, "max_upload_size": 5242880},
    }


def _client_config_yaml(config: dict[str, Any]) -> str:
    import yaml

    return str(yaml.safe_dump(config, sort_keys=False, default_flow_style=False))


def _user_orgs(scope: Scope, world: World) -> list[tuple[str, bool]]:
    """``UserManager.GetOrgs``: (org id, record has its nonce) for each org the caller may see,
    by name. ORG_ADMIN in root sees every org; else SERVER_ADMIN shows an org whole and
    READ_RESULTS shows its id and name only."""
    ids = sorted({ROOT_ORG, *world.orgs}, key=lambda org: world.orgs.get(org, org))
    acl = world.acl
    if acl is None or "ORG_ADMIN" in acl.permissions(scope.principal, ROOT_ORG):
        return [(org, True) for org in ids]
    visible = []
    for org in ids:
        held = acl.permissions(scope.principal, org)
        if "SERVER_ADMIN" in held or "READ_RESULTS" in held:
            visible.append((org, "SERVER_ADMIN" in held))
    return visible


@plugin("orgs", registry=_R)
def orgs_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the list of orgs on this server (vql/server/orgs/orgs.go: ``_client_config``
    only where the caller's record of the org has its nonce)."""
    world = world_of(scope)
    for org_id, whole in _user_orgs(scope, world):
        row = {"Name": world.orgs.get(org_id, org_id), "OrgId": org_id}
        if whole:
            row["_client_config"] = _client_config_yaml(_client_config(world, org_id))
        yield row


@function("org", registry=_R)
def org_function(scope: Scope, args: dict[str, Any]) -> object:
    """Return the details of the current org."""
    world = world_of(scope)
    org_id = ROOT_ORG if scope.org_id in ("", ROOT_ORG) else scope.org_id
    return {"name": scope.org_name, "nonce": _nonce(world, org_id), "id": org_id,
            "_client_config": _client_config(world, org_id)}


@function("whoami", registry=_R)
def whoami(scope: Scope, args: dict[str, Any]) -> object:
    """Returns the username that is running the query."""
    return scope.principal


# Register the other parts.
from velonb.emulator.world import exports as _exports  # noqa: E402, F401
from velonb.emulator.world import exports_hunts as _exports_hunts  # noqa: E402, F401
from velonb.emulator.world import plugins_files as _plugins_files  # noqa: E402, F401
from velonb.emulator.world import plugins_flows as _plugins_flows  # noqa: E402, F401
from velonb.emulator.world import plugins_hunts as _plugins_hunts  # noqa: E402, F401
from velonb.emulator.world import plugins_labels as _plugins_labels  # noqa: E402, F401
from velonb.emulator.world import repository as _repository  # noqa: E402, F401
