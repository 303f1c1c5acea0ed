"""velonb.plot on emulator data: figures with the right axes, outliers found, big input fast."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from velonb import plot
from velonb.emulator.world.incident import INCIDENT

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def collected(conn) -> dict[str, pd.DataFrame]:
    """Process lists and RDP logons of every online Windows client, with a Hostname column."""
    windows = conn.clients(os="windows").query("online")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flows = conn.collect(list(windows["client_id"]),
                             ["Windows.System.Pslist", "Windows.EventLogs.RDPAuth"],
                             progress=False, timeout=120)
    out = {}
    for artifact in ("Windows.System.Pslist", "Windows.EventLogs.RDPAuth"):
        out[artifact] = pd.concat([f.results(artifact).assign(Hostname=f.hostname)
                                   for f in flows], ignore_index=True)
    return out


def _ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_counts_least_frequent_processes_across_hosts_finds_the_incident(collected):
    procs = collected["Windows.System.Pslist"]
    fig = plot.counts(procs, "Name", by="Hostname", least=True, top=12)
    ax = fig.axes[0]
    names = _ticks(ax)
    assert len(names) == 12
    # Stacking: a process seen on one host comes first; the implant on three hosts is there.
    for name in ("WINWORD.EXE", "cmd.exe", "powershell.exe", INCIDENT.binary_name):
        assert name in names
    spread = procs.groupby("Name")["Hostname"].nunique()
    assert [spread[n] for n in names] == sorted(spread[n] for n in names)
    assert ax.get_xlabel() == "rows" and ax.get_ylabel() == "Name"
    title = fig._suptitle.get_text()
    assert title.startswith("Least frequent Name across Hostname (12 of ")
    assert ax.get_legend().get_title().get_text() == "Hostname"


def test_counts_most_frequent_without_grouping(collected):
    procs = collected["Windows.System.Pslist"]
    fig = plot.counts(procs, "Name", top=5)
    ax = fig.axes[0]
    expected = procs["Name"].value_counts().head(5)
    assert _ticks(ax) == list(expected.index)
    widths = [p.get_width() for p in ax.patches]
    assert widths == list(expected.to_numpy())
    assert fig._suptitle.get_text().startswith("Most frequent Name (5 of ")


def test_timeline_of_rdp_logons_per_host(collected):
    rdp = collected["Windows.EventLogs.RDPAuth"]
    fig = plot.timeline(rdp, time="EventTime", by="Hostname")
    hist, lanes = fig.axes[0], fig.axes[1]
    assert lanes.get_xlabel() == "EventTime (UTC)" and lanes.get_ylabel() == "Hostname"
    assert hist.get_ylabel() == "events"
    hosts = rdp["Hostname"].value_counts()
    assert _ticks(lanes) == list(hosts.index[: plot.MAX_GROUPS])
    title = fig._suptitle.get_text()
    assert title.startswith(f"{len(rdp):,} events by Hostname, ") and "UTC" in title
    # One dot per non-empty (host, bin) cell, never one per row.
    dots = lanes.collections[0].get_offsets()
    assert 0 < len(dots) <= len(rdp)


def test_timeline_labels_a_sparse_story(collected):
    rdp = collected["Windows.EventLogs.RDPAuth"]
    sources = {logon.source_ip for logon in INCIDENT.rdp_logons}
    attacker = rdp[rdp["SourceIP"].isin(sources)]
    assert set(attacker["Hostname"]) >= {"SRV-FS-01", "WKS-FIN-0057"}
    fig = plot.timeline(attacker, time="EventTime", by="Hostname", label="UserName")
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert texts and all(t.startswith(INCIDENT.stolen_account) for t in texts)
    assert len(texts) == len(fig.axes[1].collections[0].get_offsets())
    # Too many dots to label: no labels rather than a smudge.
    crowded = plot.timeline(rdp, time="EventTime", by="Hostname", label="UserName")
    assert len(crowded.axes[1].texts) == 0
    assert "(1min bins)" in plot.timeline(attacker, time="EventTime", freq="1min") \
        ._suptitle.get_text()


def test_timeline_keeps_the_time_zone_and_shows_gaps():
    base = pd.Timestamp("2026-03-01 08:00", tz="Europe/Berlin")
    times = [base + pd.Timedelta(minutes=m) for m in (*range(0, 30), *range(600, 630))]
    fig = plot.timeline(pd.DataFrame({"When": times}), freq="10min")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "When (Europe/Berlin)"
    heights = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert heights.max() == 10  # 10 events in each full 10-minute bin
    assert "2026-03-01 08:00 to 2026-03-01 18:29 Europe/Berlin" in fig._suptitle.get_text()
    steps = ax.collections[0].get_paths()[0].vertices
    middle = steps[(steps[:, 0] > steps[:, 0].min() + 0.05) & (steps[:, 0] < steps[:, 0].max()
                                                                - 0.05)]
    assert (middle[:, 1] == 0).any()  # the empty hours between the bursts stay empty


def test_timeline_accepts_naive_times_epoch_numbers_and_finds_the_time_column():
    naive = pd.DataFrame({"Timestamp": pd.date_range("2026-01-01", periods=50, freq="h")})
    assert plot.timeline(naive).axes[0].get_xlabel() == "Timestamp (UTC)"
    epoch = pd.DataFrame({"ts": np.arange(1_767_225_600, 1_767_225_600 + 86400, 600)})
    fig = plot.timeline(epoch, time="ts")
    assert "2026-01-01 00:00" in fig._suptitle.get_text()
    micros = epoch.assign(ts=epoch["ts"] * 1_000_000)
    assert fig._suptitle.get_text() == plot.timeline(micros, time="ts")._suptitle.get_text()


def test_edge_cases():
    empty = pd.DataFrame({"Time": pd.Series([], dtype="datetime64[ns, UTC]"), "Host": []})
    assert "no events" in plot.timeline(empty, by="Host")._suptitle.get_text()
    with pytest.raises(KeyError, match="Nope"):
        plot.timeline(empty, time="Nope")
    with pytest.raises(ValueError, match="no time column"):
        plot.timeline(pd.DataFrame({"x": [1]}))
    with pytest.raises(KeyError, match="Missing"):
        plot.counts(pd.DataFrame({"x": [1]}), "Missing")
    lists = pd.DataFrame({"Labels": [["a"], ["a"], ["b"], None]})
    assert set(_ticks(plot.counts(lists, "Labels").axes[0])) == {"['a']", "['b']", "(missing)"}
    assert "no rows" in [t.get_text() for t in plot.counts(lists.head(0), "Labels").axes[0].texts]


def test_half_a_million_rows_take_seconds_not_minutes(collected):
    rdp = collected["Windows.EventLogs.RDPAuth"]
    reps = 500_000 // len(rdp) + 1
    big = pd.concat([rdp] * reps, ignore_index=True).head(500_000)
    rng = np.random.default_rng(0)
    big["EventTime"] = big["EventTime"] + pd.to_timedelta(rng.integers(0, 3600, len(big)),
                                                          unit="s")
    start = time.perf_counter()
    fig = plot.timeline(big, time="EventTime", by="Hostname", label="UserName")
    fig.canvas.draw()
    stacked = plot.counts(big, "UserName", by="Hostname", least=True)
    stacked.canvas.draw()
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"500k rows took {elapsed:.1f}s"
    assert fig._suptitle.get_text().startswith("500,000 events by Hostname")


def test_matplotlib_and_ipywidgets_load_only_when_used():
    code = ("import sys, velonb, velonb.plot, velonb.widgets; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib'; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets'")
    subprocess.run([sys.executable, "-c", code], check=True)

