"""The api_client config: find it, load it, decrypt its key, validate it, and never show secrets.

The file is what ``velociraptor config api_client --name NAME --role api out.yaml`` writes (keys
``ca_certificate``, ``client_cert``, ``client_private_key``, ``api_connection_string``, ``name``,
optional ``pinned_server_name`` and ``max_grpc_recv_size``).

Decisions:

* Unknown keys give a :class:`ConfigWarning`, not an error. Go's ``yaml.UnmarshalStrict`` refuses
  them, but an analyst with an annotated or newer config should still be able to query; the
  warning says the velociraptor CLI would reject the file.
* YAML aliases (``*ref``, so also ``<<: *ref`` merges) are refused and nesting is capped at 8: real
  configs never use them, and refusing the first alias stops "billion laughs" bombs at once. At
  most 1 MiB + 1 byte is read; larger and non-regular files are refused.
* ``unix://relative/path`` (what Velociraptor writes when ``API.bind_address`` is relative) becomes
  the gRPC target ``unix:relative/path``: gRPC would read ``relative`` as a URI authority and fail,
  while Go resolves it against the current directory, as ``unix:relative/path`` does.
* An explicit ``profile=`` argument is as explicit as a path and wins over the environment
  variables; ``$VELONB_PROFILE`` keeps its place after them in the discovery order.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import os
import re
import stat
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from velonb.errors import (
    CertificateExpiredError,
    ConfigError,
    ConfigNotFoundError,
    ConfigWarning,
    KeyPasswordError,
)

DEFAULT_SERVER_NAME = "VelociraptorServer"
MAX_CONFIG_BYTES = 1 << 20
EXPIRY_WARNING_DAYS = 14
PASSWORD_TRIES = 3
REQUIRED_KEYS = ("ca_certificate", "client_cert", "client_private_key", "api_connection_string")
KNOWN_KEYS = (*REQUIRED_KEYS, "name", "pinned_server_name", "max_grpc_recv_size")
ENV_PATH_VARS = ("VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG")
ENV_PROFILE = "VELONB_PROFILE"
ENV_PASSWORD = "VELONB_KEY_PASSWORD"  # noqa: S105 (a variable name)
RC_FILE = "~/.pyvelociraptorrc"
CREATE_HINT = (
    "create one on the server with `velociraptor --config server.config.yaml config api_client "
    "--name NAME --role api api_client.yaml` and pass its path (or set $VELONB_API_CONFIG); "
    "to try velonb locally, run `velonb emulator`"
)
_RENEW_HINT = (
    "make a new one on the server: `velociraptor --config server.config.yaml config api_client "
    "--name {name} --role api api_client.yaml`"
)
_PEM_HINT = "copy the whole PEM block, including its BEGIN and END lines"
_FILE_HINT = "use the complete file written by `velociraptor config api_client`"
_PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HOST_PORT_RE = re.compile(r"^(\[[0-9A-Za-z:.%]+\]|[^\s:/\[\]@]+):(\d{1,5})$")
_ADDRESS_HINT = "use the API address, e.g. velo.example.com:8001, [::1]:8001 or unix:///path"
_GRPC_SCHEMES = ("dns:", "ipv4:", "ipv6:")
_MAX_DEPTH = 8


@dataclass(frozen=True, repr=False)
class ApiClientConfig:
    """A validated api_client config; ``client_private_key`` is held decrypted, in memory only."""

    ca_certificate: str
    client_cert: str
    client_private_key: str
    api_connection_string: str
    name: str
    pinned_server_name: str | None = None
    max_grpc_recv_size: int | None = None
    source: Path | None = None

    @property
    def server_name(self) -> str:
        """The name the server certificate must carry (TLS target name override)."""
        return self.pinned_server_name or DEFAULT_SERVER_NAME

    @property
    def target(self) -> str:
        """The gRPC target: ``host:port``, ``unix:///abs/path`` or ``unix:relative/path``."""
        conn = self.api_connection_string.strip()
        if conn.startswith("unix://") and not conn.startswith("unix:///"):
            return "unix:" + conn[len("unix://") :]
        return conn

    @cached_property
    def certificate(self) -> x509.Certificate:
        """The client certificate."""
        return x509.load_pem_x509_certificate(self.client_cert.encode())

    @cached_property
    def ca(self) -> x509.Certificate:
        """The CA certificate (verifies the server and signed the client cert)."""
        return x509.load_pem_x509_certificate(self.ca_certificate.encode())

    @property
    def user(self) -> str:
        """The API user: CommonName of the client certificate (what the server sees)."""
        return _common_name(self.certificate) or self.name

    @property
    def expires_at(self) -> dt.datetime:
        """When the client certificate expires (aware UTC)."""
        return self.certificate.not_valid_after_utc

    @cached_property
    def ca_fingerprint(self) -> str:
        """SHA-256 hex digest of the CA certificate DER."""
        return hashlib.sha256(self.ca.public_bytes(serialization.Encoding.DER)).hexdigest()

    def describe(self) -> dict[str, str]:
        """Display fields (no secrets): user, server, server name, source, expires, CA."""
        days = (self.expires_at - _now()).days
        left = "expired" if self.expires_at <= _now() else f"{days} days left"
        return {
            "user": self.user,
            "server": self.target,
            "server name": self.server_name,
            "source": str(self.source) if self.source else "<in memory>",
            "expires": f"{self.expires_at:%Y-%m-%d %H:%M} UTC ({left})",
            "CA fingerprint": self.ca_fingerprint,
        }

    def __repr__(self) -> str:
        return (
            f"ApiClientConfig(name={self.name!r}, api_connection_string="
            f"{self.api_connection_string!r}, server_name={self.server_name!r}, "
            f"source={str(self.source) if self.source else None!r}, "
            "client_private_key=<masked>)"
        )

    __str__ = __repr__


