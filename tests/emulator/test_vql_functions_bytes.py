"""Byte, number, list and command line builtins (functions_bytes, functions_convert,
functions_timefmt, functions_cmdline, functions_lists, lambdas).

Expected values come from velociraptor's golden outputs (artifacts/testdata/server/testcases,
noted per test) or from the Go source semantics named in each module's docstring.
"""

import pytest
from wire_helpers import run_vql

from velonb.emulator.gojson import dumps_rows
from velonb.emulator.vql.functions_text import go_bytes


def one(expr, **kw):
    rows, logs = run_vql(f"SELECT {expr} AS X FROM scope()", **kw)
    return rows[0][0]["X"], logs


def value(expr, **kw):
    result, logs = one(expr, **kw)
    assert logs == []
    return result


# --- xor / unhex / rot13 --------------------------------------------------------------------


def test_xor_golden_functions_out_yaml():
    # functions.out.yaml "Test Xor stanard, multi character, hex": values and column names
    # (the fact sheet's example: arguments re-joined with ", ").
    rows, logs = run_vql("SELECT xor(string='test@velociraptor',key='$'), "
                         "xor(string='test@velociraptor',key='test'), "
                         "xor(string=unhex(string='000100010002'), key=unhex(string='2e')) "
                         "FROM scope()")
    assert logs == []
    assert dumps_rows(rows[0]) == (
        '[{"xor(string=\'test@velociraptor\', key=\'$\')":"PAWPdRAHKGMVETPKV",'
        '"xor(string=\'test@velociraptor\', key=\'test\')":"\\u0000\\u0000\\u0000\\u00004'
        '\\u0013\\u0016\\u0018\\u001b\\u0006\\u001a\\u0006\\u0015\\u0015\\u0007\\u001b\\u0006",'
        '"xor(string=unhex(string=\'000100010002\'), key=unhex(string=\'2e\'))":"././.,"}]')


def test_xor_bytes_and_errors():
    assert value("xor(string='abc', key='')") == "abc"  # empty key: data unchanged
    out = value("xor(string='A', key=unhex(string='ff'))")
    assert go_bytes(out) == b"\xbe"
    assert one("xor(string='a')") == (False, ["xor: Field key is required"])
    assert one("xor(key='a')") == (False, ["xor: Field string is required"])


@pytest.mark.parametrize("text,expected", [
    ("414243", b"ABC"),
    ("0x41 42", b"AB"),  # spaces removed, 0x prefix dropped
    ("41zz42", b"A"),  # Go returns the bytes decoded before the error
    ("414", b"A"),  # odd length: the whole pairs
    ("2y", b""),  # regex.out.yaml: unhex(string='2y') is empty, so `|| x` falls back
    ("", b""),
])
def test_unhex(text, expected):
    assert go_bytes(value(f"unhex(string='{text}')")) == expected


def test_unhex_and_rot13_errors_give_false():
    assert one("unhex(x=1)") == (False, ["unhex: Unexpected arg x"])
    assert one("rot13(x=1)") == (False, ["rot13: Unexpected arg x"])
    assert value("unhex()") == ""


def test_rot13():
    assert value("rot13(string='Hello, World! xyz')") == "Uryyb, Jbeyq! klm"
    assert value("rot13(string=rot13(string='Round trip'))") == "Round trip"
    assert value("rot13()") == ""


# --- entropy --------------------------------------------------------------------------------


def test_entropy_golden_and_edges():
    assert value("entropy(string=\"Hello world\")") == 2.84  # functions.out.yaml
    assert value("entropy(string='abcd')") == 2.0
    empty = value("entropy(string='')")
    assert empty == 0 and dumps_rows([{"X": empty}]) == '[{"X":-0}]'  # Floor(-0*100)/100
    assert value("entropy(string=unhex(string='00ff00ff'))") == 1.0
    assert one("entropy()") == (False, ["entropy: Field string is required"])


# --- substr ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args,expected", [
    ("str='hello world'", "hello world"),
    ("str='hello world', start=6", "world"),
    ("str='hello world', start=0, end=5", "hello"),
    ("str='héllo', start=1, end=3", "él"),  # counted in runes, not bytes
    ("str='abc', start=1, end=10", "bc"),
    ("str='abc', start=5", "abc"),  # Go: a start never reached leaves start_index at 0
])
def test_substr(args, expected):
    assert value(f"substr({args})") == expected


def test_substr_errors():
    assert one("substr(str='abc', start=-1)") == (
        None, ["substr: Start and End values must be greater than 0"])
    assert one("substr(str='abc', start=2, end=1)") == (
        None, ["substr: End must be greater than start!"])
    assert one("substr(start=1)") == (None, ["substr: Field str is required"])


