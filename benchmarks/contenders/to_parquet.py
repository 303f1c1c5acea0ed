"""(6) ``Connection.query_to_parquet`` of the hunt's rows shipped ``repeat`` times (peak RSS)."""

from __future__ import annotations

from typing import Any

from _common import prepare_velonb, run

import velonb

prepare_velonb()  # velonb's lazy imports happen here, outside the timing


def work(args: dict[str, Any]) -> dict[str, Any]:
    with velonb.connect(args["config"]) as conn:
        summary = conn.query_to_parquet(args["vql"], args["out"], overwrite=True,
                                        env={"BenchRepeat": str(args["repeat"])})
    return {"rows": summary.rows, "file_mb": summary.bytes / 1e6}


if __name__ == "__main__":
    run(work)
