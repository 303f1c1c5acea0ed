"""Fixtures of the fleet helper tests: private emulators (these tests launch flows and hunts, so
they never touch the session world other tests count on) and connections per user."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import velonb
from velonb.emulator import Emulator
from velonb.emulator.world import World
from velonb.fleet import FleetMixin
from velonb.query import Connection

USERS: dict[str, Any] = {
    "admin": {"root": ["administrator"], "O1234": ["administrator"]},
    "apiuser": ["api"],
    "reader": ["reader"],
    "investigator": ["investigator"],
}
ORGS = {"O1234": "Second Org"}


@contextlib.contextmanager
def private_emulator(**world_options: Any) -> Iterator[Emulator]:
    """An emulator of its own over ``World(seed=7, **world_options)``, stopped afterwards: for
    tests that change the world (hunts, labels, artifacts) or need other timings."""
    world = World(seed=7, **world_options)
    emu = Emulator(users=USERS, orgs=ORGS, world=world)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop(grace=0)
        world.close()


@pytest.fixture(scope="session")
def fleet_emulator() -> Iterator[Emulator]:
    """The demo world (collections finish ~0.1 s after launch)."""
    with private_emulator(flow_delay=0.0) as emu:
        yield emu


@pytest.fixture(scope="session")
def slow_emulator() -> Iterator[Emulator]:
    """Collections take 1.5 s: for waiting, interrupting and concurrent monitoring."""
    with private_emulator(flow_delay=1.5) as emu:
        yield emu


ConnectAs = Callable[..., Any]


def _connector(emu: Emulator, tmp_path: Path) -> Iterator[ConnectAs]:
    made: list[Connection] = []

    def connect(name: str = "admin", org_id: str | None = None) -> Any:
        path = emu.write_api_client_config(tmp_path / f"{name}-{len(made)}.yaml", name=name,
                                          roles=None)
        conn = velonb.connect(path, org_id=org_id)
        assert isinstance(conn, FleetMixin)
        made.append(conn)
        return conn

    yield connect
    for conn in made:
        conn.close()


@pytest.fixture
def connect_as(fleet_emulator: Emulator, tmp_path: Path) -> Iterator[ConnectAs]:
    """Factory: ``connect_as("investigator", org_id=None)`` -> Connection to fleet_emulator."""
    yield from _connector(fleet_emulator, tmp_path)


@pytest.fixture
def slow_connect(slow_emulator: Emulator, tmp_path: Path) -> Iterator[ConnectAs]:
    yield from _connector(slow_emulator, tmp_path)


@pytest.fixture
def admin(connect_as: ConnectAs) -> Any:
    return connect_as("admin")


@pytest.fixture
def fleet_world(fleet_emulator: Emulator) -> World:
    world = fleet_emulator.world
    assert isinstance(world, World)
    return world
