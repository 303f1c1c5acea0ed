"""(2) pyvelociraptor 0.1.14, as its docs say: ``pandas.DataFrame(velo_pandas.DataFrameQuery(q))``.

Runs in its own virtual environment (pyvelociraptor + pandas); max_row is left unset, so the
server sends one row per message, exactly as pyvelociraptor users get it.
"""

from __future__ import annotations

from typing import Any

import pandas
import pyvelociraptor  # type: ignore[import-not-found]
from _common import run
from pyvelociraptor import velo_pandas


def work(args: dict[str, Any]) -> dict[str, Any]:
    config = pyvelociraptor.LoadConfigFile(args["config"])
    frame = pandas.DataFrame(velo_pandas.DataFrameQuery(args["vql"], config=config))
    return {"rows": len(frame), "columns": len(frame.columns)}


if __name__ == "__main__":
    run(work)