# --- encode ---------------------------------------------------------------------------------


def test_encode_formats():
    assert value("encode(string=dict(a=1, b=[1, 2], c=dict()), type='json')") == (
        '{\n "a": 1,\n "b": [\n  1,\n  2\n ],\n "c": {}\n}')
    assert value("encode(string='a<b', type='json')") == '"a\\u003cb"'
    assert value("encode(string='hi', type='hex')") == "6869"
    assert value("encode(string='hi', type='base64')") == "aGk"  # RawStdEncoding: no padding
    assert value("encode(string=5, type='string')") == "5"
    assert value("encode(string=timestamp(epoch=1600000000), type='string')") == (
        "2020-09-13T12:26:40Z")


def test_encode_errors():
    assert one("encode(string=1, type='hex')") == (
        None, ["encode: Unsupported type for hex encoding int64"])
    assert one("encode(string=1, type='base64')") == (
        None, ["encode: Unsupported type for base64 encoding int64"])
    assert one("encode(string=1, type='xml')") == (None, ["encode: Unknown format xml"])
    assert one("encode(string=1)") == (None, ["encode: Field type is required"])


# --- atoi / parse_float ---------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("42", 42), ("-42", -42), ("+7", 7), ("0x1F", 31), ("0o17", 15), ("0b101", 5),
    ("017", 15),  # a leading 0 is octal with base 0
    ("08", 0),  # ... so 8 is a syntax error: 0
    ("1_000", 1000), ("1__0", 0), ("_1", 0),
    ("99999999999999999999", 9223372036854775807),  # range error: clamped
    ("-99999999999999999999", -9223372036854775808),
    ("12abc", 0), ("", 0), (" 1", 0), ("1.5", 0),
])
def test_atoi_strings(text, expected):
    assert value(f"atoi(string='{text}')") == expected


def test_atoi_other_types():
    assert value("atoi(string=12)") == 12
    assert value("atoi(string=3.9)") == 3
    assert value("atoi(string=TRUE)") == 1
    assert value("atoi(string=dict())") == 0
    assert one("atoi()") == (None, ["atoi: Field string is required"])


@pytest.mark.parametrize("text,expected", [
    ("1.5", 1.5), ("-2e3", -2000.0), (".5", 0.5), ("5.", 5.0), ("1_000.5", 1000.5),
    ("0x1p4", 16.0), ("Inf", float("inf")), ("-infinity", float("-inf")),
    ("1e400", float("inf")), ("abc", 0.0), ("", 0.0), ("0x10", 0.0),  # hex needs p
])
def test_parse_float_strings(text, expected):
    assert value(f"parse_float(string='{text}')") == expected


def test_parse_float_other_types():
    result = value("parse_float(string='nan')")
    assert result != result
    assert value("parse_float(string=2.5)") == 2.5
    assert value("parse_float(string=3)") == 3
    assert one("parse_float()") == (None, ["parse_float: Field string is required"])


# --- cidr_contains --------------------------------------------------------------------------


def test_cidr_contains_golden():
    # functions.out.yaml
    assert value('cidr_contains(ip="192.168.0.132", ranges="192.168.0.0/24")') is True
    assert value('cidr_contains(ip="191.168.0.132", ranges="192.168.0.0/24")') is False
    assert value('cidr_contains(ip="10.168.0.132", ranges=["192.168.0.0/24", '
                 '"10.0.0.0/8"])') is True


def test_cidr_contains_go_semantics():
    assert value("cidr_contains(ip='2001:db8::1', ranges='2001:db8::/32')") is True
    assert value("cidr_contains(ip='::ffff:10.1.2.3', ranges='10.0.0.0/8')") is True
    assert value("cidr_contains(ip='10.1.2.3', ranges='::/0')") is False
    assert value("cidr_contains(ip='not an ip', ranges='10.0.0.0/8')") is False
    assert value("cidr_contains(ip='010.1.2.3', ranges='10.0.0.0/8')") is False
    assert value("cidr_contains(ip='10.1.2.3', ranges='10.1.2.255/24')") is True  # host bits
    assert one("cidr_contains(ip='10.1.2.3', ranges=['bad', '10.0.0.0/8'])") == (
        False, ["cidr_contains: invalid CIDR address: bad"])
    assert one("cidr_contains(ip='10.1.2.3', ranges='10.0.0.0/33')") == (
        False, ["cidr_contains: invalid CIDR address: 10.0.0.0/33"])
    # a match before a bad range wins; a netmask form is not CIDR
    assert value("cidr_contains(ip='10.1.2.3', ranges=['10.0.0.0/8', 'bad'])") is True
    assert one("cidr_contains(ip='10.1.2.3', ranges='10.0.0.0/255.0.0.0')")[0] is False
    assert one("cidr_contains(ranges='10.0.0.0/8')") == (
        None, ["cidr_contains: Field ip is required"])


