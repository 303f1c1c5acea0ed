"""Cache keys and policies: TTLs, sizes, the identity and request fields a key is made of."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from velonb.config import ApiClientConfig
    from velonb.params import Bindings

__all__ = ["CACHE_FORMAT", "Identity", "Policy", "cache_key", "parse_size", "parse_ttl",
           "query_hash", "request_fields"]

#: Part of every key: bump it when the on-disk format changes (old entries are then ignored).
CACHE_FORMAT = 2  # 2: dict columns as Arrow structs, JSON parsed in one pass
_TTL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


# --- policies and sizes --------------------------------------------------------------------------


def parse_ttl(text: str | float | dt.timedelta) -> dt.timedelta:
    """``"90s"``, ``"30m"``, ``"2h"``, ``"7d"``, ``"1w"`` (or seconds, or a timedelta)."""
    if isinstance(text, dt.timedelta):
        return text
    if isinstance(text, int | float) and not isinstance(text, bool):
        return dt.timedelta(seconds=float(text))
    match = _TTL.match(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 90s, 30m, 2h, 7d or 1w")
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2).lower()])


def parse_size(text: str | int) -> int | None:
    """Bytes of ``"5GB"``, ``"500MB"``, ``"2GiB"`` or an int; None for ``none``/``0`` (no cap)."""
    if isinstance(text, int):
        return text or None
    if text.strip().lower() in ("none", "off", "0", ""):
        return None
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 500MB or 5GB")
    unit = match.group(2).lower().rstrip("b")
    base = 1024 if unit.endswith("i") else 1000
    power = " kmgt".index(unit[:1]) if unit else 0
    return int(float(match.group(1)) * base**power)


@dataclass(frozen=True)
class Policy:
    """How one query uses the cache: ``ttl`` None means entries never expire."""

    ttl: dt.timedelta | None = None
    refresh: bool = False

    @classmethod
    def from_args(cls, cache: bool | str | float | dt.timedelta | Policy | None,
                  refresh: bool = False) -> Policy | None:
        """``cache=True|"2h"|timedelta``, ``refresh=True`` -> a Policy; off -> None."""
        if isinstance(cache, Policy):
            return cls(cache.ttl, cache.refresh or refresh)
        if cache is None or cache is False or (isinstance(cache, str)
                                               and cache.lower() in ("off", "no", "false")):
            return cls(refresh=True) if refresh else None
        if cache is True or (isinstance(cache, str) and cache.lower() in ("on", "use", "yes")):
            return cls(refresh=refresh)
        if isinstance(cache, str) and cache.lower() == "refresh":
            return cls(refresh=True)
        return cls(parse_ttl(cache), refresh)


# --- keys ----------------------------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Identity:
    """Who asked which server: connection string, CA fingerprint, API user (no secrets)."""

    server: str
    ca_fingerprint: str
    user: str

    @classmethod
    def from_config(cls, config: ApiClientConfig) -> Identity:
        return cls(config.target, config.ca_fingerprint, config.user)

    def as_dict(self) -> dict[str, str]:
        return {"server": self.server, "ca_fingerprint": self.ca_fingerprint, "user": self.user}


def request_fields(vql: str, bindings: Bindings, org_id: str | None, max_rows: int | None,
                   *, kind: str = "execute", duration: float | None = None) -> dict[str, Any]:
    """The identity-free part of a key: exact VQL, canonical bound env, org, limits, kind."""
    fields: dict[str, Any] = {
        "format": CACHE_FORMAT, "kind": kind, "org": org_id or "root", "vql": vql,
        "env": dict(sorted(bindings.env.items())), "prelude": bindings.prelude,
        "max_rows": max_rows,
    }
    if kind == "stream":
        fields["duration"] = duration
    return fields


def query_hash(fields: Mapping[str, Any]) -> str:
    return _sha256(_canonical(dict(fields)))


def cache_key(identity: Identity, fields: Mapping[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of identity + request fields + format version."""
    return _sha256(_canonical({"format": CACHE_FORMAT, "identity": identity.as_dict(),
                               "request": dict(fields)}))
