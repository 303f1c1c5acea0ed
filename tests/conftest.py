"""Shared fixtures: one emulator per test session, API client configs made at test time.

The session emulator serves ``World(seed=7)`` (fixture ``world``): the simulated fleet, its
artifacts, flows and hunts.  Users (root org unless said otherwise):

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
from wire_helpers import load_api_config, run_world_query

from velonb.emulator import Emulator
from velonb.emulator.world import World

SESSION_USERS: dict[str, Any] = {
    "admin": {"root": ["administrator"], "O1234": ["administrator"]},
    "apiuser": ["api"],
    "reader": ["reader"],
    "investigator": ["investigator"],
}
SESSION_ORGS = {"O1234": "Second Org"}


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    """The session's simulated deployment (seed 7; collections finish as soon as possible)."""
    sim = World(seed=7, flow_delay=0.0)
    try:
        yield sim
    finally:
        sim.close()


@pytest.fixture(scope="session")
def emulator(world: World) -> Iterator[Emulator]:
    """The session's emulator on a free 127.0.0.1 port, serving ``world``, stopped at the end."""
    emu = Emulator(users=SESSION_USERS, orgs=SESSION_ORGS, world=world)
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


PYVELOCIRAPTOR = "pyvelociraptor==0.1.14"


@pytest.fixture(scope="session")
def pyvelo_python() -> Path:
    """Python of a venv with pyvelociraptor installed (cached under ``$VELONB_TEST_CACHE``,
    default ``~/.cache/velonb-tests``): its generated protos cannot share our process."""
    import os
    import subprocess
    import sys

    cache = Path(os.environ.get("VELONB_TEST_CACHE", Path.home() / ".cache" / "velonb-tests"))
    venv = cache / ("venv-" + PYVELOCIRAPTOR.replace("==", "-"))
    python = venv / "bin" / "python"
    marker = venv / ".velonb-installed"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", PYVELOCIRAPTOR, "pandas"],
            capture_output=True, text=True, timeout=900,
        )
        if install.returncode != 0:
            pytest.fail(f"could not install {PYVELOCIRAPTOR} into {venv}:\n"
                        f"{install.stderr[-2000:]}")
        marker.write_text(PYVELOCIRAPTOR)
    return python


WorldQuery = Callable[..., tuple[list[dict[str, Any]], list[str]]]


@pytest.fixture
def world_query(world: World) -> WorldQuery:
    """Factory: ``world_query(vql, roles=("administrator",), org="root", env=None)`` runs VQL on
    the session world directly (no gRPC) and returns (rows, logs)."""

    def run(vql: str, roles: Iterable[str] = ("administrator",), **kw: Any) -> Any:
        return run_world_query(world, vql, roles, **kw)

    return run