# --- timestamp_format -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt,expected", [
    ("", "2020-09-13T12:26:40Z"),
    ("RFC1123", "Sun, 13 Sep 2020 12:26:40 UTC"),
    ("RFC3339Nano", "2020-09-13T12:26:40.123Z"),
    ("StampMilli", "Sep 13 12:26:40.123"),
    ("Kitchen", "12:26PM"),
    ("2006-01-02 15:04:05.000000 MST", "2020-09-13 12:26:40.123000 UTC"),
    ("Mon Jan _2 3:4:5 pm 06 002 __2", "Sun Sep 13 12:26:40 pm 20 257 257"),
    ("January Monday 1/2 Z07:00 -0700", "September Sunday 9/13 Z +0000"),
    ("Janet Monk", "Janet Monk"),  # Jan/Mon followed by a lower-case letter: literal text
    ("Jan_Mon", "Sep_Sun"),
    ("_2006", "_2020"),
])
def test_timestamp_format_layouts(fmt, expected):
    assert value(f"timestamp_format(time=1600000000.123, format='{fmt}')") == expected


def test_timestamp_format_zone_and_inputs():
    assert value("timestamp_format(time=1600000000, format='2006-01-02 15:04 -07:00 MST')",
                 env={"TZ": "Australia/Brisbane"}) == "2020-09-13 22:26 +10:00 AEST"
    assert value("timestamp_format(time='2020-09-13T12:26:40Z', format='DateTime')") == (
        "2020-09-13 12:26:40")
    assert value("timestamp_format(time=dict())") is None
    assert one("timestamp_format(format='x')") == (
        None, ["timestamp_format: Field time is required"])


# --- commandline_split ----------------------------------------------------------------------


def test_commandline_split_golden():
    # functions.out.yaml "Test commandline_split function"
    assert value("commandline_split(command='''\"C:\\Program Files\\Velociraptor\\"
                 "Velociraptor.exe\" service run''')") == [
        "C:\\Program Files\\Velociraptor\\Velociraptor.exe", "service", "run"]
    assert value("commandline_split(command=\"/usr/bin/ls -l 'file with space.txt'\", "
                 "bash_style=TRUE)") == ["/usr/bin/ls", "-l", "file with space.txt"]


@pytest.mark.parametrize("command,expected", [
    (r'a\\\"b c', ['a\\"b', "c"]),  # 2n+1 backslashes before a quote: n and a literal quote
    (r'"a\\" b', ["a\\", "b"]),  # 2n backslashes: n, and the quote toggles
    (r'"a""b" c', ['a"b c']),  # "" inside quotes: a quote, and the quoting ends (pre-2008)
    (r"a\b\\c", ["a\\b\\\\c"]),  # backslashes not before a quote stay
    ("  x\t y  ", ["x", "y"]),
    ('""', [""]),
])
def test_commandline_split_windows_rules(command, expected):
    assert value(f"commandline_split(command='''{command}''')") == expected


def test_commandline_split_empty_is_null():
    result, logs = one("commandline_split(command='   ')")
    assert result is None and logs == []
    assert dumps_rows([{"X": result}]) == '[{"X":null}]'


@pytest.mark.parametrize("command,expected", [
    ("a 'b c' \"d\\\"e\" f\\ g", ["a", "b c", 'd"e', "f g"]),
    ('"\\q"', ["q"]),  # any escaped character inside double quotes
    ("a#b # comment\nc", ["a#b", "c"]),  # comments only at the start of a word
    ("x '' y", ["x", "", "y"]),
    ("pre'quoted'post", ["prequotedpost"]),
])
def test_commandline_split_bash_style(command, expected):
    rows, logs = run_vql("SELECT commandline_split(command=C, bash_style=TRUE) AS X "
                         "FROM scope()", env={"C": command})
    assert logs == [] and rows[0][0]["X"] == expected


def test_commandline_split_bash_style_errors():
    for command, error in (("'open", "EOF found when expecting closing quote"),
                           ('"open', "EOF found when expecting closing quote"),
                           ("end\\", "EOF found after escape character")):
        rows, logs = run_vql("SELECT commandline_split(command=C, bash_style=TRUE) AS X "
                             "FROM scope()", env={"C": command})
        assert rows[0][0]["X"] == [] and logs == [f"commandline_split: {error}"]
    assert one("commandline_split()") == ([], ["commandline_split: Field command is required"])


