"""The world's VQL plugins and functions, part 5: ``flow_results`` (vql/server/flows/results.go,
the older variant of ``source()``) and ``read_file`` (vql/filesystem/filesystem.go) with the
``fs`` accessor (accessors/file_store) reading the emulator's file store, and ``data``
(accessors/data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from velonb.emulator.vql.functions_text import go_bytes, go_string
from velonb.emulator.vql.ospath import OSPath
from velonb.emulator.vql.registry import (
    Arg,
    ArgError,
    VQLCallError,
    function,
    parse_args,
    permission_error,
    plugin,
)
from velonb.emulator.vql.scope import Scope
from velonb.emulator.world.model import ROOT_ORG
from velonb.emulator.world.plugins import WORLD_REGISTRY, world_of
from velonb.emulator.world.plugins_flows import _artifact_type, monitoring_rows

if TYPE_CHECKING:
    from velonb.emulator.filestore import FileStore

_R = WORLD_REGISTRY

# -- flow_results() -------------------------------------------------------------------------
# Field order of FlowResultsPluginArgs: the required checks run in this order.
_FLOW_RESULTS_ARGS = (Arg("artifact", "str"), Arg("source", "str"),
                      Arg("flow_id", "str", required=True), Arg("client_id", "str", required=True))


@plugin("flow_results", free_form=True, registry=_R)
def flow_results(scope: Scope, raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Retrieve the results of a flow (the first artifact it collected unless ``artifact`` is
    given; ``source`` is appended as ``Artifact/Source``). Checks READ_RESULTS before it parses
    its arguments, as results.go does."""
    if not scope.has_permission("READ_RESULTS"):
        scope.log(f"flow_results: {permission_error(('READ_RESULTS',))}")
        return
    try:
        args = parse_args(scope, _FLOW_RESULTS_ARGS, raw)
    except ArgError as err:
        scope.log(f"flow_results: {err}")
        return
    world = world_of(scope)
    client_id: str = args["client_id"]
    flow_id: str = args["flow_id"]
    artifact: str = args.get("artifact", "")
    if not artifact and flow_id and client_id:  # GetFlowDetails answers "" ids with no flow
        flow = world.flow(scope.org_id, client_id, flow_id)
        if flow is None:
            scope.log(f"flow_results: Flow not found: {flow_id} in client '{client_id}'")
            return
        requested = flow.artifacts
        if not requested:
            scope.log("flow_results: no artifacts in hunt")
            return
        artifact = requested[0]
    if args.get("source"):
        artifact = f"{artifact}/{args['source']}"
    try:  # NewArtifactPathManager: the artifact's mode; its errors are logged as "source:"
        kind = _artifact_type(world, artifact.split("/", 1)[0])
    except VQLCallError as err:
        scope.log(f"source: {err}")
        return
    if kind in ("client_event", "server_event"):  # an event artifact: today's day file
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        yield from monitoring_rows(scope, client_id, artifact, today,
                                   today + dt.timedelta(days=1), 0)
        return
    owner = client_id if kind == "client" else "server"  # server artifacts live under server
    flow = world.flow(scope.org_id, owner, flow_id)
    for row in flow.result_rows(artifact) if flow is not None else ():
        if scope.cancelled:
            return
        yield row


# -- read_file() ----------------------------------------------------------------------------
_READ_FILE_ARGS = (Arg("length", "int"), Arg("offset", "int"), Arg("filename", required=True),
                   Arg("accessor", "str"))
_DEFAULT_LENGTH = 4 * 1024 * 1024
# Accessors a real server has but the emulator does not (they read the server's own disks).
_NOT_EMULATED = frozenset((
    "auto", "bzip2", "collector", "collector_sparse", "ewf", "ext4", "fat", "file", "file_links",
    "file_nocase", "fs_sparse", "gzip", "lazy_ntfs", "me", "mft", "mscfb", "ntfs", "offset",
    "overlay", "pipe", "process", "pst", "ranged", "raw_ext4", "raw_file", "raw_ntfs", "raw_reg",
    "registry", "s3", "scope", "smb", "sparse", "ssh", "vfs", "vhdx", "vmdk", "zip", "zip_nocase",
))


