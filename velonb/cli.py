"""The ``velonb`` command.  Thin: parses arguments and calls the library (imported lazily, so
``import velonb.cli`` does not pull in grpc)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from velonb.emulator import Emulator

__all__ = ["main"]


def _private_dir(kind: str) -> Path:
    """A 0700 directory for emulator/demo files under the user's state directory."""
    import platformdirs

    path = Path(platformdirs.user_state_dir("velonb")) / kind
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _serve_forever(out: TextIO) -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("\nstopping the emulator", file=out)


def _start_emulator(args: argparse.Namespace, config_path: Path, roles: list[str]) -> Emulator:
    from velonb.emulator import Emulator
    from velonb.emulator.world import World

    world = World.empty() if getattr(args, "empty", False) else World(seed=args.seed)
    emulator = Emulator(host=args.host, port=args.port, world=world,
                        allow_remote=getattr(args, "allow_remote", False)).start()
    emulator.write_api_client_config(config_path, name=args.user, roles=roles or None)
    if roles and args.publish_queue:
        emulator.grant_publish(args.user, args.publish_queue)
    return emulator


def _cmd_emulator(args: argparse.Namespace, out: TextIO) -> int:
    config_path = (
        Path(args.config_out) if args.config_out else _private_dir("emulator") / "api_client.yaml"
    )
    roles = [role for item in args.role for role in item.split(",") if role]
    try:
        emulator = _start_emulator(args, config_path, roles)
    except ValueError as err:  # a non-loopback --host without --allow-remote
        print(f"velonb emulator: {err}. On the command line: --allow-remote", file=sys.stderr)
        return 2
    print(f"velonb emulator listening on {emulator.address}", file=out)
    print(f"API client config for {args.user!r} written to {config_path}", file=out)
    try:
        _serve_forever(out)
    finally:
        emulator.stop(grace=1)
    return 0


def _cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from velonb.demo import run

    return run(args, _private_dir("demo") / "api_client.yaml", out, _serve_forever)


def _world_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--empty", action="store_true",
                        help="serve an empty deployment (no clients, flows or hunts)")
    parser.add_argument("--seed", type=int, default=7,
                        help="seed of the simulated fleet's data (default 7)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="velonb", description="Query Velociraptor servers from Jupyter."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    emulator = commands.add_parser(
        "emulator", help="run a local emulated Velociraptor API server until Ctrl-C"
    )
    emulator.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, default=0, help="TCP port (default: a free one)")
    emulator.add_argument(
        "--config-out", metavar="PATH", help="where to write api_client.yaml (mode 0600)"
    )
    emulator.add_argument("--user", default="admin", help="API user name / cert CN")
    emulator.add_argument(
        "--role",
        action="append",
        default=[],
        help="role(s) to grant, repeatable or comma separated (default administrator); "
        "--role '' writes a config without a user record",
    )
    emulator.add_argument(
        "--publish-queue", action="append", default=[], metavar="ARTIFACT",
        help="an event artifact the user may push rows to (gRPC PushEvents), repeatable",
    )
    emulator.add_argument(
        "--allow-remote", action="store_true",
        help="allow --host to be a non-loopback address (anyone who can reach it and holds a "
        "certificate from this emulator's CA can query the simulated fleet)",
    )
    _world_options(emulator)
    emulator.set_defaults(handler=_cmd_emulator)

    _demo_command(commands)
    _cache_commands(commands)
    return parser


