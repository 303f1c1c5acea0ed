"""Users, orgs and role -> permission expansion as Velociraptor's ``acls/roles.go`` does it.

A user record exists once any role was granted (``config api_client --role`` or ``user add``);
roles are held per org.  ``VelociraptorServer`` (the pinned server name) is the superuser.
User names are matched case-insensitively, as the real ACL manager normalises them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "ALL_PERMISSIONS",
    "ALL_ROLES",
    "ROOT_ORG_ID",
    "ROOT_ORG_NAME",
    "SUPERUSER",
    "AccessControl",
    "Org",
    "User",
    "is_root_org",
    "role_permissions",
]

SUPERUSER = "VelociraptorServer"
ROOT_ORG_ID = "root"
ROOT_ORG_NAME = "<root>"

ALL_ROLES = (
    "org_admin",
    "administrator",
    "reader",
    "analyst",
    "investigator",
    "artifact_writer",
    "api",
)
ALL_PERMISSIONS = (
    "ANY_QUERY",
    "READ_RESULTS",
    "LABEL_CLIENT",
    "COLLECT_CLIENT",
    "COLLECT_BASIC",
    "START_HUNT",
    "COLLECT_SERVER",
    "ARTIFACT_WRITER",
    "SERVER_ARTIFACT_WRITER",
    "EXECVE",
    "NOTEBOOK_EDITOR",
    "SERVER_ADMIN",
    "ORG_ADMIN",
    "IMPERSONATION",
    "FILESYSTEM_READ",
    "FILESYSTEM_WRITE",
    "NETWORK",
    "MACHINE_STATE",
    "PREPARE_RESULTS",
    "DELETE_RESULTS",
    "DATASTORE_ACCESS",
)

_ANALYST = frozenset(
    {"READ_RESULTS", "NOTEBOOK_EDITOR", "LABEL_CLIENT", "ANY_QUERY", "PREPARE_RESULTS"}
)
_ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "org_admin": frozenset({"ORG_ADMIN"}),
    # Everything but ORG_ADMIN (root org only, added below) and DATASTORE_ACCESS.
    "administrator": frozenset(ALL_PERMISSIONS) - {"ORG_ADMIN", "DATASTORE_ACCESS"},
    "reader": frozenset({"READ_RESULTS"}),
    "api": frozenset({"ANY_QUERY", "READ_RESULTS"}),
    "analyst": _ANALYST,
    "investigator": _ANALYST | {"COLLECT_CLIENT", "START_HUNT"},
    "artifact_writer": frozenset({"ARTIFACT_WRITER"}),
}


def is_root_org(org_id: str) -> bool:
    """ "" and "root" both name the root org."""
    return org_id in ("", ROOT_ORG_ID)


def role_permissions(roles: Iterable[str], org_id: str = ROOT_ORG_ID) -> frozenset[str]:
    """The effective permission set of ``roles`` in ``org_id`` (ValueError on unknown roles)."""
    result: set[str] = set()
    for role in roles:
        try:
            result |= _ROLE_PERMISSIONS[role]
        except KeyError:
            raise ValueError(f"Invalid role {role}") from None
        if role == "administrator" and is_root_org(org_id):
            result.add("ORG_ADMIN")
    if not is_root_org(org_id):
        result.discard("ORG_ADMIN")  # OrgAdmin is only relevant for the root org
    return frozenset(result)


@dataclass(frozen=True)
class Org:
    """An org: id and display name."""

    id: str
    name: str


@dataclass
class User:
    """A user record with roles per org id."""

    name: str
    roles: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the policy's publish_queues per org: the artifacts PushEvents may write to
    publish_queues: dict[str, tuple[str, ...]] = field(default_factory=dict)


class AccessControl:
    """Thread-safe registry of orgs and users, answering the server's permission checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orgs: dict[str, Org] = {ROOT_ORG_ID: Org(ROOT_ORG_ID, ROOT_ORG_NAME)}
        self._users: dict[str, User] = {}

    # -- orgs ---------------------------------------------------------------------------
    def add_org(self, org_id: str, name: str) -> Org:
        """Create (or rename) an org."""
        if is_root_org(org_id):
            raise ValueError("the root org always exists")
        org = Org(org_id, name)
        with self._lock:
            self._orgs[org_id] = org
        return org

    def get_org(self, org_id: str) -> Org | None:
        """The org for an id ("" means root), or None."""
        with self._lock:
            return self._orgs.get(ROOT_ORG_ID if is_root_org(org_id) else org_id)

    @property
    def orgs(self) -> list[Org]:
        with self._lock:
            return list(self._orgs.values())

    # -- users --------------------------------------------------------------------------
    def add_user(self, name: str, roles: Iterable[str], org_id: str = ROOT_ORG_ID) -> User:
        """Create the user if needed and set its roles in ``org_id`` (replacing earlier ones)."""
        if name in (SUPERUSER, "GRPC_GW"):
            raise ValueError(f"{name} is a reserved name")
        roles = tuple(dict.fromkeys(roles))
        role_permissions(roles, org_id)  # validate
        org_key = ROOT_ORG_ID if is_root_org(org_id) else org_id
        with self._lock:
            if org_key not in self._orgs:
                raise ValueError(f"Org not found: {org_id}")
            if not is_root_org(org_key):
                roles = tuple(role for role in roles if role != "org_admin")
            user = self._users.setdefault(name.lower(), User(name))
            user.roles[org_key] = roles
            return user

    def get_user(self, name: str) -> User | None:
        """The user record, or None (the superuser has no record)."""
        with self._lock:
            return self._users.get(name.lower())

    @property
    def users(self) -> list[User]:
        with self._lock:
            return list(self._users.values())

    def permissions(self, name: str, org_id: str) -> frozenset[str]:
        """Effective permissions of ``name`` in ``org_id`` (all of them for the superuser)."""
        if name == SUPERUSER:
            return frozenset(ALL_PERMISSIONS)
        user = self.get_user(name)
        if user is None:
            return frozenset()
        roles = user.roles.get(ROOT_ORG_ID if is_root_org(org_id) else org_id)
        if roles is None:
            return frozenset()
        return role_permissions(roles, org_id)

    def check(self, name: str, org_id: str, permission: str) -> bool:
        """True when ``name`` holds ``permission`` in ``org_id``."""
        return name == SUPERUSER or permission in self.permissions(name, org_id)

    def set_publish_queues(self, name: str, artifacts: Iterable[str],
                           org_id: str = ROOT_ORG_ID) -> None:
        """Set the user's ``publish_queues`` in ``org_id`` (``acl grant <user>
        '{"publish_queues": [...]}'``); no role grants it, administrators included."""
        user = self.get_user(name)
        if user is None:
            raise ValueError(f"User not found: {name}")
        with self._lock:
            user.publish_queues[ROOT_ORG_ID if is_root_org(org_id) else org_id] = \
                tuple(dict.fromkeys(artifacts))

    def may_publish(self, name: str, org_id: str, artifact: str) -> bool:
        """CheckAccessWithToken(PUBLISH, artifact): the superuser, or the queue is listed."""
        if name == SUPERUSER:
            return True
        user = self.get_user(name)
        if user is None:
            return False
        return artifact in user.publish_queues.get(
            ROOT_ORG_ID if is_root_org(org_id) else org_id, ())
