"""The notebooks as committed: no outputs, a parameters cell, no planted answer in the analysis,
and the copies shipped inside the package identical to the repository's."""

from __future__ import annotations

import nbformat
import pytest

from tests.notebooks.conftest import INVESTIGATIONS, NOTEBOOKS
from velonb.demo import PACKAGE_NOTEBOOKS, notebooks_dir
from velonb.emulator.world.incident import INCIDENT

ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
# Papermill-style parameters: the tours and the investigations (03 belongs to the widget tests).
PARAMETERISED = ["01-magic-tour.ipynb", "02-cache-and-replay.ipynb",
                 *(f"{stem}.ipynb" for stem in INVESTIGATIONS)]


@pytest.mark.parametrize("name", ALL)
def test_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("name", PARAMETERISED)
def test_one_parameters_cell(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", name


@pytest.mark.parametrize("stem", INVESTIGATIONS)
def test_only_the_parameters_cell_may_name_the_demo_world(stem):
    """The analysis finds the incident in the data; it is not told what to find."""
    planted = [INCIDENT.beacon_ip, INCIDENT.binary_name, INCIDENT.binary_sha256,
               INCIDENT.wmi_consumer, INCIDENT.service_name, INCIDENT.stolen_account,
               INCIDENT.user, *INCIDENT.touched_hosts]
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            continue
        for fact in planted:
            assert fact.lower() not in cell.source.lower(), (stem, fact, cell.source[:80])


def test_the_wheel_ships_the_notebooks(tmp_path):
    """A wheel carries notebooks/ as velonb/notebooks/; a checkout runs notebooks/ itself."""
    import subprocess
    import sys
    import zipfile

    root = NOTEBOOKS.parent
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "-w", str(tmp_path), str(root)], capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(tmp_path.glob("velonb-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n.split("/")[-1] for n in names if n.startswith("velonb/notebooks/")) == ALL
    assert notebooks_dir() == NOTEBOOKS  # a checkout uses its own notebooks
    assert PACKAGE_NOTEBOOKS.parts[-2:] == ("velonb", "notebooks")
