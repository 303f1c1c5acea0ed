"""conn.label() / conn.unlabel(): many clients in one query, from what an analysis yields."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.fleet.conftest import ConnectAs, _connector, private_emulator
from velonb.emulator import Emulator
from velonb.errors import PermissionDeniedError
from velonb.fleet import DryRun, FleetError, UnknownClientError
from velonb.fleet_labels import LABEL_VQL


@pytest.fixture(scope="module")
def label_emulator() -> Iterator[Emulator]:
    with private_emulator(flow_delay=0.0) as emu:
        yield emu


@pytest.fixture
def connect(label_emulator: Emulator, tmp_path: Path) -> Iterator[ConnectAs]:
    yield from _connector(label_emulator, tmp_path)


def _labels(conn, host: str) -> list[str]:
    return conn.client(host).labels


def test_label_hosts_from_a_frame_then_hunt_them(connect):
    conn = connect("investigator")
    found = pd.DataFrame({"ClientId": [conn.client("WKS-FIN-0042").client_id,
                                       conn.client("SRV-FS-01").client_id,
                                       conn.client("WKS-FIN-0042").client_id]})
    with warnings.catch_warnings():  # the change shows at once: no "not yet" warning
        warnings.filterwarnings("error", message=".*does not show the change")
        done = conn.label(found, ["IR-Compromised", "ir-compromised", " ir-case-42 "])
    assert done["hostname"].tolist() == ["WKS-FIN-0042", "SRV-FS-01"]  # once each, in order
    assert all({"IR-Compromised", "ir-case-42"} <= set(labels) for labels in done["labels"])
    assert list(done.columns) == list(conn.clients().columns)
    listed = conn.clients(labels="ir-compromised")
    assert set(listed["hostname"]) == {"WKS-FIN-0042", "SRV-FS-01"}
    assert set(conn.clients(search="label:ir-compromised")["hostname"]) == set(listed["hostname"])
    # labelling again changes nothing; the hunt condition sees the label
    assert conn.label("SRV-FS-01", "ir-compromised")["labels"][0].count("IR-Compromised") == 1
    hunt = conn.create_hunt("Generic.Client.Info", description="compromised",
                            labels="ir-compromised", paused=True)
    assert hunt.row["condition"]["labels"]["label"] == ["ir-compromised"]
    done = conn.unlabel(["WKS-FIN-0042", "SRV-FS-01"], "IR-COMPROMISED")
    assert not any("IR-Compromised" in labels for labels in done["labels"])
    assert "ir-case-42" in _labels(conn, "WKS-FIN-0042")
    assert conn.clients(labels="ir-compromised").empty


def test_refusals_label_nothing(connect):
    conn = connect("investigator")
    before = _labels(conn, "DC-01")
    with pytest.raises(UnknownClientError, match=r"C\.0000000000000000"):
        conn.label(["DC-01", "C.0000000000000000"], "x")
    with pytest.raises(UnknownClientError, match="NO-SUCH-HOST"):
        conn.label(["DC-01", "NO-SUCH-HOST"], "x")
    assert _labels(conn, "DC-01") == before
    with pytest.raises(ValueError, match="non-empty"):
        conn.label("DC-01", ["ok", "  "])
    with pytest.raises(ValueError, match="client_id"):
        conn.label(pd.DataFrame({"Host": ["DC-01"]}), "x")
    with pytest.raises(FleetError, match="server has no labels"):
        conn.label("server", "x")
    analyst = connect("apiuser")  # the api role reads everything and labels nothing
    with pytest.raises(PermissionDeniedError, match="LABEL_CLIENT"):
        analyst.label("DC-01", "x")
    assert _labels(conn, "DC-01") == before


def test_dry_run_binds_every_value(connect):
    conn = connect("investigator")
    plan = conn.label("DC-01", "quarantine'; --", dry_run=True)
    assert isinstance(plan, DryRun) and plan.vql == LABEL_VQL
    assert plan.env["Labels"] == ["quarantine'; --"] and plan.env["Op"] == "set"
    assert "quarantine" not in plan.vql and "DC-01" not in plan.vql
