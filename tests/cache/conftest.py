"""Every cache test gets its own cache directory and starts online with no overrides.

The IPython fixtures come from tests/ipython_shell.py (one TestingShell class per process).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ipython_shell import bare, ip, run, secrets, shell  # noqa: F401

from velonb import cache


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "cache"
    monkeypatch.setenv("VELONB_CACHE_DIR", str(path))
    monkeypatch.delenv("VELONB_OFFLINE", raising=False)
    monkeypatch.delenv("VELONB_CACHE_MAX_SIZE", raising=False)
    cache.set_offline(None)
    cache.set_cache_dir(None)
    yield path
    cache.set_offline(None)
    cache.set_cache_dir(None)
