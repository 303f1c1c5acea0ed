"""Time series (client stats, server health) and the bulk Pslist generator for benchmarks."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from collections.abc import Iterator
from typing import Any

from velonb.emulator.world.model import Client

UTC = dt.UTC


def _unit(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) from ``parts`` (position-independent)."""
    digest = hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def client_stats(client: Client, start: dt.datetime, end: dt.datetime, *, seed: int,
                 frequency: int = 10) -> list[dict[str, Any]]:
    """Generic.Client.Stats events in [start, end): one per ``frequency`` s while the client is up.

    Each row's values depend only on its own time, so overlapping windows agree.
    """
    frequency = max(1, frequency)
    first = math.ceil(max(start.timestamp(), client.first_seen_at) / frequency) * frequency
    stop = min(end.timestamp(), client.last_seen_at / 1e6 + 1)
    rate = 0.004 + 0.012 * _unit(seed, client.client_id, "rate")  # CPU s per s (0.4-1.6 %)
    base_rss = int(48e6 + 70e6 * _unit(seed, client.client_id, "rss"))

    def cpu(tick: int) -> float:  # cumulative CPU seconds since the agent's daily restart
        k = (tick % 86400) // frequency
        return round(rate * frequency * (k + 0.5 * _unit(seed, client.client_id, tick)), 6)

    def stamp(tick: int) -> float:
        return tick + round(0.05 * _unit(seed, client.client_id, "t", tick), 6)

    rows = []
    tick = int(first)
    while tick < stop:
        c, prev = cpu(tick), cpu(tick - frequency)
        elapsed = stamp(tick) - stamp(tick - frequency)
        rows.append({
            "Timestamp": stamp(tick),
            "CPU": c,
            "RSS": base_rss + int(9e6 * _unit(seed, client.client_id, "m", tick // 600)),
            "CPUPercent": round(max(0.0, c - prev) / elapsed, 6) if tick % 86400 else 0.0,
            "_ts": tick,
        })
        tick += frequency
    return rows


def health(start: dt.datetime, end: dt.datetime, *, seed: int, connected: int) -> list[
        dict[str, Any]]:
    """Server.Monitor.Health/Prometheus events in [start, end), every 10 s."""
    rows = []
    tick = math.ceil(start.timestamp() / 10) * 10
    while tick < end.timestamp():
        u = _unit(seed, "health", tick)
        rows.append({
            "TotalFrontends": 1,
            "CPUPercent": int(1 + 9 * u),
            "MemoryUse": int(310e6 + 120e6 * _unit(seed, "mem", tick // 300)),
            "client_comms_current_connections": connected,
            "_ts": tick,
        })
        tick += 10
    return rows


_BULK_PROCS = (
    ("svchost.exe", "C:\\Windows\\System32\\svchost.exe", "C:\\Windows\\system32\\svchost.exe -k "),
    ("RuntimeBroker.exe", "C:\\Windows\\System32\\RuntimeBroker.exe",
     "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding"),
    ("chrome.exe", "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
     "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer"),
    ("msedge.exe", "C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
     "\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" --type=utility"),
    ("conhost.exe", "C:\\Windows\\System32\\conhost.exe",
     "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1"),
    ("explorer.exe", "C:\\Windows\\explorer.exe", "C:\\Windows\\Explorer.EXE"),
    ("lsass.exe", "C:\\Windows\\System32\\lsass.exe", "C:\\Windows\\system32\\lsass.exe"),
    ("OneDrive.exe", "C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe",
     "\"C:\\Program Files\\Microsoft OneDrive\\OneDrive.exe\" /background"),
    ("Velociraptor.exe", "C:\\Program Files\\Velociraptor\\Velociraptor.exe",
     "\"C:\\Program Files\\Velociraptor\\Velociraptor.exe\" service run"),
    ("WmiPrvSE.exe", "C:\\Windows\\System32\\wbem\\WmiPrvSE.exe",
     "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding"),
)
_GROUPS = ("netsvcs -p", "LocalService -p", "NetworkService -p", "DcomLaunch -p", "RPCSS -p",
           "LocalServiceNetworkRestricted -p", "appmodel -p", "UnistackSvcGroup")


def _bulk_pool(seed: int, users: tuple[str, ...]) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}/bulk")
    base = dt.datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    hashes = {}
    for name, _, _ in _BULK_PROCS:
        d = hashlib.sha512(f"{seed}/{name}".encode()).hexdigest()
        hashes[name] = {"MD5": d[:32], "SHA1": d[32:72], "SHA256": hashlib.sha256(
            d.encode()).hexdigest()}
    pool = []
    for i in range(2048):
        name, exe, cmd = _BULK_PROCS[rng.randrange(len(_BULK_PROCS))]
        if name == "svchost.exe":
            cmd += _GROUPS[i % len(_GROUPS)]
        user = rng.choice(users) if name not in ("lsass.exe", "Velociraptor.exe") else \
            "NT AUTHORITY\\SYSTEM"
        system = user.startswith("NT AUTHORITY")
        pool.append({
            "Pid": 0,
            "Ppid": rng.randrange(100, 3000) * 4,
            "Name": name,
            "Threads": rng.randrange(1, 60),
            "Username": user,
            "OwnerSid": "S-1-5-18" if system else f"S-1-5-21-2877340193-1830157112-4183626001-"
                                                  f"{1100 + rng.randrange(900)}",
            "CommandLine": cmd,
            "Exe": exe,
            "TokenIsElevated": system,
            "CreateTime": dt.datetime.fromtimestamp(base + rng.uniform(0, 14 * 86400), UTC),
            "IsWow64": False,
            "WorkingSetSize": rng.randrange(2_000_000, 400_000_000),
            "Hash": hashes[name],
            "PebBaseAddress": 0x7FF000000000 + rng.randrange(1 << 30) * 4096,
        })
    return pool


def bulk_pslist_rows(count: int, *, seed: int = 7,
                     clients: list[Client] | None = None) -> Iterator[dict[str, Any]]:
    """``count`` Pslist-like rows, fast (pooled templates; nested Hash dicts are shared: read-only).

    Columns (14, raw ``pslist()`` names plus Hash and WorkingSetSize): Pid, Ppid, Name, Threads,
    Username, OwnerSid, CommandLine, Exe, TokenIsElevated, CreateTime, IsWow64, WorkingSetSize,
    Hash{MD5,SHA1,SHA256}, PebBaseAddress.
    """
    users = tuple(f"MERIDIAN\\{u}" for c in clients or [] for u in c.users) or (
        "MERIDIAN\\jbrennan", "MERIDIAN\\mokafor", "MERIDIAN\\lschmidt", "MERIDIAN\\rdas")
    users = (*users, "NT AUTHORITY\\SYSTEM", "NT AUTHORITY\\LOCAL SERVICE",
             "NT AUTHORITY\\NETWORK SERVICE")
    pool = _bulk_pool(seed, users)
    size = len(pool)
    for i in range(count):
        row = pool[i % size].copy()
        row["Pid"] = ((i * 7919) % 16381) * 4 + 8
        yield row
