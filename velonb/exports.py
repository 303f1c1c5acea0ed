"""Export a collection or a hunt as the server's zip (``create_flow_download`` /
``create_hunt_download``) and download it.

The server writes the zip (results as JSONL, optionally CSV, the log, the collection context,
the uploaded files; for a hunt also every client's rows combined, with FlowId, ClientId and
Fqdn) into its file store and lists it, with its size and SHA-256, in the flow's
``AvailableDownloads`` (a hunt's ``stats.available_downloads``). The zip is then read through
``VFSGetBuffer`` into ``<dest>/<name>.zip``: bytes go to a ``.part`` file that gets the real
name once its size and SHA-256 match the server's. Every call has the server write a new zip
(its members carry the time they were written, so its hash changes): an interrupted download
starts again rather than resume.

With ``password`` the server writes ``<name>_locked.zip``: a zip holding one AES-256 encrypted
member, ``data.zip`` (7-Zip or WinZip open it). Uploaded malware stays inert inside, so
endpoint protection on the analyst's machine does not quarantine the evidence. The password
travels as a query parameter and is never printed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from velonb.download import CHUNK_SIZE, PART_SUFFIX, _inside, pull_into, safe_component
from velonb.fleet_errors import (
    DownloadError,
    DownloadInterrupted,
    FleetError,
    UnknownFlowError,
    UnknownHuntError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from velonb.query import Connection

__all__ = ["EXPORT_FORMATS", "ExportedZip", "export_flow", "export_hunt"]

#: ``format=`` values: JSONL results; JSONL and CSV; CSV only
EXPORT_FORMATS = ("json", "csv", "csv_only")

EXPORT_VQL = """\
LET Export <= create_flow_download(client_id=ClientId, flow_id=FlowId, wait=TRUE,
    format=Format, expand_sparse=ExpandSparse, name=Name, password=Password)
SELECT Export.Components AS Components, AvailableDownloads
FROM flows(client_id=ClientId, flow_id=FlowId)
"""
HUNT_EXPORT_VQL = """\
LET Export <= create_hunt_download(hunt_id=HuntId, wait=TRUE, format=Format,
    only_combined=OnlyCombined, expand_sparse=ExpandSparse, base=Base, password=Password)
