"""Built-in VQL functions (vfilter builtins plus the velociraptor ones the emulator needs)."""

from __future__ import annotations

import datetime as _dt
import json
import time
from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.associative import associative, rfc3339
from velonb.emulator.vql.gofmt import go_value, sprintf
from velonb.emulator.vql.registry import Arg, Lazy, VQLCallError, function
from velonb.emulator.vql.scope import Scope

_LEVELS = ("DEFAULT", "ERROR", "INFO", "WARN", "DEBUG", "ALERT")


def _reduce(v: object) -> object:
    return v.reduce() if isinstance(v, Lazy) else v


def _format_args(v: object) -> list[object]:
    if v is None:
        return []
    if isinstance(v, list):
        return list(v)
    return [v]


def parse_time_int(v: int) -> _dt.datetime:
    """utils.ParseTimeFromInt64: ns, µs or ms when past year 2603 in the smaller unit, else
    seconds (negative numbers too); 0 is Go's zero time."""
    try:
        if v > 20_000_000_000_000_000:
            nanoseconds = v
        elif v > 20_000_000_000_000:
            nanoseconds = v * 1000
        elif v > 20_000_000_000:
            nanoseconds = v * 1_000_000
        elif v == 0:
            return P.ZERO_TIME
        else:
            return P.EPOCH + _dt.timedelta(seconds=v)
        return P.EPOCH + _dt.timedelta(microseconds=nanoseconds // 1000)
    except OverflowError:
        return P.ZERO_TIME


_UNSET = object()


def parse_zone(scope: Scope) -> _dt.tzinfo:
    """functions.getTimezone, once per query as GetTimeCache keeps it: the zone a time string
    without one is read in - ``PARSE_TZ`` (``local`` for the server's), else ``TZ``, else UTC.
    A zone Go cannot load logs why and falls back to UTC."""
    cached = scope.shared.cache.get("parse_tz", _UNSET)
    if cached is not _UNSET:
        assert isinstance(cached, _dt.tzinfo)
        return cached
    zone: _dt.tzinfo = P.UTC
    for var in ("PARSE_TZ", "TZ"):
        value, present = scope.resolve(var)
        value = _reduce(value)
        if not present or not isinstance(value, str):
            continue
        if value in ("", "UTC"):
            break
        if value == "Local" or (var == "PARSE_TZ" and value.lower() == "local"):
            zone = _dt.datetime.now().astimezone().tzinfo or P.UTC
            break
        try:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(value)
        except (ValueError, OSError, KeyError):
            scope.log(f"Unable to load timezone from {var} {value}: unknown time zone {value}, "
                      "using UTC")
        break
    scope.shared.cache["parse_tz"] = zone
    return zone


# layouts dateparse.ParseAny also reads (a subset: ISO 8601 is tried first)
_TIME_LAYOUTS = ("%Y-%m-%d %H:%M:%S %z", "%a %b %d %H:%M:%S %Y", "%d/%m/%Y %H:%M:%S",
                 "%Y/%m/%d %H:%M:%S", "%a, %d %b %Y %H:%M:%S %z", "%B %d %Y", "%b %d %Y",
                 "%B %d, %Y", "%b %d, %Y")


def _parse_time_string(s: str, zone: _dt.tzinfo = P.UTC) -> _dt.datetime | None:
    """A time from text; text without a zone is read in ``zone`` (see `parse_zone`)."""
    txt = s.strip()
    if txt.endswith("Z"):
        txt = txt[:-1] + "+00:00"
    try:
        t = _dt.datetime.fromisoformat(txt)
    except ValueError:
        for fmt in _TIME_LAYOUTS:
            try:
                t = _dt.datetime.strptime(s.strip(), fmt)
                break
            except ValueError:
                continue
        else:
            return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone)
    return t.astimezone(P.UTC)


def time_from_any(scope: Scope, v: object) -> _dt.datetime | None:
    """functions.TimeFromAny (None when the value cannot be a time)."""
    v = _reduce(v)
    if isinstance(v, _dt.datetime):
        return v.astimezone(P.UTC)
    if isinstance(v, float):
        if v == 0:
            return P.ZERO_TIME
        return P.EPOCH + _dt.timedelta(seconds=v)
    if isinstance(v, str):
        if v == "":
            return P.ZERO_TIME
        try:
            return time_from_any(scope, int(v, 10))
        except ValueError:
            return _parse_time_string(v, parse_zone(scope))
    if v is None:
        return None
    i = P.to_int(v)
    if i is None:
        return None
    if i == 0:
        return P.ZERO_TIME
    return parse_time_int(i)


@function("timestamp", Arg("epoch"), Arg("cocoatime", "int"), Arg("mactime", "int"),
          Arg("winfiletime", "int"), Arg("string", "str"), Arg("format", "str"))
