"""notebooks/01-magic-tour.ipynb runs top to bottom in a real kernel against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pytest
from ipython_shell import SECRET_MARKERS, strip_ansi
from nbclient import NotebookClient
from wire_helpers import load_api_config

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01-magic-tour.ipynb"
DISCOVERY_VARS = ("VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG", "VELONB_PROFILE")


def _text(cell: Any) -> str:
    """Everything a cell shows: stream text, every mime type of displays and results, errors."""
    out = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            out.append(output.text)
        elif output.output_type == "error":
            out.append(strip_ansi("\n".join(output.traceback)))
        else:
            out += [v if isinstance(v, str) else json.dumps(v) for v in output.data.values()]
    return "\n".join(out)


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.fixture(scope="module")
def executed(emulator, tmp_path_factory) -> tuple[Any, list[str]]:
    tmp = tmp_path_factory.mktemp("tour")
    config = emulator.write_api_client_config(tmp / "api_client.yaml", name="apiuser",
                                              roles=("api",))
    pem = load_api_config(config)["client_private_key"]
    secrets = [line for line in pem.splitlines() if len(line) > 20 and "-----" not in line]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VELONB_API_CONFIG", str(config))
        for var in DISCOVERY_VARS:
            mp.delenv(var, raising=False)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        NotebookClient(nb, timeout=60, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp)}}).execute()
    return nb, secrets


def _cell(nb: Any, fragment: str) -> Any:
    code = [c for c in nb.cells if c.cell_type == "code"]
    found = ([c for c in code if c.source == fragment]
             or [c for c in code if fragment in c.source])
    assert len(found) == 1, fragment
    return found[0]


def test_errors_only_in_cells_tagged_raises_exception(executed):
    nb, _ = executed
    expected = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        tagged = "raises-exception" in cell.metadata.get("tags", [])
        assert bool(errors) == tagged, (cell.source[:80], errors)
        if errors:
            expected.append(errors[0].ename)
            # Short messages, not Python or gRPC tracebacks.
            assert "Traceback" not in _text(cell) and "grpc" not in _text(cell).lower()
    assert expected == ["PermissionDeniedError", "VQLSyntaxError", "ParameterError",
                        "QueryTimeout"]


def test_no_secret_in_any_output(executed):
    nb, secrets = executed
    dumped = json.dumps([c.get("outputs", []) for c in nb.cells])
    for marker in [*SECRET_MARKERS, *secrets]:
        assert marker not in dumped


def test_outputs_show_what_the_text_promises(executed):
    nb, _ = executed
    config = _text(_cell(nb, "%vql_config --display-rows 10"))
    assert "apiuser" in config and "<masked>" in config and "days left" in config
    assert "showing 10 of 25 rows" in _text(_cell(nb, "FROM range(end=25)"))
    assert "200 rows x 3 columns" in _text(_cell(nb, "%%vql procs"))
    assert "[1000, 1001, 1002, 1003, 1004]" in _text(_cell(nb, "pids.Pid.tolist()"))
    hits = _text(_cell(nb, "hits"))
    assert "IR-2024-031" in hits and "1150" in hits and "C.9f8e7d6c5b4a3921" in hits
    assert "Batch" in _text(_cell(nb, "busiest ="))
    assert "OR 1=1" in _text(_cell(nb, "hostname = "))
    assert "{case.id} stays literal" in _text(_cell(nb, "stays literal"))
    dry = _text(_cell(nb, "--dry-run"))
    assert "nothing was sent (org O1234" in dry and "reason = triage" in dry
    assert "cut at --max-rows 1500" in _text(_cell(nb, "--max-rows 1500"))
    stream = _text(_cell(nb, "--stream"))
    assert "live:" in stream and "latest 5 shown" in stream and "streamed" in stream
    panel = _text(_cell(nb, "SELECT * FROM range(end=2)\nSELECT * FROM info()"))
    assert "server log" in panel and "Permission denied: [MACHINE_STATE]" in panel
    assert "acl grant apiuser" in _text(_cell(nb, "%%vql --strict"))
    syntax = _text(_cell(nb, "Pid = = 1003"))
    assert "line 2" in syntax and "^" in syntax
    assert "{hostnmae}" in _text(_cell(nb, "{hostnmae}"))
    assert "_vql_partial" in _text(_cell(nb, "%%vql --timeout 1\n"))
    assert _text(_cell(nb, "len(_vql_partial)")).startswith("(")
    assert _cell(nb, "%%vql tally --quiet").outputs == []
    assert "66" in _text(_cell(nb, "tally.Bucket.sum()"))

