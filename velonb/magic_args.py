"""Arguments of ``%%vql`` / ``%vql`` / ``%vql_config`` and the ``{name}`` parameter syntax.

Pure Python (no IPython import) so it can be tested and reused on its own: the magics in
:mod:`velonb.magics` only call :func:`parse_vql_line`, :func:`parse_config_line`,
:func:`expand_parameters` and :func:`resolve_parameters`.

Parameters: outside string literals and comments, ``{name}`` or ``{name.attr}`` (no spaces) is a
parameter. It is replaced by a bare VQL variable and the Python value is bound through the query
env, so the value never enters the VQL text. Every other brace is VQL (``query={ SELECT ... }``).
``{{name}}`` is the escape for a literal ``{name}``. A parameter inside a quoted string is an error,
because quoting would turn it into the literal text ``{name}``.
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from velonb.errors import ParameterError


class MagicArgumentError(ValueError):
    """The magic line could not be parsed (unknown option, bad value, misplaced VQL)."""


# --- %%vql / %vql options --------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise ValueError(text)
    return key, value


_CACHE_WORD = re.compile(r"^(on|off|\d+(\.\d+)?\s*(s|m|min|h|d|w))$", re.IGNORECASE)


def _cache_value(text: str) -> str:
    if not _CACHE_WORD.match(text.strip()):
        raise ValueError(text)
    return text.strip().lower()


def _cache_policy(text: str) -> str:
    """A session cache policy: off, on/use, refresh, replay, or a TTL such as 2h."""
    lowered = text.strip().lower()
    if lowered in ("off", "on", "use", "refresh", "replay") or _CACHE_WORD.match(lowered):
        return lowered
    raise ValueError(text)


def _size(text: str) -> str:
    from velonb.cache import parse_size

    parse_size(text)
    return text.strip()


_cache_value.__name__ = "TTL (e.g. 2h, 7d), on or off"
_cache_policy.__name__ = "off, on, refresh, replay or a TTL such as 2h"
_size.__name__ = "size such as 500MB or 5GB (none: no cap)"
_positive_int.__name__ = "positive integer"
_positive_float.__name__ = "positive number"
_key_value.__name__ = "KEY=VALUE"

# (flag, metavar or None for a switch, type, help). The help text of %%vql is built from this.
VQL_OPTIONS: list[tuple[str, str | None, Any, str]] = [
    ("--org", "ORG", str, "run in this org (default: %vql_config --org, else the root org)"),
    ("--timeout", "SECONDS", _positive_float,
     "server-side timeout; the rows received before it are kept in _vql_partial"),
    ("--max-rows", "N", _positive_int, "stop after N rows; the summary says when rows were cut"),
    ("--rows", "N", _positive_int, "show at most N rows of the table (default: display_rows)"),
    ("--env", "KEY=VALUE", _key_value,
     "bind a string variable KEY (repeatable); same as a {KEY} parameter holding a str"),
    ("--strict", None, None, "fail when the server logs an ERROR line (default: show it)"),
    ("--stream", None, None,
     "event query: a live table of the latest rows until --duration, --max-rows or interrupt"),
    ("--duration", "SECONDS", _positive_float, "with --stream: stop after this many seconds"),
    ("--keep", "N", _positive_int, "with --stream: rows shown in the live table (stream_rows)"),
    ("--cache", "[TTL]", _cache_value,
     "use the Parquet cache: replay a cached result younger than TTL (2h, 7d; none: any age), "
     "else run and store it; --cache off skips the session default"),
    ("--refresh", None, None, "run on the server even if cached, and store the new result"),
    ("--quiet", None, None, "no progress, summary or log panel (errors still show)"),
    ("--dry-run", None, None, "show the exact request (VQL, env, typed parameters); send nothing"),
    ("--debug", None, None, "show full Python tracebacks for errors"),
    ("--help", None, None, "show this help"),
]
_VALUE_OPTIONS = {flag for flag, metavar, _, _ in VQL_OPTIONS if metavar}


@dataclass
class VqlArgs:
    """The parsed magic line of ``%%vql`` (``vql`` is the query text of the line form)."""

    dest: str | None = None
    vql: str = ""
    org: str | None = None
    timeout: float | None = None
    max_rows: int | None = None
    rows: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    stream: bool = False
    duration: float | None = None
    keep: int | None = None
    cache: str | None = None
    refresh: bool = False
    quiet: bool = False
    dry_run: bool = False
    debug: bool = False
    help: bool = False


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing and exiting."""

    def __init__(self, prog: str, valid: str) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False)
        self.valid = valid

    def error(self, message: str) -> Any:
        raise MagicArgumentError(f"{self.prog}: {message}\nvalid options: {self.valid}")


