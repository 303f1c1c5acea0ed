"""(4) ``velonb.connect(path).query(vql)`` -> a typed DataFrame."""

from __future__ import annotations

from typing import Any

from _common import prepare_velonb, run

import velonb

prepare_velonb()  # velonb's lazy imports happen here, outside the timing


def work(args: dict[str, Any]) -> dict[str, Any]:
    with velonb.connect(args["config"]) as conn:
        frame = conn.query(args["vql"])
    return {"rows": len(frame), "columns": len(frame.columns)}


if __name__ == "__main__":
    run(work)
