"""Text → statements, using the lark grammar in vql.lark; participle-shaped error messages."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from velonb.emulator.vql.calls import CallArg, SymbolRef
from velonb.emulator.vql.nodes import (
    AndExpr,
    Arith,
    CommaExpr,
    Compare,
    Const,
    Expr,
    Formatter,
    Member,
    NotExpr,
    OrExpr,
    SubExpr,
    number_const,
    unquote_ident,
    unquote_string,
)
from velonb.emulator.vql.query import Aliased, Plugin, Select


class VQLParseError(Exception):
    """str(err) is exactly what the real server puts after 'VQL Error: ' (before the final '.')."""


@dataclass
class Statement:
    """One VQL statement (LET or SELECT)."""

    let_name: str | None
    text: str
    let_operator: str | None = None  # "=" or "<="
    params: list[str] | None = None
    defaults: dict[str, CallArg] = field(default_factory=dict)
    select: Select | None = None
    expression: Expr | None = None

    def to_string(self) -> str:
        """vfilter FormatToString of the statement."""
        f = Formatter()
        if self.let_name is not None:
            f.push("LET ", self.let_raw_name)
            if self.params is not None and (self.defaults or self.params):
                f.push("(")
                for i, p in enumerate(self.params):
                    if p in self.defaults:
                        self.defaults[p].fmt(f)
                    else:
                        f.push(p)
                    if i < len(self.params) - 1:
                        f.push(",", " ")
                f.push(")")
            f.push(" ", self.let_operator or "=", " ")
            if self.expression is not None:
                self.expression.fmt(f)
            elif self.select is not None:
                self.select.fmt(f)
        elif self.select is not None:
            self.select.fmt(f)
        return f.text()

    let_raw_name: str = ""


_GRAMMAR = (Path(__file__).with_name("vql.lark")).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True,
                maybe_placeholders=False)


@functools.lru_cache(maxsize=1)
def _lambda_parser() -> Lark:
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", start="lambda_expr",
                maybe_placeholders=False)


def _toks(items: list[Any], *types: str) -> list[Token]:
    return [t for t in items if isinstance(t, Token) and t.type in types]


def _nodes(items: list[Any]) -> list[Any]:
    return [t for t in items if not isinstance(t, Token)]


@v_args(inline=False)
class _Build(Transformer[Token, Any]):
    """Parse tree → AST."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def start(self, items: list[Any]) -> list[Statement]:
        return list(items)

    def let_stmt(self, items: list[Any]) -> Statement:
        name_tok = items[1]
        params: list[Any] | None = None
        rest = items[2:]
        if rest and isinstance(rest[0], tuple) and rest[0][0] == "params":
            params = rest[0][1]
            rest = rest[1:]
        op = rest[0]
        body = rest[1]
        st = Statement(let_name=unquote_ident(str(name_tok)), text="", let_operator=op)
        st.let_raw_name = str(name_tok)
        if params is not None:
            st.params = []
            for p in params:
                if isinstance(p, CallArg):
                    st.params.append(p.name)
                    st.defaults[p.name] = p
                else:
                    st.params.append(unquote_ident(str(p)))
        if isinstance(body, Select):
            st.select = body
        else:
            st.expression = body
        return st

    def select_stmt(self, items: list[Any]) -> Statement:
        return Statement(let_name=None, text="", select=items[0])

    def let_params(self, items: list[Any]) -> tuple[str, list[Any]]:
        return ("params", [i for i in items if not (isinstance(i, Token) and i.type == "COMMA")])

    def let_op(self, items: list[Any]) -> str:
        return str(items[0])

    def select(self, items: list[Any]) -> Select:
        explain = any(isinstance(t, Token) and t.type == "EXPLAIN" for t in items)
        cols: tuple[bool, list[Aliased]] = (False, [])
        plugin: Plugin | None = None
        where = group = None
        order: tuple[str, bool] | None = None
        limit = None
        for it in items:
            if isinstance(it, tuple) and it and it[0] == "cols":
                cols = (it[1], it[2])
            elif isinstance(it, Plugin):
                plugin = it
            elif isinstance(it, tuple) and it[0] == "where":
                where = it[1]
            elif isinstance(it, tuple) and it[0] == "group":
                group = it[1]
            elif isinstance(it, tuple) and it[0] == "order":
                order = (it[1], it[2])
            elif isinstance(it, tuple) and it[0] == "limit":
                limit = it[1]
        assert plugin is not None
        return Select(cols[1], cols[0], plugin, where, group,
                      order[0] if order else None, order[1] if order else False, limit, explain)

    def where(self, items: list[Any]) -> tuple[str, Any]:
        return ("where", _nodes(items)[0])

    def group_by(self, items: list[Any]) -> tuple[str, Any]:
        return ("group", _nodes(items)[0])

    def order_by(self, items: list[Any]) -> tuple[str, str, bool]:
        return ("order", str(_toks(items, "IDENT")[0]), bool(_toks(items, "DESC")))

    def limit(self, items: list[Any]) -> tuple[str, int]:
        text = str(_toks(items, "NUMBER")[0])
        try:
            value = int(text, 0)
        except ValueError as e:
            tok = _toks(items, "NUMBER")[0]
            raise _LimitError(tok, text) from e
        return ("limit", value)

    def star_select(self, items: list[Any]) -> tuple[str, bool, list[Aliased]]:
        rest = [i for i in items if isinstance(i, list)]
        return ("cols", True, rest[0] if rest else [])

    def plain_select(self, items: list[Any]) -> tuple[str, bool, list[Aliased]]:
        rest = [i for i in items if isinstance(i, list)]
        return ("cols", False, rest[0] if rest else [])

    def _items(self, items: list[Any]) -> list[Aliased]:
        out: list[Aliased] = []
        for i in items:
            if isinstance(i, Aliased):
                out.append(i)
            elif isinstance(i, Token) and i.type == "STAR":
                out.append(Aliased(None, None, None, star=True))
        return out

    first_items = _items
    rest_items = _items

    def aliased(self, items: list[Any]) -> Aliased:
        alias = _toks(items, "IDENT")
        body = _nodes(items)[0]
        name = str(alias[0]) if alias else None
        if isinstance(body, Select):
            return Aliased(None, body, name)
        return Aliased(body, None, name)

    def plugin(self, items: list[Any]) -> Plugin:
        name = "".join(str(t) for t in items if isinstance(t, Token))
        call = [i for i in items if isinstance(i, tuple) and i[0] == "call"]
        return Plugin(name, bool(call), call[0][1] if call else [])

    def plugin_call(self, items: list[Any]) -> tuple[str, list[CallArg]]:
        return ("call", [i for i in items if isinstance(i, CallArg)])

    call = plugin_call

    def arg_select(self, items: list[Any]) -> CallArg:
        return CallArg(str(items[0]), "select", _nodes(items)[0])

    def arg_array(self, items: list[Any]) -> CallArg:
        nodes = _nodes(items)
        if not nodes:
            return CallArg(str(items[0]), "empty", None)
        return CallArg(str(items[0]), "array", nodes[0])

    def arg_expr(self, items: list[Any]) -> CallArg:
        return CallArg(str(items[0]), "expr", _nodes(items)[0])

    def comma_expr(self, items: list[Any]) -> Expr:
        out: list[Expr | None] = []
        pending = False
        for it in items:
            if isinstance(it, Token):
                if pending:
                    out.append(None)
                pending = True
            else:
                out.append(it)
                pending = False
        if pending:
            out.append(None)
        if len(out) == 1 and out[0] is not None:
            return out[0]
        return CommaExpr(out)

    def _chain(self, items: list[Any], cls: type[Any]) -> Expr:
        if len(items) == 1:
            return items[0]
        rest = [(items[i], items[i + 1]) for i in range(1, len(items), 2)]
        return cls(items[0], rest)

    def and_expr(self, items: list[Any]) -> Expr:
        return self._chain(items, AndExpr)

    def or_expr(self, items: list[Any]) -> Expr:
        return self._chain(items, OrExpr)

    def add_expr(self, items: list[Any]) -> Expr:
        return self._chain(items, Arith)

    def mul_expr(self, items: list[Any]) -> Expr:
        return self._chain(items, Arith)

    def _op(self, items: list[Any]) -> str:
        t = items[0]
        return "IN" if t.type == "IN" else str(t)

    and_op = or_op = add_op = mul_op = cmp_op = _op

    def not_cond(self, items: list[Any]) -> Expr:
        return NotExpr(_nodes(items)[0])

    def cmp_cond(self, items: list[Any]) -> Expr:
        if len(items) == 1:
            return items[0]
        # participle keeps only the last comparison of a chain.
        return Compare(items[0], items[-2], items[-1])

    def member_expr(self, items: list[Any]) -> Expr:
        if len(items) == 1:
            return items[0]
        return Member(items[0], items[1:])

    def index_term(self, items: list[Any]) -> tuple[Any, ...]:
        return ("index", _nodes(items)[0])

    def slice_term(self, items: list[Any]) -> tuple[Any, ...]:
        start = end = None
        seen_colon = False
        for it in items:
            if isinstance(it, Token):
                if it.type == "COLON":
                    seen_colon = True
            elif seen_colon:
                end = it
            else:
                start = it
        return ("slice", start, end)

    def empty_index(self, items: list[Any]) -> tuple[Any, ...]:
        return ("empty",)

    def dot_term(self, items: list[Any]) -> tuple[Any, ...]:
        return ("dot", str(_toks(items, "IDENT")[0]))

    def value(self, items: list[Any]) -> Expr:
        return items[0]

    def subexpr(self, items: list[Any]) -> Expr:
        return SubExpr(_nodes(items)[0])

    def string(self, items: list[Any]) -> Expr:
        raw = str(items[0])
        return Const(raw, unquote_string(raw))

    def number(self, items: list[Any]) -> Expr:
        return number_const(str(items[0]))

    def boolean(self, items: list[Any]) -> Expr:
        raw = str(items[0])
        return Const(raw, raw.lower() == "true")

    def null(self, items: list[Any]) -> Expr:
        return Const("NULL", None)

    def lambda_expr(self, items: list[Any]) -> tuple[list[str], Expr]:
        return [str(t) for t in _toks(items, "IDENT")], _nodes(items)[0]

    def symbol_ref(self, items: list[Any]) -> Expr:
        name = "".join(str(t) for t in items if isinstance(t, Token))
        call = [i for i in items if isinstance(i, tuple) and i[0] == "call"]
        return SymbolRef(name, bool(call), call[0][1] if call else None)


