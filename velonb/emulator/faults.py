"""Fault injection for the emulator: break the Query stream or VFSGetBuffer on purpose.

    emu.faults.die_after_parts = 2      # the whole server stops after two result parts
    emu.faults.stall_after_parts = 1    # ...or the stream goes silent for stall_seconds
    emu.faults.clear()                  # back to normal

Counters are per call: "after N parts" counts the result parts (messages with a ``Response``) of
one Query call. Every fault applies to every call until cleared. Nothing is injected by default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["MALFORMED_PART", "Faults"]

MALFORMED_PART = '[{"broken": "this part is cut in the mid'


@dataclass
class Faults:
    """What to break; ``None`` leaves that behaviour alone."""

    die_after_parts: int | None = None  # stop the server (abort every call) after N parts
    abort_after_parts: int | None = None  # abort this call with ``abort_code`` after N parts
    abort_code: str = "UNAVAILABLE"
    abort_details: str = "Connection reset by peer"
    stall_after_parts: int | None = None  # go silent for ``stall_seconds`` after N parts
    stall_seconds: float = 0.0
    malformed_part: int | None = None  # replace result part number N (0-based) by broken JSON
    oversized_part: int | None = None  # replace result part N by a valid part this big
    oversized_bytes: int = 8 << 20
    vfs_fail_after_bytes: int | None = None  # VFSGetBuffer fails once this much was served
    on_die: Callable[[], None] | None = field(default=None, repr=False)
    vfs_served: int = field(default=0, repr=False)

    def clear(self) -> None:
        """Remove every fault (the ``on_die`` hook stays)."""
        for spec in fields(self):
            if spec.name != "on_die":
                setattr(self, spec.name, spec.default)

    @property
    def active(self) -> bool:
        return any(getattr(self, name) is not None for name in (
            "die_after_parts", "abort_after_parts", "stall_after_parts", "malformed_part",
            "oversized_part", "vfs_fail_after_bytes"))

    def apply(self, messages: Iterator[Any], context: Any) -> Iterator[Any]:
        """Pass ``messages`` on, breaking the stream as configured."""
        import grpc

        parts = 0
        for message in messages:
            if message.Response:
                if parts == self.malformed_part:
                    message.Response = MALFORMED_PART
                elif parts == self.oversized_part:
                    filler = "x" * max(0, self.oversized_bytes - 16)
                    message.Response = f'[{{"big":"{filler}"}}]'
                    del message.Columns[:]
                    message.Columns.append("big")
                parts += 1
            yield message
            if not message.Response:
                continue
            if parts == self.stall_after_parts:
                end = time.monotonic() + self.stall_seconds
                while time.monotonic() < end and context.is_active():
                    time.sleep(0.02)
            if parts == self.abort_after_parts:
                context.abort(getattr(grpc.StatusCode, self.abort_code), self.abort_details)
            if parts == self.die_after_parts and self.on_die is not None:
                threading.Thread(target=self.on_die, name="velonb-emulator-die",
                                 daemon=True).start()
                end = time.monotonic() + 10
                while time.monotonic() < end and context.is_active():
                    time.sleep(0.02)
                return

    def vfs_check(self, context: Any, length: int) -> None:
        """Fail a VFSGetBuffer call (UNAVAILABLE) once ``vfs_fail_after_bytes`` were served."""
        import grpc

        limit = self.vfs_fail_after_bytes
        if limit is None:
            return
        if self.vfs_served >= limit:
            context.abort(grpc.StatusCode.UNAVAILABLE, "Connection reset by peer")
        self.vfs_served += length
