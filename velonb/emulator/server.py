"""The gRPC side of the emulator: the ``proto.API`` servicer and the server it runs in.

Mirrors ``api/api.go`` of Velociraptor: the identity is the CN of the verified client
certificate, ``VelociraptorServer`` is the superuser, and each RPC checks, in the real order and
with the real status codes, that the user exists, the org exists and the permission is held.

Server options mirror ``grpc.NewServer(grpc.Creds(creds))`` with nothing else set, i.e.
grpc-go's defaults: 4 MiB receive limit, unlimited (MaxInt32) send, keepalive enforcement with a
5 minute minimum ping interval, no pings without streams, GOAWAY ``too_many_pings`` after 2 strikes.
"""

from __future__ import annotations

import json
import threading
from concurrent import futures
from typing import Any

import grpc

from velonb._proto import api_pb2, api_pb2_grpc
from velonb.emulator.acl import SUPERUSER, AccessControl, Org, is_root_org
from velonb.emulator.faults import Faults
from velonb.emulator.filestore import FileStore
from velonb.emulator.gojson import dumps
from velonb.emulator.streaming import Caller, QueryStream

__all__ = ["SERVER_OPTIONS", "ApiServicer", "build_server"]

# grpc-go server defaults (google.golang.org/grpc: server.go, internal/transport/defaults.go),
# spelled as grpc-core channel arguments.
SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.keepalive_time_ms", 2 * 60 * 60 * 1000),
    ("grpc.keepalive_timeout_ms", 20 * 1000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5 * 60 * 1000),
    ("grpc.http2.max_ping_strikes", 2),
]


def append_jsonl_item(jsonl: bytes, name: str, value: str) -> bytes:
    """json.AppendJsonlItem: ``,"name":value`` before every ``}`` that ends a line (a last
    line without its newline gets one first); empty input stays empty."""
    if not jsonl:
        return jsonl
    if not jsonl.endswith(b"\n"):
        jsonl += b"\n"
    extra = b"," + json.dumps(name).encode() + b":" + dumps(value).encode()
    return jsonl.replace(b"}\n", extra + b"}\n")


def _identity(context: grpc.ServicerContext) -> str:
    """CN of the verified client certificate (first DNS SAN if it has no CN), else "".

    Also enforces the real server's ``MinVersion: tls.VersionTLS13``: grpc-python cannot set a
    minimum TLS version on server credentials, so an older handshake is refused here instead
    (UNAVAILABLE, as a failed handshake looks to a client).
    """
    auth = context.auth_context()
    version = auth.get("ssl_tls_version")
    if version and version[0] not in (b"TLSv1.3", "TLSv1.3"):
        context.abort(grpc.StatusCode.UNAVAILABLE, "tls: client offered an unsupported version")
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        values = auth.get(key)
        if values:
            value = values[0]
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return ""


