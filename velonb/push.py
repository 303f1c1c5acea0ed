"""Push rows into a server event queue (gRPC ``PushEvents``), pyvelociraptor's ``push_event``
done properly: a DataFrame or any rows go in batches, values converted as query parameters are
(times as RFC 3339 UTC; NaN, NaT and None as null), and every refusal is a named error.

The server writes the rows to the artifact's queue, stamps ``_ts`` and ``_Source`` (and
``_Sender``: the user who pushed them), hands them to every ``watch_monitoring()`` of the
artifact and keeps them for ``monitoring()``. Publishing needs the artifact in the user's
``publish_queues``, which no role grants, administrators included.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from velonb.errors import ParameterError, PermissionDeniedError
from velonb.fleet_errors import FleetError, UnknownArtifactError

if TYPE_CHECKING:
    from velonb.query import Connection

__all__ = ["MAX_BATCH_BYTES", "PushRejected", "push_events"]

#: a request carries at most this much JSONL (the server's gRPC receive limit is 4 MiB+)
MAX_BATCH_BYTES = 1 << 20


class PushRejected(FleetError):
    """The server refused the rows for this artifact (wrong kind of artifact or client id)."""


def _is_missing(value: Any) -> bool:
    """NaN, NaT, pd.NA and None: a missing cell, sent as null."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    name = type(value).__name__
    return name in ("NaTType", "NAType") or (name.startswith("float") and value != value)


def _records(rows: Any) -> list[Mapping[str, Any]]:
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):  # a DataFrame (index dropped)
        if not all(isinstance(c, str) for c in rows.columns):
            raise ParameterError("every column name must be a string to become an event field")
        records: list[Mapping[str, Any]] = rows.to_dict("records")
        return records
    if isinstance(rows, Mapping):
        return [rows]
    if isinstance(rows, str | bytes) or not isinstance(rows, Iterable):
        raise ParameterError(f"rows must be a DataFrame, a dict or dicts, not "
                             f"{type(rows).__name__}")
    out = list(rows)
    for index, row in enumerate(out):
        if not isinstance(row, Mapping):
            raise ParameterError(f"row {index} is a {type(row).__name__}, not a dict")
    return out


def _line(row: Mapping[str, Any], index: int) -> bytes:
    from velonb.params import to_jsonable

    clean = {key: (None if _is_missing(value) else value) for key, value in row.items()}
    data = to_jsonable(clean, path=f"row {index}")
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _batches(lines: list[bytes]) -> Iterable[list[bytes]]:
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if batch and size + len(line) > MAX_BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield batch


def push_events(conn: Connection, artifact: str, rows: Any, *, client_id: str = "server",
                flow_id: str = "", org_id: str = "") -> int:
    """Send ``rows`` to ``artifact``'s queue; the number of rows sent."""
    import grpc

    from velonb._proto import api_pb2

    if not artifact:
        raise ParameterError("artifact must name the event artifact to push to")
    lines = [_line(row, i) for i, row in enumerate(_records(rows))]
    conn._require_open()
    sent = 0
    for batch in _batches(lines):
        request = api_pb2.PushEventRequest(artifact=artifact, client_id=client_id,
                                           flow_id=flow_id, jsonl=b"".join(batch),
                                           rows=len(batch), org_id=org_id, write=True)
        try:
            conn._stub.PushEvents(request, timeout=60)
        except grpc.RpcError as err:
            raise _named(err, conn, artifact, client_id, org_id, sent) from None
        sent += len(batch)
    return sent


def _named(err: Any, conn: Connection, artifact: str, client_id: str, org_id: str,
           sent: int) -> Exception:
    """The velonb error for a PushEvents failure (how many rows had gone already)."""
    import grpc

    from velonb import transport

    details = str(err.details() if hasattr(err, "details") else err)
    already = f" ({sent} rows were sent before)" if sent else ""
    user = conn.config.user
    if err.code() == grpc.StatusCode.PERMISSION_DENIED and "PUBLISH" in details:
        return PermissionDeniedError(
            f"user {user!r} may not push events to {artifact}{already}: {details}",
            permission="PUBLISH",
            hint="ask a Velociraptor administrator to run: velociraptor --config "
                 f"server.config.yaml acl grant {user} '{{\"publish_queues\": [\"{artifact}\"]}}'"
                 " --merge")
    if details.startswith("Artifact ") and details.endswith(" not known"):
        return UnknownArtifactError(f"the server has no artifact {artifact}{already}",
                                    hint="push to an event artifact it knows; list them with "
                                         "conn.artifacts(type='server_event')")
    if "artifact_type" in details:
        return PushRejected(f"{artifact} refused the rows for client {client_id!r}{already}: "
                            f"{details}",
                            hint="server and server_event artifacts take client_id='server'; "
                                 "client_event artifacts a client id (C.…)")
    return transport.translate_error(err, conn.config, org_id=org_id)
