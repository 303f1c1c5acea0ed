"""(1) The floor: the raw gRPC stream of the query in 1000-row parts, received and discarded.

The messages are taken as the bytes grpc hands over (no protobuf parsing, no str per part):
the least any client can do to receive the same result. velonb's own reading
(VQLResponseBytes) parses every message; the floor does not.
"""

from __future__ import annotations

from typing import Any

from _common import run

from velonb import transport
from velonb._proto import vql_pb2
from velonb.config import load_config


def work(args: dict[str, Any]) -> dict[str, Any]:
    channel = transport.create_channel(load_config(args["config"]))
    query = channel.unary_stream(
        "/proto.API/Query",
        request_serializer=vql_pb2.VQLCollectorArgs.SerializeToString,
        response_deserializer=bytes,  # the message as received; then dropped
    )
    request = vql_pb2.VQLCollectorArgs(
        Query=[vql_pb2.VQLRequest(Name="floor", VQL=args["vql"])], max_row=1000, max_wait=1)
    messages = size = 0
    for message in query(request):
        messages += 1
        size += len(message)
    channel.close()
    return {"rows": args["rows"], "messages": messages, "bytes": size}


if __name__ == "__main__":
    run(work)