# --- discovery -----------------------------------------------------------------------------------


def profile_dir() -> Path:
    """The directory holding named profiles (``NAME.yaml``)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("velonb")) / "profiles"


def _profile_path(name: str) -> Path:
    if not _PROFILE_RE.match(name):
        raise ConfigError(
            f"invalid profile name {name!r}",
            hint="use letters, digits, '.', '_' or '-' (e.g. 'prod'), no path separators",
        )
    return profile_dir() / f"{name}.yaml"


def _available_profiles() -> list[str]:
    try:
        return sorted(p.stem for p in profile_dir().glob("*.yaml"))
    except OSError:
        return []


def _missing_profile(name: str, origin: str) -> ConfigNotFoundError:
    path = _profile_path(name)
    known = ", ".join(_available_profiles()) or "none"
    return ConfigNotFoundError(
        f"profile {name!r} ({origin}) not found: {path} does not exist (profiles: {known})",
        hint=f"save one with velonb.config.save_profile({name!r}, 'api_client.yaml')",
    )


def discover_config_path(profile: str | None = None) -> Path:
    """Find the config: profile=, env vars, $VELONB_PROFILE, then ~/.pyvelociraptorrc."""
    if profile:
        path = _profile_path(profile)
        if not path.is_file():
            raise _missing_profile(profile, "profile= argument")
        return path
    looked: list[str] = []
    for var in ENV_PATH_VARS:
        value = os.environ.get(var, "").strip()
        if not value:
            looked.append(f"${var} (not set)")
            continue
        path = Path(value).expanduser()
        if not path.is_file():
            raise ConfigNotFoundError(
                f"${var} points to {path}, which does not exist or is not a file",
                hint=f"fix or unset ${var}",
            )
        return path
    env_profile = os.environ.get(ENV_PROFILE, "").strip()
    if env_profile:
        path = _profile_path(env_profile)
        if not path.is_file():
            raise _missing_profile(env_profile, f"${ENV_PROFILE}")
        return path
    looked.append(f"${ENV_PROFILE} (not set; profiles live in {profile_dir()})")
    rc = Path(RC_FILE).expanduser()
    if rc.is_file():
        return rc
    looked.append(f"{rc} (no such file)")
    places = "\n".join(f"  {i}. {place}" for i, place in enumerate(looked, 1))
    raise ConfigNotFoundError(
        f"no api_client config found; looked at, in order:\n{places}", hint=CREATE_HINT
    )


# --- reading -------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses aliases (billion-laughs bombs) and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            line = mark.line + 1
            raise ConfigError(
                f"YAML aliases (*name) are not allowed (line {line})", hint=_FILE_HINT
            )
        self._depth += 1
        try:
            if self._depth > _MAX_DEPTH:
                raise ConfigError("YAML nested too deeply for an api_client config")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _read_bytes(path: Path) -> bytes:
    """Read at most 1 MiB of a regular file, warning when others can read it."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise _bad(str(path), "not a regular file", "pass the api_client.yaml path")
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigNotFoundError(f"config file {path} does not exist", hint=CREATE_HINT) from None
    except OSError as exc:
        raise _bad(str(path), f"cannot read: {exc.strerror}", f"check `ls -l {path}`") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise _bad(str(path), "over the 1 MiB limit; an api_client config is a few KiB")
    if os.name == "posix" and info.st_mode & 0o077:
        _warn(
            f"{path} is readable by other users (mode {stat.S_IMODE(info.st_mode):o}) and "
            f"holds a private key; restrict it with `chmod 600 {path}`"
        )
    return data


