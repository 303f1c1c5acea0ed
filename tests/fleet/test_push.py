"""Connection.push_events(): rows from a notebook into a server event queue (PushEvents)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

import velonb.push
from velonb.errors import ParameterError, PermissionDeniedError
from velonb.fleet import UnknownArtifactError
from velonb.push import PushRejected

QUEUE = "Custom.Notebook.Findings"


@pytest.fixture
def pusher(fleet_emulator, connect_as):
    fleet_emulator.grant_publish("investigator", [QUEUE, "Generic.Client.Stats", "No.Such"])
    return connect_as("investigator")


def _stored(conn, where: str) -> pd.DataFrame:
    return conn.query(f"SELECT * FROM monitoring(client_id='server', artifact='{QUEUE}') "
                      f"WHERE {where}")


def test_a_dataframe_arrives_typed_and_signed(pusher):
    seen = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    frame = pd.DataFrame({
        "Case": ["IR-2026-112", "IR-2026-112"],
        "Host": ["WKS-FIN-0042", "SRV-FS-01"],
        "Seen": [pd.Timestamp(seen), pd.NaT],
        "Score": [np.int64(9), np.int64(7)],
        "Ratio": [0.5, math.nan],
        "Detail": [{"ip": "203.0.113.47", "ports": [8443]}, None],
    })
    assert pusher.push_events(QUEUE, frame) == 2
    back = _stored(pusher, "Case = 'IR-2026-112'")
    assert back["Host"].tolist() == ["WKS-FIN-0042", "SRV-FS-01"]
    assert back["Score"].tolist() == [9, 7]
    assert back["Seen"].iloc[0] == pd.Timestamp(seen) and pd.isna(back["Seen"].iloc[1])
    assert back["Ratio"].iloc[0] == 0.5 and pd.isna(back["Ratio"].iloc[1])
    assert back["Detail"].iloc[0] == {"ip": "203.0.113.47", "ports": [8443]}
    assert set(back["_Sender"]) == {"investigator"}


def test_dicts_go_in_batches_in_order(pusher, monkeypatch):
    monkeypatch.setattr(velonb.push, "MAX_BATCH_BYTES", 200)
    rows = [{"Case": "IR-batch", "N": i, "Pad": "x" * 50} for i in range(20)]
    calls = []
    real = pusher._stub.PushEvents
    monkeypatch.setattr(pusher._stub, "PushEvents",
                        lambda request, **kw: calls.append(request.rows) or real(request, **kw))
    assert pusher.push_events(QUEUE, rows) == 20
    assert len(calls) > 1 and sum(calls) == 20
    assert _stored(pusher, "Case = 'IR-batch'")["N"].tolist() == list(range(20))
    assert pusher.push_events(QUEUE, {"Case": "IR-one"}) == 1


def test_client_events_take_a_client_by_hostname(pusher):
    import time

    since = int(time.time())
    assert pusher.push_events("Generic.Client.Stats", [{"Note": "pushed"}],
                              client="WKS-FIN-0042") == 1
    cid = pusher.client("WKS-FIN-0042").client_id
    back = pusher.query(f"SELECT * FROM monitoring(client_id='{cid}', "
                        f"artifact='Generic.Client.Stats') WHERE _ts >= {since}")
    assert back.loc[back["Note"].eq("pushed"), "_Sender"].tolist() == ["investigator"]


def test_refusals_are_named(pusher, connect_as):
    with pytest.raises(PermissionDeniedError, match="publish_queues") as caught:
        connect_as("apiuser").push_events(QUEUE, {"a": 1})
    assert caught.value.permission == "PUBLISH"
    with pytest.raises(UnknownArtifactError, match=r"No\.Such"):
        pusher.push_events("No.Such", {"a": 1})
    with pytest.raises(PushRejected, match="client_id='server'"):
        pusher.push_events(QUEUE, {"a": 1}, client="WKS-FIN-0042")
    with pytest.raises(ParameterError, match="row 1"):
        pusher.push_events(QUEUE, [{"a": 1}, {"a": object()}])
    with pytest.raises(ParameterError, match="not str"):
        pusher.push_events(QUEUE, "a string")