def _demo_command(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="the emulator + JupyterLab on the investigation notebooks, until Ctrl-C",
        description="Start the emulator with the demo world on 127.0.0.1 and JupyterLab on a "
        "working copy of the investigation notebooks (the api_client.yaml is in velonb's "
        "private state directory). Ctrl-C stops everything.")
    demo.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    demo.add_argument("--port", type=int, default=0,
                      help="emulator TCP port (default: a free one)")
    mode = demo.add_mutually_exclusive_group()
    mode.add_argument("--no-lab", action="store_true", help="run only the emulator")
    mode.add_argument("--execute", metavar="OUTDIR",
                      help="run every notebook headless, write the executed notebooks and HTML "
                      "reports to OUTDIR, then stop (exit status 1 if a notebook failed)")
    demo.add_argument("--lab-port", type=int, default=0,
                      help="JupyterLab port (default: a free one)")
    demo.add_argument("--workdir", metavar="DIR",
                      help="put the notebooks for JupyterLab here (missing ones are copied, "
                      "none is overwritten; default: a fresh copy in the state directory)")
    demo.add_argument("--jobs", type=int, default=4,
                      help="with --execute: notebooks run at the same time (default 4)")
    demo.add_argument("--timeout", type=float, default=600,
                      help="with --execute: seconds one cell may take (default 600)")
    _world_options(demo)
    demo.set_defaults(handler=_cmd_demo)


def _cmd_cache(args: argparse.Namespace, out: TextIO) -> int:
    from velonb.cache import Cache

    cache = Cache(args.dir)
    if args.action == "ls":
        entries = cache.ls()
        for entry in entries:
            print(entry.line(), file=out)
        print(f"{len(entries)} entries, {cache.size / 1e6:.2f} MB in {cache.path}", file=out)
    elif args.action == "info":
        import json

        entry = cache.info(args.key)
        shown = {k: v for k, v in entry.meta.items() if k != "logs"}
        shown["logs"] = len(entry.meta.get("logs", []))
        print(json.dumps(shown, indent=1, ensure_ascii=False), file=out)
        print(f"files: {', '.join(str(p) for p in [entry.sidecar, *entry.files])}", file=out)
    else:
        removed = cache.clear(older_than=args.older_than)
        print(f"removed {removed} entries from {cache.path}", file=out)
    return 0


def _cmd_pack(args: argparse.Namespace, out: TextIO) -> int:
    from velonb.pack import pack

    print(f"packed {pack(args.notebook, args.output, cache_dir=args.cache_dir)}", file=out)
    return 0


def _cmd_unpack(args: argparse.Namespace, out: TextIO) -> int:
    from velonb.pack import unpack

    report = unpack(args.archive, args.directory)
    print(f"unpacked {report.notebook} with {len(report.entries)} cache entries; open it "
          "there and run all cells: they replay offline from .velonb-cache/", file=out)
    return 0


def _cache_commands(commands: Any) -> None:
    cache = commands.add_parser("cache", help="list, inspect or clear the result cache")
    cache.add_argument("--dir", help="cache directory (default: $VELONB_CACHE_DIR, "
                       "./.velonb-cache, else the user cache directory)")
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("ls", help="list entries, oldest first")
    info = actions.add_parser("info", help="show one entry's sidecar")
    info.add_argument("key", help="the key or a unique prefix of it (see cache ls)")
    clear = actions.add_parser("clear", help="remove entries")
    clear.add_argument("--older-than", metavar="AGE", help="only entries older than AGE (7d)")
    cache.set_defaults(handler=_cmd_cache)

    pack = commands.add_parser("pack", help="zip a notebook with the cache entries it used")
    pack.add_argument("notebook")
    pack.add_argument("-o", "--output", required=True, help="the case zip to write")
    pack.add_argument("--cache-dir", help="where the entries are (default: as the kernel)")
    pack.set_defaults(handler=_cmd_pack)

    unpack = commands.add_parser("unpack", help="lay out a case zip for offline replay")
    unpack.add_argument("archive")
    unpack.add_argument("directory")
    unpack.set_defaults(handler=_cmd_unpack)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``velonb`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "emulator" and not args.role:
        args.role = ["administrator"]
    if args.command in ("cache", "pack", "unpack"):
        from velonb.errors import VelonbError

        try:
            return int(args.handler(args, out or sys.stdout))
        except VelonbError as err:
            print(f"velonb {args.command}: {err}", file=sys.stderr)
            return 1
    return int(args.handler(args, out or sys.stdout))


if __name__ == "__main__":
    raise SystemExit(main())
