"""Fleet helpers on :class:`~velonb.query.Connection`: clients, artifacts, collect-and-wait, flows,
hunts, monitoring, downloads.

A small typed Python API over VQL. Every value reaches the server bound through the query's
env (:mod:`velonb.params`), never pasted into VQL text; every helper takes ``org_id`` and shows
what it would send with ``dry_run=True`` (a :class:`DryRun`; Flow and Hunt keep theirs in
``.vql``). The helpers hide the server's units: client ``first_seen_at`` is in seconds,
``last_seen_at`` in microseconds, flow and hunt times in microseconds - all become tz-aware UTC
datetimes. A client is ``online`` when seen within :data:`ONLINE_WITHIN` (10 minutes).
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from velonb.errors import VQLRuntimeError
from velonb.fleet_artifacts import ArtifactsMixin
from velonb.fleet_errors import (
    AmbiguousClientError,
    ArtifactDefinitionError,
    ArtifactParameterError,
    CollectionFailedWarning,
    DownloadError,
    DownloadInterrupted,
    FleetError,
    HuntConditionError,
    OfflineClientWarning,
    UnknownArtifactError,
    UnknownClientError,
    UnknownFlowError,
    UnknownHuntError,
    WaitInterrupted,
    WaitTimeout,
)
from velonb.fleet_flows import Flow, _checked, wait_for
from velonb.fleet_hunts import Hunt, HuntProgress
from velonb.fleet_model import (
    ONLINE_WITHIN,
    ArtifactInfo,
    ArtifactParameter,
    Client,
    DryRun,
    expiry_time,
    from_micros,
    parse_duration,
    records,
    type_columns,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from velonb.config import ApiClientConfig
    from velonb.query import QueryResult

__all__ = [
    "ONLINE_WITHIN", "AmbiguousClientError", "ArtifactDefinitionError", "ArtifactInfo",
    "ArtifactParameter",
    "ArtifactParameterError", "Client", "CollectionFailedWarning", "DownloadError",
    "DownloadInterrupted", "DryRun", "FleetError", "FleetMixin", "Flow", "Hunt",
    "HuntConditionError", "HuntProgress", "OfflineClientWarning", "UnknownArtifactError",
    "UnknownClientError", "UnknownFlowError", "UnknownHuntError", "WaitInterrupted",
    "WaitTimeout",
]

CLIENTS_VQL = "SELECT * FROM clients(search=Search)"
CLIENT_BY_ID_VQL = "SELECT * FROM clients(client_id=ClientId)"
ORGS_VQL = "SELECT OrgId, Name FROM orgs()"
FLOWS_VQL = "SELECT * FROM flows(client_id=ClientId)"
HUNTS_VQL = "SELECT * FROM hunts()"
COLLECT_VQL = """\
SELECT ClientId, collect_client(client_id=ClientId, artifacts=ArtifactNames, spec=Spec,
                                cpu_limit=CpuLimit, max_rows=MaxRows, urgent=Urgent) AS Collection
FROM foreach(row=Targets)
"""
HUNT_CREATE_VQL = """\
SELECT hunt(artifacts=ArtifactNames, description=Description, spec=Spec, expires=Expires,
            pause=Paused, include_labels=Labels, os=OS) AS Hunt
