"""``create_flow_download()``: a flow's export zip, kept in the file store for ``VFSGetBuffer``.

Follows ``vql/server/downloads/downloads.go`` (what goes in), ``reporting/container.go`` and
``reporting/result_sets.go`` (how members are written), ``json/csv.go`` (the CSV twin of each
result set), ``reporting/progress.go`` and ``services/exports`` (the stats that ``flows()`` lists
as ``AvailableDownloads``). The zip holds, in this order:

* ``client_info.json`` and ``collection_context.json`` (indented reflection JSON);
* ``log.json`` and ``results/<Artifact[%2FSource]>.json``: the stored JSONL, copied as it is,
  with a ``.csv`` next to each for ``format='csv'`` (only the ``.csv`` for ``csv_only``);
* for a flow with uploads, ``uploads.json`` (+ ``uploads.json.index``) whose ``_Components``
  point inside the zip, then each file under ``uploads/<accessor>/<client path>``.

With ``password`` the file is ``<host>-<client>-<flow>_locked.zip``: an outer zip whose only
member, ``data.zip``, is that container, WinZip AES-256 encrypted (`zip_aes`).

Not modelled: ``requests.json`` (the compiled client requests, see ``compiled_collector_args``).
"""

from __future__ import annotations

import hashlib
import io
import struct
import time
import zipfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from velonb.emulator.gojson import dumps, go_indent
from velonb.emulator.vql.ospath import zip_escape as zip_component
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.world import flows as F
from velonb.emulator.world.exports_csv import CSVEncoder, with_context
from velonb.emulator.world.plugins import _R, check, world_of
from velonb.emulator.world.zip_aes import encrypted_zip

if TYPE_CHECKING:
    from velonb.emulator.vql.scope import Scope
    from velonb.emulator.world import World

JSON, CSV = 1, 2
_FORMATS = {"json": JSON, "jsonl": JSON, "": JSON, "csv": JSON | CSV, "csv_only": CSV}
_ZERO_TIME = (1980, 1, 1, 0, 0, 0)  # Go's zero time.Time, as a zip entry can hold it
_COMPRESSION = 5  # reporting.DEFAULT_COMPRESSION


class FSPathSpec(str):
    """A file store path as VQL sees it: ``fs:/downloads/...`` as text and JSON, with the
    members VQL reads from Go's ``api.FSPathSpec`` (``Components``, ``Base``, ``String``)."""

    components: tuple[str, ...]

    def __new__(cls, components: Iterable[str]) -> FSPathSpec:
        parts = tuple(components)
        spec = super().__new__(cls, "fs:" + F.join_components(list(parts)))
        spec.components = parts
        return spec

    def vql_associative(self, scope: Scope, name: object) -> tuple[object, bool]:
        """``spec.Components`` and friends; (value, present)."""
        if name == "Components":
            return list(self.components), True
        if name == "Base":
            return (self.components[-1] if self.components else ""), True
        if name == "String":
            return str(self), True
        return None, False


def zip_path(components: Iterable[str], extension: str = "") -> str:
    """``paths.ZipPathFromFSPathSpec``: escaped components (empty, ``.`` and ``..`` dropped)."""
    safe = [c for c in (zip_component(part) for part in components) if c not in ("", ".", "..")]
    return "/".join(safe) + extension


# -- the container ---------------------------------------------------------------------------
class Container:
    """reporting.Container without a password: members deflated at level 5, stats kept."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        self.zip = zipfile.ZipFile(self.buffer, "w", zipfile.ZIP_DEFLATED,
                                   compresslevel=_COMPRESSION)
        self.uncompressed = 0
        self.members = 0

    def write(self, name: str, data: bytes, *, dated: bool = True) -> None:
        """One member; ``dated`` members carry the time (WriteJSON, copied files), result
        sets Go's zero time."""
        stamp = time.gmtime()[:6] if dated else _ZERO_TIME
        info = zipfile.ZipInfo(name.lstrip("/"), date_time=stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data, compresslevel=_COMPRESSION)
        self.uncompressed += len(data)
        self.members += 1

    def write_json(self, name: str, value: Any) -> None:
        """WriteJSON: Velocidex json, indented by one space (json.Indent)."""
        self.write(name, go_indent(dumps(value)).encode("utf-8", "surrogateescape"))

    def copy_result_set(self, dest: list[str], lines: Iterable[str], fmt: int,
                        extras: Iterable[dict[str, Any]] | None = None) -> None:
        """copyResultSetIntoContainer: the JSONL as stored (and/or its CSV). With ``extras``
        (one dict per line: a hunt's FlowId, ClientId, Fqdn) each row gets those fields
        appended, re-encoded as ConvertJSONL's writeJsonObject does."""
        jsonl: list[str] = []
        table: list[str] = []
        encoder = CSVEncoder()
        pairs = zip(lines, extras, strict=True) if extras is not None else \
            ((line, None) for line in lines)
        for line, extra in pairs:
            if fmt & JSON:
                jsonl.append((line if extra is None else with_context(line, extra)) + "\n")
            if fmt & CSV:
                table.append(encoder.encode(line, extra))
        if fmt & JSON:
            self.write(zip_path(dest, ".json"), "".join(jsonl).encode(), dated=False)
        if fmt & CSV:
            self.write(zip_path(dest, ".csv"), "".join(table).encode(), dated=False)

    def write_result_set(self, name: str, rows: Iterable[dict[str, Any]], fmt: int) -> None:
        """WriteResultSet: JSONL plus its ``.index`` (offset | 1<<40 per row), and/or CSV."""
        data = bytearray()
        index = bytearray()
        table: list[str] = []
        encoder = CSVEncoder()
        for row in rows:
            line = dumps(row)
            index += struct.pack("<Q", len(data) | (1 << 40))
            data += (line + "\n").encode("utf-8", "surrogateescape")
            table.append(encoder.encode(line))
        if fmt & JSON:
            self.write(name, bytes(data), dated=False)
            self.write(name + ".index", bytes(index), dated=False)
        if fmt & CSV:
            self.write(name.removesuffix(".json") + ".csv", "".join(table).encode(),
                       dated=False)

    def close(self) -> None:
        """Finish the zip (its bytes are then `data`)."""
        self.zip.close()

    @property
    def data(self) -> bytes:
        return self.buffer.getvalue()


