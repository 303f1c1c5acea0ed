"""Parser coverage: grammar constructs, column naming (vfilter ToString), parse errors."""

import pytest
from wire_helpers import run_vql

from velonb.emulator.vql import VQLParseError, parse

run = run_vql


def cols(text):
    rows, _ = run(text)
    return list(rows[-1][0].keys())


def test_multiple_statements_without_separator():
    sts = parse("LET X = 1 LET Y <= 2 SELECT X, Y FROM scope()")
    assert [s.let_name for s in sts] == ["X", "Y", None]
    assert sts[0].text == "LET X = 1"
    assert sts[2].text == "SELECT X, Y FROM scope()"


@pytest.mark.parametrize(
    "query,expected",
    [
        ("SELECT xor(string='a',key='$') FROM scope()", "xor(string='a', key='$')"),
        ('SELECT format(format="%v",args=1) FROM scope()', 'format(format="%v", args=1)'),
        ("SELECT 1+2 FROM scope()", "1 + 2"),
        ("SELECT 0x10 FROM scope()", "16"),
        ("SELECT 1.5e3 FROM scope()", "1500.0"),
        ("SELECT .5 FROM scope()", "0.5"),
        ("SELECT 1 and NOT 2 FROM scope()", "1  and NOT 2"),
        ("SELECT NULL && '' FROM scope()", "NULL  && ''"),
        ("SELECT 'A' || 'B' FROM scope()", "'A' || 'B'"),
        ("SELECT 1 in (1,2) FROM scope()", "1 IN (1, 2)"),
        ("SELECT (1,2)+(3,) FROM scope()", "(1, 2) + (3, )"),
        ("SELECT dict(a=1).a FROM scope()", "dict(a=1).a"),
        ("SELECT `Foo Bar` FROM scope()", "Foo Bar"),
        ("SELECT count() FROM scope()", "count()"),
        (
            "SELECT { SELECT * FROM range(end=1) LIMIT 1 } FROM scope()",
            "{ SELECT * FROM range(end=1) LIMIT 1  }",
        ),
        ("SELECT if(condition=TRUE, then=[]) FROM scope()", "if(condition=TRUE, then=[])"),
        ("SELECT (1,2)[1:] FROM scope()", "(1, 2)[1:]"),
        ("SELECT '''a\nb''' FROM scope()", "'''a\nb'''"),
    ],
)
def test_column_names(query, expected):
    assert cols(query) == [expected]


def test_alias_and_backticks():
    assert cols("SELECT 1 AS `column with space` FROM scope()") == ["column with space"]


def test_comments_all_styles():
    rows, _ = run("-- sql comment\n// cpp comment\nSELECT /* inline */ 1 AS A FROM scope()")
    assert rows == [[{"A": 1}]]


def test_strings_and_escapes():
    rows, _ = run(r"""SELECT 'foo\'s', "a\tb", "\x41\x42", '''raw \n''' AS R FROM scope()""")
    row = rows[0][0]
    assert list(row.values()) == ["foo's", "a\tb", "AB", "raw \\n"]


def test_keywords_case_insensitive_and_let_params():
    rows, _ = run("let F(a, b=2) = a + b select F(a=1) AS X, F(a=1, b=5) AS Y from scope()")
    assert rows == [[{"X": 3, "Y": 6}]]


def test_statement_text_roundtrip():
    st = parse("select  *  from range( end = 2 ) where _value>0 order by _value desc limit 1")[0]
    assert (
        st.to_string() == "SELECT * FROM range(end=2) WHERE _value > 0 ORDER BY _value DESC LIMIT 1"
    )


@pytest.mark.parametrize(
    "query,message",
    [
        (
            "SELECT *",
            'SELECT |: 1:9: unexpected token "<EOF>" (expected <from> _From '
            "(<where> _CommaExpression)? (<groupby> _CommaExpression)? "
            "(<orderby> <ident> <desc>?)? (<limit> <number>)?)",
        ),
        (
            "SELECT * FROM info(); SELECT 1 FROM scope()",
            'ROM info()|; SELECT 1: 1:21: lexer: invalid input text "; SELECT 1 FROM ..."',
        ),
        ("SELECT * FROM info() foo", 'OM info() |fo: 1:22: unexpected token "foo"'),
        ("SELECT * FROM\ninfo(x=)", 'OM\ninfo(x=|: 2:8: unexpected token ")"'),
    ],
)
def test_parse_errors(query, message):
    with pytest.raises(VQLParseError) as ei:
        parse(query)
    assert str(ei.value) == message


def test_keyword_is_reserved():
    with pytest.raises(VQLParseError):
        parse("SELECT limit FROM scope()")
    rows, _ = run("SELECT 1 AS `limit` FROM scope()")
    assert rows == [[{"limit": 1}]]


def test_list_literal_only_in_arguments():
    with pytest.raises(VQLParseError):
        parse("SELECT [1, 2] FROM scope()")
    rows, _ = run("SELECT len(list=[1, 2]) AS L FROM scope()")
    assert rows == [[{"L": 2}]]