def _accessor(scope: Scope, name: str) -> str:
    """accessors.GetAccessor: the accessor's name after its permission check; raises
    ArgError with the Go error text (or the emulator's, for an accessor it lacks)."""
    name = {"": "auto", "reg": "registry"}.get(name, name)
    if name == "fs":
        if not scope.has_permission("SERVER_ADMIN"):
            raise ArgError(f"Accessor fs: {permission_error(('SERVER_ADMIN',))}")
        return name
    if name == "data":
        return name
    if name in _NOT_EMULATED:
        raise ArgError(f"Accessor {name} is not supported by the emulator (only fs and data)")
    raise ArgError(f"Unknown filesystem accessor {name}")


def filestore_path(path: str) -> OSPath:
    """accessors.NewFileStorePath: generic components; a leading ``fs:`` or ``ds:`` component
    names the store (``fs:`` when there is none)."""
    parsed = OSPath.parse(path, "generic")
    store = "fs:"
    if parsed.components and parsed.components[0] in ("fs:", "ds:"):
        store = parsed.components[0]
        parsed.components = parsed.components[1:]
    return OSPath(parsed.components, "filestore", {"DelegateAccessor": "fs",
                                                   "DelegatePath": store})


def _to_path(accessor: str, value: object) -> OSPath | str:
    """accessors.ParseOSPath for the fs accessor (an OSPath), or the data accessor's literal
    data (a string)."""
    if accessor == "data":
        if isinstance(value, OSPath):
            return value.string()
        if isinstance(value, str):
            return value
        raise ArgError(f"Expecting a path arg type, not {_type(value)}")
    if isinstance(value, OSPath):
        return value
    if isinstance(value, str):
        try:
            return filestore_path(value)
        except VQLCallError as err:
            raise ArgError(str(err)) from None
    if isinstance(value, list):  # each item's components appended
        result = filestore_path("")
        for item in value:
            try:
                part = _to_path(accessor, item)
            except ArgError:
                continue
            if isinstance(part, OSPath):
                result = result.append(*part.components)
        return result
    raise ArgError(f"Expecting a path arg type, not {_type(value)}")


def _type(value: object) -> str:
    from velonb.emulator.vql.protocols import go_type_name

    return go_type_name(value)


def _correct_case(store: FileStore, components: list[str]) -> list[str] | None:
    """getCorrectCase: each component matched case-insensitively when not found as is."""
    fixed: list[str] = []
    for component in components:
        candidate = [*fixed, component]
        if store.exists(candidate):
            fixed = candidate
            continue
        names = {name[len(fixed)] for name in store.list(fixed) if len(name) > len(fixed)}
        match = next((n for n in sorted(names) if n.lower() == component.lower()), None)
        if match is None:
            return None
        fixed.append(match)
    return fixed


def _read_fs(scope: Scope, path: OSPath, offset: int, length: int) -> bytes:
    """FileStoreFileSystemAccessor.OpenWithOSPath then one read; raises VQLCallError."""
    name = path.string()
    if not path.components:
        raise VQLCallError(f"{name}: Invalid path")
    store = world_of(scope).filestore
    prefix = [] if scope.org_id in ("", ROOT_ORG) else ["orgs", scope.org_id]
    components = [*prefix, *path.components]
    found = _correct_case(store, components) if store is not None else None
    if store is None or found is None:
        raise VQLCallError(f"{name}: NotFoundError")
    data = store.get(found)
    if data is None:  # a directory opens, then reading it fails
        raise VQLCallError(f"read {name}: is a directory")
    start = offset if offset > 0 else 0
    return data[start : start + length]


@function("read_file", free_form=True, error_value="", registry=_R)
def read_file(scope: Scope, raw: dict[str, Any]) -> object:
    """Read a file into a string: ``accessor='fs'`` reads the file store (needs SERVER_ADMIN),
    ``accessor='data'`` reads the filename itself; at most ``length`` bytes (4 MiB) from
    ``offset``."""
    try:
        args = parse_args(scope, _READ_FILE_ARGS, raw)
        accessor = _accessor(scope, args.get("accessor", ""))
        path = _to_path(accessor, args["filename"])
    except ArgError as err:
        message = str(err)
        if not message.startswith(("Field ", "Unexpected arg")):
            message = f"Field filename {message}"
        scope.log(f"read_file: {message}")
        return ""
    length: int = args.get("length", 0) or _DEFAULT_LENGTH
    if length < 0:
        return ""
    offset: int = args.get("offset", 0)
    if isinstance(path, str):
        raw_data = go_bytes(path)
        start = offset if offset > 0 else 0
        return go_string(raw_data[start : start + length])
    try:
        return go_string(_read_fs(scope, path, offset, length))
    except VQLCallError as err:
        scope.log(f"read_file: {err}")
        return ""