def timestamp(scope: Scope, args: dict[str, Any]) -> object:
    """Convert from different types to a time."""
    if args.get("cocoatime", 0) > 0:
        return P.EPOCH + _dt.timedelta(seconds=args["cocoatime"] + 978307200)
    if args.get("mactime", 0) > 0:
        return P.EPOCH + _dt.timedelta(seconds=args["mactime"] - 2082844800)
    if args.get("winfiletime", 0) > 0:
        return P.EPOCH + _dt.timedelta(microseconds=args["winfiletime"] // 10 - 11644473600_000000)
    epoch = args.get("epoch")
    if args.get("string"):
        epoch = args["string"]
    if args.get("format") and isinstance(epoch, str):
        try:  # time.ParseInLocation(format, string, the parse zone)
            t = _dt.datetime.strptime(epoch, _go_layout(args["format"]))
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=parse_zone(scope))
        return t.astimezone(P.UTC)
    return time_from_any(scope, epoch)


# Go layout elements (time.nextStdChunk), longest first, and their strptime directives
_GO_LAYOUT = (("January", "%B"), ("Monday", "%A"), ("2006", "%Y"), ("Z07:00", "%z"),
              ("-07:00", "%z"), ("-0700", "%z"), ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"),
              ("01", "%m"), ("02", "%d"), ("_2", "%d"), ("15", "%H"), ("03", "%I"),
              ("04", "%M"), ("05", "%S"), ("06", "%y"), ("PM", "%p"), ("pm", "%p"),
              ("1", "%m"), ("2", "%d"), ("3", "%I"), ("4", "%M"), ("5", "%S"))


def _go_layout(layout: str) -> str:
    """A Go time layout as a strptime format (one left-to-right pass, as Go reads it)."""
    out, i = [], 0
    while i < len(layout):
        for go, py in _GO_LAYOUT:
            if layout.startswith(go, i):
                out.append(py)
                i += len(go)
                break
        else:
            out.append("%%" if layout[i] == "%" else layout[i])
            i += 1
    return "".join(out)


@function("now")
def now(scope: Scope, args: dict[str, Any]) -> object:
    """Current time (seconds since epoch)."""
    return int(time.time())


@function("log", Arg("message", "str", required=True), Arg("dedup", "int"), Arg("args"),
          Arg("level", "str"), error_value=False)
def log_(scope: Scope, args: dict[str, Any]) -> object:
    """Log a message (LEVEL:-prefixed, args applied Go-style, 60 s dedup)."""
    message = args["message"]
    dedup = args.get("dedup", 0) or 60
    cache: dict[str, float] = scope.cache.setdefault("__log_dedup", {})
    now_s = int(time.time())
    last = cache.get(message)
    if last is not None and dedup > 0 and last + dedup > now_s:
        return True
    cache[message] = now_s
    level = str(args.get("level", "")).upper()
    if level not in _LEVELS:
        level = "DEFAULT"
    text = f"{level}:{message}"
    if args.get("args") is not None:
        text = sprintf(text, _format_args(P.materialize_value(scope, args["args"])))
    scope.log(text)
    return True


@function("format", Arg("format", "str", required=True), Arg("args"), error_value=False)
def format_(scope: Scope, args: dict[str, Any]) -> object:
    """Go fmt.Sprintf."""
    values = _format_args(P.materialize_value(scope, args.get("args")))
    values = [rfc3339(v) if isinstance(v, _dt.datetime) else v for v in values]
    return sprintf(args["format"], values)


@function("sleep", Arg("time", "int"), Arg("ms", "int"), error_value=False)
def sleep(scope: Scope, args: dict[str, Any]) -> object:
    """Sleep (cancellable)."""
    ms = args.get("ms", 0) or args.get("time", 0) * 1000
    if ms > 0:
        scope.cancel.wait(ms / 1000.0)
    return True


def _json_value(v: Any) -> Any:
    return v


@function("parse_json", Arg("data", "str", required=True))
def parse_json(scope: Scope, args: dict[str, Any]) -> object:
    """Parse JSON into dicts/lists."""
    try:
        return json.loads(args["data"])
    except json.JSONDecodeError as e:
        raise VQLCallError(str(e)) from None


@function("dict", free_form=True)
def dict_(scope: Scope, args: dict[str, Any]) -> object:
    """Build a dict from the named args."""
    return {k: P.materialize_value(scope, v) for k, v in args.items()}


@function("count", Arg("items"), aggregate=True)
def count(scope: Scope, args: dict[str, Any], site: int) -> object:
    """Count rows (aggregate)."""
    ag = scope.aggregator()
    ag[site] = ag.get(site, 0) + 1
    return ag[site]


@function("sum", Arg("item", "int", required=True), aggregate=True)
def sum_(scope: Scope, args: dict[str, Any], site: int) -> object:
    """Sum items (aggregate)."""
    ag = scope.aggregator()
    ag[site] = P.wrap_int(ag.get(site, 0) + args["item"])
    return ag[site]


