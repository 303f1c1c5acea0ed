"""notebooks/03-collect-with-widgets.ipynb: committed clean, and where widgets cannot render
(nbconvert, a terminal) its outputs still say what the widgets hold."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from velonb.widgets import ClientPicker

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "03-collect-with-widgets.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


def test_executed_headless_the_panel_leaves_a_text_summary(emulator, tmp_path):
    config = emulator.write_api_client_config(tmp_path / "api_client.yaml", name="admin")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VELONB_API_CONFIG", str(config))
        nb = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=60, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    panel_cell = next(c for c in nb.cells if c.source.startswith("panel = CollectPanel"))
    [output] = panel_cell.outputs
    assert WIDGET_VIEW in output.data  # a widget where widgets render...
    text = output.data["text/plain"]  # ...and this where they do not
    assert text.splitlines()[0] == "CollectPanel"
    assert "ClientPicker: search 'all': 16 matches; selected 0" in text
    assert "To collect: choose clients, choose an artifact." in text
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []


def test_terminal_ipython_prints_the_summary(conn):
    from IPython.lib.pretty import pretty

    picker = ClientPicker(conn, "label:dc")
    assert pretty(picker) == picker.summary() == repr(picker)
