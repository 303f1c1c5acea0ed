"""pyvelociraptor, a client we did not write, works against the emulator and agrees with velonb.

pyvelociraptor is installed in its own virtual environment (its generated protos cannot share a
process with other copies in the default descriptor pool, and its pins are its own). The venv is
cached under ``$VELONB_TEST_CACHE`` (default ``~/.cache/velonb-tests``) between runs.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

import velonb

ROOT = Path(__file__).resolve().parents[2]
QUERY = ("SELECT _value AS n, format(format='host-%03d', args=_value) AS host, "
         "dict(pid=_value, tags=('a', 'b')) AS details, _value > 100 AS fizz "
         "FROM range(end=250)")

pytestmark = pytest.mark.slow


@pytest.fixture
def config_path(emulator, tmp_path) -> Path:
    return emulator.write_api_client_config(tmp_path / "api.yaml", name="apiuser", roles=("api",))


def _velonb_rows(config_path: Path, query: str, **kw) -> list[dict]:
    with velonb.connect(config_path) as conn:
        frame = conn.query(query, **kw)
    return json.loads(frame.to_json(orient="records"))


def test_pyvelociraptor_cli_gets_the_same_rows(pyvelo_python, config_path):
    cli = pyvelo_python.parent / "pyvelociraptor"
    run = subprocess.run([str(cli), "--config", str(config_path), QUERY],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows: list[dict] = []
    logs = []
    for line in run.stdout.splitlines():
        if line.startswith("["):
            rows.extend(ast.literal_eval(line))
        elif line.strip():
            logs.append(line)
    assert any("Starting query execution." in line for line in logs)
    # max_row=100 in the CLI: 250 rows come as 3 parts, each announced by a log line.
    assert sum("Sending response part" in line for line in logs) == 3
    assert rows == _velonb_rows(config_path, QUERY)
    assert len(rows) == 250 and rows[7] == {
        "n": 7, "host": "host-007", "details": {"pid": 7, "tags": ["a", "b"]}, "fizz": False}


def test_pyvelociraptor_cli_env_binding(pyvelo_python, config_path):
    cli = pyvelo_python.parent / "pyvelociraptor"
    # --env takes one or more KEY=VALUE, so the query goes before it.
    run = subprocess.run([str(cli), "--config", str(config_path), "SELECT Foo FROM scope()",
                          "--env", "Foo=Bar"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "[{'Foo': 'Bar'}]" in run.stdout


def test_velo_pandas_dataframe_query_matches_velonb(pyvelo_python, config_path):
    script = textwrap.dedent(f"""
        import json, pandas
        from pyvelociraptor import velo_pandas
        df = pandas.DataFrame(velo_pandas.DataFrameQuery({QUERY!r}, Offset="5"))
        print(json.dumps(json.loads(df.to_json(orient="records"))))
    """)
    env = {**os.environ, "VELOCIRAPTOR_API_FILE": str(config_path)}
    run = subprocess.run([str(pyvelo_python), "-c", script], capture_output=True, text=True,
                         timeout=120, env=env, cwd="/")
    assert run.returncode == 0, run.stderr
    theirs = json.loads(run.stdout)
    assert theirs == _velonb_rows(config_path, QUERY)


def test_both_generated_protos_in_one_process(pyvelo_python):
    """velonb's messages live in their own pool: importing both in one process is fine."""
    script = textwrap.dedent("""
        from pyvelociraptor import api_pb2 as theirs
        from velonb._proto import api_pb2 as ours, vql_pb2
        args = theirs.VQLCollectorArgs(max_row=7, org_id="O1")
        mine = vql_pb2.VQLCollectorArgs.FromString(args.SerializeToString())
        assert (mine.max_row, mine.org_id) == (7, "O1")
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([str(pyvelo_python), "-c", script], capture_output=True, text=True,
                         timeout=120, env=env, cwd="/")
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
