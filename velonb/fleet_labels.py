"""Client labels: add or remove them on many clients in one query (``label()``, LABEL_CLIENT).

Labels are how a Velociraptor fleet is partitioned: hunts target them (``create_hunt(labels=)``)
and quarantine is a label. In an investigation the usual step is "mark the hosts we found", so
the helpers take what an analysis yields: hostnames, client ids, :class:`Client` objects, or a
DataFrame with a ``client_id`` (or ``ClientId``) column.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from velonb.fleet_errors import FleetError, UnknownClientError
from velonb.fleet_flows import _checked
from velonb.fleet_model import Client, DryRun, records

if TYPE_CHECKING:
    import pandas as pd

    from velonb.fleet import FleetMixin

__all__ = ["LABEL_VQL", "apply_labels"]

LABEL_VQL = """\
SELECT * FROM foreach(row=ClientIds, query={
  SELECT _value AS ClientId, label(client_id=_value, labels=Labels, op=Op) AS Result
  FROM scope() })
"""
CLIENTS_BY_ID_VQL = ("SELECT * FROM foreach(row=ClientIds, "
                     "query={ SELECT * FROM clients(client_id=_value) })")
#: how long to wait for the server's client records to show a label change
SHOW_TIMEOUT_S = 10.0


def client_ids(conn: FleetMixin, clients: Any, org: str) -> list[str]:
    """Client ids, in order and once each, from ids, hostnames, Clients or a DataFrame."""
    import pandas as pd

    if isinstance(clients, pd.DataFrame):
        column = next((c for c in ("client_id", "ClientId") if c in clients.columns), None)
        if column is None:
            raise ValueError("the DataFrame has no client_id (or ClientId) column")
        items: Iterable[Any] = clients[column].dropna().tolist()
    elif isinstance(clients, str | Client):
        items = [clients]
    else:
        items = list(clients)
    ids: list[str] = []
    for item in items:
        client_id = conn._client_id(item, org)
        if client_id == "server":
            raise FleetError("the server has no labels", hint="label clients (C.… or hostnames)")
        if client_id not in ids:
            ids.append(client_id)
    if not ids:
        raise ValueError("no clients given")
    return ids


def _label_names(labels: str | Iterable[str]) -> list[str]:
    names = [labels] if isinstance(labels, str) else list(labels)
    cleaned = [str(name).strip() for name in names]
    if not cleaned or not all(cleaned):
        raise ValueError(f"labels must be non-empty text, got {names!r}")
    return list(dict.fromkeys(cleaned))


def clients_by_id(conn: FleetMixin, ids: list[str], org: str) -> dict[str, Client]:
    """The clients with these ids (one query), by id; unknown ids are left out."""
    rows = records(_checked(conn, CLIENTS_BY_ID_VQL, {"ClientIds": ids}, org,
                            "reading clients").frame)
    return {str(r.get("client_id")): Client.from_row(r, org) for r in rows}


def apply_labels(conn: FleetMixin, clients: Any, labels: str | Iterable[str], *, remove: bool,
                 org: str, dry_run: bool) -> pd.DataFrame | DryRun:
    """Set (or remove) ``labels`` on ``clients``; their rows (as ``conn.clients()``) after."""
    import pandas as pd

    from velonb.fleet import CLIENT_COLUMNS

    names = _label_names(labels)
    ids = client_ids(conn, clients, org)
    env = {"ClientIds": ids, "Labels": names, "Op": "remove" if remove else "set"}
    what = f"{'removing' if remove else 'setting'} labels on clients"
    plan = DryRun(vql=LABEL_VQL, env=env, org_id=org, description=what)
    if dry_run:
        return plan
    missing = [i for i in ids if i not in clients_by_id(conn, ids, org)]
    if missing:
        raise UnknownClientError(f"no client {', '.join(missing)} in org {org or 'root'}",
                                 hint="nothing was labelled; list clients with conn.clients()")
    _checked(conn, LABEL_VQL, env, org, what)
    wanted = {n.lower() for n in names}

    def shown(client: Client) -> bool:
        held = {x.lower() for x in client.labels}
        return not (held & wanted) if remove else wanted <= held

    deadline = time.monotonic() + SHOW_TIMEOUT_S
    while True:
        now = clients_by_id(conn, ids, org)
        pending = [i for i in ids if i in now and not shown(now[i])]
        if not pending:
            break
        if time.monotonic() > deadline:
            warnings.warn(f"after {SHOW_TIMEOUT_S:g}s the server does not show the change on "
                          f"{len(pending)} client(s) yet: {', '.join(pending[:5])}",
                          stacklevel=3)
            break
        time.sleep(0.2)
    frame = pd.DataFrame([now[i].as_record() for i in ids if i in now], columns=CLIENT_COLUMNS)
    for column in ("first_seen", "last_seen"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame
