"""The large benchmark hunt and the fast path that serves its results.

``World(large_hunt_rows=N)`` holds a finished ``Windows.System.Pslist`` hunt over the root org's
Windows clients whose results are N rows from ``results.bulk_pslist_rows``.  A plain
``SELECT * FROM hunt_results(hunt_id=<it>, artifact='Windows.System.Pslist')`` is then served
from rows encoded once (Velocidex/json text, cached in the World) and joined into parts, so the
emulator is not what limits a client benchmark.  Anything else about such a statement (columns,
WHERE, LIMIT, ...) takes the normal engine path and gives the same rows.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from velonb.emulator import gojson
from velonb.emulator.world import flows as F
from velonb.emulator.world import hunts as H

if TYPE_CHECKING:
    from velonb.emulator.vql.scope import Scope
    from velonb.emulator.world import World

__all__ = ["EncodedRows", "create_large_hunt", "encoded_rows", "fast_statement"]

ARTIFACT = "Windows.System.Pslist"
_build_lock = threading.Lock()


@dataclass
class EncodedRows:
    """Rows as JSON object texts, with each row's column names (shared tuples)."""

    rows: list[str]
    keys: list[tuple[str, ...]]
    ascii: bool

    def parts(self, max_row: int) -> Iterator[tuple[str, list[str], int, int]]:
        """(payload, columns, rows, payload bytes) per part of ``max_row`` rows (>= 1 part)."""
        rows, keys = self.rows, self.keys
        if not rows:
            yield "[]", [], 0, 2
            return
        for start in range(0, len(rows), max_row):
            chunk = rows[start:start + max_row]
            payload = "[" + ",".join(chunk) + "]"
            size = len(payload) if self.ascii else len(payload.encode("utf-8"))
            yield payload, list(keys[start]), len(chunk), size


def create_large_hunt(world: World, count: int) -> str:
    """Add the finished benchmark hunt to ``world``; returns its id."""
    from velonb.emulator.world import results

    clients = [c for c in world.clients("root") if c.system == "windows" and c.online] \
        or world.clients("root")
    hunt_id = world.new_id("H.")
    flow_id = H.hunt_flow_id(hunt_id)
    created = F.now_us() - 2 * 3600 * 1_000_000
    request = F.request_dict(creator="admin", client_id="", flow_id=flow_id,
                             artifacts=[ARTIFACT], specs=[])
    defn = world.definition(ARTIFACT)
    names = defn.result_names() if defn is not None else [ARTIFACT]
    hunt = H.Hunt(org_id="root", hunt_id=hunt_id, creator="admin",
                  description=f"Process listing of the Windows fleet ({count} rows)",
                  start_request=request, create_time=created,
                  expires=created + 7 * 24 * 3600 * 1_000_000, state=H.RUNNING,
                  start_time=created, tags=["benchmark"], os="windows",
                  artifact_sources=list(names), org_ids=["root"])
    shares = [count // len(clients) + (1 if i < count % len(clients) else 0)
              for i in range(len(clients))] if clients else []
    for index, (client, share) in enumerate(zip(clients, shares, strict=True)):
        req = {**request, "client_id": client.client_id}
        flow = F.Flow("root", client.client_id, flow_id, req, created + index * 1000,
                      hunt_id=hunt_id, state=F.FINISHED)
        first = created + 400_000 + index * 250_000
        flow.query_stats = [F.QueryStat(ARTIFACT, names[0], 1, 1, status=F.STATUS_OK,
                                        duration=1_900_000_000 + share * 20_000,
                                        first_active=first, last_active=first + 2_000_000,
                                        result_rows=share)]
        flow.query_stats[0].log_rows = flow.query_stats[0].count_logs(server=False)

        def rows(c: Any = client, n: int = share) -> Iterator[dict[str, Any]]:
            return iter(results.bulk_pslist_rows(n, seed=world.seed, clients=[c]))

        flow.lazy_results[names[0]] = rows
        flow.done.set()
        with world.lock:
            world._flows.setdefault(("root", client.client_id), {})[flow_id] = flow
        hunt.record(client.client_id, flow_id)
        hunt.scheduled += 1
        hunt.finished += 1
        hunt.with_results += 1 if share else 0
        hunt.without_results += 0 if share else 1
        hunt.collected_rows += share
    with world.lock:
        world._hunts.setdefault("root", {})[hunt_id] = hunt
    # Encode the results in the background now, so the first client does not wait for it.
    threading.Thread(target=encoded_rows, args=(world, "root", hunt_id, names[0]),
                     name="velonb-large-hunt", daemon=True).start()
    return hunt_id


def encoded_rows(world: World, org_id: str, hunt_id: str, artifact: str) -> EncodedRows:
    """The hunt_results rows of (hunt, artifact) encoded once and cached in the world."""
    key = (org_id, hunt_id, artifact)
    cached = world.encoded_cache.get(key)
    if cached is not None:
        return cached
    with _build_lock:
        cached = world.encoded_cache.get(key)
        if cached is not None:
            return cached
        hunt = world.hunt(org_id, hunt_id)
        texts: list[str] = []
        keys: list[tuple[str, ...]] = []
        interned: dict[tuple[str, ...], tuple[str, ...]] = {}
        batch: list[dict[str, Any]] = []

        times: dict[dt.datetime, str] = {}  # pooled rows repeat their times: format once

        def flush() -> None:
            for row in batch:
                for name, value in row.items():
                    if type(value) is dt.datetime:
                        text = times.get(value)
                        if text is None:
                            text = times[value] = gojson.format_time(value)
                        row[name] = text
                texts.append(gojson.dumps_rows([row])[1:-1])
                k = tuple(row)
                keys.append(interned.setdefault(k, k))
            batch.clear()

        for flow in world.hunt_flows(hunt) if hunt is not None else ():
            client = world.client(org_id, flow.client_id)
            fqdn = client.fqdn if client is not None else ""
            for row in flow.result_rows(artifact):
                batch.append(H.tag_result_row(row, flow.session_id, flow.client_id, org_id,
                                              fqdn))
                if len(batch) >= 4096:
                    flush()
        flush()
        cached = EncodedRows(texts, keys, all(t.isascii() for t in texts))
        world.encoded_cache[key] = cached
        return cached


def fast_statement(world: World, statement: Any, scope: Scope) -> EncodedRows | None:
    """Pre-encoded rows for ``SELECT * FROM hunt_results(...)`` over the large hunt, or None
    when the statement must run through the engine."""
    if not world.large_hunt_id or statement.let_name is not None:
        return None
    select = statement.select
    if select is None or not select.all or select.columns or select.where is not None \
            or select.group_by is not None or select.order_by is not None \
            or select.limit is not None or select.explain:
        return None
    node = select.plugin
    if getattr(node, "name", "") != "hunt_results" or not getattr(node, "called", False):
        return None
    if not scope.has_permission("READ_RESULTS"):
        return None
    zone, present = scope.resolve("TZ")
    if present and zone not in ("", "UTC", None):  # cached times are UTC text
        return None
    from velonb.emulator.vql.registry import ArgError, parse_args

    spec = scope.get_plugin("hunt_results")
    if spec is None:
        return None
    try:
        args = parse_args(scope, spec.args, {a.name: a.lazy(scope) for a in node.args})
    except ArgError:
        return None
    org_id = scope.org_id or "root"
    artifact = args.get("artifact") or ARTIFACT
    if args["hunt_id"] != world.large_hunt_id or org_id != "root" or artifact != ARTIFACT \
            or args.get("source") or args.get("orgs") not in (None, [], ["root"]):
        return None
    return encoded_rows(world, org_id, args["hunt_id"], artifact)
