"""artifact_set() / artifact_delete() (vql/server/repository.go; services/repository checks):
what is stored, what is refused and the server's words for it."""

from __future__ import annotations

import pytest
from wire_helpers import run_world_query

from velonb.emulator.world import World
from velonb.emulator.world.repository import load_definition, sanitize_artifact_yaml

GOOD = """\
name: Custom.Windows.Suspicious.Services
description: Services running from user-writable paths
type: CLIENT
parameters:
  - name: PathRegex
    default: (?i)programdata|appdata|temp
sources:
  - query: |
      LET services = SELECT * FROM Artifact.Windows.System.Services()
      SELECT * FROM services WHERE PathName =~ PathRegex
"""


@pytest.fixture
def sim():
    world = World(seed=7)
    yield world
    world.close()


def set_artifact(sim, definition: str, roles=("administrator",)):
    rows, logs = run_world_query(sim, "SELECT artifact_set(definition=D) AS R FROM scope()",
                                 roles, env={"D": definition})
    return rows[0]["R"], logs


def test_a_custom_artifact_is_stored_listed_and_deleted(sim):
    stored, logs = set_artifact(sim, GOOD)
    assert logs == []
    listed, _ = run_world_query(sim, "SELECT * FROM artifact_definitions("
                                     "names='Custom.Windows.Suspicious.Services')")
    assert stored == listed[0]  # the Artifact proto as a dict, every field
    assert stored["type"] == "client" and stored["built_in"] is False
    assert stored["compiled_in"] is False and stored["raw"] == GOOD
    assert [p["name"] for p in stored["parameters"]] == ["PathRegex"]
    assert stored["sources"][0]["query"].startswith("LET services = SELECT")
    # sending it again replaces it
    stored, logs = set_artifact(sim, GOOD.replace("user-writable paths", "odd places"))
    assert logs == [] and stored["description"] == "Services running from odd places"
    rows, logs = run_world_query(sim, "SELECT artifact_delete(name="
                                      "'Custom.Windows.Suspicious.Services') AS R FROM scope()")
    assert (rows[0]["R"], logs) == ("Custom.Windows.Suspicious.Services", [])
    assert sim.definition("Custom.Windows.Suspicious.Services") is None


def test_the_server_checks_before_storing(sim):
    cases = {
        "name: Windows.System.Pslist\nsources:\n - query: SELECT * FROM info()\n":
            "artifact_set: Unable to override built in artifact Windows.System.Pslist",
        "name: 1Bad.Name\n":
            "artifact_set: Invalid artifact name. Name parts can not start with a number': "
            "name: 1Bad.Name\n",
        "name: Custom/X\n":
            "artifact_set: Invalid artifact name. Can only contain characters in this set "
            "'a-zA-Z0-9_.': name: Custom/X\n",
        "name: Custom.X\ntype: FOO\n":
            "artifact_set: Artifact type FOO invalid.: name: Custom.X\ntype: FOO\n",
        "name: Custom.X\nfoo: 1\nsources:\n - query: SELECT 1 FROM scope()\n   bar: 2\n":
            "artifact_set: yaml: unmarshal errors:\n"
            "  line 2: field foo not found in type proto.Artifact\n"
            "  line 5: field bar not found in type proto.ArtifactSource: "
            "name: Custom.X\nfoo: 1\nsources:\n - query: SELECT 1 FROM scope()\n   bar: 2\n",
        "name: Custom.X\nsources:\n - query: SELECT * FROM\n":
            "artifact_set: While parsing source query : ECT * FRO|: 1:14: unexpected token "
            '"<EOF>": name: Custom.X\nsources:\n - query: SELECT * FROM\n',
        "name: Custom.X\nsources:\n - query: |\n    SELECT 1 FROM scope()\n"
        "    SELECT 2 FROM scope()\n":
            "artifact_set: Invalid artifact Custom.X: All Queries in a source must be LET "
            "queries, except for the final one.: name: Custom.X\nsources:\n - query: |\n"
            "    SELECT 1 FROM scope()\n    SELECT 2 FROM scope()\n",
        "name: Custom.X\n  bad: [\n":
            "artifact_set: yaml: line 2: mapping values are not allowed in this context: "
            "name: Custom.X\n  bad: [\n",
        "just text":
            "artifact_set: yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str "
            "`just text` into proto.Artifact: just text",
        "name: Custom.X\nrequired_permissions: [FLY]\n":
            "artifact_set: Invalid artifact permission: FLY: "
            "name: Custom.X\nrequired_permissions: [FLY]\n",
    }
    for definition, message in cases.items():
        stored, logs = set_artifact(sim, definition)
        assert (stored, logs) == (None, [message]), definition
    long = GOOD.replace("type: CLIENT", "type: NOPE")
    _, logs = set_artifact(sim, long)
    assert logs == [f"artifact_set: Artifact type NOPE invalid.: {long[:99]} ..."]


