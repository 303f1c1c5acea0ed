"""(7) Wall time of one import statement in this fresh process (``module`` from the argument)."""

from __future__ import annotations

import importlib
from typing import Any

from _common import run


def work(args: dict[str, Any]) -> dict[str, Any]:
    importlib.import_module(args["module"])
    return {"rows": 0}


if __name__ == "__main__":
    run(work)
