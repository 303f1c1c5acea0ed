"""The result cache: Parquet files plus a JSON sidecar per query result, never pickle.

Layout (``<root>`` is :func:`default_cache_dir`)::

    <root>/<qhash16>/<key>.json                    sidecar: the entry's commit point
    <root>/<qhash16>/<key>-<i>-<sha16>.parquet     statement i's rows (plain Parquet)
    <root>/case.json                                only in unpacked cases: replay offline

``key`` is the SHA-256 of a canonical JSON of the server identity (connection string, CA
fingerprint, API user), org, exact VQL, the bound env, ``max_rows``, the kind of query and
:data:`CACHE_FORMAT`; ``qhash16`` hashes the same without the identity, so offline replay of a
case can find an entry without the api_client config. Directories are 0700, files 0600.
Writes go to temp files renamed in the same directory; the sidecar is renamed last.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from velonb.cache_keys import (
    CACHE_FORMAT,
    Identity,
    Policy,
    cache_key,
    parse_size,
    parse_ttl,
    request_fields,
)
from velonb.errors import CacheError, CacheWarning

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


__all__ = [
    "CACHE_FORMAT", "Cache", "CacheStatus", "Entry", "Identity", "Policy", "cache_key",
    "default_cache_dir", "is_offline", "offline", "parse_size", "parse_ttl", "request_fields",
    "set_cache_dir", "set_offline",
]

CASE_DIR = ".velonb-cache"
CASE_FILE = "case.json"
DEFAULT_MAX_SIZE = 5 * 10**9
_STALE_TEMP_S = 3600.0


# --- where the cache lives, and offline mode ------------------------------------------------

_dir_override: Path | None = None
_offline_override: bool | None = None


def set_cache_dir(path: str | os.PathLike[str] | None) -> None:
    """Use this cache directory for the rest of the session (None: back to the default)."""
    global _dir_override
    _dir_override = None if path is None else Path(path).expanduser().resolve()


def default_cache_dir() -> Path:
    """`set_cache_dir`, else ``$VELONB_CACHE_DIR``, else ``./.velonb-cache`` if it exists (a
    per-notebook cache: kernels start in the notebook's directory), else the user cache dir."""
    if _dir_override is not None:
        return _dir_override
    env = os.environ.get("VELONB_CACHE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    local = Path.cwd() / CASE_DIR
    if local.is_dir():
        return local
    import platformdirs

    return Path(platformdirs.user_cache_dir("velonb")) / "results"


def set_offline(value: bool | None) -> None:
    """Force offline (True) or online (False) mode; None: ``$VELONB_OFFLINE`` / case marker."""
    global _offline_override
    _offline_override = value


def is_offline() -> bool:
    """Offline: `set_offline`, else ``$VELONB_OFFLINE``, else a cache dir unpacked as a case."""
    if _offline_override is not None:
        return _offline_override
    env = os.environ.get("VELONB_OFFLINE", "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    marker = default_cache_dir() / CASE_FILE
    try:
        return bool(json.loads(marker.read_text()).get("offline", False))
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def offline(enabled: bool = True) -> Iterator[None]:
    """``with velonb.offline():`` answer every query from the cache; no connection is used."""
    global _offline_override
    saved, _offline_override = _offline_override, enabled
    try:
        yield
    finally:
        _offline_override = saved


# --- entries -------------------------------------------------------------------------------------


def _age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@dataclass
class Entry:
    """One cached result as described by its sidecar."""

    key: str
    sidecar: Path
    meta: dict[str, Any]

    @property
    def created_at(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.meta["created_at"])

    @property
    def age(self) -> dt.timedelta:
        return dt.datetime.now(dt.UTC) - self.created_at

    @property
    def files(self) -> list[Path]:
        return [self.sidecar.parent / s["file"] for s in self.meta.get("statements", [])]

    @property
    def size(self) -> int:
        total = 0
        for path in [self.sidecar, *self.files]:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    @property
    def rows(self) -> int:
        return sum(s["rows"] for s in self.meta.get("statements", []))

    @property
    def ref(self) -> str:
        """``<qhash16>/<key>``: where the entry lives inside a cache directory."""
        return f"{self.sidecar.parent.name}/{self.key}"

    def line(self) -> str:
        """One line for ``velonb cache ls``."""
        vql = " ".join(self.meta.get("vql", "").split())
        vql = vql if len(vql) <= 60 else vql[:59] + "…"
        age = _age_text(self.age.total_seconds())
        return (f"{self.key[:12]}  {self.created_at:%Y-%m-%d %H:%M}  {age:>9}"
                f"  {self.rows:>9,} rows  {self.size / 1e6:8.2f} MB  {self.meta.get('org', '')}"
                f"  {self.meta.get('user', '')}@{self.meta.get('server', '')}  {vql}")


@dataclass
class CacheStatus:
    """Where a result came from: ``source`` is "cache" or "server"; ``stored`` if it was cached."""

    source: str
    key: str
    directory: Path
    created_at: dt.datetime | None = None
    stored: bool = False
    offline: bool = False
    ref: str = ""

    @property
    def age(self) -> dt.timedelta | None:
        return None if self.created_at is None else dt.datetime.now(dt.UTC) - self.created_at

    def note(self) -> str:
        """``from cache (5 min old, stored 2024-03-01 10:12 UTC, <dir>)`` or ``cached``."""
        if self.source == "cache":
            assert self.created_at is not None and self.age is not None
            mode = "offline replay " if self.offline else ""
            return (f"{mode}from cache ({_age_text(self.age.total_seconds())} old, stored "
                    f"{self.created_at:%Y-%m-%d %H:%M} UTC, {self.directory})")
        return "cached" if self.stored else ""


class Damaged(CacheError):
    """A cache entry failed its checks (missing file, checksum, unreadable sidecar)."""


@dataclass
class Hit:
    """A cache entry and its decoded frames."""

    entry: Entry
    frames: list[pd.DataFrame] = field(default_factory=list)


def _untrusted(path: Path) -> str | None:
    """Why a cache directory must not be trusted (another user owns or can write it), or None.

    Entries in such a directory could have been planted: replaying them would show forged
    evidence as if the server had returned it.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"the cache directory {path} belongs to another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        return f"the cache directory {path} is writable by group or others"
    return None


def _private_dir(path: Path) -> None:
    if path.is_symlink():
        raise CacheError(f"refusing to write through the symbolic link {path}",
                         hint="remove the link; velonb creates the cache directories itself")
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    problem = _untrusted(path)
    if problem:
        raise CacheError(problem, hint="use a cache directory of your own (VELONB_CACHE_DIR, "
                         "%vql_config --cache-dir), or chmod 700 it if it is yours")


def _cheap_statistics(schema: pa.Schema) -> list[str]:
    """Columns whose Parquet min/max a cache file keeps: numbers, booleans and times.

    A cache entry is always read whole, so its statistics serve only outside readers; those of
    string columns cost a quarter of the write (0.1 s per 1M benchmark rows) and are skipped.
    """
    import pyarrow.types as types

    cheap = (types.is_integer, types.is_floating, types.is_boolean, types.is_timestamp)
    return [f.name for f in schema if any(test(f.type) for test in cheap)]


def _write_atomic(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``directory/name`` via a 0600 temp file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        target = directory / name
        os.replace(tmp, target)
        return target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _plain_name(name: Any) -> bool:
    """True for a bare file name (no directory part, not ``.``/``..``)."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and "\x00" not in name)


class Cache:
    """A cache directory: store, read, list, clear and cap the size of cached results."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 max_bytes: int | str | None = None) -> None:
        self.path = Path(path).expanduser().resolve() if path is not None else default_cache_dir()
        if max_bytes is None:
            env = os.environ.get("VELONB_CACHE_MAX_SIZE")
            self.max_bytes = parse_size(env) if env else DEFAULT_MAX_SIZE
        else:
            self.max_bytes = parse_size(max_bytes)

    def __repr__(self) -> str:
        return f"<velonb.cache.Cache {self.path}>"

    # -- reading ---------------------------------------------------------------------------------

    def _sidecar(self, key: str, qhash: str) -> Path:
        return self.path / qhash[:16] / f"{key}.json"

    def _entry(self, sidecar: Path) -> Entry:
        if sidecar.is_symlink() or sidecar.parent.is_symlink():
            raise Damaged(f"cache entry {sidecar} is a symbolic link; it is not followed")
        for directory in (self.path, sidecar.parent):
            problem = _untrusted(directory)
            if problem:
                raise Damaged(f"{problem}: its entries are not trusted")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as err:
            raise Damaged(f"cache sidecar {sidecar} is unreadable: {err}") from None
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            raise Damaged(f"cache sidecar {sidecar} has an unknown format")
        statements = meta.get("statements")
        if not isinstance(statements, list) or not all(
                isinstance(s, dict) and _plain_name(s.get("file")) for s in statements):
            raise Damaged(f"cache sidecar {sidecar} names files outside its directory")
        return Entry(sidecar.stem, sidecar, meta)

    def _load(self, entry: Entry) -> Hit:
        import pyarrow as pa

        from velonb.cache_codec import decode_frame, read_parquet

        hit = Hit(entry)
        for spec, path in zip(entry.meta["statements"], entry.files, strict=True):
            if path.is_symlink():
                raise Damaged(f"cache file {path.name} is a symbolic link; it is not followed")
            try:
                data = path.read_bytes()
            except OSError as err:
                raise Damaged(f"cache file {path.name} is missing: {err.strerror}") from None
            if hashlib.sha256(data).hexdigest() != spec["sha256"]:
                raise Damaged(f"cache file {path.name} fails its checksum (truncated or changed)")
            try:
                table = read_parquet(data)
            except (pa.ArrowException, OSError) as err:
                raise Damaged(f"cache file {path.name} is not readable Parquet: {err}") from None
            hit.frames.append(decode_frame(table, spec["columns"], spec["rows"]))
        return hit

    def get(self, key: str, qhash: str, *, ttl: dt.timedelta | None = None) -> Hit | None:
        """The entry ``key`` (None if absent or older than ``ttl``); Damaged if it is broken."""
        sidecar = self._sidecar(key, qhash)
        for attempt in range(2):
            try:
                entry = self._entry(sidecar)
            except FileNotFoundError:
                return None
            if ttl is not None and entry.age > ttl:
                return None
            try:
                return self._load(entry)
            except Damaged:
                # a writer may have replaced the entry meanwhile: read the new sidecar once
                if attempt or self._entry_unchanged(sidecar, entry):
                    raise
        return None

    def _entry_unchanged(self, sidecar: Path, entry: Entry) -> bool:
        try:
            return self._entry(sidecar).meta == entry.meta
        except (FileNotFoundError, Damaged):
            return True

    def find(self, qhash: str) -> list[Entry]:
        """Entries of this request from any identity (offline replay without a config)."""
        found = []
        for sidecar in sorted((self.path / qhash[:16]).glob("*.json")):
            with contextlib.suppress(FileNotFoundError, Damaged):
                entry = self._entry(sidecar)
                if entry.meta.get("qhash") == qhash:
                    found.append(entry)
        return found

    def discard(self, entry: Entry) -> None:
        """Remove an entry: the sidecar first (the commit point), then its files."""
        for path in [entry.sidecar, *entry.files]:
            with contextlib.suppress(OSError):
                path.unlink()

    # -- writing ---------------------------------------------------------------------------------

    def put(self, key: str, qhash: str, frames: list[pd.DataFrame],
            meta: dict[str, Any]) -> Entry | None:
        """Store a result; on any failure warn (CacheWarning), keep old entries, return None."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from velonb import __version__
        from velonb.cache_codec import encode_frame

        directory = self.path / qhash[:16]
        written: list[Path] = []
        try:
            _private_dir(self.path)
            _private_dir(directory)
            statements = []
            for i, (frame, extra) in enumerate(zip(frames, meta.pop("statements"), strict=True)):
                table, columns = encode_frame(frame)
                sink = pa.BufferOutputStream()
                pq.write_table(table, sink, compression="zstd",
                               write_statistics=_cheap_statistics(table.schema))
                data = sink.getvalue().to_pybytes()
                digest = hashlib.sha256(data).hexdigest()
                path = _write_atomic(directory, f"{key}-{i}-{digest[:16]}.parquet", data)
                written.append(path)
                statements.append({**extra, "file": path.name, "sha256": digest,
                                   "bytes": len(data), "rows": len(frame), "columns": columns})
            now = dt.datetime.now(dt.UTC)
            sidecar = {"format": CACHE_FORMAT, "key": key, "qhash": qhash,
                       "velonb_version": __version__, "created_at": now.isoformat(),
                       **meta, "statements": statements}
            old = self._previous_files(key, qhash)
            text = json.dumps(sidecar, indent=1, ensure_ascii=False).encode()
            path = _write_atomic(directory, f"{key}.json", text)
        except (OSError, CacheError, ValueError) as err:
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            what = "the disk is full" if getattr(err, "errno", None) == 28 else str(err)
            warnings.warn(f"the result was not cached ({what}); existing cache entries are "
                          "unchanged", CacheWarning, stacklevel=3)
            return None
        for stale in old - {p.name for p in written}:
            with contextlib.suppress(OSError):
                (directory / stale).unlink()
        entry = Entry(key, path, sidecar)
        self.evict(keep=key)
        return entry

    def _previous_files(self, key: str, qhash: str) -> set[str]:
        try:
            return {p.name for p in self._entry(self._sidecar(key, qhash)).files}
        except (FileNotFoundError, Damaged):
            return set()

    # -- listing and housekeeping ------------------------------------------------------------

    def ls(self) -> list[Entry]:
        """Every readable entry, oldest first."""
        entries = []
        for sidecar in self.path.glob("*/*.json"):
            with contextlib.suppress(FileNotFoundError, Damaged):
                entries.append(self._entry(sidecar))
        return sorted(entries, key=lambda e: e.meta["created_at"])

    def info(self, key: str) -> Entry:
        """The entry whose key starts with ``key`` (a unique prefix, as in ``cache ls``)."""
        matches = [e for e in self.ls() if e.key.startswith(key.lower())] if key else []
        if len(matches) != 1:
            raise CacheError(f"{'no' if not matches else len(matches)} cache entries match "
                             f"{key!r} in {self.path}", hint="see velonb cache ls")
        return matches[0]

    @property
    def size(self) -> int:
        total = 0
        for path in self.path.glob("*/*"):
            with contextlib.suppress(OSError):  # another kernel may remove it meanwhile
                total += path.stat().st_size
        return total

    def clear(self, older_than: str | float | dt.timedelta | None = None) -> int:
        """Remove entries (all, or those older than ``older_than``) and stray files; count them."""
        limit = None if older_than is None else parse_ttl(older_than)
        removed = 0
        for entry in self.ls():
            if limit is None or entry.age > limit:
                self.discard(entry)
                removed += 1
        self._sweep(all_strays=limit is None)
        return removed

    def _sweep(self, all_strays: bool = False) -> None:
        """Delete temp files and Parquet files no sidecar refers to (after an hour)."""
        referenced = {p for e in self.ls() for p in e.files}
        now = time.time()
        for path in self.path.glob("*/*"):
            if path.suffix == ".json" or path in referenced or path.parent.is_symlink():
                continue
            with contextlib.suppress(OSError):
                if all_strays or now - path.stat().st_mtime > _STALE_TEMP_S:
                    path.unlink()
        for directory in self.path.glob("*/"):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only empty ones go

    def evict(self, keep: str | None = None) -> int:
        """Remove the oldest entries until the cache fits ``max_bytes``; count them."""
        if self.max_bytes is None or self.size <= self.max_bytes:
            return 0  # (a stat per file; sidecars are read only when over the cap)
        entries = self.ls()
        total = sum(e.size for e in entries)
        removed = 0
        for entry in entries:
            if total <= self.max_bytes:
                break
            if entry.key == keep:
                continue
            total -= entry.size
            self.discard(entry)
            removed += 1
        return removed
