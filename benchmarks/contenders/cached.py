"""(5) The cache: ``store`` runs the query live with ``cache=True`` (stores it), ``rerun`` runs it
again (a hit), ``pyarrow`` reads the entry's Parquet file with ``pq.read_table().to_pandas()``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.dataset  # noqa: F401  (read_table imports it: not part of the timing)
import pyarrow.parquet as pq
from _common import prepare_velonb, run

import velonb

prepare_velonb()  # velonb's lazy imports happen here, outside the timing


def work(args: dict[str, Any]) -> dict[str, Any]:
    if args["mode"] == "pyarrow":
        files = sorted(Path(args["cache_dir"]).rglob("*.parquet"))
        if len(files) != 1:
            raise SystemExit(f"expected one cached Parquet file, found {files}")
        frame = pq.read_table(files[0]).to_pandas()
        return {"rows": len(frame), "file_mb": files[0].stat().st_size / 1e6}
    with velonb.connect(args["config"]) as conn:
        result = conn.execute(args["vql"], cache=True, cache_dir=args["cache_dir"])
    source = result.cache.source if result.cache is not None else "none"
    if args["mode"] == "rerun" and source != "cache":
        raise SystemExit(f"the re-run was not a cache hit (source={source})")
    return {"rows": len(result.frame), "source": source}


if __name__ == "__main__":
    run(work)