FROM scope()
"""
MONITOR_VQL = """\
SELECT * FROM watch_monitoring(artifact=EventArtifact)
WHERE NOT WantClient OR ClientId = WantClient
"""
_EVENT_TYPES = ("client_event", "server_event", "internal")
_OS_ALIASES = {"windows": "windows", "win": "windows", "linux": "linux", "darwin": "darwin",
               "macos": "darwin", "mac": "darwin", "osx": "darwin"}
CLIENT_COLUMNS = ["client_id", "hostname", "fqdn", "os", "release", "labels", "last_ip",
                  "agent_version", "first_seen", "last_seen", "online", "mac_addresses", "raw"]
FLOW_COLUMNS = ["flow_id", "client_id", "artifacts", "state", "status", "creator", "created",
                "started", "last_active", "rows", "uploaded_files", "uploaded_bytes", "request"]
HUNT_COLUMNS = ["hunt_id", "description", "state", "creator", "created", "started", "expires",
                "artifacts", "labels", "os", "scheduled", "finished", "with_results",
                "with_errors", "rows", "uploaded_bytes", "tags"]


def _os(value: str) -> str:
    found = _OS_ALIASES.get(value.strip().lower())
    if found is None:
        raise ValueError(f"unknown OS {value!r}: use windows, linux or darwin (macos)")
    return found


class FleetMixin(ArtifactsMixin):
    """The fleet helpers; :class:`~velonb.query.Connection` inherits them."""

    if TYPE_CHECKING:
        config: ApiClientConfig
        org_id: str
        _stub: Any
        execute: Callable[..., QueryResult]
        stream: Callable[..., Iterator[pd.DataFrame]]

        def _require_open(self) -> None: ...

    def _org(self, org_id: str | None) -> str:
        return self.org_id if org_id is None else org_id

    def _plan(self, vql: str, env: dict[str, Any], org_id: str, what: str) -> DryRun:
        return DryRun(vql=vql, env=env, org_id=org_id, description=what)

    # -- orgs and clients ------------------------------------------------------------------

    def push_events(self, artifact: str, rows: Any, *, client: str | Client = "server",
                    flow_id: str = "", org_id: str | None = None) -> int:
        """Push rows (a DataFrame, dicts) into an event artifact's queue (gRPC PushEvents);
        the number sent. ``client``: ``server`` for server artifacts, else a client (id or
        hostname). Needs the artifact in your ``publish_queues`` (see :mod:`velonb.push`).
        """
        from velonb.push import push_events

        org = self._org(org_id)
        return push_events(self, artifact, rows,  # type: ignore[arg-type]
                           client_id=self._client_id(client, org), flow_id=flow_id, org_id=org)

    def _client_id(self, client: str | Client, org: str) -> str:
        """A client id from a Client, an id (``C.…``, ``server``) or a hostname."""
        client_id = client.client_id if isinstance(client, Client) else str(client)
        if not client_id.startswith("C.") and client_id != "server":
            client_id = self.client(client_id, org_id=org).client_id
        return client_id

    def label(self, clients: Any, labels: str | Sequence[str], *, org_id: str | None = None,
              dry_run: bool = False) -> pd.DataFrame:
        """Add ``labels`` to clients (ids, hostnames, :class:`Client` objects, or a DataFrame
        with a ``client_id``/``ClientId`` column) in one query (needs LABEL_CLIENT); returns
        their rows as :meth:`clients` shows them once the server has the labels. Unknown
        clients raise :class:`UnknownClientError` before anything is labelled."""
        from velonb.fleet_labels import apply_labels

        return apply_labels(self, clients, labels, remove=False,  # type: ignore[return-value]
                            org=self._org(org_id), dry_run=dry_run)

    def unlabel(self, clients: Any, labels: str | Sequence[str], *,
                org_id: str | None = None, dry_run: bool = False) -> pd.DataFrame:
        """Remove ``labels`` (case-insensitive) from clients; as :meth:`label`."""
        from velonb.fleet_labels import apply_labels

        return apply_labels(self, clients, labels, remove=True,  # type: ignore[return-value]
                            org=self._org(org_id), dry_run=dry_run)

    def orgs(self, *, dry_run: bool = False) -> pd.DataFrame:
        """The orgs this user belongs to: org_id, name (root is ``"root"``)."""
        import pandas as pd

        if dry_run:
            return self._plan(ORGS_VQL, {}, self._org(None), "orgs()")  # type: ignore[return-value]
        rows = records(_checked(self, ORGS_VQL, {}, self._org(None), "listing orgs").frame)
        return pd.DataFrame([{"org_id": r.get("OrgId"), "name": r.get("Name")} for r in rows],
                            columns=["org_id", "name"])

    def clients(self, search: str | None = None, *, labels: str | Sequence[str] | None = None,
                os: str | None = None, seen_within: dt.timedelta | float | str | None = None,
                org_id: str | None = None, dry_run: bool = False) -> pd.DataFrame:
        """Clients as a DataFrame (one row each), newest contact first.

        ``search`` is the server's client search (a hostname prefix, ``label:x``, ``ip:10.``,
        ``C.`` ids, ``*`` globs). ``labels``: keep clients carrying every one of them
        (case-insensitive); ``os``: windows, linux or darwin/macos; ``seen_within``: a
        timedelta, seconds or "15m"/"2h"/"7d". ``online`` means seen within 10 minutes.
        """
        import pandas as pd

        org = self._org(org_id)
        env = {"Search": search or "all"}
        if dry_run:
            return self._plan(CLIENTS_VQL, env, org, "clients()")  # type: ignore[return-value]
        wanted_os = _os(os) if os else None
        wanted_labels = {labels.lower()} if isinstance(labels, str) else {
            x.lower() for x in labels or []}
        since = dt.datetime.now(dt.UTC) - parse_duration(seen_within) if seen_within else None
        out = []
        for row in records(_checked(self, CLIENTS_VQL, env, org, "listing clients").frame):
            client = Client.from_row(row, org)
            if wanted_os and client.os.lower() != wanted_os:
                continue
            if wanted_labels and not wanted_labels <= {x.lower() for x in client.labels}:
                continue
            if since and (client.last_seen is None or client.last_seen < since):
                continue
            out.append(client.as_record())
        frame = pd.DataFrame(out, columns=CLIENT_COLUMNS)
        for column in ("first_seen", "last_seen"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame.sort_values("last_seen", ascending=False, na_position="last",
                                 ignore_index=True)

    def client(self, id_or_hostname: str | Client, *, org_id: str | None = None) -> Client:
        """One client by id (``C.…``) or hostname/FQDN (case-insensitive, exact).

        An unknown name raises :class:`UnknownClientError` (with near names); a hostname held
        by several clients raises :class:`AmbiguousClientError` listing them.
        """
        if isinstance(id_or_hostname, Client):
            return id_or_hostname
        org = self._org(org_id)
        name = str(id_or_hostname).strip()
        if name == "server":
            return Client(client_id="server", hostname="server", org_id=org)
        if name[:2].upper() == "C.":
            rows = records(_checked(self, CLIENT_BY_ID_VQL, {"ClientId": name}, org,
                                    "reading a client").frame)
            if not rows:
                raise UnknownClientError(
                    f"no client {name} in org {org or 'root'}",
                    hint="list clients with conn.clients(); ids are per org (org_id=...)")
            return Client.from_row(rows[0], org)
        if not name or re.search(r"[*/\s]", name):
            raise UnknownClientError(f"{name!r} is not a client id or hostname",
                                     hint="use conn.clients(search=...) for patterns")
        rows = records(_checked(self, CLIENTS_VQL, {"Search": f"host:{name}"}, org,
                                "searching clients").frame)
        found = [Client.from_row(r, org) for r in rows]
        exact = [c for c in found if name.lower() in (c.hostname.lower(), c.fqdn.lower())]
        if not exact:
            near = ", ".join(sorted({c.hostname for c in found})[:10])
            raise UnknownClientError(
                f"no client called {name!r} in org {org or 'root'}"
                + (f"; names starting with it: {near}" if near else ""),
                hint="list clients with conn.clients(); hostnames are per org (org_id=...)")
        if len(exact) > 1:
            exact.sort(key=lambda c: c.last_seen or dt.datetime.min.replace(tzinfo=dt.UTC),
                       reverse=True)
            listing = "\n".join(f"  {c.client_id}  {c.hostname}  last seen {c.last_seen_text()}"
                                for c in exact)
            raise AmbiguousClientError(
                f"{len(exact)} clients are called {name!r}:\n{listing}", candidates=exact,
                hint="pass the client id instead (the most recently seen is listed first)")
        return exact[0]

    # -- collections -----------------------------------------------------------------------

    def _spec(self, infos: Sequence[ArtifactInfo],
              parameters: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
        """{Artifact: {param: string}} checked against the definitions."""
        params = dict(parameters or {})
        names = {i.name for i in infos}
        per_artifact = bool(params) and all(
            k in names and isinstance(v, Mapping) for k, v in params.items())
        spec: dict[str, dict[str, str]] = {i.name: {} for i in infos}
        if per_artifact:
            for info in infos:
                spec[info.name] = info.validate(params.get(info.name))
            return spec
        if len(infos) == 1:
            spec[infos[0].name] = infos[0].validate(params)
            return spec
        for key, value in params.items():
            owners = [i for i in infos if i.parameter(key) is not None]
            if not owners:
                valid = sorted({p.name for i in infos for p in i.parameters})
                raise ArtifactParameterError(
                    f"none of {', '.join(sorted(names))} has a parameter {key!r}",
                    hint=f"valid parameters: {', '.join(valid)}; or pass "
                         "{'Artifact.Name': {'param': value}}")
            for info in owners:
                spec[info.name].update(info.validate({key: value}))
        return spec

    def collect(
        self,
        client: str | Client | Sequence[str | Client],
        artifacts: str | Sequence[str],
        parameters: Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float | None = 600,
        cpu_limit: float | None = None,
        max_rows: int | None = None,
        urgent: bool = False,
        org_id: str | None = None,
        progress: bool = True,
        dry_run: bool = False,
    ) -> Any:
        """Collect artifacts on one client (-> :class:`Flow`) or several (-> list of Flow).

        ``parameters`` are checked against the artifact definitions (names, choices, types;
        values converted to the strings the server expects) and sent in ``spec``: a flat
        ``{param: value}`` (applied to the artifacts that declare it) or
        ``{"Artifact.Name": {param: value}}``. With ``wait`` the call returns once every
        online client's collection is FINISHED or ERROR (``timeout`` seconds at most, then
        :class:`WaitTimeout`), showing progress. A client offline for more than 10 minutes is
        not waited for: its collection is queued, an :class:`OfflineClientWarning` says when
        it was last seen, and ``flow.wait()`` waits for it later. Ctrl-C stops waiting, not the
        collections (:class:`WaitInterrupted` holds the flows).
        """
        org = self._org(org_id)
        names = [artifacts] if isinstance(artifacts, str) else list(artifacts)
        if not names:
            raise FleetError("no artifacts to collect", hint="name at least one artifact")
        single = isinstance(client, str | Client)
        given: list[str | Client] = [client] if isinstance(client, str | Client) else list(
            client)
        targets = [self.client(c, org_id=org) for c in given]
        if not targets:
            raise FleetError("no clients to collect from")
        infos = self._artifacts(names, org)
        for info, target in ((i, t) for i in infos for t in targets):
            wanted = "server" if target.client_id == "server" else "client"
            if info.type != wanted:
                raise FleetError(
                    f"{info.name} is a {info.type} artifact; it cannot be collected on "
                    f"{target.hostname or target.client_id}",
                    hint="client artifacts run on clients, server artifacts on client "
                         "'server'; event artifacts are watched with conn.monitor()")
        env: dict[str, Any] = {
            "Targets": [{"ClientId": t.client_id} for t in targets],
            "ArtifactNames": [i.name for i in infos], "Spec": self._spec(infos, parameters),
            "CpuLimit": float(cpu_limit or 0), "MaxRows": int(max_rows or 0),
            "Urgent": bool(urgent)}
        plan = self._plan(COLLECT_VQL, env, org, f"collect {', '.join(names)}")
        if dry_run:
            return plan
        result = _checked(self, COLLECT_VQL, env, org, "collecting " + ", ".join(names))
        by_id = {t.client_id: t for t in targets}
        flows: list[Flow] = []
        for row in records(result.frame):
            collection = row.get("Collection") or {}
            target = by_id[str(row.get("ClientId"))]
            if not collection.get("flow_id"):
                raise FleetError(f"the server did not start the collection on "
                                 f"{target.hostname or target.client_id}",
                                 hint="see the server log lines: "
                                      + "; ".join(x.message for x in result.logs[-3:]))
            flows.append(Flow(self, target.client_id, str(collection["flow_id"]), org,
                              target.hostname, [i.name for i in infos], "RUNNING", vql=plan))
        offline = [(f, by_id[f.client_id]) for f in flows
                   if f.client_id != "server" and not by_id[f.client_id].online]
        for flow, target in offline:
            warnings.warn(
                f"{target.hostname} ({target.client_id}) is offline, last seen "
                f"{target.last_seen_text()}: collection {flow.flow_id} is queued and runs "
                "when the client comes back; flow.wait() waits for it",
                OfflineClientWarning, stacklevel=2)
        if wait:
            skip = {f.flow_id for f, _ in offline}
            wait_for([f for f in flows if f.flow_id not in skip], timeout=timeout,
                     progress=progress)
        return flows[0] if single else flows

    def flow(self, client: str | Client, flow_id: str, *, org_id: str | None = None) -> Flow:
        """An existing flow (e.g. to wait again, read results or download)."""
        org = self._org(org_id)
        target = self.client(client, org_id=org)
        return Flow(self, target.client_id, flow_id, org, target.hostname).refresh()

    def flows(self, client: str | Client, *, org_id: str | None = None,
              dry_run: bool = False) -> pd.DataFrame:
        """The client's collections, newest first (times as UTC datetimes)."""
        import pandas as pd

        org = self._org(org_id)
        env = {"ClientId": self._client_id(client, org)}
        if dry_run:
            return self._plan(FLOWS_VQL, env, org, "flows()")  # type: ignore[return-value]
        out = []
        for r in records(_checked(self, FLOWS_VQL, env, org, "listing flows").frame):
            request = r.get("request") or {}
            out.append({
                "flow_id": r.get("session_id"), "client_id": r.get("client_id"),
                "artifacts": list(request.get("artifacts") or []), "state": r.get("state"),
                "status": r.get("status"), "creator": request.get("creator"),
                "created": from_micros(r.get("create_time")),
                "started": from_micros(r.get("start_time")),
                "last_active": from_micros(r.get("active_time")),
                "rows": r.get("total_collected_rows"),
                "uploaded_files": r.get("total_uploaded_files"),
                "uploaded_bytes": r.get("total_uploaded_bytes"), "request": request})
        frame = pd.DataFrame(out, columns=FLOW_COLUMNS)
        for column in ("created", "started", "last_active"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame.sort_values("created", ascending=False, ignore_index=True)

    # -- hunts -----------------------------------------------------------------------------

    def hunts(self, state: str | None = None, *, org_id: str | None = None,
              dry_run: bool = False) -> pd.DataFrame:
        """Hunts with their condition and counters; ``state`` filters (RUNNING, PAUSED, ...)."""
        import pandas as pd

        org = self._org(org_id)
        if dry_run:
            return self._plan(HUNTS_VQL, {}, org, "hunts()")  # type: ignore[return-value]
        out = []
        for r in records(_checked(self, HUNTS_VQL, {}, org, "listing hunts").frame):
            if state and str(r.get("state", "")).upper() != state.upper():
                continue
            stats, condition = r.get("stats") or {}, r.get("condition") or {}
            os_name = str((condition.get("os") or {}).get("os") or "")
            out.append({
                "hunt_id": r.get("hunt_id"), "description": r.get("hunt_description"),
                "state": r.get("state"), "creator": r.get("creator"),
                "created": from_micros(r.get("create_time")),
                "started": from_micros(r.get("start_time")),
                "expires": from_micros(r.get("expires")),
                "artifacts": list(r.get("artifacts") or []),
                "labels": list((condition.get("labels") or {}).get("label") or []),
                "os": "" if os_name in ("", "ALL") else os_name.lower(),
                "scheduled": stats.get("total_clients_scheduled"),
                "finished": stats.get("total_finished_clients"),
                "with_results": stats.get("total_clients_with_results"),
                "with_errors": stats.get("total_clients_with_errors"),
                "rows": stats.get("total_collected_rows"),
                "uploaded_bytes": stats.get("total_uploaded_bytes"),
                "tags": list(r.get("tags") or [])})
        frame = pd.DataFrame(out, columns=HUNT_COLUMNS)
        for column in ("created", "started", "expires"):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        return frame.sort_values("created", ascending=False, ignore_index=True)

    def hunt(self, hunt_id: str, *, org_id: str | None = None) -> Hunt:
        """An existing hunt (:class:`Hunt`: results, flows, progress)."""
        return Hunt(self, hunt_id, self._org(org_id)).refresh()

    def create_hunt(
        self,
        artifacts: str | Sequence[str],
        parameters: Mapping[str, Any] | None = None,
        *,
        description: str,
        labels: str | Sequence[str] | None = None,
        os: str | None = None,
        expires: dt.datetime | dt.timedelta | float | str = dt.timedelta(days=7),
        paused: bool = False,
        org_id: str | None = None,
        dry_run: bool = False,
    ) -> Any:
        """Start a hunt (needs START_HUNT) on clients with any of ``labels``, or of one ``os``.

        Velociraptor's hunt condition is labels *or* an OS, never both (the server would
        silently drop the labels): passing both raises :class:`HuntConditionError`.
        ``expires`` is a datetime or a duration from now (default 7 days).
        """
        org = self._org(org_id)
        names = [artifacts] if isinstance(artifacts, str) else list(artifacts)
        label_list = [labels] if isinstance(labels, str) else list(labels or [])
        if label_list and os:
            raise HuntConditionError(
                "a Velociraptor hunt runs on clients matching labels OR an OS, not both (the "
                "server keeps only the OS condition)",
                hint="pass labels= and rely on the artifact's OS precondition, or pass os= and "
                     "filter the results by label")
        infos = self._artifacts(names, org)
        bad = [i.name for i in infos if i.type != "client"]
        if bad:
            raise FleetError(f"hunts collect client artifacts; {', '.join(bad)} is not one")
        when = expiry_time(expires)
        env: dict[str, Any] = {
            "ArtifactNames": [i.name for i in infos], "Description": description,
            "Spec": self._spec(infos, parameters), "Expires": when, "Paused": bool(paused),
            "Labels": label_list, "OS": _os(os) if os else ""}
        plan = self._plan(HUNT_CREATE_VQL, env, org, f"hunt {', '.join(names)}")
        if dry_run:
            return plan
        result = _checked(self, HUNT_CREATE_VQL, env, org, "starting a hunt")
        rows = records(result.frame)
        made = (rows[0].get("Hunt") if rows else None) or {}
        if not made.get("HuntId"):
            raise FleetError("the server did not create the hunt",
                             hint="server log: " + "; ".join(x.message for x in result.logs))
        hunt = Hunt(self, str(made["HuntId"]), org, vql=plan)
        return hunt.refresh()

    # -- monitoring ------------------------------------------------------------------------

    def monitor(self, artifact: str, *, client: str | Client | None = None,
                max_rows: int | None = None, duration: float | None = None,
                org_id: str | None = None, dry_run: bool = False) -> Any:
        """Yield batches (DataFrames) of an event artifact's rows as they arrive.

        Stops after ``max_rows`` rows and/or ``duration`` seconds (else when the loop stops
        iterating; the server query is cancelled). ``client`` keeps one client's events.
        """
        org = self._org(org_id)
        client_id = ""
        if client is not None:
            client_id = self.client(client, org_id=org).client_id
        env = {"EventArtifact": artifact, "WantClient": client_id}
        if dry_run:
            return self._plan(MONITOR_VQL, env, org, f"monitor {artifact}")
        info = self.artifact(artifact, org_id=org)
        if info.type not in _EVENT_TYPES:
            raise FleetError(f"{info.name} is a {info.type} artifact, not an event artifact",
                             hint="collect it with conn.collect(); monitor() watches "
                                  "client_event/server_event artifacts")
        return self._monitor(env, org, max_rows, duration, info)

    def _monitor(self, env: dict[str, Any], org: str, max_rows: int | None,
                 duration: float | None, info: ArtifactInfo) -> Iterator[pd.DataFrame]:
        try:
            for frame in self.stream(MONITOR_VQL, env=env, org_id=org, max_rows=max_rows,
                                     duration=duration, strict=True):
                yield type_columns(frame.copy(), info.column_types)
        except VQLRuntimeError as err:
            from velonb.fleet_errors import permission_error

            denied = permission_error([str(err)], self.config.user, "monitoring")
            if denied is not None:
                raise denied from None
            raise
