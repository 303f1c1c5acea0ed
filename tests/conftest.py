"""Shared fixtures: one emulator per test session, API client configs made at test time.

Users of the session emulator (root org unless said otherwise):

* ``admin``        administrator (also administrator in org ``O1234``, "Second Org")
* ``apiuser``      api (ANY_QUERY + READ_RESULTS: the minimum a Query client needs)
* ``reader``       reader (READ_RESULTS only: every Query is refused)
* ``investigator`` investigator

``api_config`` is an ``apiuser`` config: the role Velociraptor's docs recommend for API clients,
so tests see what a real, least-privileged API user sees.  ``make_config`` writes others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from velonb.emulator import Emulator

SESSION_USERS: dict[str, Any] = {
    "admin": {"root": ["administrator"], "O1234": ["administrator"]},
    "apiuser": ["api"],
    "reader": ["reader"],
    "investigator": ["investigator"],
}
SESSION_ORGS = {"O1234": "Second Org"}


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    """The session's emulator on a free 127.0.0.1 port, stopped at the end."""
    emu = Emulator(users=SESSION_USERS, orgs=SESSION_ORGS)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop(grace=0)


MakeConfig = Callable[..., Path]


@pytest.fixture
def make_config(emulator: Emulator, tmp_path: Path) -> MakeConfig:
    """Factory: ``make_config(name="apiuser", roles=None, **kw) -> Path`` of a new api_client.yaml.

    ``roles=None`` leaves the user records alone (the session users already exist; an unknown
    name then has no record, like ``config api_client`` without ``--role``).  Other keywords go
    to ``Emulator.write_api_client_config`` (valid_days, not_before, not_after, password, ...).
    """
    counter = iter(range(1_000_000))

    def make(name: str = "apiuser", roles: Iterable[str] | None = None, **kw: Any) -> Path:
        path = tmp_path / f"api_client_{name}_{next(counter)}.yaml"
        return emulator.write_api_client_config(
            path, name=name, roles=tuple(roles) if roles is not None else None, **kw
        )

    return make


@pytest.fixture
def api_config(make_config: MakeConfig) -> Path:
    """An api_client.yaml for ``apiuser`` (role ``api``) in this test's tmp_path."""
    return make_config("apiuser")


def load_api_config(path: Path) -> dict[str, Any]:
    """The YAML content of an api_client.yaml."""
    return yaml.safe_load(path.read_text())


@pytest.fixture
def raw_stub() -> Iterator[Callable[..., Any]]:
    """Factory: ``raw_stub(config_path, options=()) -> APIStub`` on a plain grpc mTLS channel.

    Deliberately not velonb's client: these tests pin the server's wire behaviour on their own.
    """
    import grpc

    from velonb._proto import api_pb2_grpc

    channels: list[Any] = []

    def make(path: Path, options: Iterable[tuple[str, Any]] = ()) -> Any:
        config = load_api_config(path)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=config["ca_certificate"].encode(),
            private_key=config["client_private_key"].encode(),
            certificate_chain=config["client_cert"].encode(),
        )
        channel = grpc.secure_channel(
            config["api_connection_string"],
            credentials,
            options=[("grpc.ssl_target_name_override", "VelociraptorServer"), *options],
        )
        channels.append(channel)
        return api_pb2_grpc.APIStub(channel)

    yield make
    for channel in channels:
        channel.close()


def query_args(*vql: str, name: str = "Test", **fields: Any) -> Any:
    """A VQLCollectorArgs with one VQLRequest per ``vql`` text (env given as a dict)."""
    from velonb._proto import vql_pb2

    env = fields.pop("env", {})
    return vql_pb2.VQLCollectorArgs(
        Query=[vql_pb2.VQLRequest(Name=name, VQL=text) for text in vql],
        env=[vql_pb2.VQLEnv(key=k, value=v) for k, v in env.items()],
        **fields,
    )
