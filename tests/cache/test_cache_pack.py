"""pack / unpack, and the whole story: run with the cache, pack, stop the server, replay offline."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

from velonb.cli import main

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "02-cache-and-replay.ipynb"
DISCOVERY = ("VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG",
             "VELONB_PROFILE", "VELONB_CACHE_DIR", "VELONB_OFFLINE")
# Appended to the notebook by the test: every frame the notebook made, exactly (values, dtypes).
DUMP = """import json as _j
_frames = {k: v for k, v in dict(globals()).items()
           if type(v).__name__ == "DataFrame" and not k.startswith("_")}
print(_j.dumps({k: [v.to_json(orient="split", date_unit="ns", default_handler=str),
                    {c: str(t) for c, t in v.dtypes.items()}]
               for k, v in sorted(_frames.items()) if v is not None}, sort_keys=True))"""


def frames_of(nb_path: Path, monkeypatch, config: Path | None) -> tuple[dict, Any]:
    nb = nbformat.read(nb_path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(DUMP))
    with monkeypatch.context() as m:
        for var in DISCOVERY:
            m.delenv(var, raising=False)
        m.setenv("HOME", str(nb_path.parent))
        m.setenv("XDG_CACHE_HOME", str(nb_path.parent / "xdg"))
        if config is not None:
            m.setenv("VELONB_API_CONFIG", str(config))
        NotebookClient(nb, timeout=60, kernel_name="python3",
                       resources={"metadata": {"path": str(nb_path.parent)}}).execute()
    dump = nb.cells.pop()
    nbformat.write(nb, nb_path)
    return json.loads(dump.outputs[0].text), nb


def text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + json.dumps(o.get("data", {})))
    return "\n".join(out)


def test_run_pack_stop_unpack_replay_offline(tmp_path, monkeypatch, emulator):
    from velonb.emulator import Emulator

    own = Emulator().start()
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    config = own.write_api_client_config(tmp_path / "api_client.yaml", name="admin")
    notebook = live_dir / "case.ipynb"
    shutil.copy(NOTEBOOK, notebook)
    try:
        live, live_nb = frames_of(notebook, monkeypatch, config)
    finally:
        own.stop(grace=0)
    assert {"hosts", "picked", "tail", "tally"} <= set(live)
    assert "from cache" not in text(live_nb)
    assert main(["pack", str(notebook), "-o", str(tmp_path / "case.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "case.zip") as zf:
        names = zf.namelist()
    assert "case.ipynb" in names and ".velonb-cache/case.json" in names
    assert len([n for n in names if n.endswith(".json") and "case" not in n]) == 5
    assert main(["unpack", str(tmp_path / "case.zip"), str(tmp_path / "replay")]) == 0
    replayed, nb = frames_of(tmp_path / "replay" / "case.ipynb", monkeypatch, None)
    assert replayed == live
    assert text(nb).count("offline replay from cache") >= 5
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]


def test_pack_needs_recorded_entries(tmp_path, capsys):
    """(Archives whose members escape or do not belong are refused by unpack: tests/security.)"""
    assert main(["pack", str(NOTEBOOK), "-o", str(tmp_path / "x.zip")]) == 1
    assert "records no cache entries" in capsys.readouterr().err
