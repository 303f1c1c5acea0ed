"""Shared helpers of the result generators: keyed RNGs, file content and hashes, parameters."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import random
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from velonb.emulator.world.incident import INCIDENT, implant_bytes
from velonb.emulator.world.model import Client

UTC = dt.UTC
VELO_SERVER = ("10.10.0.5", 8000)  # where every agent connects

T = TypeVar("T")
_CACHE: OrderedDict[str, object] = OrderedDict()
_CACHE_SIZE = 512

_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%d %H:%M:%S%z",
                 "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def rng_for(*parts: object) -> random.Random:
    """A Random seeded from a string of ``parts`` (stable across runs and platforms)."""
    return random.Random("/".join(str(p) for p in parts))


def cached(key: str, build: Callable[[], T]) -> T:
    """``build()``, memoised under ``key`` in a small LRU (results are shared: read-only)."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]  # type: ignore[return-value]
    value = build()
    _CACHE[key] = value
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value


def host_key(client: Client, seed: int, ref: dt.datetime) -> str:
    """The key of one host's state on one day."""
    return f"{seed}/{client.client_id}/{ref.date().isoformat()}"


def os_build(client: Client) -> str:
    """A tag of the OS build: files with the same path and build have the same bytes."""
    return client.platform_version.split(" ")[0] if client.system == "windows" else \
        client.release


@functools.lru_cache(maxsize=32)
def file_bytes(key: str, size: int) -> bytes:
    """Deterministic content of a benign file (``key`` names path and build).

    A 64 KiB-ish block from SHAKE-256 of the key, repeated: cheap for the 50 MB agent binary.
    """
    if key == INCIDENT.binary_path.lower():
        return implant_bytes()
    head = b"MZ\x90\x00" if key.endswith((".exe", ".dll", ".sys")) else b""
    block = hashlib.shake_256(key.encode()).digest(65_521)
    body = size - len(head)
    if body <= 0:
        return head[:size]
    return head + (block * (body // len(block) + 1))[:body]


@functools.lru_cache(maxsize=4096)
def file_hashes(key: str, size: int) -> dict[str, str]:
    """{MD5, SHA1, SHA256} of ``file_bytes(key, size)``, as hash() returns them."""
    data = file_bytes(key, size)
    return {
        "MD5": hashlib.md5(data).hexdigest(),  # noqa: S324 - forensic hash column
        "SHA1": hashlib.sha1(data).hexdigest(),  # noqa: S324
        "SHA256": hashlib.sha256(data).hexdigest(),
    }


def content_key(client: Client, path: str) -> str:
    """The content key of ``path`` on ``client``: the implant is the same bytes everywhere."""
    low = path.lower()
    if low == INCIDENT.binary_path.lower():
        return low
    if low.startswith(("c:\\windows\\", "/usr/", "/bin/", "/sbin/")):
        return f"{os_build(client)}:{low}"  # OS files differ between builds
    if low.startswith(("c:\\program files", "c:\\programdata\\microsoft\\windows defender")):
        return low  # the same application version fleet-wide
    return f"{client.client_id}:{low}"


def truthy(value: str | None) -> bool:
    """A bool parameter as Velociraptor reads it ("Y", "TRUE", "1", ... are true)."""
    return (value or "").strip().upper() in ("Y", "YES", "TRUE", "T", "1", "ON")


def regex(value: str | None, default: str = ".") -> re.Pattern[str]:
    """A VQL ``=~`` pattern: case-insensitive search; an invalid one matches nothing."""
    pattern = default if value is None or value == "" else value
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error:
        return re.compile(r"(?!x)x")


def matches(pattern: re.Pattern[str], value: object) -> bool:
    """``value =~ pattern`` with VQL's string conversion (None is "")."""
    return bool(pattern.search("" if value is None else str(value)))


def parse_time(value: str | None) -> dt.datetime | None:
    """A timestamp parameter (RFC 3339, date, or epoch seconds) as an aware UTC datetime."""
    text = (value or "").strip()
    if not text:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return dt.datetime.fromtimestamp(float(text), UTC)
    text = text.replace("Z", "+0000").replace("z", "+0000")
    text = re.sub(r"([+-]\d\d):(\d\d)$", r"\1\2", text)
    for fmt in _TIME_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def parse_int(value: str | None, default: int) -> int:
    """An int parameter; anything unparsable gives ``default``."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def csv_column(value: str | None, column: str) -> list[str]:
    """One column of a csv parameter (first line is the header), as Velociraptor parses it."""
    text = (value or "").strip("\n")
    if not text:
        return []
    rows = list(csv.DictReader(io.StringIO(text)))
    return [r[column].strip() for r in rows if r.get(column) and r[column].strip()]


def ts(epoch: float) -> dt.datetime:
    """An aware UTC datetime from epoch seconds (microsecond precision)."""
    return dt.datetime.fromtimestamp(round(epoch, 6), UTC)
