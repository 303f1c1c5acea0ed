"""The mutual-TLS gRPC channel to a Velociraptor API server, and gRPC errors -> velonb errors."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import grpc

from velonb.errors import (
    ConnectionFailedError,
    InvalidRequestError,
    OrgNotFoundError,
    PermissionDeniedError,
    QueryError,
    StreamBrokenError,
    TLSError,
    UserNotFoundError,
    VelonbError,
)

if TYPE_CHECKING:
    from velonb.config import ApiClientConfig
    from velonb.query import QueryResult

# Wide rows (whole event logs, file contents, big dicts) are normal: gRPC's 4 MiB default is far
# too small for a client. 1 GiB is still a bound against runaway memory.
DEFAULT_MAX_RECEIVE = 1 << 30
# Keepalive pings only while a call is active (long event queries sit idle for minutes). The real
# server is a Go gRPC server with the default enforcement policy (min 5 min between pings, none
# without an active stream); pinging more often would get the connection closed with
# ENHANCE_YOUR_CALM, so we ping exactly at that minimum.
KEEPALIVE_TIME_MS = 300_000
KEEPALIVE_TIMEOUT_MS = 20_000


def channel_options(config: ApiClientConfig) -> list[tuple[str, Any]]:
    """gRPC channel options for ``config``: pinned server name, receive limit, keepalive."""
    return [
        ("grpc.ssl_target_name_override", config.server_name),
        ("grpc.default_authority", config.server_name),
        ("grpc.max_receive_message_length", config.max_grpc_recv_size or DEFAULT_MAX_RECEIVE),
        ("grpc.max_send_message_length", 64 << 20),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.http2.max_pings_without_data", 0),
        # Fail fast on a dead server instead of backing off for minutes between retries.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 2_000),
        ("grpc.enable_retries", 0),
    ]


def create_channel(config: ApiClientConfig) -> grpc.Channel:
    """One secure channel for ``config`` (mutual TLS with the config's CA, cert and key)."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=config.ca_certificate.encode(),
        private_key=config.client_private_key.encode(),
        certificate_chain=config.client_cert.encode(),
    )
    return grpc.secure_channel(config.target, credentials, options=channel_options(config))


_PERMISSION = re.compile(r"permission\s+([A-Z_]+)|\[([A-Z_]+)\]")
_USER_NOT_FOUND = re.compile(r"User not found: ?(.*)")

_GRANT_HINT = (
    "ask a Velociraptor administrator to run: velociraptor --config server.config.yaml "
    "acl grant {user} --role api   (the api role grants ANY_QUERY and READ_RESULTS)"
)


def _details(err: grpc.RpcError) -> str:
    details = err.details() if hasattr(err, "details") else None
    return str(details or err)


def _tls_problem(details: str, config: ApiClientConfig) -> str | None:
    """Explain a TLS handshake failure from grpc-core's message, or None if it is not one."""
    text = details.lower()
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        return (
            "the server's certificate is not signed by the CA in the config (ca_certificate). "
            "Is api_connection_string pointing at the right server, and is the config current?"
        )
    if any(marker in text for marker in ("peer name", "hostname verification",
                                         "no match found for server name")):
        return (
            f"the server's certificate is not issued for the name {config.server_name!r}. "
            "Set pinned_server_name in the config to the name on the server's certificate "
            "(Velociraptor's default is VelociraptorServer)."
        )
    if "certificate_expired" in text or "certificate expired" in text:
        return "the server rejected the client certificate as expired; make a new api_client config"
    if any(word in text for word in ("unknown_ca", "bad_certificate", "certificate_required",
                                     "certificate_unknown", "decrypt_error")):
        return (
            "the server rejected this client certificate (signed by another CA, expired or "
            "revoked). Make a new config with: velociraptor --config server.config.yaml config "
            f"api_client --name {config.user} --role api api_client.yaml"
        )
    if "handshake" in text or "ssl" in text or "tls" in text:
        return (
            "the TLS handshake with the server failed (wrong CA, a certificate the server does not "
            "accept, or a server that is not a Velociraptor API port)"
        )
    return None


@contextlib.contextmanager
def _in_memory_files(*contents: str) -> Iterator[list[str]]:
    """Paths to anonymous in-memory files (memfd) holding ``contents``; nothing touches disk."""
    fds = []
    try:
        for content in contents:
            fd = os.memfd_create("velonb-tls", 0)
            fds.append(fd)
            os.write(fd, content.encode())
        yield [f"/proc/self/fd/{fd}" for fd in fds]
    finally:
        for fd in fds:
            os.close(fd)


_ALERTS = {
    "unknown_ca": "the server does not trust the CA that signed this client certificate",
    "certificate_expired": "the server says this client certificate has expired",
    "bad_certificate": "the server rejected this client certificate",
    "certificate_required": "the server requires a client certificate",
    "certificate_revoked": "the server says this client certificate is revoked",
    "certificate_unknown": "the server rejected this client certificate",
    "protocol_version": "the server refuses this TLS version (Velociraptor requires TLS 1.3)",
}


