"""Share an investigation: ``velonb pack`` / ``velonb unpack``.

A case zip holds the notebook and exactly the cache entries its executed cells used (each
``%%vql`` cell records its entry in an output of type :data:`velonb.display.CACHE_MIME`)::

    <notebook>.ipynb
    .velonb-cache/case.json                      {"offline": true, entries, notebook, ...}
    .velonb-cache/<qhash16>/<key>.json            sidecars
    .velonb-cache/<qhash16>/<key>-<i>-<sha>.parquet

Unpacked into a directory, a kernel started there (Jupyter starts kernels in the notebook's
directory) uses ``./.velonb-cache`` as its cache, and ``case.json`` turns offline mode on: every
cell replays its result without a server. ``VELONB_OFFLINE=0`` or ``%vql_config --online`` runs
the notebook live again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from velonb.cache import CASE_DIR, CASE_FILE, Cache, Damaged, default_cache_dir
from velonb.display import CACHE_MIME
from velonb.errors import CacheError

__all__ = ["PackReport", "pack", "unpack", "used_entries"]

_REF = re.compile(r"^[0-9a-f]{16}/[0-9a-f]{64}$")
_MEMBER = re.compile(r"^\.velonb-cache/(case\.json|[0-9a-f]{16}/[0-9a-f]{64}"
                     r"(\.json|-\d+-[0-9a-f]{16}\.parquet))$")


@dataclass
class PackReport:
    """What was packed or unpacked."""

    archive: Path
    notebook: Path
    entries: list[str] = field(default_factory=list)
    bytes: int = 0

    def __str__(self) -> str:
        return (f"{self.notebook.name} with {len(self.entries)} cache entr"
                f"{'y' if len(self.entries) == 1 else 'ies'} ({self.bytes / 1e6:.2f} MB): "
                f"{self.archive}")


def used_entries(notebook: dict[str, Any]) -> list[tuple[int, str]]:
    """(cell number, entry ref) of every cache entry the executed cells recorded, in order."""
    found: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, cell in enumerate(notebook.get("cells", []), 1):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            record = output.get("data", {}).get(CACHE_MIME)
            for ref in (record or {}).get("entries", []):
                if _REF.match(ref) and ref not in seen:
                    seen.add(ref)
                    found.append((number, ref))
    return found


def _caches_for(notebook: Path, cache_dir: str | os.PathLike[str] | None) -> list[Cache]:
    """Where the kernel may have cached: --cache-dir, ./.velonb-cache next to the notebook,
    $VELONB_CACHE_DIR, the user cache dir. Keys name entries exactly, so all can be searched."""
    if cache_dir is not None:
        return [Cache(cache_dir)]
    paths = [notebook.parent.absolute() / CASE_DIR, default_cache_dir()]
    if os.environ.get("VELONB_CACHE_DIR"):
        paths.append(Path(os.environ["VELONB_CACHE_DIR"]).expanduser())
    return [Cache(p) for p in dict.fromkeys(paths) if p.is_dir()]


def pack(notebook: str | os.PathLike[str], output: str | os.PathLike[str], *,
         cache_dir: str | os.PathLike[str] | None = None) -> PackReport:
    """Zip ``notebook`` with the cache entries its cells used (CacheError if one is missing)."""
    source = Path(notebook)
    data = json.loads(source.read_text(encoding="utf-8"))
    caches = _caches_for(source, cache_dir)
    refs = used_entries(data)
    if not refs:
        raise CacheError(f"{source.name} records no cache entries",
                         hint="execute it with caching on (%vql_config --cache on) and save it")
    report = PackReport(Path(output), Path(source.name))
    problems: list[str] = []
    members: list[tuple[str, Path]] = []
    identities = []
    for number, ref in refs:
        cache = next((c for c in caches if (c.path / f"{ref}.json").exists()),
                     caches[0] if caches else Cache(default_cache_dir()))
        sidecar = cache.path / f"{ref}.json"
        try:
            entry = cache._entry(sidecar)
            for spec, path in zip(entry.meta["statements"], entry.files, strict=True):
                if hashlib.sha256(path.read_bytes()).hexdigest() != spec["sha256"]:
                    raise Damaged(f"{path.name} fails its checksum")
                members.append((f"{CASE_DIR}/{ref.split('/')[0]}/{path.name}", path))
        except (OSError, Damaged) as err:
            problems.append(f"cell {number}: {ref} ({getattr(err, 'message', err)})")
            continue
        members.append((f"{CASE_DIR}/{ref}.json", sidecar))
        identities.append({k: entry.meta.get(k) for k in ("server", "user", "org")})
        report.entries.append(ref)
    if problems:
        where = ", ".join(str(c.path) for c in caches) or "no cache directory"
        raise CacheError(f"{len(problems)} cache entries are missing or damaged ({where}):"
                         "\n  " + "\n  ".join(problems),
                         hint="re-run those cells online with caching on, save, and pack again")
    from velonb import __version__

    case = {"offline": True, "notebook": source.name, "entries": report.entries,
            "identities": identities, "velonb_version": __version__,
            "packed_at": dt.datetime.now(dt.UTC).isoformat()}
    report.archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = report.archive.with_name(f".{report.archive.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(source, source.name)
        for name, path in members:
            archive.write(path, name)
        archive.writestr(f"{CASE_DIR}/{CASE_FILE}", json.dumps(case, indent=1))
    os.replace(tmp, report.archive)
    report.bytes = report.archive.stat().st_size
    return report


def _check_member(info: zipfile.ZipInfo) -> str:
    name = info.filename
    parts = PurePosixPath(name).parts
    if (name.startswith(("/", "\\")) or "\\" in name or ".." in parts or ":" in name
            or not parts):
        raise CacheError(f"refusing zip entry {name!r}: absolute path or '..'",
                         hint="only unpack cases made by velonb pack")
    mode = (info.external_attr >> 16) & 0o170000
    if mode == 0o120000:
        raise CacheError(f"refusing zip entry {name!r}: a symbolic link")
    if not (_MEMBER.match(name) or (len(parts) == 1 and name.endswith(".ipynb"))):
        raise CacheError(f"refusing zip entry {name!r}: not part of a velonb case",
                         hint="only unpack cases made by velonb pack")
    return name


def unpack(archive: str | os.PathLike[str], directory: str | os.PathLike[str]) -> PackReport:
    """Lay a case out in ``directory`` (notebook + .velonb-cache/) for offline replay."""
    target = Path(directory).absolute()
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        names = [_check_member(info) for info in infos]  # check all before writing any
        notebooks = [n for n in names if n.endswith(".ipynb") and "/" not in n]
        if len(notebooks) != 1 or f"{CASE_DIR}/{CASE_FILE}" not in names:
            raise CacheError(f"{archive} is not a velonb case (one notebook and "
                             f"{CASE_DIR}/{CASE_FILE})")
        existing = [n for n in names if (target / n).exists()]
        if existing:
            raise CacheError(f"{target} already holds {existing[0]}",
                             hint="unpack into a new or empty directory")
        target.mkdir(parents=True, exist_ok=True)
        for info, name in zip(infos, names, strict=True):
            path = target / name
            for parent in reversed(path.relative_to(target).parents[:-1]):
                (target / parent).mkdir(exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out, zf.open(info) as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        case = json.loads((target / CASE_DIR / CASE_FILE).read_text())
    return PackReport(Path(archive), target / notebooks[0], list(case.get("entries", [])),
                      Path(archive).stat().st_size)
