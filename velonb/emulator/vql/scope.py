"""The VQL scope: a stack of variable layers plus shared query state (log, ACLs, registries)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from velonb.emulator.vql.registry import DEFAULT_REGISTRY, FunctionSpec, PluginSpec, Registry

_SERVER_ENV_KEYS = ("_SessionId", "$device_manager", "config", "$acl", "Artifact",
                    "$repository", "$root")


@dataclass(slots=True)
class _Shared:
    """State shared by a root scope and all of its copies."""

    principal: str
    permissions: frozenset[str]
    org_id: str
    org_name: str
    log_fn: Callable[[str], None]
    cancel: threading.Event
    world: object | None
    registry: Registry
    cache: dict[str, Any]


class AggregatorCtx(dict[int, Any]):
    """Per-group (or per-query) state of aggregate functions, keyed by call-site id."""


class Scope:
    """A VQL scope (vfilter scope.Scope)."""

    __slots__ = ("ag_ctx", "depth", "parent", "shared", "vars")

    def __init__(
        self,
        env: dict[str, object] | None = None,
        *,
        principal: str = "VelociraptorServer",
        permissions: frozenset[str] = frozenset(),
        org_id: str = "root",
        org_name: str = "<root>",
        log: Callable[[str], None] = lambda msg: None,
        cancel: threading.Event | None = None,
        world: object | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.shared = _Shared(
            principal=principal, permissions=frozenset(permissions), org_id=org_id,
            org_name=org_name, log_fn=log, cancel=cancel or threading.Event(), world=world,
            registry=(registry or DEFAULT_REGISTRY).copy(), cache={},
        )
        base: dict[str, object] = dict(env or {})
        base.setdefault("_SessionId", "")
        for key in _SERVER_ENV_KEYS[1:]:
            base[key] = {}
        self.vars: list[Mapping[str, Any]] = [{"NULL": None}, base]
        self.parent: Scope | None = None
        self.ag_ctx: AggregatorCtx | None = AggregatorCtx()
        self.depth = 0

    # ---- copies and variables ----
    def copy(self) -> Scope:
        """A child scope seeing the same variables (new layers do not leak back)."""
        child = Scope.__new__(Scope)
        child.shared = self.shared
        child.vars = list(self.vars)
        child.parent = self
        child.ag_ctx = None
        child.depth = self.depth + 1
        return child

    def append_vars(self, row: Mapping[str, Any]) -> Scope:
        """Push a layer of variables."""
        self.vars.append(row)
        return self

    def resolve(self, name: str) -> tuple[object, bool]:
        """Look a variable up, newest layer first."""
        for layer in reversed(self.vars):
            if name in layer:
                return layer[name], True
        return None, False

    def set_var(self, name: str, value: object) -> None:
        """Define a variable in a new layer (LET)."""
        self.vars.append({name: value})

    def print_vars(self) -> str:
        """scope.PrintVars(): the keys of every layer."""
        return ", ".join("[" + ", ".join(str(k) for k in layer) + "]" for layer in self.vars)

    def aggregator(self) -> AggregatorCtx:
        """The nearest aggregator context."""
        s: Scope | None = self
        while s is not None:
            if s.ag_ctx is not None:
                return s.ag_ctx
            s = s.parent
        self.ag_ctx = AggregatorCtx()
        return self.ag_ctx

    def new_aggregator(self) -> None:
        """Give this scope a fresh aggregator context."""
        self.ag_ctx = AggregatorCtx()

    # ---- shared state ----
    def log(self, message: str) -> None:
        """Emit one log line."""
        self.shared.log_fn(message)

    def has_permission(self, name: str) -> bool:
        """ACL check (the VelociraptorServer identity is a superuser)."""
        sh = self.shared
        return sh.principal == "VelociraptorServer" or name in sh.permissions

    @property
    def cancel(self) -> threading.Event:
        """Cancellation event of the whole query."""
        return self.shared.cancel

    @property
    def cancelled(self) -> bool:
        """True once the query was cancelled."""
        return self.shared.cancel.is_set()

    @property
    def world(self) -> object | None:
        """The emulator's world (clients, flows, ...), for plugins that need it."""
        return self.shared.world

    @property
    def principal(self) -> str:
        """Name of the API user running the query."""
        return self.shared.principal

    @property
    def org_id(self) -> str:
        """The org the query runs in."""
        return self.shared.org_id

    @property
    def org_name(self) -> str:
        """The org's display name."""
        return self.shared.org_name

    @property
    def cache(self) -> dict[str, Any]:
        """Per-query cache (log dedup, info(), ...)."""
        return self.shared.cache

    def get_function(self, name: str) -> FunctionSpec | None:
        """Registered function by name."""
        return self.shared.registry.functions.get(name)

    def get_plugin(self, name: str) -> PluginSpec | None:
        """Registered plugin by name."""
        return self.shared.registry.plugins.get(name)

    @property
    def registry(self) -> Registry:
        """This query's function/plugin tables (a copy of the default registry)."""
        return self.shared.registry