class _LimitError(Exception):
    def __init__(self, tok: Token, text: str) -> None:
        super().__init__(text)
        self.tok = tok
        self.text = text


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _report(text: str, byte_offset: int, message: str) -> VQLParseError:
    """vfilter reportError: 10 bytes each side of the offset with a '|' marker."""
    raw = text.encode("utf-8")
    end = min(byte_offset + 10, len(raw) - 1)
    end = max(end, 0)
    start = max(byte_offset - 10, 0)
    off = min(byte_offset, len(raw) - 1)
    off = max(off, 0)
    snippet = (raw[start:off].decode("utf-8", "replace") + "|"
               + raw[off:end].decode("utf-8", "replace"))
    return VQLParseError(f"{snippet}: {message}")


def _position(text: str, char_pos: int) -> tuple[int, int, int]:
    """(byte offset, line, column) like participle's lexer.Position (column in runes, 1-based)."""
    before = text[:char_pos]
    line = before.count("\n") + 1
    col = char_pos - (before.rfind("\n") + 1) + 1
    return len(before.encode("utf-8")), line, col


_EXPECT_AFTER_SELECT = ("<from> _From (<where> _CommaExpression)? (<groupby> _CommaExpression)? "
                        "(<orderby> <ident> <desc>?)? (<limit> <number>)?")


