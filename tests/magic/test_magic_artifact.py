"""%%vql_artifact: a custom artifact written in a cell, stored on the server (or only read,
offline), with the server's refusals shown as named errors."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from velonb.errors import PermissionDeniedError
from velonb.fleet import ArtifactDefinitionError

CELL = """%%vql_artifact finder --tags IR-42,triage
name: Custom.Magic.Finder
description: Find one file
parameters:
  - name: Glob
    default: C:/ProgramData/**/*.exe
  - name: Upload
    type: bool
    default: N
sources:
  - query: |
      SELECT * FROM Artifact.Windows.Search.FileFinder(SearchFilesGlob=Glob)
"""


@pytest.fixture
def as_admin(run, make_config, emulator):
    run(f"%vql_config {make_config('admin')}")
    yield run
    emulator.world.catalog.pop("Custom.Magic.Finder", None)  # the session world stays as it was


def test_the_cell_stores_the_artifact_and_names_it(as_admin):
    cell = as_admin(CELL)
    text = cell.stdout
    assert text.startswith("stored: Custom.Magic.Finder (client artifact)")
    assert "Glob='C:/ProgramData/**/*.exe'" in text and "Upload='N' (bool)" in text
    info = as_admin("finder").result
    assert info.name == "Custom.Magic.Finder" and info.tags == ["IR-42", "triage"]
    listed = as_admin("%vql SELECT name FROM artifact_definitions(names='Custom.Magic.Finder')")
    assert listed.result["name"].tolist() == ["Custom.Magic.Finder"]


def test_refusals_are_named_errors(as_admin):
    cell = as_admin(CELL.replace("SELECT * FROM Artifact", "SELECT * FRUM Artifact"),
                    raises=ArtifactDefinitionError)
    assert "While parsing source query" in str(cell.error)
    as_admin("%%vql_artifact\n", raises=UsageError)
    as_admin("%%vql_artifact 1x\nname: Custom.A\n", raises=UsageError)
    as_admin("%%vql_artifact --nope\nname: Custom.A\n", raises=UsageError)


def test_without_the_writer_permission(run):
    cell = run(CELL, raises=PermissionDeniedError)  # the session's apiuser
    assert "ARTIFACT_WRITER" in str(cell.error)


def test_offline_the_cell_only_reads_the_yaml(run, monkeypatch):
    from velonb import cache

    monkeypatch.setattr(cache, "is_offline", lambda: True)
    cell = run(CELL)
    assert cell.stdout.startswith("offline, not stored: Custom.Magic.Finder (client artifact)")
    assert run("finder").result.parameters[1].type == "bool"
