"""Certificates the way Velociraptor makes them: a CA, the server cert, API client certs + YAML.

Mirrors ``velociraptor config api_client``: client certs have CN = user name, O = Velociraptor, a
DNS SAN (IP SAN when the name is an IP), server+client auth EKU, RSA-2048 keys written as PKCS#1
``RSA PRIVATE KEY`` PEM (legacy encrypted PEM when a password is given).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "VelociraptorServer"
CA_NAME = "Velociraptor_ca"
ORGANIZATION = "Velociraptor"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey, password: str | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption
    ).decode()


@dataclass(frozen=True)
class Credential:
    """A certificate and its private key, both PEM text."""

    cert_pem: str
    key_pem: str

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode())

    def __repr__(self) -> str:
        return f"Credential(subject={self.certificate.subject.rfc4514_string()!r}, key=<masked>)"


class CertificateAuthority:
    """A self-signed CA that issues server and API client certificates."""

    def __init__(self, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self.certificate = cert

    @classmethod
    def generate(cls, common_name: str = CA_NAME, valid_days: int = 3650) -> CertificateAuthority:
        key = _new_key()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=valid_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def cert_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def key_pem(self) -> str:
        return _key_pem(self._key)

    def issue(
        self,
        common_name: str,
        *,
        valid_days: int = 365,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        password: str | None = None,
    ) -> Credential:
        """Issue a leaf cert (CN and SAN = common_name, server+client auth)."""
        key = _new_key()
        start = not_before or (_now() - dt.timedelta(minutes=5))
        end = not_after or (start + dt.timedelta(days=valid_days))
        try:
            san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(common_name))
        except ValueError:
            san = x509.DNSName(common_name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    ]
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([san]), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=True,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), False
            )
            .sign(self._key, hashes.SHA256())
        )
        return Credential(
            cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key, password)
        )

    def issue_server(self, name: str = SERVER_NAME, valid_days: int = 365) -> Credential:
        return self.issue(name, valid_days=valid_days)

    def __repr__(self) -> str:
        return f"CertificateAuthority(subject={self.certificate.subject.rfc4514_string()!r})"


class _BlockStyleDumper(yaml.SafeDumper):
    """Writes multi-line strings (PEM blocks) in literal ``|`` style, as Go's YAML encoder does."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockStyleDumper.add_representer(str, _str_representer)


def api_client_config(
    ca: CertificateAuthority,
    client: Credential,
    *,
    name: str,
    connection_string: str,
    pinned_server_name: str | None = None,
    max_grpc_recv_size: int | None = None,
) -> dict[str, Any]:
    """The api_client.yaml content, with exactly the keys the real command writes."""
    config: dict[str, Any] = {
        "ca_certificate": ca.cert_pem,
        "client_cert": client.cert_pem,
        "client_private_key": client.key_pem,
        "api_connection_string": connection_string,
        "name": name,
    }
    if pinned_server_name:
        config["pinned_server_name"] = pinned_server_name
    if max_grpc_recv_size:
        config["max_grpc_recv_size"] = max_grpc_recv_size
    return config


def write_api_client_yaml(path: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """Write an api_client.yaml with mode 0600 (created private, never world-readable)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump(config, Dumper=_BlockStyleDumper, sort_keys=False, width=1 << 20)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(target, 0o600)
    return target