def _minmax(scope: Scope, args: dict[str, Any], site: int, want_lt: bool) -> object:
    ag = scope.aggregator()
    item = args.get("item")
    if site not in ag:
        ag[site] = item
    else:
        prev = ag[site]
        better = P.lt(scope, item, prev) if want_lt else P.gt(scope, item, prev)
        if better:
            ag[site] = item
    return ag[site]


@function("min", Arg("item", required=True), aggregate=True)
def min_(scope: Scope, args: dict[str, Any], site: int) -> object:
    """Minimum (aggregate)."""
    return _minmax(scope, args, site, True)


@function("max", Arg("item", required=True), aggregate=True)
def max_(scope: Scope, args: dict[str, Any], site: int) -> object:
    """Maximum (aggregate)."""
    return _minmax(scope, args, site, False)


@function("enumerate", Arg("items"), aggregate=True)
def enumerate_(scope: Scope, args: dict[str, Any], site: int) -> object:
    """Collect items into a list (aggregate)."""
    ag = scope.aggregator()
    ag.setdefault(site, []).append(args.get("items"))
    return list(ag[site])


@function("len", Arg("list", required=True))
def len_(scope: Scope, args: dict[str, Any]) -> object:
    """Length of a list, dict or string."""
    v = P.materialize_value(scope, args["list"])
    if isinstance(v, str):  # Go's len: the string's bytes
        if v.isascii():
            return len(v)
        from velonb.emulator.vql.functions_text import go_bytes

        return len(go_bytes(v))
    if isinstance(v, list | dict):
        return len(v)
    return 0


@function("if", Arg("condition", "lazy", required=True), Arg("then", "lazy"),
          Arg("else", "lazy"))
def if_(scope: Scope, args: dict[str, Any]) -> object:
    """Conditional; only the chosen branch is evaluated."""
    cond = _reduce(args["condition"])
    branch = args.get("then") if P.to_bool(scope, cond) else args.get("else")
    return _reduce(branch)


@function("get", Arg("item"), Arg("member", "str"), Arg("field"), Arg("default"))
def get(scope: Scope, args: dict[str, Any]) -> object:
    """Get a member (dotted path) or field of an item (default: the scope)."""
    item: object = args.get("item", scope)
    default = args.get("default")
    if "field" in args:
        v, ok = associative(scope, item, args["field"])
        return v if ok else default
    member = args.get("member", "")
    for part in member.split(".") if member else []:
        key: object = part
        if isinstance(P.materialize_value(scope, item), list):
            try:
                key = int(part)
            except ValueError:
                key = part
        v, ok = associative(scope, item, key)
        if not ok:
            return default
        item = v
    return item


@function("str", Arg("str", required=True), error_value=False)
def str_(scope: Scope, args: dict[str, Any]) -> object:
    """Convert to string."""
    v = args["str"]
    return v if isinstance(v, str) else go_value(v)


@function("int", Arg("int"), error_value=False)
def int_(scope: Scope, args: dict[str, Any]) -> object:
    """Truncate to an integer."""
    v = args.get("int")
    if isinstance(v, str):
        from velonb.emulator.vql.nodes import parse_go_number

        r = parse_go_number(v.strip()) if v.strip() else 0
        return r if isinstance(r, int) else 0
    if isinstance(v, bool):
        return 0
    if isinstance(v, int | float):
        return int(v)
    return 0


@function("lowcase", Arg("string", "str", required=True))
def lowcase(scope: Scope, args: dict[str, Any]) -> object:
    """Lowercase a string."""
    return args["string"].lower()


@function("upcase", Arg("string", "str", required=True))
def upcase(scope: Scope, args: dict[str, Any]) -> object:
    """Uppercase a string."""
    return args["string"].upper()


@function("split", Arg("string", "str", required=True), Arg("sep", "str", required=True),
          Arg("sep_string", "str"))
def split(scope: Scope, args: dict[str, Any]) -> object:
    """Split a string by a regex separator."""
    if args.get("sep_string"):
        return args["string"].split(args["sep_string"])
    try:
        rx = P.compile_go_regex(args["sep"])
    except Exception as e:
        raise VQLCallError(str(e)) from None
    return rx.split(args["string"])


@function("join", Arg("array", "list_str", required=True), Arg("sep", "str"), error_value=False)
def join(scope: Scope, args: dict[str, Any]) -> object:
    """Join strings."""
    return args.get("sep", "").join(args["array"])


@function("scope")
def scope_fn(scope: Scope, args: dict[str, Any]) -> object:
    """The current scope."""
    return scope


@function("serialize", Arg("item"), Arg("format", "str"))
def serialize(scope: Scope, args: dict[str, Any]) -> object:
    """Serialize to JSON."""
    v = P.materialize_value(scope, args.get("item"))
    return json.dumps(v, default=lambda o: rfc3339(o) if isinstance(o, _dt.datetime) else None,
                      separators=(",", ":"))
