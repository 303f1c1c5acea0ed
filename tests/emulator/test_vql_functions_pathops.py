"""dirname, path_join, path_split and the OSPath value (velonb.emulator.vql.ospath).

Expected values come from velociraptor's paths.out.yaml (noted per test) or from
accessors/manipulators.go and accessors/protocols.go.
"""

import pytest
from wire_helpers import run_vql

from velonb.emulator.gojson import dumps_rows


def one(expr, **kw):
    rows, logs = run_vql(f"SELECT {expr} AS X FROM scope()", **kw)
    return rows[0][0]["X"], logs


def text(expr, **kw):
    """The value as the server would send it (OSPath serializes as a string)."""
    rows, logs = run_vql(f"SELECT {expr} AS X FROM scope()", **kw)
    assert logs == []
    return dumps_rows(rows[0])[len('[{"X":'):-2]


def test_dirname_golden_paths_out_yaml():
    rows, logs = run_vql("SELECT dirname(path=\"/foo/bar/baz\", path_type='linux') FROM scope()")
    assert logs == []
    assert dumps_rows(rows[0]) == (
        '[{"dirname(path=\\"/foo/bar/baz\\", path_type=\'linux\')":"/foo/bar"}]')
    rows, logs = run_vql("SELECT dirname(path='c:\\\\foo\\\\bar\\\\\"http://www.google.com/\"/"
                         "Foobar', path_type='windows') AS X FROM scope()")
    assert logs == []
    assert dumps_rows(rows[0]) == '[{"X":"c:\\\\foo\\\\bar\\\\\\"http://www.google.com/\\""}]'


@pytest.mark.parametrize("expr,expected", [
    ("dirname(path='/a/b/c')", '"/a/b"'),  # generic
    ("dirname(path='a\\\\b\\\\c', sep='\\\\')", '"a\\\\b"'),  # sep \ means windows
    ("dirname(path='C:\\\\Windows\\\\notepad.exe', path_type='windows')", '"C:\\\\Windows"'),
    ("dirname(path='C:\\\\Windows', path_type='windows')", '"C:"'),
    ("dirname(path='/', path_type='linux')", '"/"'),
    ("dirname(path='/')", '""'),
    ("dirname(path='HKLM\\\\Software\\\\X', path_type='registry')",
     '"HKEY_LOCAL_MACHINE\\\\Software"'),
    ("dirname(path='C:\\\\Windows\\\\X', path_type='ntfs')", '"\\\\\\\\.\\\\C:\\\\Windows"'),
    ("dirname(path='/a b/c%3Fd/e', path_type='zip')", '"/a b/c%3Fd"'),
    ("dirname(path='/a/\"b/c\"/d')", '"/a/\\"b/c\\""'),  # a quoted component stays quoted
])
def test_dirname_by_path_type(expr, expected):
    assert text(expr) == expected


def test_dirname_keeps_the_pathspec_delegate():
    value = text("dirname(path='{\"DelegateAccessor\":\"zip\",\"DelegatePath\":\"/x.zip\","
                 "\"Path\":\"/a/b\"}')")
    assert value == ('"{\\"DelegateAccessor\\":\\"zip\\",\\"DelegatePath\\":\\"/x.zip\\",'
                     '\\"Path\\":\\"/a\\"}"')


def test_dirname_errors():
    assert one("dirname(path=1)") == (
        False, ["dirname: Path should be an OSPath or string, not int64"])
    assert one("dirname(path='/a', path_type='nope')") == (
        False, ["dirname: Unknown path type: nope (should be one of windows,linux,generic)"])
    assert one("dirname()") == (False, ["dirname: Field path is required"])


def test_path_split_golden_paths_out_yaml():
    rows, logs = run_vql("SELECT path_split(path=\"/a/b/c/d/e\", path_type='linux')[-2] "
                         "FROM scope()")
    assert logs == []
    assert dumps_rows(rows[0]) == (
        '[{"path_split(path=\\"/a/b/c/d/e\\", path_type=\'linux\')[-2]":"d"}]')