# --- filter / lambdas -----------------------------------------------------------------------


def test_filter_golden():
    # functions.out.yaml "Test the filter function"
    rows, logs = run_vql("LET List <= (1, \"two\", 3, \"\", 0) "
                         "SELECT filter(list=List, condition='x=>x'), filter(list=List, "
                         "regex=\".\"), filter(list=List, regex=\".+\") FROM scope()")
    assert logs == []
    assert dumps_rows(rows[0]) == (
        '[{"filter(list=List, condition=\'x=\\u003ex\')":[1,"two",3],'
        '"filter(list=List, regex=\\".\\")":[1,"two",3,"",0],'
        '"filter(list=List, regex=\\".+\\")":[1,"two",3,0]}]')


def test_filter_conditions_and_errors():
    assert value("filter(list=(1, 5, 10), condition='x => x > 3')") == [5, 10]
    assert value("filter(list=[dict(a=1), dict(a=2)], condition='x=>x.a = 2')") == [{"a": 2}]
    assert value("filter(list=('Ab', 'cd'), regex='^a')") == ["Ab"]  # case-insensitive
    assert value("filter(list=(1, 2))") == [1, 2]  # no regex: everything matches
    assert one("filter(list=(1, 2), condition='x=>x', regex='1')") == (
        [1, 2], ["ERROR:filter: Both regex and condition are specified - Will only use the "
                 "condition and ignore regex!"])
    assert one("filter(list=(1, 2), condition='x, y => x')") == (
        [], ["ERROR:Incorrect number of parameters in Lambda call"] * 2)
    assert one("filter(list=(1, 2), condition=5)") == (
        None, ['filter: Field condition Got field type int64: VQL lambda functions need to be '
               'a string of the form "x=>..."'])
    result, logs = one("filter(list=(1, 2), condition='x')")
    assert result is None and logs == ['filter: Field condition 1:2: unexpected token "<EOF>"']
    assert one("filter(regex='x')") == (None, ["filter: Field list is required"])


def test_lambda_sees_the_scope():
    assert value("filter(list=(1, 2, 3), condition='x=>x > Low')", env={"Low": 1}) == [2, 3]


# --- slice ----------------------------------------------------------------------------------


@pytest.mark.parametrize("args,expected", [
    ("list=(1, 2, 3, 4), start=1, end=3", [2, 3]),
    ("list=(1, 2, 3), start=1, end=100", [2, 3]),  # end clipped
    ("list=(1, 2, 3), start=2, end=1", []),  # start clipped to end
    ("list=(1, 2, 3), start=-1, end=2", []),  # uint64: -1 is huge
    ("list='hello', start=1, end=3", [101, 108]),  # a string slices into bytes
    ("list=dict(a=1, b=2, c=3), start=1, end=3", ["b", "c"]),  # a dict into its keys
    ("list=5, start=0, end=1", []),
])
def test_slice(args, expected):
    assert value(f"slice({args})") == expected


def test_slice_errors():
    assert one("slice(list=(1, 2), start=0)") == (None, ["slice: Field end is required"])
    assert one("slice(list=(1, 2), start='a', end=1)") == (
        None, ["slice: Field start should be an int not string."])


# --- flatten --------------------------------------------------------------------------------


def test_flatten_golden_shape():
    # binary_parsers.out.yaml: flatten repeats the row for each item of a list column.
    rows, logs = run_vql("SELECT * FROM flatten(query={ SELECT 1 AS Foo, (3, 4, 5) AS Items "
                         "FROM scope() })")
    assert logs == []
    assert rows[0] == [{"Foo": 1, "Items": 3}, {"Foo": 1, "Items": 4}, {"Foo": 1, "Items": 5}]


def test_flatten_cross_product_and_edges():
    rows, _ = run_vql("SELECT * FROM flatten(query={ SELECT (1, 2) AS A, 'x' AS B, "
                      "('p', 'q') AS C, NULL AS D FROM scope() })")
    assert rows[0] == [  # the last column varies slowest; NULL iterates to nothing: kept
        {"A": 1, "B": "x", "C": "p", "D": None}, {"A": 2, "B": "x", "C": "p", "D": None},
        {"A": 1, "B": "x", "C": "q", "D": None}, {"A": 2, "B": "x", "C": "q", "D": None},
    ]
    rows, _ = run_vql("SELECT * FROM flatten(query={ SELECT dict(k=1) AS A FROM scope() })")
    assert rows[0] == [{"A": {"k": 1}}]
    rows, logs = run_vql("SELECT * FROM flatten()")
    assert rows[0] == [] and logs == ["flatten: Field query is required"]
