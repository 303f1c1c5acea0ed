"""A local stand-in for the Velociraptor API server (mutual-TLS gRPC, real wire behaviour).

    with Emulator(users={"admin": ["administrator"]}) as emu:
        path = emu.write_api_client_config(tmp / "api_client.yaml", name="admin")
        ...  # any Velociraptor API client can now connect with that file

Certificates are generated when the emulator is created; nothing is read from or written to disk
unless asked (``write_api_client_config``, ``unix_socket``, an on-disk ``FileStore``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from velonb.emulator.acl import ROOT_ORG_ID, AccessControl, Org, User
from velonb.emulator.faults import Faults
from velonb.emulator.filestore import FileStore
from velonb.emulator.pki import (
    SERVER_NAME,
    CertificateAuthority,
    Credential,
    api_client_config,
    write_api_client_yaml,
)

if TYPE_CHECKING:
    import grpc

    from velonb.emulator.server import ApiServicer

__all__ = ["Emulator"]

Roles = Iterable[str]
UserSpec = Mapping[str, Roles | Mapping[str, Roles]]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Emulator:
    """Runs the emulated API server; a context manager (``start`` on enter, ``stop`` on exit).

    ``users`` maps a name to its roles in the root org, or to ``{org_id: roles}``;
    ``orgs`` maps extra org ids to names (the root org, ``root`` / ``<root>``, always exists);
    Only loopback hosts are accepted unless ``allow_remote=True`` (``0.0.0.0`` would expose it).
    ``world`` is handed to every query's scope (the simulated fleet, when there is one: a
    ``velonb.emulator.world.World``, whose orgs are added and whose uploads go to ``filestore``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        unix_socket: str | os.PathLike[str] | None = None,
        users: UserSpec | None = None,
        orgs: Mapping[str, str] | None = None,
        world: Any = None,
        filestore: FileStore | None = None,
        max_workers: int = 64,
        allow_remote: bool = False,
    ) -> None:
        if unix_socket is None and not allow_remote and not is_loopback(host):
            raise ValueError(
                f"refusing to bind the emulator to {host!r}: it serves a simulated fleet to any "
                "holder of a config it signed; bind 127.0.0.1 / ::1, or pass allow_remote=True"
            )
        self.host = host
        self.port = port
        self.unix_socket = Path(unix_socket).absolute() if unix_socket is not None else None
        self.world = world
        self.filestore = filestore if filestore is not None else FileStore()
        self.acl = AccessControl()
        self.ca = CertificateAuthority.generate()
        self.server_credential: Credential = self.ca.issue_server(SERVER_NAME)
        self.max_workers = max_workers
        self.faults = Faults(on_die=lambda: self.stop(grace=0))
        self._server: grpc.Server | None = None
        self._servicer: ApiServicer | None = None
        self._bound_port = 0
        for org_id, name in (orgs or {}).items():
            self.add_org(org_id, name)
        if world is not None:
            known = {org.id for org in self.acl.orgs}
            for org_id, name in getattr(world, "orgs", {}).items():
                if org_id not in known and org_id not in ("", ROOT_ORG_ID):
                    self.add_org(org_id, name)
            attach = getattr(world, "attach", None)
            if attach is not None:
                attach(self.filestore, self.acl)
        for user, spec in (users or {}).items():
            if isinstance(spec, Mapping):
                for org_id, roles in spec.items():
                    self.add_user(user, roles, org_id)
            else:
                self.add_user(user, spec)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> Emulator:
        """Bind and start serving (idempotent); returns self."""
        if self._server is not None:
            return self
        from velonb.emulator.server import ApiServicer, build_server

        servicer = ApiServicer(self.acl, self.filestore, self.world, self.faults)
        if self.unix_socket is not None:
            bind = f"unix://{self.unix_socket}"
        else:
            bind = f"{self.host}:{self.port}"
        server, port = build_server(
            servicer,
            ca_pem=self.ca.cert_pem,
            cert_pem=self.server_credential.cert_pem,
            key_pem=self.server_credential.key_pem,
            address=bind,
            max_workers=self.max_workers,
        )
        server.start()
        if self.unix_socket is not None:
            os.chmod(self.unix_socket, 0o600)
        self._server, self._servicer, self._bound_port = server, servicer, port
        return self

    def stop(self, grace: float | None = None) -> None:
        """Stop serving. ``grace`` None or 0 aborts running streams at once (clients see
        UNAVAILABLE, as when a server dies mid-stream); otherwise calls get ``grace`` seconds."""
        server, servicer = self._server, self._servicer
        if server is None or servicer is None:
            return
        self._server = self._servicer = None
        event = server.stop(grace or None)  # core cancels the calls before producers stop
        event.wait((grace or 0) + 5)
        servicer.cancel_all()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def active_queries(self) -> int:
        """Query streams currently running server-side (tests use it to see cancellation)."""
        return self._servicer.active_queries if self._servicer is not None else 0

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(grace=0)

    # -- addressing ---------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``host:port`` (the bound port) or ``unix:///path``; what api_client.yaml carries."""
        if self.unix_socket is not None:
            return f"unix://{self.unix_socket}"
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return f"{self.host}:{self._bound_port}"

    # -- users and orgs -----------------------------------------------------------------
    def add_org(self, org_id: str, name: str) -> Org:
        """Create an org (``orgs()`` lists it; queries may name it in ``org_id``)."""
        return self.acl.add_org(org_id, name)

    def add_user(self, name: str, roles: Roles, org_id: str = ROOT_ORG_ID) -> User:
        """Create the user record if needed and grant ``roles`` in ``org_id``."""
        return self.acl.add_user(name, roles, org_id)

    def grant_publish(self, name: str, artifacts: Iterable[str],
                      org_id: str = ROOT_ORG_ID) -> None:
        """Let ``name`` push events (gRPC PushEvents) to ``artifacts`` in ``org_id``: the
        ``publish_queues`` of its policy, which no role grants."""
        self.acl.set_publish_queues(name, artifacts, org_id)

    # -- client configs -----------------------------------------------------------------
    def write_api_client_config(
        self,
        path: str | os.PathLike[str],
        name: str = "admin",
        roles: Roles | None = ("administrator",),
        *,
        valid_days: int = 365,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        password: str | None = None,
        pinned_server_name: str | None = None,
        max_grpc_recv_size: int | None = None,
    ) -> Path:
        """Write an api_client.yaml (mode 0600) like ``config api_client --name N --role R``.

        ``roles=None`` writes the file without creating a user record, as the real command
        does without ``--role``: the server then answers "User not found".
        """
        if roles is not None:
            self.add_user(name, roles)
        credential = self.ca.issue(
            name,
            valid_days=valid_days,
            not_before=not_before,
            not_after=not_after,
            password=password,
        )
        config = api_client_config(
            self.ca,
            credential,
            name=name,
            connection_string=self.address,
            pinned_server_name=pinned_server_name,
            max_grpc_recv_size=max_grpc_recv_size,
        )
        return write_api_client_yaml(path, config)

    def __repr__(self) -> str:
        where = self.address if self.running or self.unix_socket else "stopped"
        return f"Emulator({where!r}, users={len(self.acl.users)}, orgs={len(self.acl.orgs)})"
