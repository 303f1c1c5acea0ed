"""Download a flow's uploads through ``VFSGetBuffer``: large chunks, sizes verified, file names
made safe, resumable.

Each upload is read by its ``Upload.Components`` in chunks of :data:`CHUNK_SIZE` bytes and
written to ``<dest>/<accessor>/<client path>``. Names are sanitised so that nothing can land
outside ``dest`` (no ``..``, absolute paths, drive letters, Windows device names or reserved
characters). Bytes go to ``<name>.part`` first; the file gets its real name only once its size
matches what the server recorded. An interrupted download (Ctrl-C, a broken connection) leaves the
``.part`` file: the next call continues from its size.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from velonb.fleet_errors import DownloadError, DownloadInterrupted

if TYPE_CHECKING:
    from velonb.query import Connection

__all__ = ["CHUNK_SIZE", "DownloadedFile", "download_uploads", "safe_component", "safe_relpath"]

CHUNK_SIZE = 4 * 1024 * 1024  # the server allocates `length` bytes per call: 4 MiB is its limit
PART_SUFFIX = ".part"
_MAX_COMPONENT = 200
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|CLOCK\$|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³])"
                       r"(\..*)?$", re.IGNORECASE)
_BAD_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_DRIVE = re.compile(r"^([A-Za-z]):$")


def safe_component(part: str) -> str:
    """One path component made safe on Windows, macOS and Linux ("" when nothing is left)."""
    part = unicodedata.normalize("NFC", str(part))
    if part in ("", ".", ".."):
        return ""
    drive = _DRIVE.match(part)
    if drive:
        return drive.group(1)  # "C:" -> "C"
    part = _BAD_CHARS.sub("_", part).rstrip(" .")
    if not part or (set(part) <= {".", "_"} and part.strip("_") in ("", ".", "..")):
        part = part.replace(".", "_") or "_"
    if _RESERVED.match(part):
        part = "_" + part
    if len(part.encode()) > _MAX_COMPONENT:
        stem, dot, ext = part.rpartition(".")
        ext = ext if dot and len(ext) <= 16 else ""
        keep = part if not ext else stem
        while len((keep + ("." + ext if ext else "")).encode()) > _MAX_COMPONENT:
            keep = keep[:-1]
        part = keep + ("." + ext if ext else "")
    return part


def safe_relpath(components: Sequence[str]) -> Path:
    """A relative path from untrusted components; separators inside a component split it."""
    parts: list[str] = []
    for component in components:
        for piece in re.split(r"[\\/]+", str(component)):
            safe = safe_component(piece)
            if safe:
                parts.append(safe)
    if not parts:
        parts = ["unnamed"]
    return Path(*parts)


def _inside(dest: Path, relative: Path) -> Path:
    root = dest.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or target == root:
        raise DownloadError(f"refusing to write {relative} outside {root}")
    return target


@dataclass
class DownloadedFile:
    """One downloaded upload."""

    client_path: str
    path: Path
    size: int
    resumed_from: int = 0
    skipped: bool = False  # already complete on disk


def _local_name(row: Mapping[str, Any]) -> Path:
    accessor = str(row.get("_accessor") or (row.get("Upload") or {}).get("Accessor") or "file")
    client = row.get("_client_components")
    if not client:
        client = re.split(r"[\\/]+", str(row.get("client_path") or ""))
    return safe_relpath([accessor, *client])


def _read(conn: Connection, components: list[str], offset: int, length: int,
          org_id: str) -> bytes:
    import grpc

    from velonb import transport
    from velonb._proto import api_pb2

    conn._require_open()
    try:
        reply = conn._stub.VFSGetBuffer(api_pb2.VFSFileBuffer(
            components=components, offset=offset, length=length, org_id=org_id), timeout=120)
    except grpc.RpcError as err:
        raise transport.translate_error(err, conn.config, org_id=org_id) from None
    return bytes(reply.data)


def pull_into(conn: Connection, components: list[str], part: Path, offset: int, size: int, *,
              org_id: str, chunk_size: int, on_chunk: Callable[[bytes], None]) -> int:
    """Append a file store file to ``part`` from ``offset`` in ``chunk_size`` reads until the
    server sends nothing or ``size`` (when known) is reached; the bytes now in ``part``.
    ``on_chunk`` sees each chunk as written."""
    with open(part, "ab") as handle:
        while True:
            data = _read(conn, components, offset, chunk_size, org_id)
            if not data:
                break
            handle.write(data)
            handle.flush()
            offset += len(data)
            on_chunk(data)
            if size and offset >= size:
                break
    return offset


def download_uploads(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    dest: str | os.PathLike[str],
    *,
    org_id: str = "",
    chunk_size: int = CHUNK_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> list[DownloadedFile]:
    """Download every ``uploads()`` row into ``dest``; ``progress(done, total)`` per chunk."""
    if not 0 < chunk_size <= CHUNK_SIZE:
        raise ValueError(f"chunk_size must be between 1 and {CHUNK_SIZE} bytes")
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    plan: list[tuple[Mapping[str, Any], Path, int]] = []
    used: set[Path] = set()
    for row in rows:
        relative = _local_name(row)
        while relative in used:  # two uploads of one path (e.g. another accessor)
            relative = relative.with_name("_" + relative.name)
        used.add(relative)
        upload = row.get("Upload") or {}
        size = int(row.get("file_size") or upload.get("Size") or 0)
        plan.append((row, _inside(root, relative), size))
    total = sum(size for _, _, size in plan)
    done = 0
    out: list[DownloadedFile] = []
    try:
        for row, target, size in plan:
            upload = row.get("Upload") or {}
            components = [str(c) for c in (upload.get("Components") or row.get("_Components")
                                           or [])]
            client_path = str(row.get("client_path") or upload.get("Path") or "")
            if not components:
                raise DownloadError(f"the server gave no components for {client_path!r}")
            if target.exists() and target.stat().st_size == size:
                done += size
                out.append(DownloadedFile(client_path, target, size, size, skipped=True))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(target.name + PART_SUFFIX)
            offset = part.stat().st_size if part.exists() else 0
            if size and offset > size:
                offset = 0  # not ours: start over
                part.unlink()
            start = offset
            done += offset

            def advance(chunk: bytes) -> None:
                nonlocal done
                done += len(chunk)
                if progress is not None:
                    progress(done, total)

            offset = pull_into(conn, components, part, offset, size, org_id=org_id,
                               chunk_size=chunk_size, on_chunk=advance)
            if size and offset != size:
                raise DownloadError(
                    f"{client_path}: received {offset} bytes, the server recorded {size}",
                    hint="run download() again to resume; if it repeats, the upload is "
                         "incomplete on the server")
            part.replace(target)
            out.append(DownloadedFile(client_path, target, offset, start))
    except KeyboardInterrupt:
        raise DownloadInterrupted(
            f"download interrupted after {done} of {total} bytes",
            hint="call download() again with the same destination: partial files resume "
                 "where they stopped") from None
    return out