@pytest.mark.parametrize("expr,expected", [
    ("path_split(path='/a/\"b/c\"/d')", ["a", "b/c", "d"]),
    ("path_split(path='C:\\\\x\\\\y', path_type='windows')", ["C:", "x", "y"]),
    ("path_split(path='\\\\\\\\server\\\\share\\\\f', path_type='windows')",
     ["\\\\server", "share", "f"]),
    ("path_split(path='hku/Software', path_type='registry')", ["HKEY_USERS", "Software"]),
    ("path_split(path='', path_type='linux')", []),  # linux: an empty (non-nil) slice
    ("path_split(path='')", None),  # generic: a nil slice, JSON null
])
def test_path_split(expr, expected):
    value, logs = one(expr)
    assert logs == [] and value == expected


def test_path_split_errors():
    assert one("path_split(path='x', path_type='foo')") == (
        False, ["path_split: Unknown path type: foo (should be one of windows,linux,generic)"])
    assert one("path_split()") == ([], ["path_split: Field path is required"])


@pytest.mark.parametrize("expr,expected", [
    ("path_join(components=['a', 'b', 'c'])", '"/a/b/c"'),
    ("path_join(components=['/usr/bin', 'ls'])", '"/usr/bin/ls"'),  # each item is parsed
    ("path_join(components=['C:', 'Windows'], path_type='windows')", '"C:\\\\Windows"'),
    ("path_join(components=['a', 'b/c'], sep='\\\\')", '"a\\\\b\\\\c"'),
    ("path_join(components=['a', 'x y', 'b\"c'], path_type='linux')", '"/a/x y/b\\"c"'),
    ("path_join(components=['a', 'b\"c'])", '"/a/\\"b\\"\\"c\\""'),  # generic quotes it
    ("path_join(components=[])", '""'),
])
def test_path_join(expr, expected):
    assert text(expr) == expected


def test_path_join_errors():
    assert one("path_join(components=['a', 1])") == (
        False, ["path_join: Path should be an OSPath or string, not int64"])
    assert one("path_join()") == (False, ["path_join: Field components is required"])


def test_ospath_protocols_golden_subscripts():
    # paths.out.yaml "Handle paths with subscripts" (with path_join making the OSPath)
    rows, logs = run_vql(
        "LET OSPath <= path_join(components='''C:\\Users\\test\\desktop.ini''', "
        "path_type='windows') "
        "SELECT OSPath, OSPath.Components[0] AS Drive, OSPath.Components[-2] AS UserName, "
        "OSPath[:-1] AS HomeDirectory, OSPath[1:] AS DriveRelative, "
        "path_join(components='D:', path_type='windows') + OSPath.Components[1:] "
        "AS PathOnDDrive FROM scope()")
    assert logs == []
    assert dumps_rows(rows[0]) == (
        '[{"OSPath":"C:\\\\Users\\\\test\\\\desktop.ini","Drive":"C:","UserName":"test",'
        '"HomeDirectory":"C:\\\\Users\\\\test","DriveRelative":"Users\\\\test\\\\desktop.ini",'
        '"PathOnDDrive":"D:\\\\Users\\\\test\\\\desktop.ini"}]')


def test_ospath_members_and_operators():
    rows, logs = run_vql(
        "LET P <= dirname(path='/usr/lib/x/y', path_type='linux') "
        "SELECT P.Basename AS B, P.Dirname AS D, P.Dirname.Basename AS DB, P.Path AS Path, "
        "P.String AS S, P[-1] AS Last, P[9] AS Out, P[3:1] AS Empty, P + 'a/b' AS Add, "
        "P + ('c/d', 5) AS AddList, P =~ 'lib/x$' AS M, P =~ 'nomatch' AS NM, "
        "P = dirname(path='/usr/lib/x/z', path_type='linux') AS Eq, "
        "P = '/usr/lib/x' AS EqStr, if(condition=P, then='t', else='f') AS Bool, "
        "if(condition=dirname(path='/a'), then='t', else='f') AS EmptyBool, "
        "basename(path=P) AS Base, format(format='%v|%T', args=[P, P]) AS F FROM scope()")
    assert logs == []
    assert dumps_rows(rows[0]) == (
        '[{"B":"x","D":"/usr/lib","DB":"lib","Path":"/usr/lib/x","S":"/usr/lib/x",'
        '"Last":"x","Out":null,"Empty":"/","Add":"/usr/lib/x/a/b","AddList":"/usr/lib/x/c/d",'
        '"M":true,"NM":false,"Eq":true,"EqStr":false,"Bool":"t","EmptyBool":"f",'
        '"Base":"x","F":"/usr/lib/x|*accessors.OSPath"}]')