def client_info_record(world: World, org_id: str, client_id: str) -> dict[str, Any]:
    """services.ClientInfo (the embedded actions_proto.ClientInfo) as reflection JSON."""
    client = world.client(org_id, client_id)
    if client is None:  # an empty record, so that the importer still recognises the flow
        return {"client_id": client_id} if client_id != "server" else {
            "client_id": "server", "hostname": "server", "fqdn": "server"}
    return F.omitempty({
        "client_id": client.client_id,
        "hostname": client.hostname,
        "fqdn": client.fqdn,
        "system": client.system,
        "release": client.release,
        "architecture": client.machine,
        "ip_address": client.last_ip,
        "ping": client.last_seen_at,
        "client_version": client.agent_version,
        "client_name": "velociraptor",
        "first_seen_at": client.first_seen_at,
        "build_time": client.agent_build_time,
        "labels": list(client.labels),
        "mac_addresses": list(client.mac_addresses),
        "last_interrogate_flow_id": client.last_interrogate_flow_id,
        "last_interrogate_artifact_name": client.last_interrogate_artifact_name,
        "in_flight_flows": dict(client.in_flight_flows),
    })


def hostname_of(world: World, org_id: str, client_id: str) -> str:
    """services.GetHostname: the client record's hostname ("" when there is none)."""
    if client_id == "server":
        return "server"
    client = world.client(org_id, client_id)
    return client.hostname if client is not None else ""


def _stored_upload_row(record: F.UploadRecord) -> dict[str, Any]:
    """The upload metadata row as stored (``uploads()`` adds ``client_path`` and ``Upload``
    and turns ``vfs_path`` into the file store path)."""
    row = record.row()
    row["vfs_path"] = record.client_path
    del row["client_path"], row["Upload"]
    return row


def write_flow(container: Container, scope: Scope, world: World, client_id: str,
               flow: F.Flow | None, fmt: int, prefix: tuple[str, ...] = ()) -> None:
    """downloadFlowToZip into ``container``, under ``prefix`` (a hunt export's
    ``<host>-<client>``). An unknown flow has no context and no log result set: the real
    server stops after ``client_info.json``."""
    container.write_json(zip_path([*prefix, "client_info"], ".json"),
                         client_info_record(world, scope.org_id, client_id))
    if flow is None:
        return
    container.write_json(zip_path([*prefix, "collection_context"], ".json"),
                         flow.context_reflection())
    container.copy_result_set([*prefix, "log"], (dumps(r) for r in flow.log_rows()), fmt)
    for name in flow.artifacts_with_results():
        container.copy_result_set([*prefix, "results", name],
                                  (dumps(r) for r in flow.result_rows(name)), fmt)
    if not flow.uploads:
        return
    rows, files = [], []
    for record in flow.uploads:
        row = _stored_upload_row(record)
        inside = ["uploads", record.accessor or "auto", *record.client_components]
        row["_Components"] = inside
        rows.append(row)
        files.append((record, [*prefix, *inside]))
    container.write_result_set(zip_path([*prefix, "uploads"], ".json"), rows, fmt)
    for record, dest in files:
        scope.log(f"DEBUG: downloadFlowToZip: Copy file from "
                  f"{F.join_components(record.components)} to {F.join_components(dest)}\n")
        data = world.read_file(flow.org_id, record.components)
        container.write(zip_path(dest), data or b"")