SELECT Export.Components AS Components, stats.available_downloads AS AvailableDownloads
FROM hunts(hunt_id=HuntId)
"""


@dataclass(frozen=True)
class ExportedZip:
    """A downloaded export zip: where it is, its size and SHA-256 (both checked against the
    server's record), and where the server keeps it."""

    path: Path
    size: int
    sha256: str
    server_path: str = field(repr=False)
    verified: bool = True  # False: the server listed no SHA-256 to check against


def _server_file(conn: Connection, vql: str, env: dict[str, Any], org_id: str,
                 function: str, missing: FleetError) -> tuple[list[str], dict[str, Any]]:
    """Ask the server to write the zip; its components and its AvailableDownloads record."""
    from velonb.fleet_errors import permission_error
    from velonb.fleet_flows import _checked

    what = "exporting a flow" if function == "create_flow_download" else "exporting a hunt"
    result = _checked(conn, vql, env, org_id, what)
    rows = result.frame.to_dict("records")
    if not rows:
        raise missing
    components = rows[0].get("Components")
    if not isinstance(components, list) or not components:
        said = [line.message.strip() for line in result.logs
                if line.message.startswith(f"{function}:") or line.is_error]
        denied = permission_error(said, conn.config.user, what)
        if denied is not None:
            raise denied
        raise DownloadError("the server did not create the export"
                            + (f": {said[-1]}" if said else ""),
                            hint=None if said else f"the server logged no reason: does it "
                                                   f"have {function}()?")
    path = "/".join(str(c) for c in components)
    files = ((rows[0].get("AvailableDownloads") or {}).get("files") or [])
    record: dict[str, Any] = next((f for f in files if f.get("path") == path), {})
    return [str(c) for c in components], record


def _check(format: str, chunk_size: int) -> None:
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, not {format!r}")
    if not 0 < chunk_size <= CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {CHUNK_SIZE} bytes")


def export_flow(conn: Connection, client_id: str, flow_id: str,
                dest: str | os.PathLike[str], *, format: str = "json",
                expand_sparse: bool = False, name: str | None = None,
                password: str | None = None, org_id: str = "",
                chunk_size: int = CHUNK_SIZE,
                progress: Callable[[int, int], None] | None = None) -> ExportedZip:
    """Have the server build the flow's export zip, then download and verify it."""
    _check(format, chunk_size)
    env = {"ClientId": client_id, "FlowId": flow_id, "Format": format,
           "ExpandSparse": bool(expand_sparse), "Name": name or "", "Password": password or ""}
    missing = UnknownFlowError(f"no flow {flow_id} on client {client_id}",
                               hint="check the ids with conn.flows(client)")
    components, record = _server_file(conn, EXPORT_VQL, env, org_id, "create_flow_download",
                                      missing)
    return _fetch(conn, components, record, dest, org_id, chunk_size, progress)


def export_hunt(conn: Connection, hunt_id: str, dest: str | os.PathLike[str], *,
                format: str = "json", only_combined: bool = False,
                expand_sparse: bool = False, base: str = "", password: str | None = None,
                org_id: str = "", chunk_size: int = CHUNK_SIZE,
                progress: Callable[[int, int], None] | None = None) -> ExportedZip:
    """Have the server build the hunt's export zip, then download and verify it."""
    _check(format, chunk_size)
    env = {"HuntId": hunt_id, "Format": format, "OnlyCombined": bool(only_combined),
           "ExpandSparse": bool(expand_sparse), "Base": base, "Password": password or ""}
    missing = UnknownHuntError(f"no hunt {hunt_id}", hint="check the id with conn.hunts()")
    components, record = _server_file(conn, HUNT_EXPORT_VQL, env, org_id,
                                      "create_hunt_download", missing)
    return _fetch(conn, components, record, dest, org_id, chunk_size, progress)


def _fetch(conn: Connection, components: list[str], record: dict[str, Any],
           dest: str | os.PathLike[str], org_id: str, chunk_size: int,
           progress: Callable[[int, int], None] | None) -> ExportedZip:
    """Download the zip the server listed into ``dest``; its size and SHA-256 checked."""
    size = int(record.get("size") or 0)
    expected = str((record.get("stats") or {}).get("hash") or "")
    if record and not record.get("complete"):
        raise DownloadError(f"the server has not finished writing {components[-1]}",
                            hint="run export() again in a moment")
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    target = _inside(root, Path(safe_component(components[-1]) or "export.zip"))
    part = target.with_name(target.name + PART_SUFFIX)
    part.unlink(missing_ok=True)  # the server wrote a new zip: nothing earlier belongs to it
    done = 0
    hashed = hashlib.sha256()

    def advance(chunk: bytes) -> None:  # hashed as received: no second pass over the file
        nonlocal done
        done += len(chunk)
        hashed.update(chunk)
        if progress is not None:
            progress(done, size)

    try:
        received = pull_into(conn, components, part, 0, size, org_id=org_id,
                             chunk_size=chunk_size, on_chunk=advance)
    except KeyboardInterrupt:
        part.unlink(missing_ok=True)
        raise DownloadInterrupted(
            f"export download interrupted after {done} of {size or '?'} bytes",
            hint="call export() again: the server writes a new zip") from None
    digest = hashed.hexdigest()
    if (size and received != size) or (expected and digest != expected):
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{components[-1]}: received {received} bytes with SHA-256 {digest[:16]}..., the "
            f"server recorded {size} bytes with SHA-256 {expected[:16]}...",
            hint="run export() again; the partial file was removed")
    part.replace(target)
    return ExportedZip(target, received, digest, "fs:/" + "/".join(components),
                      verified=bool(expected))