def parse(text: str) -> list[Statement]:
    """vfilter.MultiParse: split a text into statements; raises VQLParseError."""
    try:
        tree = _parser().parse(text)
        stmts: list[Statement] = _Build(text).transform(tree)
    except UnexpectedCharacters as e:
        off, line, col = _position(text, e.pos_in_stream or 0)
        sample = text[e.pos_in_stream or 0:]
        if len(sample) > 16:
            sample = sample[:16] + "..."
        raise _report(text, off, f"{line}:{col}: lexer: invalid input text {_go_quote(sample)}") \
            from None
    except UnexpectedEOF as e:
        raise _eof_error(text, e) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise _eof_error(text, e) from None
        pos = e.token.start_pos or 0
        off, line, col = _position(text, pos)
        msg = f"{line}:{col}: unexpected token {_go_quote(str(e.token))}"
        if "FROM" in e.expected and _in_select_exprs(e):
            msg += f" (expected {_EXPECT_AFTER_SELECT})"
        raise _report(text, off, msg) from None
    except Exception as e:  # lark wraps transformer errors
        inner = getattr(e, "orig_exc", None)
        if isinstance(inner, _LimitError):
            off, line, col = _position(text, inner.tok.start_pos or 0)
            raise _report(text, off, f'{line}:{col}: strconv.ParseInt: parsing '
                                     f'{_go_quote(inner.text)}: invalid syntax') from None
        raise
    spans = _statement_spans(tree, text)
    for st, span in zip(stmts, spans, strict=False):
        st.text = span
    return stmts


