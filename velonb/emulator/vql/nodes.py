"""Expression AST nodes: evaluation (vfilter Reduce) and re-formatting (vfilter ToString)."""

from __future__ import annotations

from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import associative
from velonb.emulator.vql.scope import Scope


class Formatter:
    """vfilter's Visitor with ToStringOptions (no line breaks)."""

    __slots__ = ("frags",)

    def __init__(self) -> None:
        self.frags: list[str] = []

    def push(self, *fr: str) -> None:
        """Append fragments."""
        self.frags.extend(fr)

    def line_break(self) -> None:
        """A soft break: a space unless the last fragment already separates."""
        last = self.frags[-1] if self.frags else ""
        if last in (" ", "(", "{", "=", "[", "=[") or last.endswith(" "):
            return
        self.frags.append(" ")

    def text(self) -> str:
        """Final string (trimmed like FormatToString)."""
        return "".join(self.frags).strip()


def unquote_ident(s: str) -> str:
    """utils.Unquote_ident: strip `backticks`."""
    if s.startswith("`") and s.endswith("`") and len(s) >= 2:
        return s[1:-1]
    return s


def split_ident(s: str) -> list[str]:
    """utils.SplitIdent: split on dots outside backticks."""
    out: list[str] = []
    cur: list[str] = []
    esc = False
    for c in s:
        if esc:
            if c == "`":
                esc = False
            else:
                cur.append(c)
        elif c == "`":
            esc = True
        elif c == ".":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    out.append("".join(cur))
    return out


def unquote_string(s: str) -> str:
    """utils.Unquote: vfilter string literal decoding (bytes, \\xNN escapes)."""
    if s.startswith("'''") and s.endswith("'''") and len(s) >= 6:
        return s[3:-3]
    if not s or s[0] not in "'\"":
        return s
    raw = s[1:-1].encode("utf-8")
    out = bytearray()
    end = len(raw) - 1
    i = 0
    while i <= end:
        c = raw[i]
        if c != 0x5C:
            out.append(c)
            i += 1
            continue
        if i >= end:
            break
        n = raw[i + 1]
        if n in (0x78, 0x58):  # x X
            if i > end - 3:
                break
            try:
                out.append(int(raw[i + 2 : i + 4].decode("ascii"), 16))
                i += 4
            except (ValueError, UnicodeDecodeError):
                out.append(raw[len(out)] if len(out) < len(raw) else c)
                i += 1
            continue
        out.append({0x72: 0x0D, 0x6E: 0x0A, 0x74: 0x09}.get(n, n))
        i += 2
    return out.decode("utf-8", "replace")


def parse_go_number(text: str) -> int | float | None:
    """strconv.ParseInt(s, 0, 64) then ParseFloat, as vfilter parses number literals."""
    neg = text.startswith("-")
    body = text[1:] if neg else text
    try:
        if body[:2] in ("0x", "0X"):
            v = int(body[2:], 16)
        elif len(body) > 1 and body.startswith("0") and body.isdigit():
            v = int(body, 8)
        else:
            v = int(body, 10)
        v = -v if neg else v
        if -(1 << 63) <= v < (1 << 63):
            return v
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


class Expr:
    """Base expression node."""

    __slots__ = ()

    def eval(self, scope: Scope) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def fmt(self, f: Formatter) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def is_aggregate(self, scope: Scope) -> bool:
        """True when the expression calls an aggregate function."""
        return False

    def to_string(self) -> str:
        """FormatToString of this node."""
        f = Formatter()
        self.fmt(f)
        return f.text()


class Const(Expr):
    """String/number/bool/NULL literal."""

    __slots__ = ("text", "value")

    def __init__(self, text: str, value: object) -> None:
        self.text = text
        self.value = value

    def eval(self, scope: Scope) -> Any:
        return self.value

    def fmt(self, f: Formatter) -> None:
        f.push(self.text)


def number_const(text: str) -> Const:
    """A number literal; re-formats like vfilter (ints base 10, floats with '.0')."""
    v = parse_go_number(text)
    if isinstance(v, int):
        return Const(str(v), v)
    if isinstance(v, float):
        r = repr(v)
        if "e" in r or "inf" in r or "nan" in r:
            r = f"{v:f}".rstrip("0")
        if "." not in r:
            r += ".0"
        if r.endswith("."):
            r += "0"
        return Const(r, v)
    return Const("NULL", None)


class SubExpr(Expr):
    """Parenthesised expression."""

    __slots__ = ("inner",)

    def __init__(self, inner: Expr) -> None:
        self.inner = inner

    def eval(self, scope: Scope) -> Any:
        return self.inner.eval(scope)

    def fmt(self, f: Formatter) -> None:
        f.push("(")
        self.inner.fmt(f)
        f.push(")")

    def is_aggregate(self, scope: Scope) -> bool:
        return self.inner.is_aggregate(scope)


class CommaExpr(Expr):
    """`a, b, c` builds a list; a single element is returned as is."""

    __slots__ = ("items",)

    def __init__(self, items: list[Expr | None]) -> None:
        self.items = items

    def eval(self, scope: Scope) -> Any:
        first = self.items[0]
        assert first is not None
        lhs = first.eval(scope)
        if len(self.items) == 1:
            return lhs
        out = [lhs]
        for it in self.items[1:]:
            if it is None:
                return out
            out.append(it.eval(scope))
        return out

    def fmt(self, f: Formatter) -> None:
        first = self.items[0]
        assert first is not None
        first.fmt(f)
        for it in self.items[1:]:
            f.push(",", " ")
            if it is not None:
                it.fmt(f)

    def is_aggregate(self, scope: Scope) -> bool:
        return any(i is not None and i.is_aggregate(scope) for i in self.items)


