"""Text, encoding, path and container builtins (velonb.emulator.vql.functions_text).

Expected values come from velociraptor's golden outputs (artifacts/testdata/server/testcases,
noted per test), from dustin/go-humanize v1.0.1's own tests, or from the Go source semantics.
"""

import gzip

import pytest
from wire_helpers import run_vql

from velonb.emulator.gojson import dumps_rows
from velonb.emulator.vql.functions_text import go_bytes


def one(expr, **kw):
    rows, logs = run_vql(f"SELECT {expr} AS X FROM scope()", **kw)
    return rows[0][0]["X"], logs


def value(expr):
    result, logs = one(expr)
    assert logs == []
    return result


# --- base64decode / base64encode ------------------------------------------------------------


def test_base64decode_golden_gzip_payload():
    # functions.out.yaml: gunzip(string=base64decode(string=base64_shellcode)) -> "hello world\n"
    data = value("base64decode(string='H4sICHEBVGMAA3RleHQudHh0AMtIzcnJVyjPL8pJ4QIALTsIrwwAAAA=')")
    assert gzip.decompress(go_bytes(data)) == b"hello world\n"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("aGVsbG8=", "hello"),
        ("aGVs\r\nbG8=", "hello"),  # CR/LF are skipped by StdEncoding
        ("", ""),
        ("QR==", "A"),  # non-zero trailing bits are accepted (not Strict)
        ("aGVsbG8", None),  # padding is required
        ("aGVsbG8=aGVs", None),  # data after padding
        ("aGV sbG8=", None),  # characters outside the alphabet
        ("aGVsbA-_", None),  # URL alphabet is not StdEncoding
        ("QUJD=", None),
    ],
)
def test_base64decode_values(text, expected):
    assert value(f"base64decode(string='{text}')") == expected


def test_base64decode_invalid_utf8_and_errors():
    data = value("base64decode(string='/w==')")
    assert go_bytes(data) == b"\xff"
    assert dumps_rows([{"X": data}]) == '[{"X":"\\ufffd"}]'
    assert one("base64decode()") == (None, ["base64decode: Field string is required"])
    assert one("base64decode(string='aGk=', x=1)") == (None, ["base64decode: Unexpected arg x"])


def test_base64encode():
    assert value("base64encode(string='hello')") == "aGVsbG8="
    assert value("base64encode(string='héllo')") == "aMOpbGxv"
    assert value("base64encode(string=base64decode(string='/w=='))") == "/w=="
    assert value("base64encode(string=12)") == "MTI="  # non-strings arrive as %v text
    assert one("base64encode()") == (None, ["base64encode: Field string is required"])


# --- utf16 / utf16_encode -------------------------------------------------------------------


def test_utf16_decodes_little_endian():
    assert value("utf16(string=base64decode(string='aABpAA=='))") == "hi"
    assert value("utf16(string=base64decode(string='aABpAGo='))") == "hi"  # odd byte dropped
    assert value("utf16(string=base64decode(string='PdgA3g=='))") == "\U0001f600"  # pair
    # A lone surrogate unit becomes U+FFFD (unicode/utf16.Decode).
    assert value("utf16(string=base64decode(string='PdhBAA=='))") == "\ufffdA"
    assert value("utf16(string='')") == ""
    assert one("utf16()") == (None, ["utf16: Field string is required"])


def test_utf16_encode():
    assert value("base64encode(string=utf16_encode(string='hi'))") == "aABpAA=="
    assert value("base64encode(string=utf16_encode(string='\U0001f600'))") == "PdgA3g=="
    encoded = value("utf16_encode(string='é')")
    assert go_bytes(encoded) == b"\xe9\x00"
    assert dumps_rows([{"X": encoded}]) == '[{"X":"\\ufffd\\u0000"}]'
    # An invalid byte is read as U+FFFD by []rune().
    assert value("base64encode(string=utf16_encode(string=base64decode(string='/w==')))") == "/f8="
    assert value("utf16(string=utf16_encode(string='héllo \U0001f600'))") == "héllo \U0001f600"
    assert one("utf16_encode(foo=1)") == (None, ["utf16_encode: Field string is required"])


# --- strip ----------------------------------------------------------------------------------


def test_strip():
    assert value("strip(string='  hello \\n\\t')") == "hello"
    assert value("strip(string='prefix-body-suffix', prefix='prefix-')") == "body-suffix"
    assert value("strip(string='prefix-body-suffix', suffix='-suffix')") == "prefix-body"
    assert value("strip(string='ab-body-ab', prefix='ab', suffix='ab')") == "-body-"
    assert value("strip(string='  x  ', prefix='z')") == "  x  "  # no trimming then
    # strings.TrimSpace uses unicode.IsSpace: NBSP is space, U+001C is not.
    assert value("strip(string=format(format='%c x %c', args=[160, 12288]))") == "x"
    assert value("strip(string=format(format='%c x', args=[28]))") == "\x1c x"
    assert one("strip()") == (False, ["strip: Field string is required"])