def diagnose_tls(config: ApiClientConfig, timeout: float = 5.0) -> str | None:
    """Handshake with Python's ssl module to learn why the server closed a gRPC connection.

    gRPC reports a client certificate that the server rejects only as "Socket closed"; the TLS
    alert the server sends says why. Returns an explanation, or None if the handshake works.
    """
    if not hasattr(os, "memfd_create"):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=config.ca_certificate)
    context.set_alpn_protocols(["h2"])
    try:
        with _in_memory_files(config.client_cert, config.client_private_key) as (cert, key):
            context.load_cert_chain(cert, key)
        target = config.target
        if target.startswith("unix:"):
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.settimeout(timeout)
            raw.connect(target.removeprefix("unix://") if target.startswith("unix://")
                        else target.removeprefix("unix:"))
        else:
            host, _, port = target.rpartition(":")
            raw = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        with context.wrap_socket(raw, server_hostname=config.server_name) as tls:
            # In TLS 1.3 the server checks the client certificate after the client's Finished:
            # its verdict arrives with the first read.
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            if tls.recv(1):
                return None
        return _why_client_cert_rejected(config)
    except (ssl.SSLEOFError, ConnectionResetError):
        return _why_client_cert_rejected(config)
    except ssl.SSLError as err:
        reason = (err.reason or str(err)).lower()
        for marker, explanation in _ALERTS.items():
            if marker in reason:
                return f"{explanation} (TLS alert: {err.reason})"
        return f"TLS failure: {err.reason or err}"
    except (OSError, ValueError):
        return None
    return None


def _why_client_cert_rejected(config: ApiClientConfig) -> str:
    """The server hung up right after the handshake: find what is wrong with our certificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.exceptions import InvalidSignature

    base = "the server closed the connection right after the TLS handshake: it refused this client"
    try:
        cert = x509.load_pem_x509_certificate(config.client_cert.encode())
        ca = x509.load_pem_x509_certificate(config.ca_certificate.encode())
    except ValueError:
        return base + " certificate"
    now = dt.datetime.now(dt.UTC)
    if cert.not_valid_after_utc < now:
        return f"{base} certificate, which expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if cert.not_valid_before_utc > now:
        return f"{base} certificate, which is not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return (f"{base} certificate, which is not signed by the server's CA (it was issued by "
                f"{cert.issuer.rfc4514_string()})")
    return base + " certificate (revoked, or the server's CA changed)"


def translate_error(
    err: grpc.RpcError,
    config: ApiClientConfig,
    *,
    org_id: str = "",
    result: QueryResult | None = None,
    mid_stream: bool = False,
) -> VelonbError:
    """Map a gRPC failure to the velonb error that explains it (never a bare gRPC traceback)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = _details(err)
    user = config.user
    org = org_id or "root"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        match = _PERMISSION.search(details)
        permission = (match.group(1) or match.group(2)) if match else None
        return PermissionDeniedError(
            f"permission denied for user {user!r} in org {org!r}: {details}",
            permission=permission,
            hint=_GRANT_HINT.format(user=user),
        )
    if _USER_NOT_FOUND.search(details):
        return UserNotFoundError(
            f"the server has no user record for {user!r} (the CN of the client certificate)",
            hint=(
                "create it while making the config: velociraptor --config server.config.yaml "
                f"config api_client --name {user} --role api api_client.yaml  (or: velociraptor "
                f"user add {user} --role api)"
            ),
        )
    if "org not found" in details.lower():
        return OrgNotFoundError(
            f"org {org!r} does not exist on the server",
            hint="list the orgs with SELECT * FROM orgs(), or omit org_id for the root org",
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT or "should be specified" in details:
        return InvalidRequestError(f"the server rejected the request: {details}")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return QueryError(
            f"a response was larger than the receive limit: {details}",
            result=result,
            hint="raise max_grpc_recv_size in the config (bytes), or select fewer/narrower columns",
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN,
                grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED):
        tls = _tls_problem(details, config)
        if tls and not mid_stream:
            return TLSError(f"TLS failure talking to {config.target}: {tls}",
                            hint=f"grpc said: {details}")
        closed = "socket closed" in details.lower()
        if not mid_stream and code == grpc.StatusCode.UNAVAILABLE and closed:
            verdict = diagnose_tls(config)
            if verdict:
                return TLSError(
                    f"TLS failure talking to {config.target}: {verdict}",
                    hint="make a new config signed by this server's CA: velociraptor --config "
                         f"server.config.yaml config api_client --name {user} --role api "
                         "api_client.yaml",
                )
        if mid_stream:
            rows = result.rows if result is not None else 0
            return StreamBrokenError(
                f"the stream from {config.target} broke after {rows} rows: {details}",
                result=result,
                hint="the rows received so far are in err.partial; re-run the query when the "
                     "server is back",
            )
        if code == grpc.StatusCode.UNAVAILABLE:
            return ConnectionFailedError(
                f"cannot reach the Velociraptor API at {config.target}: {details}",
                hint="is the server running and api_connection_string right? The API port is "
                     "API.bind_port in server.config.yaml (default 8001, on 127.0.0.1 only)",
            )
    return VelonbError(f"the server returned {getattr(code, 'name', code)}: {details}")