def _option_list(options: list[tuple[str, str | None, Any, str]]) -> str:
    return ", ".join(f"{flag} {metavar}" if metavar else flag for flag, metavar, _, _ in options)


def _vql_parser(cell: bool) -> _Parser:
    parser = _Parser("%%vql" if cell else "%vql", _option_list(VQL_OPTIONS))
    if cell:
        parser.add_argument("dest", nargs="?")
    for flag, metavar, kind, _ in VQL_OPTIONS:
        dest = flag[2:].replace("-", "_")
        if metavar is None:
            parser.add_argument(flag, dest=dest, action="store_true")
        elif flag == "--cache":
            parser.add_argument(flag, dest=dest, type=kind, nargs="?", const="on",
                                metavar=metavar)
        elif flag == "--env":
            parser.add_argument(flag, dest=dest, type=kind, action="append", default=[])
        else:
            parser.add_argument(flag, dest=dest, type=kind, metavar=metavar)
    return parser


def _read_token(line: str, pos: int) -> tuple[str, int]:
    """One shell-like word starting at ``pos`` (quotes group, are removed): (word, end)."""
    out: list[str] = []
    while pos < len(line) and not line[pos].isspace():
        char = line[pos]
        if char in "'\"":
            close = line.find(char, pos + 1)
            if close < 0:
                raise MagicArgumentError(f"unbalanced {char} in the magic options")
            out.append(line[pos + 1 : close])
            pos = close + 1
        else:
            out.append(char)
            pos += 1
    return "".join(out), pos


def _split_words(line: str) -> list[str]:
    words: list[str] = []
    pos = 0
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos >= len(line):
            return words
        word, pos = _read_token(line, pos)
        words.append(word)


def _leading_options(line: str) -> tuple[list[str], str]:
    """Split ``%vql`` line text into its leading options and the VQL that follows them."""
    words: list[str] = []
    pos = 0
    expect_value = False
    while True:
        while pos < len(line) and line[pos].isspace():
            pos += 1
        if pos >= len(line):
            return words, ""
        if not expect_value and not line.startswith("-", pos):
            return words, line[pos:]
        word, end = _read_token(line, pos)
        if word == "--" and not expect_value:  # explicit end of options
            return words, line[end:].lstrip()
        words.append(word)
        pos = end
        if word == "--cache" and not expect_value:  # an optional value: only a TTL/on/off
            nxt = line[pos:].lstrip()
            token = _read_token(nxt, 0)[0] if nxt else ""
            expect_value = bool(_CACHE_WORD.match(token))
            continue
        expect_value = not expect_value and "=" not in word and word in _VALUE_OPTIONS


def parse_vql_line(line: str, *, cell: bool) -> VqlArgs:
    """Parse ``%%vql [DEST] [options]`` (``cell=True``) or ``%vql [options] VQL``."""
    if cell:
        words = _split_words(line)
        rest = ""
        if words and words[0].upper() in ("SELECT", "LET", "EXPLAIN"):
            raise MagicArgumentError(
                "%%vql: the VQL goes in the cell body, below the %%vql line; "
                "for a one-line query use the line magic: %vql SELECT ..."
            )
    else:
        words, rest = _leading_options(line)
    words = [f"{w}=on" if w == "--cache" and (i + 1 == len(words)
                                               or not _CACHE_WORD.match(words[i + 1])) else w
             for i, w in enumerate(words)]
    namespace = _vql_parser(cell).parse_args(words)
    values = vars(namespace)
    env = dict(values.pop("env"))
    args = VqlArgs(env=env, vql=rest, **values)
    if args.dest is not None and (not args.dest.isidentifier() or keyword.iskeyword(args.dest)):
        raise MagicArgumentError(
            f"%%vql: DEST {args.dest!r} is not a Python variable name; "
            "write %%vql NAME [options] (or leave DEST out to display the result)"
        )
    if not args.stream and (args.duration is not None or args.keep is not None):
        raise MagicArgumentError("%%vql: --duration and --keep only apply with --stream")
    return args


# --- %vql_config ---------------------------------------------------------------------------------


def _optional(convert: Any) -> Any:
    def parse(text: str) -> Any:
        return None if text.strip().lower() in ("none", "0", "") else convert(text)

    parse.__name__ = f"{convert.__name__} or none"
    return parse


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


_boolean.__name__ = "true/false"

# Setting name -> converter from text. The names are the traits of velonb.settings.Velonb.
SETTING_TYPES: dict[str, Any] = {
    "timeout": _optional(_positive_float),
    "max_rows": _optional(_positive_int),
    "display_rows": _positive_int,
    "stream_rows": _positive_int,
    "strict": _boolean,
    "debug": _boolean,
    "progress": str,
    "cache": _cache_policy,
    "offline": _boolean,
    "cache_dir": str,
    "cache_max_size": _size,
}