# --- regex_replace --------------------------------------------------------------------------


def test_regex_replace_golden():
    # csv.out.yaml: the IIS pipe joins the date and time columns with T.
    line = "2021-10-09 00:00:01 1.1.1.1 GET /ecp/ - 443"
    assert value(
        f"regex_replace(re='''^(\\d{{4}}-\\d{{2}}-\\d{{2}}) (\\d{{2}}:)''', "
        f"replace='''${{1}}T${{2}}''', source='{line}')"
    ) == "2021-10-09T00:00:01 1.1.1.1 GET /ecp/ - 443"
    # shell_sessions.out.yaml: removing white space.
    assert value("regex_replace(source='Hello world\\n', re='\\\\s', replace='')") == "Helloworld"
    # import_collection.in.yaml's Sanitize(): the regex is case-insensitive.
    sanitized = value("regex_replace(re='[C]\\\\.[0-9a-z]+', replace='C.ID', "
                      "source='c.1f2E and C.ab')")
    assert sanitized == "C.ID and C.ID"


@pytest.mark.parametrize(
    "source,re_,replace,expected",
    [
        ("abxd", "x*", "-", "-a-b-d-"),  # no empty match right after a match
        ("abc", "", "-", "-a-b-c-"),
        ("abc", "b", "", "ac"),
        ("aaa", "a", "$$", "$$$"),
        ("ab", "(a)(b)", "$2$1", "ba"),
        ("ab", "(a)(b)", "$1x", ""),  # $1x is ${1x}: an unknown name
        ("ab", "(a)(b)", "${1}x", "ax"),
        ("ab", "(?P<first>a)b", "<$first>", "<a>"),
        ("ab", "(a)|(b)", "[$2]", "[][b]"),  # unmatched group expands to nothing
        ("ab", "a", "$", "$b"),  # a lone $ stays
        ("ab", "a", "${1", "${1b"),  # unterminated brace stays
        ("ab", "(a)", "$9", "b"),  # out of range group
        ("ab", "(a)", "$01", "b"),  # leading zero: a name, not a number
        ("Hello", "hello", "bye", "bye"),
    ],
)
def test_regex_replace_go_semantics(source, re_, replace, expected):
    assert value(f"regex_replace(source='{source}', re='{re_}', replace='{replace}')") == expected


def test_regex_replace_errors():
    assert one("regex_replace(source='a', re='(')") == (None, ["Unable to compile regex ("])
    assert one("regex_replace(source='a')") == (None, ["regex_replace: Field re is required"])
    assert one("regex_replace(re='a')") == (None, ["regex_replace: Field source is required"])
    assert value("regex_replace(source='abc', re='b')") == "ac"  # replace defaults to ''
    # replace_lambda needs VQL lambdas, which the engine does not have.
    assert one("regex_replace(source='a', re='a', replace_lambda='x=>x')") == (
        None,
        ["regex_replace: Unexpected arg replace_lambda"],
    )


# --- basename -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,expected",
    [
        # paths.out.yaml
        ("path='/foo/bar/baz', path_type='linux'", "baz"),
        ("path='/foo/bar/\"http://www.google.com/\"', path_type='generic'",
         "http://www.google.com/"),
        ("path='c:\\\\foo\\\\bar\\\\\"http://www.google.com/\"', path_type='windows'",
         "http://www.google.com/"),
        ("path='c:\\\\foo\\\\bar\\\\\"http://www.google.com/\"/Foobar', path_type='windows'",
         "Foobar"),
        ("path='c:\\\\foo\\\\bar\\\\\"F:\\\\foobar.txt\"', path='windows'", "windows"),
        # Go semantics
        ("path='/a/b/c.txt'", "c.txt"),
        ("path='C:\\\\Windows\\\\notepad.exe'", "notepad.exe"),  # generic splits on \ too
        ("path='/a/b/'", "b"),
        ("path='/a/b/..'", "b"),
        ("path=''", ""),
        ("path='/'", ""),
        ("path='/a/\"q\"\"uote\"'", 'q"uote'),
        ("path='/a/\"ab\"c'", "abcc"),  # Go's consumeComponent reads the stray char twice
        ("path='/a/\"unterminated'", "unterminated"),
        ("path='a\\\\b', sep='\\\\'", "b"),  # sep \ selects the windows parser
        ("path='a/b', sep='/'", "b"),
        ("path='\\\\\\\\.\\\\C:', path_type='windows'", "\\\\.\\C:"),
        ("path='\\\\\\\\server\\\\share', path_type='windows'", "share"),
        ("path='\\\\\\\\server\\\\', path_type='windows'", "\\\\server"),
        ("path='c:', path_type='ntfs'", "\\\\.\\C:"),
        ("path='HKLM', path_type='registry'", "HKEY_LOCAL_MACHINE"),
        ("path='hkey_users', path_type='registry'", "hkey_users"),
        ("path='HKEY_users', path_type='registry'", "HKEY_USERS"),
        ("path='/a/b%2Fc%', path_type='zip'", "b/c"),
        ("path='/a/\"b/c\"', path_type='linux'", 'c"'),
        ('path=\'{"DelegatePath": "/x.zip", "Path": "/member/file.txt"}\'', "file.txt"),
        ('path=\'{"path": "/a/one", "PATH": "/a/two"}\'', "two"),
    ],
)
def test_basename(args, expected):
    assert value(f"basename({args})") == expected