def store_export(scope: Scope, world: World, container: Container, components: list[str],
                 password: str, key: tuple[str, str, str], started: int) -> FSPathSpec:
    """Close the container (inside an encrypted ``data.zip`` with a password), store the zip
    and its final ContainerStats under ``key``; the pathspec the function returns."""
    container.close()
    data = container.data
    if password:  # the container is the encrypted member of an outer zip
        data = encrypted_zip("data.zip", data, password, (1980, 0, 0, 0, 0, 0))  # no mtime
    world.store_file(scope.org_id, components, data)
    stats = export_stats(components, data, container.uncompressed, container.members, started)
    world.exports.setdefault(key, {})[components[-1].removesuffix(".zip")] = stats
    return FSPathSpec(components)


def export_stats(components: list[str], data: bytes, uncompressed: int, members: int,
                 started: int) -> dict[str, Any]:
    """The final ContainerStats (reflection JSON, omitempty) progress.go stores for it."""
    return F.omitempty({
        "timestamp": started,
        "total_uncompressed_bytes": uncompressed,
        "total_compressed_bytes": len(data),
        "total_container_files": members,
        "hash": hashlib.sha256(data).hexdigest(),
        "total_duration": max(int(time.time()) - started, 0),
        "components": list(components),
        "type": "zip",
    })


def available_downloads(world: World, key: tuple[str, str, str]) -> dict[str, Any]:
    """ExportManager.GetAvailableDownloadFiles (reflection JSON, omitempty) of a flow's
    ``(org, client, flow)`` or a hunt's ``(org, "hunts", hunt)`` downloads directory."""
    files = []
    for name, stats in sorted(world.exports.get(key, {}).items()):
        files.append(F.omitempty({
            "name": name,
            "path": "/".join(stats.get("components", [])),
            "type": stats.get("type", ""),
            "complete": bool(stats.get("hash")),
            "size": stats.get("total_compressed_bytes", 0),
            "stats": stats,
        }))
    return {"files": files} if files else {}


_STATS_FIELDS = ("timestamp", "total_uploaded_files", "total_uploaded_bytes",
                 "total_uncompressed_bytes", "total_compressed_bytes", "total_container_files",
                 "hash", "total_duration", "components", "type", "error", "vfs_path",
                 "active_members")


def proto_downloads(world: World, key: tuple[str, str, str]) -> dict[str, Any]:
    """The same listing as ConvertProtoToOrderedDict renders it inside a ``hunts()`` row:
    every field, zero values included, in .proto order."""
    files = []
    for item in available_downloads(world, key).get("files", []):
        stats = item["stats"]
        full = {name: stats.get(name, [] if name in ("components", "active_members") else
                                "" if name in ("hash", "type", "error", "vfs_path") else 0)
                for name in _STATS_FIELDS}
        files.append({"name": item["name"], "path": item["path"], "type": item["type"],
                      "complete": item.get("complete", False), "size": item.get("size", 0),
                      "date": "", "stats": full})
    return {"files": files}


@function("create_flow_download", Arg("client_id", "str", required=True),
          Arg("flow_id", "str", required=True), Arg("wait", "bool"), Arg("type", "str"),
          Arg("template", "str"), Arg("password", "str"), Arg("format", "str"),
          Arg("expand_sparse", "bool"), Arg("name", "str"), registry=_R)
def create_flow_download(scope: Scope, args: dict[str, Any]) -> object:
    """Creates a download pack for the flow."""
    check(scope, "PREPARE_RESULTS")
    world = world_of(scope)
    check_format(args)
    client_id, flow_id = args["client_id"], args["flow_id"]
    if not client_id or not flow_id:
        raise VQLCallError("Client Id and Flow Id should be specified.")
    flow = world.flow(scope.org_id, client_id, flow_id)
    host = hostname_of(world, scope.org_id, client_id)
    password = args.get("password", "")
    name = args.get("name") or (f"{host + '-' if host else ''}{client_id}-{flow_id}"
                                + ("_locked" if password else ""))
    started = int(time.time())
    # built at once: ``wait`` only decides whether the real call returns before it is done
    container = Container()
    write_flow(container, scope, world, client_id, flow, export_format(args))
    return store_export(scope, world, container, ["downloads", client_id, flow_id,
                                                  name + ".zip"],
                        password, (scope.org_id, client_id, flow_id), started)


def export_format(args: dict[str, Any]) -> int:
    """reporting.GetContainerFormat of the ``format`` argument (checked by the caller)."""
    return _FORMATS[args.get("format", "")]


def check_format(args: dict[str, Any]) -> None:
    """GetContainerFormat's error for an unknown ``format``."""
    if args.get("format", "") not in _FORMATS:
        raise VQLCallError(f"Unknown format parameter {args['format']} either 'json', "
                           "'jsonl', 'csv' or 'csv_only'.")


def iter_members(data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of each member of a zip, in order (for tests and debugging)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            yield info.filename, archive.read(info)


__all__ = ["FSPathSpec", "available_downloads", "iter_members", "zip_component"]
