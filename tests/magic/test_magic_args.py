"""velonb.magic_args: option parsing and the {name} parameter syntax, without IPython."""

from __future__ import annotations

import subprocess
import sys

import pytest

from velonb.errors import ParameterError
from velonb.magic_args import (
    SETTING_TYPES,
    MagicArgumentError,
    expand_parameters,
    parse_config_line,
    parse_vql_line,
    resolve_parameters,
)


def test_cell_line_dest_and_every_option():
    args = parse_vql_line("procs --org O1234 --timeout 30 --max-rows 500 --rows 5 --env a=1 "
                          "--env 'b=two words' --strict --quiet --debug", cell=True)
    assert args.dest == "procs" and args.org == "O1234" and args.timeout == 30.0
    assert args.max_rows == 500 and args.rows == 5
    assert args.env == {"a": "1", "b": "two words"}
    assert args.strict and args.quiet and args.debug and not args.dry_run
    stream = parse_vql_line("--stream --duration 2.5 --keep 3", cell=True)
    assert stream.stream and stream.duration == 2.5 and stream.keep == 3 and stream.dest is None


def test_line_form_splits_options_from_vql():
    args = parse_vql_line("--org O1234 --max-rows=3 SELECT * FROM x WHERE a = '--b'", cell=False)
    assert args.org == "O1234" and args.max_rows == 3
    assert args.vql == "SELECT * FROM x WHERE a = '--b'"
    assert parse_vql_line("--env k='a b' -- SELECT 1", cell=False).vql == "SELECT 1"
    assert parse_vql_line("SELECT 1 FROM scope()", cell=False).env == {}


@pytest.mark.parametrize("line, expected", [
    ("--nope", "unrecognized arguments: --nope"),
    ("--max-rows -3", "--max-rows"),
    ("--max-row 3", "unrecognized"),  # no abbreviations
    ("--env novalue", "--env"),
    ("a b", "unrecognized arguments: b"),
    ("1abc", "not a Python variable name"),
    ("--duration 3", "only apply with --stream"),
    ("SELECT * FROM info()", "the VQL goes in the cell body"),
])
def test_bad_lines_name_the_problem_and_list_valid_options(line, expected):
    with pytest.raises(MagicArgumentError) as info:
        parse_vql_line(line, cell=True)
    assert expected in str(info.value)
    if "unrecognized" in expected:
        assert "valid options: --org ORG, --timeout SECONDS" in str(info.value)


def test_config_line():
    args = parse_config_line("~/prod.yaml --org O1234 --timeout 600 --strict display_rows=30")
    assert args.config_path and args.config_path.endswith("prod.yaml") and args.profile is None
    assert args.org == "O1234"
    assert args.settings == {"timeout": 600.0, "strict": True, "display_rows": 30}
    assert parse_config_line("prod").profile == "prod"
    assert parse_config_line("--max-rows none").settings == {"max_rows": None}
    assert parse_config_line("debug=off").settings == {"debug": False}
    with pytest.raises(MagicArgumentError, match="unknown setting 'colour'"):
        parse_config_line("colour=blue")
    with pytest.raises(MagicArgumentError, match="contradict"):
        parse_config_line("--strict --no-strict")


def test_setting_names_match_the_traits():
    from velonb.settings import Velonb

    assert set(SETTING_TYPES) == set(Velonb.class_traits(config=True))


def test_parameters_become_variables_and_vql_braces_stay():
    vql = ("SELECT * FROM foreach(row={hosts}, query={ SELECT * FROM scope() WHERE x = {pid} })\n"
           "WHERE a = {case.host} AND b = {pid} AND c = {limit}")
    template = expand_parameters(vql)
    assert template.text == (
        "SELECT * FROM foreach(row=hosts, query={ SELECT * FROM scope() WHERE x = pid })\n"
        "WHERE a = case_host AND b = pid AND c = limit_")
    assert template.params == {"hosts": "hosts", "pid": "pid", "case_host": "case.host",
                               "limit_": "limit"}


def test_strings_comments_and_escapes():
    template = expand_parameters("SELECT '{{x}}' AS a, {{y}} AS b, \"}{\" AS c -- {z}\n"
                                 "/* {w} */ FROM scope() // {v}")
    assert template.text == ("SELECT '{x}' AS a, {y} AS b, \"}{\" AS c -- {z}\n"
                             "/* {w} */ FROM scope() // {v}")
    assert template.params == {}
    with pytest.raises(ParameterError, match="inside a quoted string") as info:
        expand_parameters("SELECT * FROM x WHERE Name = '{name}'")
    assert "remove the quotes" in str(info.value)


def test_columns_map_back_to_the_cell():
    template = expand_parameters("SELECT {a_long_name} , {b} FROM x\nWHERE {c} = = 1")
    # "WHERE c = = 1": the second '=' is column 11 in the sent text, 13 in the cell.
    assert template.source_column(2, 11) == 13
    assert template.source_column(1, 1) == 1
    assert template.source_column(1, 25) == 25 + 2 + 2


def test_resolve_reads_names_attributes_and_keys():
    class Case:
        host = "ws01"

    template = expand_parameters("SELECT {pid}, {case.host}, {cfg.key} FROM scope()")
    values = resolve_parameters(template, {"pid": 4, "case": Case(), "cfg": {"key": [1]}})
    assert values == {"pid": 4, "case_host": "ws01", "cfg_key": [1]}
    with pytest.raises(ParameterError, match=r"unknown parameters \{pid\}, \{case.host\}"):
        resolve_parameters(template, {"cfg": {"key": 1}, "case": object()})


def test_magic_args_does_not_import_ipython():
    code = ("import sys, velonb, velonb.magic_args; "
            "bad = [m for m in ('IPython', 'pandas', 'grpc') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