def test_basename_errors():
    assert one("basename()") == (False, ["basename: Field path is required"])
    assert one("basename(path=1)") == (
        False,
        ["basename: Path should be an OSPath or string, not int64"],
    )
    assert one("basename(path=NULL)") == (
        False,
        ["basename: Path should be an OSPath or string, not types.Null"],
    )
    assert one("basename(path='a', path_type='mac')") == (
        False,
        ["basename: Unknown path type: mac (should be one of windows,linux,generic)"],
    )
    assert one("basename(path='{\"Path\": 1}')") == (
        False,
        ["basename: While decoding pathspec: json: cannot unmarshal number into Go struct "
         "field PathSpec.Path of type string"],
    )
    assert one("basename(path='{\"Delegate\": {\"Path\": true}}')") == (
        False,
        ["basename: While decoding pathspec: json: cannot unmarshal bool into Go struct "
         "field PathSpec.Delegate.Path of type string"],
    )
    result, logs = one("basename(path='{not json')")
    assert result is False and logs[0].startswith("basename: While decoding pathspec: ")


# --- humanize -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,expected",
    [
        # go-humanize v1.0.1 bytes_test.go
        ("bytes=1", "1 B"),
        ("bytes=803", "803 B"),
        ("bytes=1024", "1.0 kB"),
        ("bytes=9999", "10 kB"),
        ("bytes=999999", "1000 kB"),
        ("bytes=1048576", "1.0 MB"),
        ("bytes=1000000000", "1.0 GB"),
        ("bytes=999000000000000", "999 TB"),
        ("bytes=999999000000000", "1000 TB"),
        ("bytes=1000000000000000000", "1.0 EB"),
        ("bytes=5500000000", "5.5 GB"),
        ("bytes=82854982", "83 MB"),
        ("ibytes=1023", "1023 B"),
        ("ibytes=1024", "1.0 KiB"),
        ("ibytes=1048575", "1024 KiB"),
        ("ibytes=5905580032", "5.5 GiB"),
        ("ibytes=1152921504606846976", "1.0 EiB"),
        ("ibytes=82854982", "79 MiB"),
        # comma_test.go
                ("comma=1000", "1,000"),
        ("comma=123456789", "123,456,789"),
        ("comma=-10001000", "-10,001,000"),
        ("comma=9223372036854775807", "9,223,372,036,854,775,807"),
        # humanize.go: time, then comma, then bytes, else ibytes (zero values skipped)
        ("", "0 B"),
        ("comma=0", "0 B"),
        ("bytes=0, ibytes=2048", "2.0 KiB"),
        ("bytes=2000, ibytes=2048", "2.0 kB"),
        ("comma=1234, bytes=2000", "1,234"),
        ("time=0, bytes=2000", "2.0 kB"),
        ("bytes=-1", "18 EB"),  # uint64(-1)
    ],
)
def test_humanize(args, expected):
    assert value(f"humanize({args})") == expected


def test_humanize_time():
    assert value("humanize(time=now())") == "now"
    assert value("humanize(time=now() - 7200)") == "2 hours ago"
    assert value("humanize(time=now() + 7300)") == "2 hours from now"
    assert value("humanize(time=now() - 3 * 86400 - 60)") == "3 days ago"
    assert value("humanize(time=now() - 40 * 86400)") == "1 month ago"
    assert value("humanize(time='1900-01-01T00:00:00Z')") == "a long while ago"


def test_humanize_errors_use_capitalised_prefix():
    assert one("humanize(bytes='x')") == (
        False,
        ["Humanize: Field bytes should be an int not string."],
    )
    assert one("humanize(foo=1)") == (False, ["Humanize: Unexpected arg foo"])


