"""``commandline_split``: velociraptor's ``vql/functions/commandline.go``.

Windows rules (the default) follow Go's ``os/exec`` CommandLineToArgv (the "prior to 2008"
double-double-quote rule included); ``bash_style=TRUE`` follows github.com/google/shlex's
``Split`` (the version pinned in velociraptor's go.mod): ``#`` starts a comment only at the
start of a word, a backslash inside double quotes escapes any character, and an unterminated
quote or a trailing backslash is an error.
"""

from __future__ import annotations

from typing import Any

from velonb.emulator.vql.functions_text import go_bytes, go_runes, go_string
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.vql.scope import Scope

# ---------------------------------------------------------------------------------------------
# Windows


def _read_next_arg(cmd: bytes) -> tuple[bytes, bytes]:
    """readNextArg: (argument, rest of the command line)."""
    out = bytearray()
    in_quote = False
    slashes = 0
    i = 0
    while i < len(cmd):
        c = cmd[i]
        if c in (0x20, 0x09) and not in_quote:
            out += b"\\" * slashes
            return bytes(out), cmd[i + 1 :]
        if c == 0x22:
            out += b"\\" * (slashes // 2)
            if slashes % 2 == 0:
                if in_quote and i + 1 < len(cmd) and cmd[i + 1] == 0x22:
                    out.append(c)
                    i += 1
                in_quote = not in_quote
            else:
                out.append(c)
            slashes = 0
            i += 1
            continue
        if c == 0x5C:
            slashes += 1
            i += 1
            continue
        out += b"\\" * slashes
        slashes = 0
        out.append(c)
        i += 1
    out += b"\\" * slashes
    return bytes(out), b""


def windows_split(command: str) -> list[str] | None:
    """CommandLineToArgv; None (Go's nil slice, JSON null) when there is no argument."""
    cmd = go_bytes(command)
    args: list[str] = []
    while cmd:
        if cmd[0] in (0x20, 0x09):
            cmd = cmd[1:]
            continue
        arg, cmd = _read_next_arg(cmd)
        args.append(go_string(arg))
    return args or None


# ---------------------------------------------------------------------------------------------
# google/shlex

_SPACE = " \t\r\n"


def shlex_split(command: str) -> list[str]:
    """google/shlex ``Split``; raises VQLCallError with its error text."""
    words: list[str] = []
    text = go_runes(command)  # bufio.ReadRune reads invalid bytes as U+FFFD
    i = 0
    n = len(text)
    while True:
        state = "start"
        kind = ""
        value: list[str] = []
        while True:
            ch = text[i] if i < n else None
            i += 1
            if state == "start":
                if ch is None:
                    return words
                if ch in _SPACE:
                    continue
                kind = "comment" if ch == "#" else "word"
                state = {'"': "dquote", "'": "squote", "\\": "escape", "#": "comment"}.get(
                    ch, "word")
                if state == "word":
                    value.append(ch)
            elif state == "word":
                if ch is None or ch in _SPACE:
                    break
                if ch == '"':
                    state = "dquote"
                elif ch == "'":
                    state = "squote"
                elif ch == "\\":
                    state = "escape"
                else:
                    value.append(ch)
            elif state in ("escape", "dquote_escape"):
                if ch is None:
                    raise VQLCallError("EOF found after escape character")
                value.append(ch)
                state = "word" if state == "escape" else "dquote"
            elif state == "dquote":
                if ch is None:
                    raise VQLCallError("EOF found when expecting closing quote")
                if ch == '"':
                    state = "word"
                elif ch == "\\":
                    state = "dquote_escape"
                else:
                    value.append(ch)
            elif state == "squote":
                if ch is None:
                    raise VQLCallError("EOF found when expecting closing quote")
                if ch == "'":
                    state = "word"
                else:
                    value.append(ch)
            elif ch is None or ch == "\n":  # comment ends at a newline or the end
                break
        if kind == "word":
            words.append("".join(value))


@function("commandline_split", Arg("command", "str", required=True),
          Arg("bash_style", "bool"), error_value=[])
def commandline_split(scope: Scope, args: dict[str, Any]) -> object:
    """Split a command line into arguments (Windows rules unless ``bash_style``)."""
    if args.get("bash_style"):
        try:
            return shlex_split(args["command"])
        except VQLCallError as err:
            scope.log(f"commandline_split: {err}")
            return []
    return windows_split(args["command"])
