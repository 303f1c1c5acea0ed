"""conn.set_artifact / conn.delete_artifact: a custom artifact written in the notebook, stored,
collected with checked parameters, replaced and deleted; refusals carry the server's reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fleet.conftest import ConnectAs, _connector, private_emulator
from velonb.emulator import Emulator
from velonb.errors import PermissionDeniedError
from velonb.fleet import ArtifactDefinitionError, ArtifactParameterError, UnknownArtifactError

NAME = "Custom.Windows.Suspicious.Services"
DEFINITION = f"""\
name: {NAME}
description: Services whose binary sits in a user-writable directory
parameters:
  - name: PathRegex
    default: (?i)programdata|appdata|\\\\temp\\\\
  - name: MaxRows
    type: int
    default: 100
sources:
  - query: |
      LET services = SELECT * FROM Artifact.Windows.System.Services()
      SELECT Name, PathName FROM services WHERE PathName =~ PathRegex LIMIT 100
"""


@pytest.fixture(scope="module")
def repo_emulator() -> Iterator[Emulator]:
    with private_emulator(flow_delay=0.0) as emu:
        yield emu


@pytest.fixture
def connect(repo_emulator: Emulator, tmp_path: Path) -> Iterator[ConnectAs]:
    yield from _connector(repo_emulator, tmp_path)


def test_write_collect_replace_delete(connect):
    admin = connect("admin")
    stored = admin.set_artifact(DEFINITION, tags=["IR-42"])
    assert stored.name == NAME and stored.type == "client" and stored.tags == ["IR-42"]
    assert [(p.name, p.type) for p in stored.parameters] == [("PathRegex", ""), ("MaxRows", "int")]
    analyst = connect("investigator")
    assert analyst.artifact(NAME).description.startswith("Services whose binary")
    assert NAME in analyst.artifacts(search="suspicious")["name"].tolist()
    with pytest.raises(ArtifactParameterError, match="MaxRows"):
        analyst.collect("WKS-FIN-0042", NAME, {"MaxRows": "many"}, progress=False)
    flow = analyst.collect("WKS-FIN-0042", NAME, {"MaxRows": 5}, progress=False)
    assert flow.state == "FINISHED"  # the emulator runs it on no real endpoint: no rows
    # a dict works as well as YAML text, and sending it again replaces the definition
    import yaml

    as_dict = yaml.safe_load(DEFINITION)
    as_dict["description"] = "second version"
    assert admin.set_artifact(as_dict).description == "second version"
    assert analyst.artifact(NAME).description == "second version"
    admin.delete_artifact(NAME)
    with pytest.raises(UnknownArtifactError):
        analyst.artifact(NAME)


def test_refusals_name_the_reason(connect):
    admin = connect("admin")
    with pytest.raises(ArtifactDefinitionError, match=r"Unable to override built in artifact "
                                                      r"Windows\.System\.Pslist") as err:
        admin.set_artifact(DEFINITION.replace(NAME, "Windows.System.Pslist"))
    assert "Custom." in str(err.value)  # the hint
    bad_vql = DEFINITION.replace("SELECT Name, PathName FROM", "SELECT Name, PathName FRM")
    with pytest.raises(ArtifactDefinitionError, match="While parsing source query") as err:
        admin.set_artifact(bad_vql)
    assert "name: Custom" not in str(err.value).split("hint")[0]  # the echo is dropped
    with pytest.raises(ArtifactDefinitionError, match="not valid YAML"):
        admin.set_artifact("name: Custom.X\n  bad: [\n")  # refused before sending
    with pytest.raises(ArtifactDefinitionError, match="no name"):
        admin.set_artifact({"description": "nameless"})
    with pytest.raises(ArtifactDefinitionError, match="Can only delete custom artifacts"):
        admin.delete_artifact("Windows.System.Pslist")
    with pytest.raises(ArtifactDefinitionError, match=r"'Custom\.Nope' not found"):
        admin.delete_artifact("Custom.Nope")
    with pytest.raises(PermissionDeniedError, match="ARTIFACT_WRITER"):
        connect("investigator").set_artifact(DEFINITION)


SERVER_DEFINITION = """\
name: Custom.Server.Clients.ByLabel
description: The clients carrying a label, for the notebook to pick up
type: SERVER
parameters:
  - name: Label
    default: finance
  - name: Extra
    type: int
    default: 1
sources:
  - query: |
      SELECT client_id AS ClientId, os_info.hostname AS Hostname, Extra + 1 AS Next
      FROM clients(search='label:' + Label)
"""


def test_a_custom_server_artifact_runs_on_the_server(connect):
    admin = connect("admin")
    assert admin.set_artifact(SERVER_DEFINITION).type == "server"
    flow = admin.collect("server", "Custom.Server.Clients.ByLabel",
                         {"Label": "finance", "Extra": 41}, progress=False)
    assert flow.state == "FINISHED"
    rows = flow.results()
    expected = admin.clients(labels="finance")
    assert sorted(rows["Hostname"]) == sorted(expected["hostname"])
    assert set(rows["Next"]) == {42}
    with pytest.raises(ArtifactParameterError, match="Extra"):
        admin.collect("server", "Custom.Server.Clients.ByLabel", {"Extra": "lots"},
                      progress=False)
    admin.delete_artifact("Custom.Server.Clients.ByLabel")