CONFIG_OPTIONS: list[tuple[str, str | None, Any, str]] = [
    ("--org", "ORG", str, "default org of every query ('root' or '' for the root org)"),
    ("--timeout", "SECONDS", SETTING_TYPES["timeout"], "default server-side timeout (none: off)"),
    ("--max-rows", "N", SETTING_TYPES["max_rows"], "default row limit (none: no limit)"),
    ("--display-rows", "N", _positive_int, "rows shown of a displayed table"),
    ("--stream-rows", "N", _positive_int, "rows kept in the live --stream table"),
    ("--strict", None, None, "fail on server ERROR lines"),
    ("--no-strict", None, None, "show server ERROR lines in the log panel (default)"),
    ("--debug", None, None, "show full tracebacks"),
    ("--no-debug", None, None, "short error messages (default)"),
    ("--progress", "MODE", str, "auto, notebook, terminal or off"),
    ("--cache", "POLICY", _cache_policy,
     "result cache of every cell: off, on (no expiry), a TTL such as 2h, refresh, replay"),
    ("--offline", None, None, "answer every query from the cache; never connect"),
    ("--online", None, None, "leave offline mode (also for unpacked cases)"),
    ("--cache-dir", "DIR", str, "the cache directory of this session (e.g. a per-notebook one)"),
    ("--cache-max-size", "SIZE", _size, "size cap of the cache; oldest entries go first"),
]


@dataclass
class ConfigArgs:
    """``%vql_config [CONFIG_PATH_OR_PROFILE] [--org ORG] [options] [name=value ...]``."""

    config_path: str | None = None
    profile: str | None = None
    org: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


def _looks_like_path(target: str) -> bool:
    return (os.sep in target or "/" in target or target.endswith((".yaml", ".yml"))
            or target.startswith("~") or os.path.exists(target))


def parse_config_line(line: str) -> ConfigArgs:
    """Parse ``%vql_config``: a config path or profile name, --org and settings."""
    parser = _Parser("%vql_config", _option_list(CONFIG_OPTIONS) + ", NAME=VALUE")
    parser.add_argument("items", nargs="*")
    for flag, metavar, kind, _ in CONFIG_OPTIONS:
        dest = flag[2:].replace("-", "_")
        if metavar is None:
            parser.add_argument(flag, dest=dest, action="store_true")
        else:
            parser.add_argument(flag, dest=dest, type=kind, metavar=metavar)
    namespace = parser.parse_intermixed_args(_split_words(line))
    out = ConfigArgs(org=namespace.org)
    for flag in ("strict", "debug"):
        if getattr(namespace, flag) and getattr(namespace, f"no_{flag}"):
            raise MagicArgumentError(f"%vql_config: --{flag} and --no-{flag} contradict")
        if getattr(namespace, flag) or getattr(namespace, f"no_{flag}"):
            out.settings[flag] = bool(getattr(namespace, flag))
    if namespace.offline and namespace.online:
        raise MagicArgumentError("%vql_config: --offline and --online contradict")
    if namespace.offline or namespace.online:
        out.settings["offline"] = bool(namespace.offline)
    for name in ("timeout", "max_rows", "display_rows", "stream_rows", "progress", "cache",
                 "cache_dir", "cache_max_size"):
        if getattr(namespace, name) is not None:
            out.settings[name] = getattr(namespace, name)
    if "--timeout" in line and namespace.timeout is None:
        out.settings["timeout"] = None
    if "--max-rows" in line and namespace.max_rows is None:
        out.settings["max_rows"] = None
    targets = []
    for item in namespace.items:
        name, sep, text = item.partition("=")
        if not sep or _looks_like_path(item):
            targets.append(item)
            continue
        if name not in SETTING_TYPES:
            raise MagicArgumentError(
                f"%vql_config: unknown setting {name!r}; settings: {', '.join(SETTING_TYPES)}"
            )
        try:
            out.settings[name] = SETTING_TYPES[name](text)
        except ValueError:
            raise MagicArgumentError(
                f"%vql_config: {name}={text!r} is not a valid "
                f"{SETTING_TYPES[name].__name__}") from None
    if len(targets) > 1:
        raise MagicArgumentError(
            f"%vql_config: one config path or profile at most, got {targets}")
    if targets:
        target = os.path.expanduser(targets[0])
        if _looks_like_path(targets[0]):
            out.config_path = target
        else:
            out.profile = targets[0]
    return out


