"""(1) The floor: the raw gRPC stream of the query in 1000-row parts, received and discarded."""

from __future__ import annotations

from typing import Any

from _common import run

from velonb import transport
from velonb._proto import api_pb2_grpc, vql_pb2
from velonb.config import load_config


def work(args: dict[str, Any]) -> dict[str, Any]:
    channel = transport.create_channel(load_config(args["config"]))
    stub = api_pb2_grpc.APIStub(channel)
    request = vql_pb2.VQLCollectorArgs(
        Query=[vql_pb2.VQLRequest(Name="floor", VQL=args["vql"])], max_row=1000, max_wait=1)
    parts = size = 0
    for response in stub.Query(request):
        payload = response.Response  # the str every client reads; then dropped
        if payload:
            parts += 1
            size += len(payload)
    channel.close()
    return {"rows": args["rows"], "parts": parts, "chars": size}


if __name__ == "__main__":
    run(work)
