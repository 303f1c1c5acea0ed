"""Queries through the cache: look up, replay, run live and store (used by Connection and magics).

Online with a policy: a fresh entry is replayed, else the query runs and its result is stored.
Offline: every query is answered from the cache and nothing touches the network; a miss raises
:class:`~velonb.errors.CacheMiss` naming the query.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from velonb.cache import CASE_FILE, Cache, CacheStatus, Damaged, Hit, is_offline
from velonb.cache_keys import Identity, Policy, cache_key, query_hash, request_fields
from velonb.errors import CacheError, CacheMiss, CacheWarning
from velonb.params import bind

if TYPE_CHECKING:
    import pandas as pd

    from velonb.config import ApiClientConfig
    from velonb.query import QueryResult

__all__ = ["execute_cached", "replay", "stream_cached"]


def _short(vql: str) -> str:
    text = " ".join(vql.split())
    return text if len(text) <= 120 else text[:119] + "…"


def _miss(vql: str, store: Cache, why: str = "") -> CacheMiss:
    return CacheMiss(
        f"offline, and the cache has no result for this query{why}: {_short(vql)}",
        vql=vql,
        hint=f"run it once online with caching on (cache in {store.path}), or leave offline "
             "mode: velonb.offline(False) / VELONB_OFFLINE=0 / %vql_config --online",
    )


def _lookup(store: Cache, identity: Identity | None, fields: dict[str, Any], vql: str,
            *, ttl: dt.timedelta | None, offline: bool) -> Hit | None:
    """The cached entry for this request, or None; damaged entries warn (online) or raise."""
    qhash = query_hash(fields)
    try:
        if identity is not None:
            hit = store.get(cache_key(identity, fields), qhash, ttl=None if offline else ttl)
            if hit is not None or not offline or not (store.path / CASE_FILE).exists():
                return hit
        entries = store.find(qhash)
        owners = {(e.meta.get("server"), e.meta.get("ca_fingerprint"), e.meta.get("user"))
                  for e in entries}
        if len(owners) > 1:
            raise CacheError(
                f"the cache holds this query from {len(owners)} servers or users: {_short(vql)}",
                hint="load the api_client config of the one to replay (%vql_config PATH) so "
                     "velonb knows which server's result you mean")
        return store._load(entries[-1]) if entries else None
    except Damaged as err:
        if offline:
            raise CacheError(f"{err.message}; cannot replay offline: {_short(vql)}",
                             hint="re-run the query online to fetch it again") from None
        warnings.warn(f"{err.message}; fetching the result again from the server",
                      CacheWarning, stacklevel=4)
        for entry in store.find(qhash):
            if identity is None or entry.key == cache_key(identity, fields):
                store.discard(entry)
        return None


def _result_from_hit(hit: Hit, vql: str, max_rows: int | None, store: Cache,
                     offline: bool, started: float) -> QueryResult:
    from velonb.frames import FrameBuilder
    from velonb.query import LogLine, QueryResult, StatementResult

    meta = hit.entry.meta
    result = QueryResult(vql=vql, org_id=meta.get("org_id", ""), max_rows=max_rows)
    for frame, spec in zip(hit.frames, meta["statements"], strict=True):
        result.statements.append(StatementResult(
            spec["request"], spec["query_id"], spec["vql"], FrameBuilder(),
            parts=spec.get("parts", 0), _frame=frame, cached_rows=len(frame)))
    result.logs = [LogLine(dt.datetime.fromisoformat(t), m, level)
                   for t, m, level in meta.get("logs", [])]
    result.started_at = dt.datetime.fromisoformat(meta["started_at"])
    result.truncated = bool(meta.get("truncated"))
    result.complete = bool(meta.get("complete", True))
    result.bytes_received = int(meta.get("bytes_received", 0))
    result.elapsed = time.monotonic() - started
    result.cache = CacheStatus("cache", hit.entry.key, store.path, hit.entry.created_at,
                               offline=offline, ref=hit.entry.ref)
    return result


def _meta(result: QueryResult, identity: Identity, fields: dict[str, Any],
          statements: list[dict[str, Any]]) -> dict[str, Any]:
    """The sidecar fields of a live result (no key or certificate material)."""
    return {
        **identity.as_dict(), "org": fields["org"], "org_id": result.org_id,
        "kind": fields["kind"], "vql": fields["vql"], "env": fields["env"],
        "prelude": fields["prelude"], "max_rows": fields["max_rows"],
        "duration": fields.get("duration"), "started_at": result.started_at.isoformat(),
        "elapsed": result.elapsed, "truncated": result.truncated, "complete": result.complete,
        "bytes_received": result.bytes_received,
        "logs": [[line.timestamp.isoformat(), line.message, line.level] for line in result.logs],
        "statements": statements,
    }


def _store(store: Cache, identity: Identity, fields: dict[str, Any], result: QueryResult,
           frames: list[pd.DataFrame], statements: list[dict[str, Any]]) -> None:
    key = cache_key(identity, fields)
    entry = store.put(key, query_hash(fields), frames, _meta(result, identity, fields, statements))
    result.cache = CacheStatus("server", key, store.path, stored=entry is not None,
                               ref=entry.ref if entry is not None else "")


def execute_cached(
    config: ApiClientConfig | None,
    vql: str,
    *,
    env: Mapping[str, Any] | None,
    org_id: str,
    max_rows: int | None,
    policy: Policy | None,
    live: Callable[[], QueryResult] | None,
    finish: Callable[[QueryResult], None],
    cache: Cache | None = None,
) -> QueryResult:
    """Answer ``vql`` from the cache when allowed, else run ``live()`` and store its result."""
    started = time.monotonic()
    store = cache or Cache()
    offline = is_offline()
    fields = request_fields(vql, bind(env), org_id, max_rows)
    identity = Identity.from_config(config) if config is not None else None
    if offline or (policy is not None and not policy.refresh):
        hit = _lookup(store, identity, fields, vql, ttl=policy.ttl if policy else None,
                      offline=offline)
        if hit is not None:
            result = _result_from_hit(hit, vql, max_rows, store, offline, started)
            finish(result)
            return result
    if offline or live is None:
        raise _miss(vql, store)
    result = live()
    if policy is not None and identity is not None and (result.complete or result.truncated):
        statements = [{"request": s.request, "query_id": s.query_id, "vql": s.vql,
                       "parts": s.parts} for s in result.statements]
        _store(store, identity, fields, result, result.frames, statements)
    return result


def replay(vql: str, *, env: Mapping[str, Any] | None = None, org_id: str | None = None,
           max_rows: int | None = None, strict: bool = False,
           config: ApiClientConfig | None = None, cache: Cache | None = None) -> QueryResult:
    """Replay a cached result without any connection (CacheMiss if it is not cached)."""
    from velonb.query import finish_result

    return execute_cached(config, vql, env=env, org_id=org_id or "", max_rows=max_rows,
                          policy=Policy(), live=None, cache=cache,
                          finish=lambda r: finish_result(r, strict=strict,
                                                         user=config.user if config else ""))


def stream_cached(
    config: ApiClientConfig | None,
    vql: str,
    *,
    env: Mapping[str, Any] | None,
    org_id: str,
    max_rows: int | None,
    duration: float | None,
    policy: Policy | None,
    live: Callable[[], Iterator[pd.DataFrame]] | None,
    result: QueryResult,
    cache: Cache | None = None,
) -> Iterator[pd.DataFrame]:
    """An event query through the cache: only bounded ones (max_rows or duration) are cached."""
    import pandas as pd

    started = time.monotonic()
    store = cache or Cache()
    offline = is_offline()
    bounded = max_rows is not None or duration is not None
    fields = request_fields(vql, bind(env), org_id, max_rows, kind="stream", duration=duration)
    identity = Identity.from_config(config) if config is not None else None
    if offline or (policy is not None and not policy.refresh and bounded):
        hit = _lookup(store, identity, fields, vql, ttl=policy.ttl if policy else None,
                      offline=offline)
        if hit is not None:
            cached = _result_from_hit(hit, vql, max_rows, store, offline, started)
            vars(result).update({k: v for k, v in vars(cached).items() if k != "statements"})
            for frame in cached.frames:
                if len(frame):
                    yield frame
            return
    if offline or live is None:
        raise _miss(vql, store, "" if bounded else " (an unbounded event query is never cached)")
    if policy is not None and not bounded:
        warnings.warn("an event query without max_rows or duration is not cached",
                      CacheWarning, stacklevel=3)
    frames: list[pd.DataFrame] = []
    for frame in live():
        frames.append(frame)
        yield frame
    reached = max_rows is not None and sum(len(f) for f in frames) >= max_rows
    if policy is not None and bounded and identity is not None and (result.complete or reached):
        whole = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        _store(store, identity, fields, result, [whole],
               [{"request": "velonb", "query_id": 1, "vql": vql, "parts": len(frames)}])
