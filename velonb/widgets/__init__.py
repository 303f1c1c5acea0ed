"""ipywidgets for choosing clients and artifacts and collecting (``velonb.widgets``).

* :class:`ClientPicker` - search the fleet with the server's syntax, choose clients.
* :class:`ArtifactPicker` - find an artifact, fill its typed parameter form.
* :class:`CollectPanel` - both, a Collect button, per-client progress and result tables.
* :class:`HuntPanel` - one hunt kept current: progress, each client's flow, Start and Stop.

Each widget displays as its ipywidgets tree, with a plain-text summary for front ends that
cannot render widgets (nbconvert, terminals), and remembers its state when the cell is re-run
(see :mod:`velonb.widgets._state`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from velonb.widgets._state import forget
    from velonb.widgets.artifacts import ArtifactPicker
    from velonb.widgets.clients import ClientPicker
    from velonb.widgets.collect import CollectJob, CollectPanel
    from velonb.widgets.hunt import HuntPanel

__all__ = ["ArtifactPicker", "ClientPicker", "CollectJob", "CollectPanel", "HuntPanel", "forget"]

_LAZY = {
    "ArtifactPicker": "velonb.widgets.artifacts",
    "ClientPicker": "velonb.widgets.clients",
    "CollectJob": "velonb.widgets.collect",
    "CollectPanel": "velonb.widgets.collect",
    "HuntPanel": "velonb.widgets.hunt",
    "forget": "velonb.widgets._state",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'velonb.widgets' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
