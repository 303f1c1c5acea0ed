"""(3) The best hand-written loop: 1000-row parts, ``json.loads``, one ``pandas.DataFrame``."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from _common import run

from velonb import transport
from velonb._proto import api_pb2_grpc, vql_pb2
from velonb.config import load_config


def work(args: dict[str, Any]) -> dict[str, Any]:
    channel = transport.create_channel(load_config(args["config"]))
    stub = api_pb2_grpc.APIStub(channel)
    request = vql_pb2.VQLCollectorArgs(
        Query=[vql_pb2.VQLRequest(Name="loop", VQL=args["vql"])], max_row=1000, max_wait=1)
    rows: list[dict[str, Any]] = []
    for response in stub.Query(request):
        if response.Response:
            rows.extend(json.loads(response.Response))
    channel.close()
    frame = pd.DataFrame(rows)
    return {"rows": len(frame), "columns": len(frame.columns)}


if __name__ == "__main__":
    run(work)
