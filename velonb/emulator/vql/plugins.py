"""Built-in VQL plugins: range, scope, foreach, chain, if, info."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import associative
from velonb.emulator.vql.functions import function
from velonb.emulator.vql.registry import Arg, Lazy, permission_error, plugin
from velonb.emulator.vql.scope import Scope

_START = _dt.datetime.now(P.UTC)


@plugin("range", Arg("start", "int"), Arg("end", "int", required=True), Arg("step", "int"))
def range_(scope: Scope, args: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Iterate over range."""
    start = args.get("start", 0)
    end = args["end"]
    step = args.get("step", 0) or 1
    cancel = scope.cancel
    if step < 0 and start < end:
        return
    i = start
    n = 0
    while i < end:
        n += 1
        if n & 0x3FF == 0 and cancel.is_set():
            return
        yield {"_value": i}
        i += step


@plugin("scope")
def scope_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[Any]:
    """The scope as a single row."""
    yield scope


@plugin("foreach", Arg("row", "lazy", required=True), Arg("query", "query"), Arg("async", "bool"),
        Arg("workers", "int"), Arg("column", "str"))
def foreach(scope: Scope, args: dict[str, Any]) -> Iterator[Any]:
    """Executes 'query' once for each row in the 'row' query."""
    row_value = args["row"]
    if isinstance(row_value, Lazy):
        row_value = row_value.reduce()
    query = args.get("query")
    column = args.get("column", "")
    for item in P.iterate(scope, row_value):
        if scope.cancel.is_set():
            return
        if column:
            value, pres = associative(scope, item, column)
            item = value if pres else None
        if query is None:
            yield item
            continue
        child = scope.copy()
        child.append_vars(item if isinstance(item, dict) else {})
        for row in query.eval(child):
            if scope.cancel.is_set():
                return
            yield row if isinstance(row, dict) else {"_value": row}


@plugin("chain", free_form=True)
def chain(scope: Scope, args: dict[str, Any]) -> Iterator[Any]:
    """Chain the output of several queries."""
    for v in args.values():
        yield from P.iterate(scope, v)


@plugin("if", Arg("condition", "lazy", required=True), Arg("then", "lazy"), Arg("else", "lazy"))
def if_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[Any]:
    """Run one of two queries depending on a condition."""
    cond = args["condition"].reduce()
    branch = args.get("then") if P.to_bool(scope, cond) else args.get("else")
    if branch is not None:
        yield from P.iterate(scope, branch.reduce())


def _host_info() -> dict[str, Any]:
    uname = platform.uname()
    boot = int(time.time() - time.monotonic())
    system = uname.system.lower() or sys.platform
    try:
        with open("/etc/os-release", encoding="utf-8") as fh:
            rel = dict(line.rstrip().split("=", 1) for line in fh if "=" in line)
    except OSError:
        rel = {}
    plat = rel.get("ID", system).strip('"')
    family = rel.get("ID_LIKE", plat).strip('"').split()[0] if rel else system
    offset = _dt.datetime.now().astimezone().utcoffset() or _dt.timedelta(0)
    zone = time.tzname[0] if time.tzname else "UTC"
    try:
        is_admin = os.geteuid() == 0
    except AttributeError:
        is_admin = False
    arch = {"x86_64": "amd64", "aarch64": "arm64", "AMD64": "amd64"}.get(uname.machine,
                                                                          uname.machine)
    host = socket.gethostname()
    return {
        "Hostname": host,
        "Uptime": max(int(time.time()) - boot, 0),
        "BootTime": boot,
        "OS": system,
        "Platform": plat,
        "PlatformFamily": family,
        "PlatformVersion": rel.get("VERSION_ID", "").strip('"'),
        "KernelVersion": uname.release,
        "VirtualizationSystem": "",
        "VirtualizationRole": "",
        "CompilerVersion": "go1.25.0",
        "HostID": str(uuid.uuid5(uuid.NAMESPACE_DNS, host)),
        "Exe": "/usr/local/bin/velociraptor",
        "CWD": os.getcwd(),
        "IsAdmin": is_admin,
        "ClientStart": _START,
        "LocalTZ": zone,
        "LocalTZOffset": int(offset.total_seconds()),
        "Fqdn": socket.getfqdn(),
        "Architecture": arch,
    }


def _info(scope: Scope) -> dict[str, Any] | None:
    if not scope.has_permission("MACHINE_STATE"):
        scope.log(f"info: {permission_error(('MACHINE_STATE',))}")
        return None
    cached = scope.cache.get("__info")
    if cached is None:
        cached = _host_info()
        scope.cache["__info"] = cached
    return dict(cached)


@plugin("info", permissions=("MACHINE_STATE",))
def info_plugin(scope: Scope, args: dict[str, Any]) -> Iterator[Any]:
    """Get information about the running host."""
    row = _info(scope)
    if row is not None:
        yield row


@function("info", permissions=("MACHINE_STATE",))
def info_function(scope: Scope, args: dict[str, Any]) -> object:
    """Get information about the running host (function version)."""
    return _info(scope)
