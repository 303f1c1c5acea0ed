"""clients() search syntax and row shape, client_info/client_metadata, artifact_definitions,
orgs()/org()/whoami() - as services/indexing and vql/server/{clients,orgs,users} do them."""

from __future__ import annotations

import json

import pytest
from wire_helpers import query_args, run_world_query

from velonb.emulator.world import World, fleet

CLIENT_COLUMNS = [
    "client_id", "agent_information", "os_info", "first_seen_at", "last_seen_at", "last_ip",
    "last_interrogate_flow_id", "last_interrogate_artifact_name", "labels",
    "last_hunt_timestamp", "last_event_table_version", "last_label_timestamp", "in_flight_flows",
]


def hosts(world_query, search: str) -> tuple[list[str], list[str]]:
    rows, logs = world_query(f"SELECT os_info.hostname AS H FROM clients(search={search!r})")
    return [r["H"] for r in rows], logs


def test_clients_row_shape_and_units(world_query, world):
    rows, logs = world_query("SELECT * FROM clients()")
    assert logs == []
    assert len(rows) == len(world.clients("root")) > 10
    for row in rows:
        assert list(row) == CLIENT_COLUMNS
        assert list(row["os_info"]) == ["system", "hostname", "release", "machine", "fqdn",
                                        "mac_addresses"]
        assert list(row["agent_information"]) == ["version", "name", "build_time", "build_url"]
        assert row["client_id"].startswith("C.") and len(row["client_id"]) == 18
        assert 1_000_000_000 < row["first_seen_at"] < 10_000_000_000  # seconds
        assert row["last_seen_at"] > 1_000_000_000_000_000  # microseconds
        assert isinstance(row["in_flight_flows"], dict)
        assert row["last_interrogate_flow_id"].startswith("F.")
        assert row["last_interrogate_artifact_name"] == "Generic.Client.Info"


@pytest.mark.parametrize(("search", "expected"), [
    ("WKS-FIN", {"WKS-FIN-0042", "WKS-FIN-0057", "WKS-FIN-0061"}),  # bare term -> host:
    ("wks-fin-0042", {"WKS-FIN-0042"}),  # case-insensitive prefix
    ("host:dc-0", {"DC-01", "DC-02"}),
    ("host:WKS-FIN-0042.ad.meridianfs", {"WKS-FIN-0042"}),  # the fqdn is indexed too
    ("host:*SQL*", {"SRV-SQL-01"}),  # globs
    ("host:lnx-*-01", {"lnx-web-01", "lnx-db-01", "lnx-bastion-01"}),
    ("label:finance", {"WKS-FIN-0042", "WKS-FIN-0057", "WKS-FIN-0061"}),
    ("label:FINANCE", {"WKS-FIN-0042", "WKS-FIN-0057", "WKS-FIN-0061"}),
    ("label:none", {"WKS-ENG-0108", "WKS-ENG-0112"}),
    ("label:d*", {"DC-01", "DC-02"}),
    ("ip:10.10.0.", {"DC-01", "DC-02", "SRV-FS-01", "SRV-WEB-01", "SRV-SQL-01"}),
    ("recent:", set()),
])
def test_clients_search_syntax(world_query, search, expected):
    found, logs = hosts(world_query, search)
    assert logs == []
    assert set(found) == expected
    assert len(found) == len(set(found))


def test_clients_search_all_client_and_mac(world_query, world):
    everyone = {c.hostname for c in world.clients("root")}
    assert set(hosts(world_query, "all")[0]) == everyone
    assert set(hosts(world_query, "")[0]) == everyone
    assert set(hosts(world_query, "label:*")[0]) == {
        c.hostname for c in world.clients("root") if c.labels}
    target = next(c for c in world.clients("root") if c.hostname == "DC-01")
    assert hosts(world_query, target.client_id)[0] == ["DC-01"]
    assert hosts(world_query, "client:" + target.client_id[:8])[0]
    assert "DC-01" in hosts(world_query, "client:" + target.client_id)[0]
    assert "DC-01" in hosts(world_query, "mac:" + target.mac_addresses[0])[0]
    # "all" walks the index in client id order, as the real btree does
    rows, _ = world_query("SELECT client_id FROM clients()")
    ids = [r["client_id"] for r in rows]
    assert ids == sorted(ids, key=str.lower)


def test_clients_bad_operator_logs(world_query):
    found, logs = hosts(world_query, "owner:bob")
    assert found == [] and logs == ["clients: Invalid search operator owner"]


def test_clients_by_client_id_and_orgs(world_query, world):
    other = world.clients("O1234")[0]
    rows, logs = world_query(f"SELECT * FROM clients(client_id={other.client_id!r})")
    assert rows == [] and logs == []  # another org's client is not visible
    rows, logs = world_query(f"SELECT * FROM clients(client_id={other.client_id!r})",
                             org="O1234")
    assert [r["client_id"] for r in rows] == [other.client_id]
    assert other.client_id.endswith("-O1234")
    rows, _ = world_query("SELECT client_id FROM clients()", org="O1234")
    assert {r["client_id"] for r in rows} == {c.client_id for c in world.clients("O1234")}
    _, logs = world_query("SELECT * FROM clients(start=0)")
    assert logs == ["clients: Unexpected arg start"]  # only search= and client_id= exist


