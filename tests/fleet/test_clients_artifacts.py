"""clients(), client(), orgs(), artifacts(), artifact(): units, filters, resolution, errors."""

from __future__ import annotations

import copy
import datetime as dt

import pandas as pd
import pytest

from velonb.errors import PermissionDeniedError
from velonb.fleet import (
    AmbiguousClientError,
    ArtifactParameterError,
    DryRun,
    UnknownArtifactError,
    UnknownClientError,
)

OFFLINE = {"WKS-FIN-0061", "WKS-ENG-0112", "MBP-CEO-01"}


def test_clients_frame_units_and_online(admin, fleet_world):
    frame = admin.clients()
    assert len(frame) == 16
    assert list(frame.columns[:11]) == ["client_id", "hostname", "fqdn", "os", "release",
                                        "labels", "last_ip", "agent_version", "first_seen",
                                        "last_seen", "online"]
    assert isinstance(frame["first_seen"].dtype, pd.DatetimeTZDtype)
    assert set(frame.loc[~frame["online"], "hostname"]) == OFFLINE
    by_host = frame.set_index("hostname")
    for client in fleet_world.clients("root"):
        row = by_host.loc[client.hostname]
        # first_seen_at is in seconds, last_seen_at in microseconds
        assert row["first_seen"] == pd.Timestamp(client.first_seen_at, unit="s", tz="UTC")
        seen = pd.Timestamp(client.last_seen_at, unit="us", tz="UTC")
        if client.online:  # a connected client's last poll moves with the clock
            assert abs(row["last_seen"] - seen) < pd.Timedelta(seconds=5)
        else:
            assert row["last_seen"] == seen
        assert row["labels"] == client.labels and row["client_id"] == client.client_id
    assert frame["last_seen"].is_monotonic_decreasing


def test_clients_filters(admin):
    finance = admin.clients(labels="finance")
    assert set(finance["hostname"]) == {"WKS-FIN-0042", "WKS-FIN-0057", "WKS-FIN-0061"}
    assert list(admin.clients(labels=["Finance", "VIP"])["hostname"]) == ["WKS-FIN-0042"]
    assert set(admin.clients(os="macos")["hostname"]) == {"MBP-CEO-01"}
    linux = admin.clients(os="linux")
    assert set(linux["hostname"]) == {"lnx-web-01", "lnx-db-01", "lnx-bastion-01"}
    recent = admin.clients(seen_within="1h")
    assert len(recent) == 13 and not set(recent["hostname"]) & OFFLINE
    assert set(admin.clients(seen_within=dt.timedelta(days=5))["hostname"]) >= {"MBP-CEO-01"}
    assert set(admin.clients("wks-fin")["hostname"]) == {"WKS-FIN-0042", "WKS-FIN-0057",
                                                         "WKS-FIN-0061"}
    assert admin.clients("nothing-like-this").empty


def test_clients_dry_run_binds_values(admin):
    plan = admin.clients("WKS-FIN-0042", dry_run=True)
    assert isinstance(plan, DryRun)
    assert "WKS-FIN-0042" not in plan.vql and plan.env == {"Search": "WKS-FIN-0042"}
    assert "Search (string) = WKS-FIN-0042" in str(plan)


def test_client_resolution(admin, fleet_world):
    expected = next(c for c in fleet_world.clients("root") if c.hostname == "WKS-FIN-0042")
    by_name = admin.client("wks-fin-0042")
    assert by_name.client_id == expected.client_id and by_name.online
    assert admin.client(expected.fqdn.upper()).client_id == expected.client_id
    by_id = admin.client(expected.client_id)
    assert by_id.hostname == "WKS-FIN-0042" and by_id.labels == ["finance", "vip"]
    assert by_id.first_seen == dt.datetime.fromtimestamp(expected.first_seen_at, dt.UTC)
    assert not admin.client("WKS-FIN-0061").online
    with pytest.raises(UnknownClientError, match="WKS-FIN-0042"):
        admin.client("WKS-FIN-00")  # a prefix is not a name; the near names are listed
    with pytest.raises(UnknownClientError, match=r"no client C\.0000"):
        admin.client("C.0000000000000000")


