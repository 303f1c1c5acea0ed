"""velonb: Velociraptor investigations in Jupyter, as typed pandas DataFrames.

Heavy modules (grpc, pandas, pyarrow) load on first use, so ``import velonb`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from velonb._frames_dicts import SharedDict
    from velonb.cache import Cache, offline
    from velonb.cache_run import replay
    from velonb.config import ApiClientConfig, load_config
    from velonb.errors import VelonbError
    from velonb.nested import expand
    from velonb.query import Connection, QueryResult, connect

__all__ = [
    "ApiClientConfig",
    "Cache",
    "Connection",
    "QueryResult",
    "SharedDict",
    "VelonbError",
    "__version__",
    "connect",
    "expand",
    "load_config",
    "offline",
    "replay",
]

_LAZY = {
    "ApiClientConfig": "velonb.config",
    "load_config": "velonb.config",
    "Connection": "velonb.query",
    "QueryResult": "velonb.query",
    "connect": "velonb.query",
    "VelonbError": "velonb.errors",
    "SharedDict": "velonb._frames_dicts",
    "expand": "velonb.nested",
    "Cache": "velonb.cache",
    "offline": "velonb.cache",
    "replay": "velonb.cache_run",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'velonb' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext velonb``: register the %%vql, %vql and %vql_config magics, nothing else."""
    from velonb.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext velonb``: remove the magics and close their connection."""
    from velonb.magics import unload_ipython_extension as unload

    unload(ipython)