def _parse_yaml(data: bytes, where: str) -> dict[str, Any]:
    try:
        if b"\x00" in data:
            raise UnicodeDecodeError("utf-8", data[:1], 0, 1, "NUL byte")
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad(where, "the file is binary, not a YAML api_client config") from None
    try:
        loader = _StrictLoader(text)
        try:
            value = loader.get_single_data()
        finally:
            loader.dispose()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or "syntax error"
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        hint = "PEM values must be block scalars (`key: |` then indented lines)"
        raise _bad(where, f"not valid YAML: {problem}{at}", hint) from None
    if value is None:
        raise _bad(where, "the file is empty", CREATE_HINT)
    if not isinstance(value, dict):
        keys = ", ".join(REQUIRED_KEYS)
        raise _bad(where, f"must be a YAML mapping with keys {keys}; got {type(value).__name__}")
    return value


# --- validation ----------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _warn(message: str) -> None:
    """Warn with ConfigWarning, attributed to the first caller outside this module."""
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, ConfigWarning, stacklevel=level)


def _common_name(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _bad(where: str, problem: str, hint: str | None = _FILE_HINT) -> ConfigError:
    """A ConfigError about one config (``where``); callers never put secrets in ``problem``."""
    return ConfigError(f"{where}: {problem}", hint=hint)


def _text(data: Mapping[Any, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(where, f"{key} must be a string, got {type(value).__name__}")
    return value


def _load_cert(pem: str, key: str, where: str) -> x509.Certificate:
    if "PRIVATE KEY" in pem:
        raise _bad(where, f"{key} holds a private key, not a certificate")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise _bad(where, f"{key} is not a valid PEM certificate", _PEM_HINT) from None


def _check_connection_string(conn: str, where: str) -> None:
    key = "api_connection_string"
    if conn.startswith("unix:"):
        if not conn[len("unix:") :].lstrip("/"):
            raise _bad(where, f"{key} names no socket path", "use unix:///path/to/socket")
        return
    if conn.startswith(_GRPC_SCHEMES):
        return
    if "://" in conn:
        raise _bad(where, f"{key} must be host:port, not a URL", _ADDRESS_HINT)
    match = _HOST_PORT_RE.match(conn)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise _bad(where, f"{key} {conn!r} is not host:port", _ADDRESS_HINT)


def _prompt_allowed() -> bool:
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def _load_key(pem: str, password: bytes | None) -> PrivateKeyTypes:
    return serialization.load_pem_private_key(pem.encode(), password=password)


def _decrypt_key(pem: str, where: str, password: str | None, prompt: bool) -> PrivateKeyTypes:
    """Load the private key, asking for a password at most PASSWORD_TRIES times if encrypted."""
    if "BEGIN" not in pem or "PRIVATE KEY" not in pem:
        raise _bad(where, "client_private_key is not a PEM private key", _PEM_HINT)
    if "ENCRYPTED" not in pem:
        try:
            return _load_key(pem, None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise _bad(where, "client_private_key could not be parsed", _PEM_HINT) from None
    given = [
        (password, "the password argument"),
        (os.environ.get(ENV_PASSWORD) or None, f"${ENV_PASSWORD}"),
    ]
    for candidate, origin in given:
        if candidate is None:
            continue
        try:
            return _load_key(pem, candidate.encode())
        except (ValueError, TypeError):
            raise KeyPasswordError(
                f"{where}: wrong password for the encrypted private key (from {origin})",
                hint=f"check {origin}",
            ) from None
    if not (prompt and _prompt_allowed()):
        raise KeyPasswordError(
            f"{where}: the private key is encrypted and no password was given",
            hint=f"pass password=..., set ${ENV_PASSWORD}, or load interactively to be asked",
        )
    label = f"Password for the private key in {where}: "
    for attempt in range(1, PASSWORD_TRIES + 1):
        try:
            typed = getpass.getpass(label)
        except EOFError:
            break
        try:
            return _load_key(pem, typed.encode())
        except (ValueError, TypeError):
            label = f"Wrong password, try again ({attempt + 1} of {PASSWORD_TRIES}): "
    raise KeyPasswordError(
        f"{where}: wrong password for the encrypted private key ({PASSWORD_TRIES} tries)",
        hint=f"try again, or pass password=... / set ${ENV_PASSWORD}",
    )


def _key_pem(key: PrivateKeyTypes) -> str:
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if isinstance(key, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def _spki(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _check_validity(cert: x509.Certificate, what: str, name: str, where: str) -> None:
    now = _now()
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if now >= after:
        raise CertificateExpiredError(
            f"{where}: the {what} expired on {after:%Y-%m-%d %H:%M} UTC",
            hint=_RENEW_HINT.format(name=name),
        )
    if now < before:
        raise CertificateExpiredError(
            f"{where}: the {what} is not valid before {before:%Y-%m-%d %H:%M} UTC",
            hint="check this machine's clock, or wait until then",
        )
    if after - now < dt.timedelta(days=EXPIRY_WARNING_DAYS):
        days = (after - now).days
        _warn(
            f"{where}: the {what} expires on {after:%Y-%m-%d %H:%M} UTC ({days} days left); "
            + _RENEW_HINT.format(name=name)
        )


def config_from_dict(
    data: Mapping[Any, Any],
    *,
    source: Path | None = None,
    password: str | None = None,
    prompt: bool = False,
) -> ApiClientConfig:
    """Validate a parsed api_client config and return it with the key decrypted."""
    where = str(source) if source else "api_client config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    missing = [key for key in REQUIRED_KEYS if _text(data, key, where) is None]
    if missing:
        raise _bad(where, f"missing required key(s): {', '.join(missing)}")
    unknown = [str(key) for key in data if key not in KNOWN_KEYS]
    if unknown:
        _warn(
            f"{where}: ignoring unknown key(s) {', '.join(sorted(unknown))} "
            "(the velociraptor CLI would refuse this file)"
        )
    ca_pem, cert_pem, key_text, conn = (str(_text(data, key, where)) for key in REQUIRED_KEYS)
    conn = conn.strip()
    _check_connection_string(conn, where)
    pinned = _text(data, "pinned_server_name", where)
    recv = data.get("max_grpc_recv_size")
    if recv is not None:
        if isinstance(recv, str) and recv.strip().isdigit():
            recv = int(recv)
        if isinstance(recv, bool) or not isinstance(recv, int) or recv < 0:
            raise _bad(where, "max_grpc_recv_size must be a positive integer (bytes)")
    ca = _load_cert(ca_pem, "ca_certificate", where)
    cert = _load_cert(cert_pem, "client_cert", where)
    cn = _common_name(cert)
    name = _text(data, "name", where) or cn or ""
    if cn and cn != name:
        _warn(
            f"{where}: name {name!r} differs from the certificate's CommonName {cn!r}; "
            f"the server will see you as {cn!r}"
        )
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise _bad(where, "client_cert was not issued by ca_certificate") from None
    _check_validity(ca, "CA certificate", name or "NAME", where)
    _check_validity(cert, "client certificate", name or "NAME", where)
    key = _decrypt_key(key_text, where, password, prompt)
    if _spki(key.public_key()) != _spki(cert.public_key()):
        raise _bad(where, "client_private_key does not match client_cert")
    return ApiClientConfig(
        ca_certificate=ca_pem,
        client_cert=cert_pem,
        client_private_key=_key_pem(key),
        api_connection_string=conn,
        name=name,
        pinned_server_name=pinned,
        max_grpc_recv_size=recv or None,
        source=source,
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    profile: str | None = None,
    password: str | None = None,
    prompt: bool = True,
) -> ApiClientConfig:
    """Load, decrypt and validate the api_client config at ``path`` (or discover it)."""
    found = Path(path).expanduser() if path is not None else discover_config_path(profile)
    data = _parse_yaml(_read_bytes(found), str(found))
    return config_from_dict(data, source=found.absolute(), password=password, prompt=prompt)


def save_profile(name: str, source_path: str | os.PathLike[str]) -> Path:
    """Copy a config to ``profile_dir()/NAME.yaml`` (dir 0700, file 0600); returns the new path."""
    target = _profile_path(name)
    source = Path(source_path).expanduser()
    raw = _read_bytes(source)
    data = _parse_yaml(raw, str(source))
    missing = [key for key in REQUIRED_KEYS if not data.get(key)]
    if missing:
        raise _bad(str(source), f"missing required key(s): {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(target.parent, 0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