# --- array ----------------------------------------------------------------------------------


def test_array_golden():
    # array.out.yaml
    rows, logs = run_vql(
        "SELECT array() AS A, array(b=1, a=2) AS B, array(a=[1,2], b=[3,4]) AS C, "
        "array(_=[1, 2]) AS D, array(_=[1, 2], extra=3) AS E, array(_=dict(Foo=1)) AS F, "
        "array(_={SELECT * FROM range(end=5) }) AS G, "
        "array(a=1, b=2) + array(a=3, b=4) AS H, "
        "array(a=dict(Key=1), b=dict(Key=2)) AS I, "
        "array(a={ SELECT * FROM range(end=2)}, b={ SELECT * FROM range(end=2)}, "
        "c='I am a string') AS J FROM scope()"
    )
    assert logs == []
    assert rows[0][0] == {
        "A": [],
        "B": [1, 2],
        "C": [[1, 2], [3, 4]],
        "D": [1, 2],
        "E": [1, 2, 3],
        "F": [{"Foo": 1}],
        "G": [{"_value": i} for i in range(5)],
        "H": [1, 2, 3, 4],
        "I": [{"Key": 1}, {"Key": 2}],
        "J": [[{"_value": 0}, {"_value": 1}], [{"_value": 0}, {"_value": 1}], "I am a string"],
    }


def test_array_initialiser_variants():
    assert value("array(_=NULL)") == [None]
    assert value("array(_='x', y=NULL)") == ["x", None]
    rows, _ = run_vql(
        "LET Q <= SELECT _value FROM range(end=2) SELECT array(_=Q) AS X FROM scope()"
    )
    assert rows == [[{"X": [{"_value": 0}, {"_value": 1}]}]]


# --- to_dict / items ------------------------------------------------------------------------


def test_to_dict_golden():
    # functions.out.yaml
    assert value(
        "to_dict(item={ SELECT * FROM foreach(row=items(item=dict(X=1, Y=2, Z=3)), "
        "query={ SELECT _key, _value from scope() WHERE _value = 3 }) })"
    ) == {"Z": 3}


def test_to_dict_variants():
    assert value(
        "to_dict(item={ SELECT * FROM items(item=[1, 2]) })"
    ) == {}  # _key must be a string
    assert value(
        "to_dict(item={ SELECT 'k' AS _key FROM scope() })"
    ) == {"k": None}
    assert value(
        "to_dict(item={ SELECT * FROM foreach(row=[dict(_key='a', _value=1), "
        "dict(_key='', _value=2), dict(_key='a', _value=3)]) })"
    ) == {"a": 3}
    assert value("to_dict(item=dict(A=1, B={ SELECT * FROM range(end=1) }))") == {
        "A": 1,
        "B": [{"_value": 0}],
    }
    assert value("to_dict(item=[dict(a=1), dict(a=2)])") == {"a": [1, 2]}
    assert value("to_dict()") == {}
    assert value("to_dict(item='string')") == {}
    assert one("to_dict(foo=1)") == (None, ["to_dict: Unexpected arg foo"])


def test_items_plugin_golden():
    # common.out.yaml
    rows, logs = run_vql(
        "SELECT * FROM items(item=[1,2]) "
        "SELECT * FROM items(item=dict(X=1, Y=2)) "
        "LET ItemQuery = SELECT _value as Item FROM range(start=0, end=2, step=1) "
        "SELECT * FROM items(item=ItemQuery)"
    )
    assert logs == []
    assert rows == [
        [{"_key": 0, "_value": 1}, {"_key": 1, "_value": 2}],
        [{"_key": "X", "_value": 1}, {"_key": "Y", "_value": 2}],
        [{"_key": 0, "_value": {"Item": 0}}, {"_key": 1, "_value": {"Item": 1}}],
    ]


def test_items_plugin_variants_and_errors():
    rows, _ = run_vql("SELECT * FROM items(item={ SELECT 1 AS A FROM scope() })")
    assert rows == [[{"_key": 0, "_value": {"A": 1}}]]
    assert run_vql("SELECT * FROM items(item='abc')") == ([[]], [])
    assert run_vql("SELECT * FROM items(item=NULL)") == ([[]], [])
    assert run_vql("SELECT * FROM items(item=1, foo=2)") == ([[]], ["items: Unexpected arg foo"])


def test_items_function():
    assert value("items(item=dict(A=1, B='x'))") == [
        {"_key": "A", "_value": 1},
        {"_key": "B", "_value": "x"},
    ]
    assert value("items(item=[1, 2])") == [{"_value": [1, 2]}]
    assert value("items()") == [{"_value": None}]
    assert one("items(foo=1)") == (None, ["items: Unexpected arg foo"])