def test_writing_needs_the_writer_permission_of_the_type(sim):
    server = "name: Custom.S\ntype: server\nsources:\n - query: SELECT 1 FROM scope()\n"
    stored, logs = set_artifact(sim, server, roles=("artifact_writer",))
    assert stored is None
    assert logs == ["artifact_set: PermissionDenied: Permission denied: [SERVER_ARTIFACT_WRITER]"]
    stored, logs = set_artifact(sim, GOOD, roles=("investigator",))
    assert stored is None
    assert logs == ["artifact_set: PermissionDenied: Permission denied: [ARTIFACT_WRITER]"]
    stored, logs = set_artifact(sim, GOOD, roles=("artifact_writer",))
    assert logs == [] and stored["name"] == "Custom.Windows.Suspicious.Services"
    assert set_artifact(sim, "name: Custom.I\ntype: internal\n") == (None, [])  # silently not


def test_delete_refusals(sim):
    rows, logs = run_world_query(sim, "SELECT artifact_delete(name='Windows.System.Pslist') AS B, "
                                      "artifact_delete(name='Nope') AS N FROM scope()")
    assert rows == [{"B": None, "N": None}]
    assert logs == ["artifact_delete: Can only delete custom artifacts.",
                    "artifact_delete: Artifact 'Nope' not found"]
    set_artifact(sim, GOOD)
    rows, logs = run_world_query(sim, "SELECT artifact_delete(name="
                                      "'Custom.Windows.Suspicious.Services') AS R FROM scope()",
                                 ("investigator",))
    assert rows == [{"R": None}]  # repository.go logs it under artifact_set's name
    assert logs == ["artifact_set: PermissionDenied: Permission denied: [ARTIFACT_WRITER]"]


def test_bare_query_blocks_keep_their_lines():
    text = "name: Custom.B\nsources:\n  - query:\n      SELECT 1 AS A\n      FROM scope()\n"
    assert "query: |\n" in sanitize_artifact_yaml(text)
    assert load_definition(text).sources[0].query == "\nSELECT 1 AS A\nFROM scope()\n"


SERVER_ARTIFACT = """\
name: Custom.Server.Clients.ByLabel
type: SERVER
parameters:
  - name: Label
    default: finance
  - name: Extra
    type: int
    default: 1
sources:
  - query: |
      LET hits = SELECT client_id, os_info.hostname AS Hostname
        FROM clients(search='label:' + Label)
      SELECT Hostname, Extra + 1 AS Next, log(message='listed ' + Hostname) AS Logged
      FROM hits ORDER BY Hostname
"""


def _collect_on_server(sim, artifact: str, extra: str = "", roles=("administrator",)):
    rows, logs = run_world_query(sim, "SELECT collect_client(client_id='server', artifacts="
                                      f"'{artifact}'{extra}).flow_id AS F FROM scope()", roles)
    assert logs == [], logs
    flow = sim.flow("root", "server", rows[0]["F"])
    assert flow is not None
    return flow


def test_a_custom_server_artifact_runs_its_vql_on_the_server(sim):
    stored, logs = set_artifact(sim, SERVER_ARTIFACT)
    assert logs == [] and stored["type"] == "server"
    flow = _collect_on_server(sim, "Custom.Server.Clients.ByLabel",
                              ", spec=dict(`Custom.Server.Clients.ByLabel`=dict(Extra='41'))")
    assert sim.wait_flow(flow, timeout=10)
    rows, logs = run_world_query(sim, "SELECT * FROM source(client_id='server', "
                                      f"flow_id='{flow.session_id}', "
                                      "artifact='Custom.Server.Clients.ByLabel')")
    finance = sorted(c.hostname for c in sim.clients("root")
                     if "finance" in [x.lower() for x in c.labels])
    assert [r["Hostname"] for r in rows] == finance and {r["Next"] for r in rows} == {42}
    flow_logs, _ = run_world_query(sim, "SELECT message FROM flow_logs(client_id='server', "
                                        f"flow_id='{flow.session_id}')")
    assert any(f"listed {finance[0]}" in r["message"] for r in flow_logs)
    assert flow.row()["state"] == "FINISHED"


def test_a_blocking_server_artifact_runs_apart_and_times_out(sim):
    blocking = ("name: Custom.Server.Watch\ntype: SERVER\nsources:\n  - query: |\n"
                "      SELECT * FROM watch_monitoring(artifact='System.Flow.Completion')\n")
    assert set_artifact(sim, blocking)[1] == []
    flow = _collect_on_server(sim, "Custom.Server.Watch", ", timeout=1")
    assert not sim.wait_flow(flow, timeout=0.5)  # blocked in its own thread...
    other = _collect_on_server(sim, "Generic.Client.Info")  # ...not on the shared clock
    assert sim.wait_flow(other, timeout=5)
    assert sim.wait_flow(flow, timeout=10)
    row = flow.row()
    assert row["state"] == "ERROR" and "timed out after 1s" in row["status"]
