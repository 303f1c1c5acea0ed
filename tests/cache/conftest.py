"""Every cache test gets its own cache directory and starts online with no overrides.

The IPython fixtures come from tests/magic/conftest.py. pytest loads that file under its own
module name, and its session ``shell`` fixture checks the class of the one InteractiveShell of
the process, so ``shell`` here builds it from the class pytest itself loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.magic import conftest as magic_conftest
from tests.magic.conftest import bare, ip, run, secrets  # noqa: F401
from velonb import cache

MAGIC_CONFTEST = Path(magic_conftest.__file__).resolve()


@pytest.fixture(scope="session")
def shell() -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    if InteractiveShell.initialized():
        return InteractiveShell.instance()
    loaded = [m for name, m in list(sys.modules.items()) if name != magic_conftest.__name__
              and getattr(m, "__file__", None) and Path(m.__file__).resolve() == MAGIC_CONFTEST]
    testing_shell = (loaded[0] if loaded else magic_conftest).TestingShell
    config = Config()
    config.HistoryManager.enabled = False
    return testing_shell.instance(config=config)


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