# --- {name} parameters ---------------------------------------------------------------------------

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
_ESCAPED = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}\}")
# VQL keywords (reserved everywhere in VQL) and velonb's own env names cannot be variables.
_VQL_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "as", "let", "limit",
                 "order", "group", "by", "desc", "asc", "true", "false", "null", "explain",
                 "_velonb_params"}


@dataclass
class Template:
    """Cell VQL with parameters replaced by variables; maps columns back to the cell text."""

    source: str
    text: str
    params: dict[str, str] = field(default_factory=dict)  # VQL variable -> Python reference
    _shifts: list[tuple[int, int, int]] = field(default_factory=list)  # (line, new col, delta)

    def source_column(self, line: int, column: int) -> int:
        """The 1-based column in the cell of ``column`` in the sent VQL (same line numbers)."""
        delta = sum(d for ln, col, d in self._shifts if ln == line and col < column)
        return column + delta


def _variable_for(reference: str, taken: dict[str, str]) -> str:
    for name, ref in taken.items():
        if ref == reference:
            return name
    base = reference.replace(".", "_")
    if base.lower() in _VQL_KEYWORDS:
        base += "_"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


def _string_end(text: str, pos: int) -> int:
    """The index after the string literal (or backtick name) starting at ``pos``."""
    if text.startswith("'''", pos):
        end = text.find("'''", pos + 3)
        return len(text) if end < 0 else end + 3
    quote = text[pos]
    i = pos + 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return len(text)


def expand_parameters(vql: str) -> Template:
    """Replace ``{name}`` parameters by VQL variables (see the module docstring for the rules)."""
    out: list[str] = []
    template = Template(source=vql, text="")
    line, column, i = 1, 1, 0  # position in the output text

    def emit(chunk: str) -> None:
        nonlocal line, column
        out.append(chunk)
        newlines = chunk.count("\n")
        if newlines:
            line += newlines
            column = len(chunk) - chunk.rfind("\n")
        else:
            column += len(chunk)

    while i < len(vql):
        char = vql[i]
        if char in "'\"`":
            end = _string_end(vql, i)
            literal = vql[i:end]
            found = _PARAM.search(_ESCAPED.sub("", literal))
            if found and char != "`":
                raise ParameterError(
                    f"parameter {found.group(0)} is inside a quoted string (line {line}): "
                    "velonb binds values, it never pastes them into the text",
                    hint=f"remove the quotes: ... = {found.group(0)} (the value arrives as a "
                         f"string by itself); for a literal {found.group(0)} write "
                         f"{{{found.group(0)}}}",
                )
            unescaped = _ESCAPED.sub(r"{\1}", literal)
            template._shifts.append((line, column, len(literal) - len(unescaped)))
            emit(unescaped)
            i = end
            continue
        if vql.startswith(("//", "--"), i):
            end = vql.find("\n", i)
            end = len(vql) if end < 0 else end
            emit(vql[i:end])
            i = end
            continue
        if vql.startswith("/*", i):
            end = vql.find("*/", i + 2)
            end = len(vql) if end < 0 else end + 2
            emit(vql[i:end])
            i = end
            continue
        escaped = _ESCAPED.match(vql, i)
        if escaped:
            template._shifts.append((line, column, 2))
            emit("{" + escaped.group(1) + "}")
            i = escaped.end()
            continue
        param = _PARAM.match(vql, i)
        if param:
            name = _variable_for(param.group(1), template.params)
            template.params[name] = param.group(1)
            template._shifts.append((line, column, len(param.group(0)) - len(name)))
            emit(name)
            i = param.end()
            continue
        emit(char)
        i += 1
    template.text = "".join(out)
    return template


_MISSING = object()


def _lookup(reference: str, namespace: Mapping[str, Any]) -> Any:
    head, *attrs = reference.split(".")
    value = namespace.get(head, _MISSING)
    for attr in attrs:
        if value is _MISSING:
            break
        if isinstance(value, Mapping):
            value = value.get(attr, _MISSING)
        else:
            value = getattr(value, attr, _MISSING)
    return value


def resolve_parameters(template: Template, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """VQL variable -> Python value for every parameter; one clear error for all unknown ones."""
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, reference in template.params.items():
        value = _lookup(reference, namespace)
        if value is _MISSING:
            missing.append(reference)
        else:
            values[name] = value
    if missing:
        listed = ", ".join("{" + ref + "}" for ref in missing)
        raise ParameterError(
            f"unknown parameter{'s' if len(missing) > 1 else ''} {listed}: no such variable "
            "in the notebook; nothing was sent",
            hint="define it in a cell above, or write {{name}} to send a literal {name}",
        )
    return values