def parse_lambda(text: str) -> tuple[list[str], Expr]:
    """vfilter.ParseLambda: ``x, y => expression`` as (parameter names, expression); raises
    VQLParseError with participle's ``line:col: message`` (no snippet, unlike statements)."""
    try:
        tree = _lambda_parser().parse(text)
        params, expr = _Build(text).transform(tree)
    except UnexpectedCharacters as e:
        _, line, col = _position(text, e.pos_in_stream or 0)
        sample = text[e.pos_in_stream or 0:]
        if len(sample) > 16:
            sample = sample[:16] + "..."
        raise VQLParseError(f"{line}:{col}: lexer: invalid input text {_go_quote(sample)}") \
            from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            _, line, col = _position(text, len(text))
            raise VQLParseError(f'{line}:{col}: unexpected token "<EOF>"') from None
        _, line, col = _position(text, e.token.start_pos or 0)
        raise VQLParseError(f"{line}:{col}: unexpected token {_go_quote(str(e.token))}") \
            from None
    except UnexpectedEOF:
        _, line, col = _position(text, len(text))
        raise VQLParseError(f'{line}:{col}: unexpected token "<EOF>"') from None
    return [unquote_ident(p) for p in params], expr


def _in_select_exprs(e: UnexpectedInput) -> bool:
    exp: set[str] = set(getattr(e, "expected", None) or ())
    return "FROM" in exp


def _eof_error(text: str, e: UnexpectedInput) -> VQLParseError:
    off, line, col = _position(text, len(text))
    msg = f'{line}:{col}: unexpected token "<EOF>"'
    if _in_select_exprs(e):
        msg += f" (expected {_EXPECT_AFTER_SELECT})"
    return _report(text, off, msg)


def _statement_spans(tree: Any, text: str) -> list[str]:
    out = []
    for child in tree.children:
        meta = getattr(child, "meta", None)
        if meta is not None and not getattr(meta, "empty", True):
            out.append(text[meta.start_pos:meta.end_pos])
        else:
            out.append("")
    return out