class ApiServicer(api_pb2_grpc.APIServicer):
    """Query, VFSGetBuffer and Check as Velociraptor answers them."""

    def __init__(self, acl: AccessControl, filestore: FileStore, world: Any = None,
                 faults: Faults | None = None) -> None:
        self.acl = acl
        self.filestore = filestore
        self.world = world
        self.faults = faults if faults is not None else Faults()
        self._streams: set[QueryStream] = set()
        self._lock = threading.Lock()

    def cancel_all(self) -> None:
        """Cancel every running query (used when the server stops)."""
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.cancel()

    @property
    def active_queries(self) -> int:
        with self._lock:
            return len(self._streams)

    def Query(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = _identity(context)
        if name != SUPERUSER and self.acl.get_user(name) is None:
            context.abort(grpc.StatusCode.UNKNOWN, f"User not found: {name}")
        org = self.acl.get_org(request.org_id)
        if org is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "Org not found")
        assert org is not None
        if not self.acl.check(name, org.id, "ANY_QUERY"):
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission denied: User {name} requires permission ANY_QUERY to run queries",
            )
        if not request.Query:
            context.abort(grpc.StatusCode.UNKNOWN, "Query should be specified.")
        caller = Caller(name, self.acl.permissions(name, org.id), org.id, org.name)
        stream = QueryStream(request, caller, world=self.world)
        context.add_callback(stream.cancel)
        with self._lock:
            self._streams.add(stream)
        try:
            if self.faults.active:
                yield from self.faults.apply(iter(stream), context)
            else:
                yield from stream
        finally:
            stream.cancel()
            with self._lock:
                self._streams.discard(stream)

    def _user_and_org(self, request: Any, context: grpc.ServicerContext) -> tuple[str, Org]:
        """GetUserFromContext and the org switch of the unary RPCs, failing as api.Status()
        reports it: "User not found" wraps os.ErrNotExist (NOT_FOUND "Not Found")."""
        name = _identity(context)
        if name != SUPERUSER and self.acl.get_user(name) is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "Not Found")
        org = self.acl.get_org(request.org_id)
        if org is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "Org not found")
        assert org is not None
        return name, org

    def VFSGetBuffer(self, request: Any, context: grpc.ServicerContext) -> Any:
        name, org = self._user_and_org(request, context)
        if not self.acl.check(name, org.id, "READ_RESULTS"):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "User is not allowed to view the VFS.")
        if request.client_id:
            components = ["clients", request.client_id, *request.components]
        elif request.components:
            components = list(request.components)
        else:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Invalid pathspec")
        if not is_root_org(org.id):
            components = ["orgs", org.id, *components]
        data = self.filestore.read(components, int(request.offset), int(request.length))
        if data is None:
            context.abort(grpc.StatusCode.NOT_FOUND, "Not Found")
            raise AssertionError("context.abort raises")  # for type checkers without grpc stubs
        self.faults.vfs_check(context, len(data))
        return api_pb2.VFSFileBuffer(data=data)

    def PushEvents(self, request: Any, context: grpc.ServicerContext) -> Any:
        """api/events.go: rows into an artifact's queue, for callers allowed to publish to it
        (``publish_queues``); a regular user's rows get ``_Sender`` and are always written."""
        from velonb.emulator.world.push import PushError, parse_rows, push_rows

        name, org = self._user_and_org(request, context)
        jsonl, username = bytes(request.jsonl), request.username
        if name != SUPERUSER:
            if not self.acl.may_publish(name, org.id, request.artifact):
                context.abort(grpc.StatusCode.PERMISSION_DENIED,
                              f"Permission denied: PUBLISH {name} to {request.artifact}")
            jsonl = append_jsonl_item(jsonl, "_Sender", name)
            username = name  # and ``write`` is forced on
        username = username or name
        try:
            rows = parse_rows(jsonl)
        except ValueError as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(err))
        if self.world is not None and rows:
            try:  # ``write`` unset (superuser only): the real server only broadcasts; the
                # emulator keeps those rows too (no minion/master split to model)
                push_rows(self.world, org.id, request.artifact, request.client_id,
                          request.flow_id, username, rows)
            except PushError as err:
                context.abort(grpc.StatusCode.UNKNOWN, str(err))
        return api_pb2.Empty()

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        _identity(context)  # TLS version gate only: any verified client may ping
        return api_pb2.HealthCheckResponse(status=api_pb2.HealthCheckResponse.SERVING)


def build_server(
    servicer: ApiServicer,
    *,
    ca_pem: str,
    cert_pem: str,
    key_pem: str,
    address: str,
    max_workers: int = 64,
) -> tuple[grpc.Server, int]:
    """A started-not-yet grpc server bound to ``address`` (``host:port`` or ``unix:///path``)
    with mutual TLS against ``ca_pem``; returns it and the bound port (0 for unix sockets)."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="velonb-api"),
        options=SERVER_OPTIONS,
    )
    api_pb2_grpc.add_APIServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(key_pem.encode(), cert_pem.encode())],
        root_certificates=ca_pem.encode(),
        require_client_auth=True,
    )
    port = server.add_secure_port(address, credentials)
    if port == 0 and not address.startswith("unix:"):
        raise OSError(f"could not bind the emulator to {address}")
    return server, (0 if address.startswith("unix:") else port)
