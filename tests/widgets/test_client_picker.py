"""ClientPicker: search with the server's syntax, choose clients, keep the choice on re-run."""

from __future__ import annotations

import pytest

from tests.widgets.conftest import host_id
from velonb.widgets import ClientPicker


def _hosts(picker: ClientPicker) -> list[str]:
    return [label.split()[1] for label, _ in picker.table.options]


def test_lists_every_client_online_first_with_marker_os_labels_last_seen(conn):
    picker = ClientPicker(conn)
    assert len(picker.table.options) == len(picker.matches) == 16
    online = picker.matches["online"].tolist()
    assert online == sorted(online, reverse=True)  # online ones first
    assert any(not o for o in online)  # the emulated fleet has offline clients
    label, client_id = next(o for o in picker.table.options if "WKS-FIN-0042" in o[0])
    assert label.startswith("● ") and client_id.startswith("C.") and client_id in label
    assert "windows" in label and "finance,vip" in label and " ago" in label
    assert any(o[0].startswith("○ ") for o in picker.table.options)
    assert "16 matches" in picker.status.value
    for column in ("hostname", "os", "labels", "last_seen", "online"):
        assert column in picker.matches.columns


@pytest.mark.parametrize(("search", "expected"), [
    ("host:WKS-FIN-0042", {"WKS-FIN-0042"}),
    ("label:dc", {"DC-01", "DC-02"}),
    ("host:WKS-FIN*", {"WKS-FIN-0042", "WKS-FIN-0057", "WKS-FIN-0061"}),
])
def test_search_uses_the_server_syntax(conn, search, expected):
    picker = ClientPicker(conn, search)
    assert set(picker.matches["hostname"]) == expected
    assert set(_hosts(picker)) == expected


def test_typing_in_the_search_box_searches_and_client_ids_work(conn):
    picker = ClientPicker(conn)
    client_id = host_id(conn, "DC-01")
    picker.search_box.value = client_id
    assert picker.matches["client_id"].tolist() == [client_id]
    picker.search_box.value = "host:NO-SUCH-HOST"
    assert picker.matches.empty and picker.table.options == ()
    assert "0 matches" in picker.status.value


def test_a_failing_search_is_shown_and_the_widget_stays_usable(conn, monkeypatch):
    picker = ClientPicker(conn, "host:DC-01")

    def broken(*_a, **_k):
        raise RuntimeError("server says no")

    monkeypatch.setattr(conn, "clients", broken)
    picker.search("label:x")
    assert "server says no" in picker.error and "velonb-error" in picker.status.value
    assert picker.matches["hostname"].tolist() == ["DC-01"]  # the last good matches stay
    assert "error: RuntimeError: server says no" in repr(picker)


def test_multi_select_accumulates_across_searches(conn):
    seen = []
    picker = ClientPicker(conn, "label:dc", on_change=seen.append)
    dc1, dc2 = host_id(conn, "DC-01"), host_id(conn, "DC-02")
    picker.table.value = (dc1,)
    assert picker.value == [dc1]
    picker.search("host:WKS-FIN-0042")
    wks = host_id(conn, "WKS-FIN-0042")
    picker.table.value = (wks,)
    assert picker.value == [dc1, wks]
    assert picker.selected["hostname"].tolist() == ["DC-01", "WKS-FIN-0042"]
    picker.search("label:dc")  # back: DC-01 is still shown as selected
    assert picker.table.value == (dc1,)
    picker.table.value = (dc1, dc2)
    picker.table.value = (dc2,)
    assert picker.value == [wks, dc2]
    assert seen[-1] == [wks, dc2] and len(seen) == 4
    assert "Selected (2)" in picker.chosen_label.value
    assert picker.hostnames == {wks: "WKS-FIN-0042", dc2: "DC-02"}
    picker.clear_button.click()
    assert picker.value == [] and picker.selected.empty and seen[-1] == []


def test_single_select_replaces_the_choice(conn):
    picker = ClientPicker(conn, "label:dc", multiple=False)
    dc1, dc2 = host_id(conn, "DC-01"), host_id(conn, "DC-02")
    picker.table.value = dc1
    picker.table.value = dc2
    assert picker.value == [dc2]
    picker.search("host:WKS-FIN-0042")  # the choice survives a search that hides it
    assert picker.table.value is None and picker.value == [dc2]


def test_value_can_be_set_from_python_even_outside_the_matches(conn):
    picker = ClientPicker(conn, "label:dc")
    wks = host_id(conn, "WKS-FIN-0042")
    picker.value = [wks]
    assert picker.selected["hostname"].tolist() == ["WKS-FIN-0042"]
    with pytest.raises(ValueError, match="no client"):
        picker.value = ["C.0000000000000000"]


def test_rerunning_the_cell_keeps_search_and_selection(conn):
    first = ClientPicker(conn, "label:dc")
    dc1 = host_id(conn, "DC-01")
    first.table.value = (dc1,)
    first.search("label:finance")
    again = ClientPicker(conn, "label:dc")  # the same cell run again
    assert again.search_box.value == "label:finance"
    assert again.value == [dc1]
    assert ClientPicker(conn, "label:dc", key="other").value == []  # another key
    assert ClientPicker(conn, "label:dc", remember=False).value == []
    assert ClientPicker(conn, "label:dc").value == [dc1]  # remember=False did not save


def test_cell_id_separates_two_cells(conn, monkeypatch):
    from velonb.widgets import _state

    monkeypatch.setattr(_state, "current_cell_id", lambda: "cell-a")
    a = ClientPicker(conn, "label:dc")
    a.table.value = (host_id(conn, "DC-01"),)
    monkeypatch.setattr(_state, "current_cell_id", lambda: "cell-b")
    assert ClientPicker(conn, "label:dc").value == []
    monkeypatch.setattr(_state, "current_cell_id", lambda: "cell-a")
    assert ClientPicker(conn, "label:dc").value == a.value


def test_text_fallback_where_widgets_cannot_render(conn):
    picker = ClientPicker(conn, "host:WKS-FIN-0042")
    picker.table.value = (host_id(conn, "WKS-FIN-0042"),)
    bundle = picker._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    text = bundle["text/plain"]
    assert text == repr(picker) == picker.summary()
    assert "ClientPicker: search 'host:WKS-FIN-0042': 1 match; selected 1" in text
    assert "WKS-FIN-0042 (C." in text and "windows, online" in text


def test_edited_arguments_win_over_remembered_state(conn):
    dc1, wks = host_id(conn, "DC-01"), host_id(conn, "WKS-FIN-0042")
    first = ClientPicker(conn, "label:dc")
    first.table.value = (dc1,)
    assert ClientPicker(conn, "label:dc").value == [dc1]  # same cell, same arguments
    edited = ClientPicker(conn, "host:WKS-FIN-0042", value=[wks])  # the analyst edited it
    assert edited.search_box.value == "host:WKS-FIN-0042" and edited.value == [wks]