class BinChain(Expr):
    """Left-associative chain of one precedence level."""

    __slots__ = ("left", "rest")

    def __init__(self, left: Expr, rest: list[tuple[str, Expr]]) -> None:
        self.left = left
        self.rest = rest

    def is_aggregate(self, scope: Scope) -> bool:
        return self.left.is_aggregate(scope) or any(t.is_aggregate(scope) for _, t in self.rest)

    def fmt(self, f: Formatter) -> None:
        self.left.fmt(f)
        for op, term in self.rest:
            f.push(" ", op, " ")
            term.fmt(f)


class AndExpr(BinChain):
    """AND / && (lowest precedence)."""

    __slots__ = ()

    def eval(self, scope: Scope) -> Any:
        left = self.left.eval(scope)
        if not P.to_bool(scope, left):
            return False
        last = left
        for op, term in self.rest:
            right = term.eval(scope)
            if not P.to_bool(scope, right):
                return False
            last = right if op == "&&" else True
        return last

    def fmt(self, f: Formatter) -> None:
        self.left.fmt(f)
        for op, term in self.rest:
            f.line_break()
            f.push(" ", op, " ")
            term.fmt(f)


class OrExpr(BinChain):
    """OR / || (binds tighter than AND in vfilter)."""

    __slots__ = ()

    def eval(self, scope: Scope) -> Any:
        left = self.left.eval(scope)
        if P.to_bool(scope, left):
            return left
        last = left
        for op, term in self.rest:
            right = term.eval(scope)
            if P.to_bool(scope, right):
                return right if op.startswith("|") else True
            last = right
        return last


class NotExpr(Expr):
    """NOT operand."""

    __slots__ = ("operand",)

    def __init__(self, operand: Expr) -> None:
        self.operand = operand

    def eval(self, scope: Scope) -> Any:
        return not P.to_bool(scope, self.operand.eval(scope))

    def fmt(self, f: Formatter) -> None:
        f.push("NOT ")
        self.operand.fmt(f)

    def is_aggregate(self, scope: Scope) -> bool:
        return self.operand.is_aggregate(scope)


class Compare(Expr):
    """Comparison, IN and =~."""

    __slots__ = ("left", "op", "right")

    def __init__(self, left: Expr, op: str, right: Expr) -> None:
        self.left = left
        self.op = op
        self.right = right

    def eval(self, scope: Scope) -> Any:
        a = self.left.eval(scope)
        b = self.right.eval(scope)
        op = self.op
        if op == "=":
            return P.eq(scope, a, b)
        if op in ("!=", "<>"):
            return not P.eq(scope, a, b) if op == "!=" else False
        if op == "<":
            return P.lt(scope, a, b)
        if op == ">":
            return P.gt(scope, a, b)
        if op == "<=":
            return P.lt(scope, a, b) or P.eq(scope, a, b)
        if op == ">=":
            return P.gt(scope, a, b) or P.eq(scope, a, b)
        if op == "IN":
            return P.membership(scope, a, b)
        if op == "=~":
            return P.match(scope, b, a)
        return False

    def fmt(self, f: Formatter) -> None:
        self.left.fmt(f)
        f.push(" ", self.op, " ")
        self.right.fmt(f)

    def is_aggregate(self, scope: Scope) -> bool:
        return self.left.is_aggregate(scope) or self.right.is_aggregate(scope)


class Arith(BinChain):
    """+ - * / chains."""

    __slots__ = ()

    def eval(self, scope: Scope) -> Any:
        res = self.left.eval(scope)
        for op, term in self.rest:
            v = term.eval(scope)
            if op == "+":
                res = P.add(scope, res, v)
            elif op == "-":
                res = P.sub(scope, res, v)
            elif op == "*":
                res = P.mul(scope, res, v)
            else:
                res = P.div(scope, res, v)
        return res


class Member(Expr):
    """`value[...]`, `value[a:b]`, `value.name` chains."""

    __slots__ = ("terms", "value")

    def __init__(self, value: Expr, terms: list[tuple[Any, ...]]) -> None:
        self.value = value
        self.terms = terms

    def eval(self, scope: Scope) -> Any:
        lhs = self.value.eval(scope)
        for term in self.terms:
            kind = term[0]
            if kind == "slice":
                bounds: list[int | None] = []
                for e in term[1:]:
                    if e is None:
                        bounds.append(None)
                        continue
                    i = P.to_int(e.eval(scope))
                    if i is None:
                        return None
                    bounds.append(i)
                lhs, pres = associative(scope, lhs, (bounds[0], bounds[1]))
            elif kind == "index":
                lhs, pres = associative(scope, lhs, term[1].eval(scope))
            elif kind == "dot":
                lhs, pres = associative(scope, lhs, unquote_ident(term[1]))
            else:
                pres = False
            if not pres:
                return None
        return lhs

    def fmt(self, f: Formatter) -> None:
        self.value.fmt(f)
        for term in self.terms:
            kind = term[0]
            if kind == "slice":
                f.push("[")
                if term[1] is not None:
                    term[1].fmt(f)
                f.push(":")
                if term[2] is not None:
                    term[2].fmt(f)
                f.push("]")
            elif kind == "index":
                f.push("[")
                term[1].fmt(f)
                f.push("]")
            elif kind == "dot":
                f.push(".", term[1])
            else:
                f.push("[", "]")

    def is_aggregate(self, scope: Scope) -> bool:
        return self.value.is_aggregate(scope)
