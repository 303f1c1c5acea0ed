"""Widget tests drive the widget models in Python against the session emulator (no browser)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import velonb
from velonb.widgets import forget


@pytest.fixture(scope="module")
def conn(emulator, tmp_path_factory) -> Iterator[Any]:
    """An administrator's connection (may collect) to the session emulator."""
    path = emulator.write_api_client_config(
        tmp_path_factory.mktemp("widgets") / "api_client.yaml", name="admin")
    connection = velonb.connect(path)
    yield connection
    connection.close()


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    """Each test starts with no remembered widget state."""
    forget()
    yield
    forget()


def host_id(conn: Any, hostname: str) -> str:
    frame = conn.clients(search=f"host:{hostname}")
    return str(frame.loc[frame["hostname"] == hostname, "client_id"].iloc[0])
