"""%%vql / %vql / %vql_config through a real IPython shell, against the emulator."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pandas as pd
import pytest
from IPython.core.error import UsageError
from ipython_shell import strip_ansi

from velonb.errors import ParameterError, PermissionDeniedError, QueryTimeout, VQLSyntaxError


def test_import_stays_cheap_and_load_ext_only_registers():
    code = ("import sys, velonb; "
            "bad = [m for m in ('IPython', 'pandas', 'grpc', 'pyarrow', 'traitlets') "
            "if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_magics_are_registered(ip):
    magics = ip.magics_manager.magics
    assert "vql" in magics["cell"] and "vql" in magics["line"] and "vql_config" in magics["line"]
    assert "vql_artifact" in magics["cell"]


def test_cell_without_dest_displays_and_returns_the_frame(run):
    cell = run("%%vql\nSELECT _value AS n, format(format='host-%d', args=_value) AS host "
               "FROM range(end=3)")
    assert isinstance(cell.result, pd.DataFrame)
    assert cell.result["host"].tolist() == ["host-0", "host-1", "host-2"]
    assert "3 rows x 2 columns" in cell.text()
    assert "host-2" in cell.stdout  # the cell result, shown by the display hook
    assert cell.result.equals(run("_vql_result.frame").result)


def test_cell_with_dest_stores_and_shows_one_line(run):
    cell = run("%%vql procs\nSELECT _value AS pid FROM range(end=4)")
    assert cell.result is None
    assert run("procs").result["pid"].tolist() == [0, 1, 2, 3]
    assert len(cell.displays) == 1
    assert "4 rows x 1 columns" in cell.text() and "→ procs" in cell.text()


def test_line_magic_assignment(run):
    cell = run("df = %vql SELECT _value * 2 AS v FROM range(end=3)")
    assert run("df").result["v"].tolist() == [0, 2, 4]
    assert "3 rows x 1 columns" in cell.text()
    run("n = 2")
    assert run("%vql --max-rows 1 SELECT {n} AS n FROM range(end=5)").result["n"].tolist() == [2]


def test_several_statements_show_each_result(run):
    cell = run("%%vql\nLET hosts = SELECT _value AS h FROM range(end=2)\n"
               "SELECT * FROM hosts\nSELECT 'x' AS y FROM range(end=3)")
    assert cell.result["y"].tolist() == ["x", "x", "x"]
    assert "2 statements: [0] 2 x 1, [1] 3 x 1" in cell.text()
    assert any("[0] statement 1 of 2: 2 rows" in d["data"]["text/plain"] for d in cell.displays)
    assert [len(f) for f in run("_vql_result.frames").result] == [2, 3]
    run("%%vql last\nSELECT 1 AS a FROM scope()\nSELECT 2 AS b FROM scope()")
    assert run("last").result["b"].tolist() == [2]


def test_max_rows_says_rows_were_cut(run):
    cell = run("%%vql --max-rows 1500\nSELECT * FROM range(end=5000)")
    assert len(cell.result) == 1500
    assert "cut at --max-rows 1500" in cell.text()
    run("%vql_config --max-rows 10")
    assert len(run("%vql SELECT * FROM range(end=50)").result) == 10


def test_display_rows_limits_the_shown_table_and_says_so(run):
    cell = run("%%vql --rows 4\nSELECT _value AS n FROM range(end=50)")
    assert len(cell.result) == 50
    assert "showing 4 of 50 rows" in cell.text()
    assert "\n..  .." in cell.stdout and "\n49  49" in cell.stdout and "\n2 " not in cell.stdout
    assert pd.get_option("display.max_rows") == 60  # restored after the cell
    run("%config Velonb.display_rows = 3")
    assert "showing 3 of 50 rows" in run("%%vql\nSELECT * FROM range(end=50)").text()


def test_env_option_binds_strings(run):
    cell = run("%%vql --env who=alice --env 'what=two words'\nSELECT who, what FROM scope()")
    assert cell.result.iloc[0].to_dict() == {"who": "alice", "what": "two words"}
    run("who = 'bob'")
    with pytest.raises(UsageError, match="both a"):
        run("%%vql --env who=x\nSELECT {who} FROM scope()")


def test_org_from_config_and_cell(run, make_config):
    admin = make_config("admin")
    run(f"%vql_config {admin} --org O1234")
    cell = run("%%vql\nSELECT 1 AS one FROM scope()")
    assert "org O1234" in cell.text()
    assert run("_vql_result.org_id").result == "O1234"
    run("%%vql --org root\nSELECT 1 AS one FROM scope()")
    assert run("_vql_result.org_id").result == "root"


def test_quiet_shows_nothing(run):
    cell = run("%%vql rows --quiet\nSELECT * FROM range(end=3)")
    assert cell.displays == [] and cell.stdout == "" and cell.stderr == ""
    assert len(run("rows").result) == 3


def test_dry_run_shows_the_exact_request_and_sends_nothing(run, emulator):
    run("pid = 41\nsince = __import__('datetime').datetime(2024, 1, 2, 3, 4, 5)")
    cell = run("%%vql --dry-run --org O1234 --timeout 60 --env who=me\n"
               "SELECT {pid} AS p, {since} AS s FROM info()")
    text = cell.text()
    assert cell.result is None
    assert "dry run: nothing was sent (org O1234, timeout 60" in text
    assert "SELECT pid AS p, since AS s FROM info()" in text
    assert "LET since <= timestamp(string=parse_json(data=_velonb_params).since)" in text
    assert '_velonb_params = {"pid":41,"since":"2024-01-02T03:04:05Z"}' in text
    assert "who = me" in text and "pid (int) from {pid} = 41" in text
    request = run("_vql_request").result
    assert request.org_id == "O1234" and request.timeout == 60
    assert "_vql_result" not in run("dir()").result


# -- parameters -------------------------------------------------------------------------------


def test_parameters_of_every_type_arrive_typed(run):
    run("import datetime as dt, numpy as np, pandas as pd\n"
        "pid = 41; ratio = 0.5; flag = True; nothing = None\n"
        "names = ['a', 'b', 'c']; opts = {'k': 'v', 'n': [1, 2]}\n"
        "since = dt.datetime(2024, 3, 1, 10, 20, 30, tzinfo=dt.timezone.utc)\n"
        "day = dt.date(2024, 3, 2); series = pd.Series([3, 4, 5]); big = np.int64(7)\n"
        "clients = ['C.1a2b3c4d5e6f7a8b', 'C.0000000000000001']\n"
        "hosts = pd.DataFrame({'host': ['ws1', 'ws2'], 'ip': ['10.0.0.1', None]})\n"
        "class Case: host = 'ws9'\n"
        "case = Case()")
    cell = run("%%vql\nSELECT {pid} + 1 AS next_pid, {ratio} * 2 AS r, {flag} AS flag, "
               "{nothing} AS nothing, len(list={names}) AS n, {names}[1] AS second, "
               "{opts}.k AS k, {opts}.n AS nn, {since} AS since, {day} AS day, "
               "len(list={series}) AS slen, {big} + 1 AS big, {clients} AS clients, "
               "{case.host} AS host FROM scope()")
    row = cell.result.iloc[0]
    assert row["next_pid"] == 42 and row["r"] == 1.0 and bool(row["flag"]) is True
    assert row["nothing"] is None or pd.isna(row["nothing"])
    assert row["n"] == 3 and row["second"] == "b" and row["k"] == "v" and row["nn"] == [1, 2]
    assert row["since"] == pd.Timestamp("2024-03-01T10:20:30Z")
    assert row["day"] == pd.Timestamp("2024-03-02T00:00:00Z")
    assert row["slen"] == 3 and row["big"] == 8 and row["host"] == "ws9"
    assert row["clients"] == ["C.1a2b3c4d5e6f7a8b", "C.0000000000000001"]
    rows = run("%%vql\nSELECT host, ip FROM foreach(row={hosts})").result
    assert rows["host"].tolist() == ["ws1", "ws2"] and rows["ip"].iloc[0] == "10.0.0.1"


def test_stored_query_braces_are_vql(run):
    run("limit = 2")
    cell = run("%%vql\nLET small = SELECT _value AS v FROM range(end=5) WHERE v < {limit}\n"
               "SELECT * FROM foreach(row=small, query={ SELECT v * 10 AS w FROM scope() })")
    assert cell.result["w"].tolist() == [0, 10]
    assert run("%vql SELECT '{{limit}}' AS lit FROM scope()").result["lit"].tolist() == ["{limit}"]


@pytest.mark.parametrize("value", ["' OR 1=1 --", 'x"\nSELECT * FROM info()', "LET a = 1",
                                   "/* */ // -- {}", "{needle}", "ünïcödé \u2028",
                                   "}) SELECT * FROM info() //"])
def test_injection_attempts_come_back_as_literal_values(run, value):
    run(f"needle = {value!r}\nnested = [needle, {{'k': needle}}]")
    cell = run("%%vql\nSELECT {needle} AS needle, {nested} AS nested FROM scope()")
    assert cell.result["needle"].tolist() == [value]
    assert cell.result["nested"].iloc[0] == [value, {"k": value}]


def test_unknown_parameter_is_an_error_before_anything_is_sent(run):
    cell = run("%%vql\nSELECT {not_defined}, {also.missing} FROM scope()", raises=ParameterError)
    text = strip_ansi(cell.everything())
    assert "unknown parameters {not_defined}, {also.missing}" in text
    assert "nothing was sent" in text and "Traceback" not in text
    assert "_vql_result" not in run("dir()").result


def test_quoted_parameter_and_unsupported_type_are_errors(run):
    run("name = 'x'\nthing = object()")
    cell = run("%%vql\nSELECT * FROM scope() WHERE a = '{name}'", raises=ParameterError)
    assert "remove the quotes" in cell.everything()
    cell = run("%%vql\nSELECT {thing} FROM scope()", raises=ParameterError)
    assert "type object" in cell.everything()


# -- errors -------------------------------------------------------------------------------------


def test_unknown_option_lists_the_valid_ones(run):
    with pytest.raises(UsageError) as info:
        run("%%vql --colour red\nSELECT 1 FROM scope()")
    assert "unrecognized arguments: --colour" in str(info.value)
    assert "--dry-run" in str(info.value) and "--stream" in str(info.value)
    with pytest.raises(UsageError, match="no VQL"):
        run("%%vql\n\n")


def test_syntax_error_marks_line_and_column_in_the_cell(run):
    run("pid = 1")
    cell = run("%%vql\nSELECT *\nFROM scope() WHERE {pid} = = 1", raises=VQLSyntaxError)
    lines = strip_ansi("\n".join(cell.error._render_traceback_())).splitlines()
    assert lines[0].startswith("VQLSyntaxError: VQL syntax error at line 2, column 28")
    assert lines[1] == "    2 | FROM scope() WHERE {pid} = = 1"
    assert lines[2].index("^") == lines[1].index("= 1")
    assert "Traceback" not in cell.everything() and "grpc" not in cell.everything().lower()


def test_permission_error_names_permission_and_fix(run):
    cell = run("%%vql --strict\nSELECT * FROM info()", raises=PermissionDeniedError)
    text = strip_ansi(cell.everything())
    assert "MACHINE_STATE" in text and "acl grant apiuser" in text
    assert cell.error.permission == "MACHINE_STATE"


def test_refused_query_and_bad_config_path_are_short_errors(run, make_config):
    from velonb.errors import ConfigError

    reader = make_config("reader")
    run(f"%vql_config {reader}")
    cell = run("%%vql\nSELECT 1 FROM scope()", raises=PermissionDeniedError)
    text = strip_ansi(cell.everything())
    assert "ANY_QUERY" in text and "acl grant reader" in text and "Traceback" not in text
    cell = run("%vql_config /no/such/api_client.yaml", raises=ConfigError)
    assert "/no/such/api_client.yaml" in strip_ansi(cell.everything())
    assert "Traceback" not in cell.everything()


def test_server_errors_without_strict_show_the_log_panel(run):
    cell = run("%%vql\nSELECT * FROM range(end=2)\nSELECT * FROM info()")
    assert "1 server error" in cell.text()
    panel = [d for d in cell.displays if "server log" in d["data"]["text/plain"]]
    assert panel, cell.text()
    html = panel[0]["data"]["text/html"]
    assert "background:#fdd" in html and "Permission denied: [MACHINE_STATE]" in html
    assert "acl grant apiuser" in panel[0]["data"]["text/plain"]
    assert "VQLWarning" not in cell.stderr  # shown once, in the panel


def test_timeout_keeps_partial_rows_and_says_where(run):
    cell = run("%%vql slow --timeout 1\nSELECT _value, sleep(ms=20) FROM range(end=100000)",
               raises=QueryTimeout)
    text = strip_ansi(cell.everything())
    assert "rows received so far are in _vql_partial" in text and "slow was not changed" in text
    assert 0 < len(run("_vql_partial").result) < 100000
    assert "slow" not in run("dir()").result


def test_debug_shows_the_full_traceback(run):
    cell = run("%%vql --debug --strict\nSELECT * FROM info()", raises=PermissionDeniedError)
    assert not hasattr(cell.error, "_render_traceback_")
    run("%config Velonb.debug = True")
    cell = run("%%vql\nSELECT * FROM info() WHERE", raises=VQLSyntaxError)
    assert not hasattr(cell.error, "_render_traceback_")


# -- help and config ----------------------------------------------------------------------------


def test_help_documents_every_option_and_the_syntax(run):
    from velonb.magic_args import VQL_OPTIONS

    text = run("%%vql?").stdout + run("%vql --help").stdout
    for flag, *_ in VQL_OPTIONS:
        assert flag in text
    for topic in ("{{name}}", "query={ SELECT ... }", "_vql_result", "_vql_partial", "DEST"):
        assert topic in text
    assert "%config Velonb" in run("%vql_config?").stdout


def test_vql_config_shows_connection_and_settings_masked(run, api_config, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("VELONB_CACHE_DIR", str(tmp_path / "cache"))
    cell = run("%vql_config")
    text = cell.text()
    for field in ("apiuser", "127.0.0.1", "expires", "days left", "org", "private key",
                  "<masked>", "display_rows", "timeout"):
        assert field in text
    assert "<b>velonb connection</b>" in cell.text("text/html")
    run("%vql_config --timeout 600 --display-rows 7 strict=true cache=use")
    settings = run("get_ipython().configurables").result
    velonb_settings = next(c for c in settings if type(c).__name__ == "Velonb")
    assert velonb_settings.timeout == 600 and velonb_settings.display_rows == 7
    assert velonb_settings.strict is True and velonb_settings.cache == "use"
    run("%config Velonb.timeout = 30")
    assert velonb_settings.timeout == 30
    with pytest.raises(UsageError, match="--display-rows"):
        run("%vql_config --display-rows 0")
    with pytest.raises(UsageError, match="cache"):
        run("%vql_config --cache sometimes")
    run("%vql_config strict=false")
    assert "· cached" in run("%%vql\nSELECT 1 FROM scope()").text()
    assert "from cache" in run("%%vql\nSELECT 1 FROM scope()").text()


def test_first_query_connects_by_discovery(bare, api_config, monkeypatch):
    monkeypatch.setenv("VELONB_API_CONFIG", str(api_config))
    bare.run_cell("%%vql found --quiet\nSELECT 1 AS one FROM scope()")
    assert bare.user_ns["found"]["one"].tolist() == [1]


def test_no_config_anywhere_is_a_clear_error(bare, tmp_path, monkeypatch):
    for var in ("VELONB_API_CONFIG", "VELOCIRAPTOR_API_FILE", "VELOCIRAPTOR_API_CONFIG",
                "VELONB_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    from IPython.utils.capture import capture_output

    from velonb.errors import ConfigNotFoundError

    with capture_output() as out:
        bare.run_line_magic("vql_config", "")
    shown = out.outputs[0].data["text/plain"]
    assert "not connected: no api_client config found" in shown
    with pytest.raises(ConfigNotFoundError), capture_output() as out:
        bare.run_cell("%%vql\nSELECT 1 FROM scope()")
    assert "Traceback" not in out.stdout + out.stderr
    assert "ConfigNotFoundError" in out.stdout + out.stderr


def test_dates_survive_into_summary_free_outputs(run):
    # A naive datetime is taken as UTC.
    run("when = __import__('datetime').datetime(2024, 5, 6, 7, 8, 9)")
    value = run("%vql SELECT {when} AS t FROM scope()").result["t"].iloc[0]
    assert value == pd.Timestamp(dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC))