def test_client_info_and_metadata(world_query, world):
    client = world.clients("root")[0]
    rows, logs = world_query(f"SELECT client_info(client_id={client.client_id!r}) AS I, "
                             f"client_metadata(client_id={client.client_id!r}) AS M FROM scope()")
    assert logs == []
    expected = fleet.client_row(client)
    assert abs(rows[0]["I"].pop("last_seen_at") - expected.pop("last_seen_at")) < 5_000_000
    assert rows[0]["I"] == expected  # last_seen_at follows a connected client's polls
    assert rows[0]["M"] == client.metadata
    rows, logs = world_query("SELECT client_info(client_id='C.0123456789abcdef') AS I "
                             "FROM scope()")
    assert rows == [{"I": None}]
    assert logs == ["client_info: Client ID C.0123456789abcdef not known in this org: "
                    "NotFoundError"]


def test_artifact_definitions(world_query, world):
    rows, logs = world_query("SELECT name, type FROM artifact_definitions()")
    assert logs == []
    assert [r["name"] for r in rows] == sorted(world.catalog)
    assert {r["type"] for r in rows} <= {"client", "client_event", "server", "server_event",
                                         "notebook", "internal"}
    rows, logs = world_query("SELECT * FROM artifact_definitions(names=['Windows.System.Pslist',"
                             " 'No.Such.Artifact'])")
    assert [r["name"] for r in rows] == ["Windows.System.Pslist"]
    assert logs == ["artifact_definitions: artifact No.Such.Artifact not known"]
    assert {"name", "parameters", "sources", "type", "required_permissions"} <= set(rows[0])
    assert rows[0]["compiled"] is True  # repository.Get compiles what it hands out


def test_orgs_org_whoami(world_query):
    rows, logs = world_query("SELECT * FROM orgs()")
    assert logs == []
    assert [(r["Name"], r["OrgId"]) for r in rows] == [("<root>", "root"),
                                                       ("Second Org", "O1234")]
    assert all(list(r) == ["Name", "OrgId", "_client_config"] for r in rows)
    assert "nonce:" in rows[0]["_client_config"]
    rows, _ = world_query("SELECT org() AS O, whoami() AS W FROM scope()", org="O1234")
    assert list(rows[0]["O"]) == ["name", "nonce", "id", "_client_config"]
    assert rows[0]["O"]["id"] == "O1234" and rows[0]["O"]["name"] == "Second Org"
    assert rows[0]["W"] == "admin"


def test_orgs_lists_only_the_callers_orgs(raw_stub, make_config):
    stub = raw_stub(make_config("apiuser"))
    rows = []
    for message in stub.Query(query_args("SELECT OrgId FROM orgs()")):
        if message.Response:
            rows += json.loads(message.Response)
    assert rows == [{"OrgId": "root"}]
    stub = raw_stub(make_config("admin"))
    rows = []
    for message in stub.Query(query_args("SELECT OrgId, whoami() AS W FROM orgs()")):
        if message.Response:
            rows += json.loads(message.Response)
    assert rows == [{"OrgId": "root", "W": "admin"}, {"OrgId": "O1234", "W": "admin"}]


def test_cli_serves_the_world_or_an_empty_one(tmp_path, monkeypatch, capsys):
    from velonb import cli

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.setattr(cli, "_serve_forever", lambda out: None)
    assert cli.main(["demo"]) == 0
    assert "World(seed=7, orgs=2, clients=19)" in capsys.readouterr().out
    assert cli.main(["demo", "--empty"]) == 0
    assert "World(seed=7, orgs=1, clients=0)" in capsys.readouterr().out


def test_the_server_is_a_client_with_only_its_name(world_query):
    rows, logs = world_query("SELECT * FROM clients(client_id='server')")
    assert logs == [] and len(rows) == 1
    row = rows[0]
    assert list(row) == CLIENT_COLUMNS
    assert (row["client_id"], row["os_info"]["hostname"], row["os_info"]["fqdn"]) == \
        ("server", "server", "server")
    assert row["first_seen_at"] == row["last_seen_at"] == 0 and row["labels"] == []
    info, logs = world_query("SELECT client_info(client_id='server') AS I FROM scope()")
    assert logs == [] and info[0]["I"] == row
    listed, _ = world_query("SELECT client_id FROM clients()")
    assert "server" not in {r["client_id"] for r in listed}  # not in the search index


@pytest.mark.parametrize(("principal", "expected"), [
    ("rootadmin", [("root", True), ("O1234", True)]),  # ORG_ADMIN in root sees every org
    ("apiuser", [("root", False)]),  # READ_RESULTS: id and name, no client config
    ("oreader", [("O1234", False)]),
    ("oadmin", [("O1234", True)]),  # SERVER_ADMIN there: the whole record
    ("nobody", []),
])
def test_orgs_shows_what_get_orgs_lets_the_caller_see(principal, expected):
    from velonb.emulator import Emulator

    users = {"rootadmin": {"root": ["administrator"]}, "apiuser": ["api"],
             "oreader": {"O1234": ["reader"]}, "oadmin": {"O1234": ["administrator"]},
             "nobody": {"O1234": ["artifact_writer"]}}
    world = World(seed=7, flow_delay=0.0)
    try:
        with Emulator(users=users, orgs={"O1234": "Second Org"}, world=world):
            rows, logs = run_world_query(world, "SELECT * FROM orgs()", principal=principal)
    finally:
        world.close()
    assert logs == []
    assert [(r["OrgId"], "_client_config" in r) for r in rows] == expected
    assert all(list(r)[:2] == ["Name", "OrgId"] for r in rows)
