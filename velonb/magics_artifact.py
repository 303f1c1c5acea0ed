"""``%%vql_artifact``: write a custom artifact in a cell, store it on the server.

    %%vql_artifact [NAME] [--tags TAG,TAG] [--org ORG]
    name: Custom.Windows.Suspicious.Services
    parameters: ...
    sources:
      - query: SELECT ...

The cell's YAML goes to ``conn.set_artifact`` (the server checks it and stores it; needs
ARTIFACT_WRITER, or SERVER_ARTIFACT_WRITER for server artifacts); the cell shows what the server
holds, and ``NAME`` receives it (:class:`~velonb.fleet.ArtifactInfo`). Replaying a packed case
(offline) the cell only parses the YAML: there is no server to store it on.
"""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from velonb.fleet_model import ArtifactInfo
    from velonb.magics import VelonbMagics

__all__ = ["ARTIFACT_HELP", "run_artifact_cell"]

ARTIFACT_HELP = __doc__ or ""


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # never exit the kernel
        raise _Usage(message)


def _parser() -> _Parser:
    parser = _Parser(prog="%%vql_artifact", add_help=False)
    parser.add_argument("name", nargs="?")
    parser.add_argument("--tags", default="")
    parser.add_argument("--org")
    return parser


def summary(info: ArtifactInfo, stored: bool) -> str:
    """One paragraph on what the server holds (or would hold, offline)."""
    params = ", ".join(f"{p.name}={p.default!r}" + (f" ({p.type})" if p.type else "")
                       for p in info.parameters) or "none"
    sources = ", ".join(s or "(unnamed)" for s in info.sources) or "none"
    verb = "stored" if stored else "offline, not stored"
    return (f"{verb}: {info.name} ({info.type} artifact) · parameters: {params} · "
            f"sources: {sources}")


def run_artifact_cell(magics: VelonbMagics, line: str, cell: str) -> None:
    """The body of ``%%vql_artifact``."""
    from IPython.core.error import UsageError

    try:
        args = _parser().parse_args(shlex.split(line))
    except (_Usage, ValueError) as err:
        raise UsageError(f"%%vql_artifact: {err}") from None
    if args.name and not args.name.isidentifier():
        raise UsageError(f"%%vql_artifact: {args.name!r} is not a Python name")
    if not cell.strip():
        raise UsageError("%%vql_artifact: write the artifact's YAML in the cell body")
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    if magics._offline():
        from velonb.fleet_artifacts import parse_locally

        info = parse_locally(cell)
        stored = False
    else:
        conn = magics.connect()
        info = conn.set_artifact(cell, tags=tags, org_id=args.org or magics.org)
        stored = True
    print(summary(info, stored))
    if args.name:
        magics._store(args.name, info)