def test_ambiguous_hostname_lists_candidates(connect_as, fleet_world):
    original = next(c for c in fleet_world.clients("root") if c.hostname == "DC-02")
    twin = copy.deepcopy(original)
    twin.client_id = "C.00000000000dc002"
    with fleet_world.lock:
        fleet_world._clients["root"][twin.client_id] = twin
    try:
        with pytest.raises(AmbiguousClientError) as err:
            connect_as("admin").client("dc-02")
        assert {c.client_id for c in err.value.candidates} == {original.client_id,
                                                              twin.client_id}
        assert original.client_id in str(err.value) and twin.client_id in str(err.value)
    finally:
        with fleet_world.lock:
            del fleet_world._clients["root"][twin.client_id]


def test_orgs_and_second_org(connect_as):
    admin = connect_as("admin")
    orgs = admin.orgs()
    assert orgs.to_dict("records") == [{"org_id": "root", "name": "<root>"},
                                       {"org_id": "O1234", "name": "Second Org"}]
    second = admin.clients(org_id="O1234")
    assert set(second["hostname"]) == {"HL-WKS-001", "HL-WKS-002", "hl-app-01"}
    assert all(cid.endswith("-O1234") for cid in second["client_id"])
    scoped = connect_as("admin", org_id="O1234")
    assert len(scoped.clients()) == 3
    assert scoped.client("hl-app-01").org_id == "O1234"
    with pytest.raises(UnknownClientError):
        scoped.client("WKS-FIN-0042")  # a root-org client is unknown in O1234
    assert list(connect_as("investigator").orgs()["org_id"]) == ["root"]


def test_reader_cannot_query(connect_as):
    with pytest.raises(PermissionDeniedError, match="ANY_QUERY"):
        connect_as("reader").clients()


def test_artifacts_listing_and_definition(admin):
    events = admin.artifacts(type="client_event")
    assert "Generic.Client.Stats" in set(events["name"])
    assert set(events["type"]) == {"client_event"}
    found = admin.artifacts(search="pslist")
    assert set(found["name"]) == {"Windows.System.Pslist", "Linux.Sys.Pslist"}
    info = admin.artifact("Windows.Search.FileFinder")
    assert info.type == "client" and info.result_names == ["Windows.Search.FileFinder"]
    accessor = info.parameter("Accessor")
    assert accessor is not None and accessor.type == "choices" and accessor.default == "auto"
    assert "ntfs" in accessor.choices
    assert info.column_types["MTime"] == "timestamp"
    multi = admin.artifact("Generic.Client.Info")
    assert len([s for s in multi.sources if s]) > 1
    with pytest.raises(UnknownArtifactError, match=r"Windows\.System\.Pslist") as err:
        admin.artifact("Windows.System.PsList2")
    assert "Windows.System.Pslist" in err.value.suggestions


def test_parameters_checked_and_converted(admin):
    info = admin.artifact("Windows.Search.FileFinder")
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert info.validate({
        "Glob": "C:/Users/**", "Upload_File": True, "Calculate_Hash": "no",
        "MoreRecentThan": when, "ModifiedBefore": "2026-02-01", "VSS_MAX_AGE_DAYS": 3,
        "Accessor": "ntfs", "SearchFilesGlobTable": [{"Glob": "C:/a/*"}, {"Glob": "C:/b/*"}],
    }) == {
        "Glob": "C:/Users/**", "Upload_File": "Y", "Calculate_Hash": "N",
        "MoreRecentThan": "2026-01-02T03:04:05Z", "ModifiedBefore": "2026-02-01T00:00:00Z",
        "VSS_MAX_AGE_DAYS": "3", "Accessor": "ntfs",
        "SearchFilesGlobTable": "Glob\nC:/a/*\nC:/b/*\n",
    }
    with pytest.raises(ArtifactParameterError, match="valid parameters: Glob, ") as err:
        info.validate({"glob": "x"})
    assert "did you mean Glob" in str(err.value)
    with pytest.raises(ArtifactParameterError, match="not one of the choices"):
        info.validate({"Accessor": "ext4"})
    with pytest.raises(ArtifactParameterError, match="not a bool"):
        info.validate({"Upload_File": "maybe"})
    with pytest.raises(ArtifactParameterError, match="VSS_MAX_AGE_DAYS"):
        info.validate({"VSS_MAX_AGE_DAYS": "three"})
    with pytest.raises(ArtifactParameterError, match="timestamp"):
        info.validate({"MoreRecentThan": "not a time"})
    with pytest.raises(ArtifactParameterError, match="expected a string"):
        info.validate({"Glob": ["a", "b"]})
    rdp = admin.artifact("Windows.EventLogs.RDPAuth")
    with pytest.raises(ArtifactParameterError, match="not a valid regex"):
        rdp.validate({"UserNameRegex": "(unclosed"})

