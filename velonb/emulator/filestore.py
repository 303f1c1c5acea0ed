"""The server's file store, keyed by path components (what VFSGetBuffer reads).

In memory by default; with ``root`` set, files live on disk under it (each component
percent-escaped, so names like ``C:`` or ``..`` stay inside the root).  Thread-safe.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["FileStore"]

Components = tuple[str, ...]


def _key(components: Iterable[str]) -> Components:
    return tuple(str(part) for part in components if str(part) != "")


class FileStore:
    """Bytes by path components: ``put``, ``read``, ``exists``, ``list``."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._files: dict[Components, bytes] = {}
        self.root = Path(root) if root is not None else None

    def _path(self, key: Components) -> Path:
        assert self.root is not None
        safe = [urllib.parse.quote(part, safe="").replace(".", "%2E") for part in key]
        return self.root.joinpath(*safe)

    def put(self, components: Sequence[str], data: bytes) -> None:
        """Store ``data`` at ``components`` (replacing any previous content)."""
        key = _key(components)
        if not key:
            raise ValueError("empty path")
        if self.root is None:
            with self._lock:
                self._files[key] = bytes(data)
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, components: Sequence[str]) -> bytes | None:
        """The whole file, or None if it does not exist (directories are not files)."""
        key = _key(components)
        if self.root is None:
            with self._lock:
                return self._files.get(key)
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def is_dir(self, components: Sequence[str]) -> bool:
        """True when some stored file lives below ``components``."""
        key = _key(components)
        if self.root is not None:
            return self._path(key).is_dir()
        with self._lock:
            return any(name[: len(key)] == key and len(name) > len(key) for name in self._files)

    def exists(self, components: Sequence[str]) -> bool:
        return self.get(components) is not None or self.is_dir(components)

    def read(self, components: Sequence[str], offset: int, length: int) -> bytes | None:
        """Up to ``length`` bytes from ``offset``; b"" past the end or for a directory;
        None when nothing exists at that path."""
        data = self.get(components)
        if data is None:
            return b"" if self.is_dir(components) else None
        return data[offset : offset + length]

    def list(self, prefix: Sequence[str] = ()) -> list[Components]:
        """All file paths under ``prefix``, sorted."""
        key = _key(prefix)
        if self.root is None:
            with self._lock:
                names = list(self._files)
        else:
            names = []
            base = self._path(key) if key else self.root
            if base.is_dir():
                for path in base.rglob("*"):
                    if path.is_file() and not path.name.endswith(".tmp"):
                        rel = path.relative_to(self.root).parts
                        names.append(tuple(urllib.parse.unquote(part) for part in rel))
        return sorted(name for name in names if name[: len(key)] == key)
