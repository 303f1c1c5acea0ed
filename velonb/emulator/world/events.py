"""The world's clock and message bus: a timer thread for flows finishing "later", and the
journal's event queues that ``watch_monitoring()`` subscribes to.

Like Velociraptor's journal (``services/journal`` + ``file_store/memory/queue.go``), a published
row gets ``_ts`` (epoch seconds, an int) and is handed to every current watcher of that artifact;
nothing is replayed to later watchers.  Published rows are also kept per client so
``monitoring()`` can read them back.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["EventBus", "Scheduler", "Subscription"]

_POLL = 0.05  # how often a blocked watcher looks at its query's cancellation


class Scheduler:
    """Runs callbacks at (monotonic) times on one daemon thread; ``cancel(token)`` drops one."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._cancelled: set[int] = set()
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._closed = False

    def call_later(self, delay: float, fn: Callable[[], None]) -> int:
        """Run ``fn`` after ``delay`` seconds; returns a token for ``cancel``."""
        token = next(self._ids)
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), token, fn))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="velonb-world-clock",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        return token

    def cancel(self, token: int) -> None:
        """Forget a pending callback (no-op once it ran)."""
        with self._cond:
            self._cancelled.add(token)

    def pending(self) -> int:
        """Callbacks not yet run (tests use it to wait for quiescence)."""
        with self._cond:
            return sum(1 for _, token, _ in self._heap if token not in self._cancelled)

    def close(self) -> None:
        """Stop the thread; pending callbacks never run."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap:
                        due, token, fn = self._heap[0]
                        wait = due - time.monotonic()
                        if wait <= 0:
                            heapq.heappop(self._heap)
                            if token in self._cancelled:
                                self._cancelled.discard(token)
                                continue
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                else:
                    return
            try:
                fn()
            except Exception:  # a failing callback must not stop the clock
                import traceback

                traceback.print_exc()


class Subscription:
    """One watcher's queue; take rows with ``next_row()``."""

    def __init__(self, bus: EventBus, key: tuple[str, str]) -> None:
        self._bus = bus
        self.key = key
        self.queue: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def next_row(self) -> dict[str, Any] | None:
        """The next published row, or None after a short wait (the watcher then checks its
        query's cancellation and anything else it watches)."""
        try:
            return self.queue.get(timeout=_POLL)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving."""
        self._bus.unsubscribe(self)


class EventBus:
    """Per-(org, artifact) fan-out of published rows, plus a per-client store of them."""

    def __init__(self, keep: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._subs: dict[tuple[str, str], list[Subscription]] = {}
        self._stored: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._keep = keep

    def subscribe(self, org_id: str, artifact: str) -> Subscription:
        """Start receiving rows published to ``artifact`` in ``org_id`` from now on."""
        sub = Subscription(self, (org_id, artifact))
        with self._lock:
            self._subs.setdefault(sub.key, []).append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.key)
            if subs and sub in subs:
                subs.remove(sub)

    def watchers(self, org_id: str, artifact: str) -> int:
        """Current subscriber count (tests wait on it instead of sleeping)."""
        with self._lock:
            return len(self._subs.get((org_id, artifact), ()))

    def publish(self, org_id: str, artifact: str, row: dict[str, Any],
                client_id: str = "server", source: str = "server") -> dict[str, Any]:
        """Stamp ``_ts`` (s) and ``_Source`` (the journal's user: ``server`` for what the server
        writes), store the row for ``client_id`` and hand a copy to each watcher
        (``file_store/directory/queue.go`` PushEventRows)."""
        row = dict(row)
        row["_ts"] = int(time.time())
        row["_Source"] = source
        with self._lock:
            stored = self._stored.setdefault((org_id, client_id, artifact), [])
            stored.append(row)
            if len(stored) > self._keep:
                del stored[: len(stored) - self._keep]
            subs = list(self._subs.get((org_id, artifact), ()))
        for sub in subs:
            sub.queue.put(dict(row))
        return row

    def stored(self, org_id: str, client_id: str, artifact: str) -> list[dict[str, Any]]:
        """Rows published for ``client_id`` (oldest first)."""
        with self._lock:
            return list(self._stored.get((org_id, client_id, artifact), ()))
