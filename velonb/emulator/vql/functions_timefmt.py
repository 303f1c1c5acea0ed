"""``timestamp_format``: Go's ``time.Time.Format`` over VQL times.

Source: velociraptor ``vql/functions/time.go`` (timestamp_format: the time from
``TimeFromAny``, the layout by name from Go's time constants or as given, RFC3339 by default,
formatted in the scope's parse zone), with the layout elements of Go's ``time/format.go``.
Python times carry microseconds, so nanosecond digits past the sixth are zeros.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from velonb.emulator.vql.functions import parse_zone, time_from_any
from velonb.emulator.vql.registry import Arg, function
from velonb.emulator.vql.scope import Scope

# Go's time package layout constants (the names timestamp_format accepts).
GO_LAYOUTS = {
    "Layout": "01/02 03:04:05PM '06 -0700",
    "ANSIC": "Mon Jan _2 15:04:05 2006",
    "UnixDate": "Mon Jan _2 15:04:05 MST 2006",
    "RubyDate": "Mon Jan 02 15:04:05 -0700 2006",
    "RFC822": "02 Jan 06 15:04 MST",
    "RFC822Z": "02 Jan 06 15:04 -0700",
    "RFC850": "Monday, 02-Jan-06 15:04:05 MST",
    "RFC1123": "Mon, 02 Jan 2006 15:04:05 MST",
    "RFC1123Z": "Mon, 02 Jan 2006 15:04:05 -0700",
    "RFC3339": "2006-01-02T15:04:05Z07:00",
    "RFC3339Nano": "2006-01-02T15:04:05.999999999Z07:00",
    "Kitchen": "3:04PM",
    "Stamp": "Jan _2 15:04:05",
    "StampMilli": "Jan _2 15:04:05.000",
    "StampMicro": "Jan _2 15:04:05.000000",
    "StampNano": "Jan _2 15:04:05.000000000",
    "DateTime": "2006-01-02 15:04:05",
    "DateOnly": "2006-01-02",
    "TimeOnly": "15:04:05",
}

_ZONE_ELEMENTS = ("-070000", "-07:00:00", "-0700", "-07:00", "-07",
                  "Z070000", "Z07:00:00", "Z0700", "Z07:00", "Z07")


def _starts_lower(text: str) -> bool:
    return bool(text) and "a" <= text[0] <= "z"


def _element_at(layout: str, i: int) -> str | None:
    """The layout element starting at ``i`` (time.nextStdChunk's rules), or None."""
    rest = layout[i:]
    c = rest[0]
    if c == "J" and rest.startswith("Jan"):
        if rest.startswith("January"):
            return "January"
        return None if _starts_lower(rest[3:]) else "Jan"
    if c == "M":
        if rest.startswith("Mon"):
            if rest.startswith("Monday"):
                return "Monday"
            if not _starts_lower(rest[3:]):
                return "Mon"
        if rest.startswith("MST"):
            return "MST"
        return None
    if c == "0":
        if len(rest) >= 2 and "1" <= rest[1] <= "6":
            return rest[:2]
        if rest.startswith("002"):
            return "002"
        return None
    if c == "1":
        return "15" if rest.startswith("15") else "1"
    if c == "2":
        return "2006" if rest.startswith("2006") else "2"
    if c == "_":
        if rest.startswith("_2"):
            return None if rest.startswith("_2006") else "_2"  # "_2006" is "_" then "2006"
        return "__2" if rest.startswith("__2") else None
    if c in "345":
        return c
    if c == "P" and rest.startswith("PM"):
        return "PM"
    if c == "p" and rest.startswith("pm"):
        return "pm"
    if c in "-Z":
        return next((z for z in _ZONE_ELEMENTS if rest.startswith(z)), None)
    if c in ".," and len(rest) > 1 and rest[1] in "09":
        j = 1
        while j < len(rest) and rest[j] == rest[1]:
            j += 1
        if not (j < len(rest) and rest[j].isdigit()):
            return rest[:j]
    return None


def _zone(t: _dt.datetime, element: str) -> str:
    offset = t.utcoffset() or _dt.timedelta(0)
    seconds = int(offset.total_seconds())
    if element.startswith("Z") and seconds == 0:
        return "Z"
    sign = "-" if seconds < 0 else "+"
    seconds = abs(seconds)
    hours, minutes, secs = seconds // 3600, seconds // 60 % 60, seconds % 60
    body = element[1:]
    out = f"{sign}{hours:02d}"
    if body in ("07:00:00", "07:00"):
        out += f":{minutes:02d}"
    elif body in ("070000", "0700"):
        out += f"{minutes:02d}"
    if body == "07:00:00":
        out += f":{secs:02d}"
    elif body == "070000":
        out += f"{secs:02d}"
    return out


def _fraction(t: _dt.datetime, element: str) -> str:
    digits = f"{t.microsecond * 1000:09d}"[: len(element) - 1]
    if element[1] == "0":
        return element[0] + digits
    digits = digits.rstrip("0")
    return element[0] + digits if digits else ""


def _format_element(t: _dt.datetime, element: str) -> str:
    hour12 = t.hour % 12 or 12
    simple: dict[str, str] = {
        "January": t.strftime("%B"), "Jan": t.strftime("%b"),
        "Monday": t.strftime("%A"), "Mon": t.strftime("%a"),
        "2006": f"{t.year:04d}", "06": f"{t.year % 100:02d}",
        "01": f"{t.month:02d}", "1": str(t.month),
        "02": f"{t.day:02d}", "_2": f"{t.day:2d}", "2": str(t.day),
        "002": f"{t.timetuple().tm_yday:03d}", "__2": f"{t.timetuple().tm_yday:3d}",
        "15": f"{t.hour:02d}", "03": f"{hour12:02d}", "3": str(hour12),
        "04": f"{t.minute:02d}", "4": str(t.minute),
        "05": f"{t.second:02d}", "5": str(t.second),
        "PM": "PM" if t.hour >= 12 else "AM", "pm": "pm" if t.hour >= 12 else "am",
    }
    if element in simple:
        return simple[element]
    if element == "MST":
        name = t.tzname()
        return name if name else _zone(t, "-0700")
    if element[0] in "-Z":
        return _zone(t, element)
    return _fraction(t, element)


def go_time_format(t: _dt.datetime, layout: str) -> str:
    """Go's ``t.Format(layout)`` for an aware datetime (formatted in its own zone)."""
    out: list[str] = []
    i = 0
    while i < len(layout):
        element = _element_at(layout, i)
        if element is None:
            out.append(layout[i])
            i += 1
            continue
        out.append(_format_element(t, element))
        i += len(element)
    return "".join(out)


@function("timestamp_format", Arg("time", required=True), Arg("format", "str"))
def timestamp_format(scope: Scope, args: dict[str, Any]) -> object:
    """Format a time with a Go layout or a Go layout constant's name (RFC3339 by default), in
    the zone of ``PARSE_TZ``/``TZ``; NULL when the value is not a time."""
    when = time_from_any(scope, args["time"])
    if when is None:
        return None
    text: str = args.get("format", "")
    layout = GO_LAYOUTS.get(text, text) or GO_LAYOUTS["RFC3339"]
    try:
        local = when.astimezone(parse_zone(scope))
    except OverflowError:  # Go's zero time west of UTC: year 0 is out of Python's range
        local = when
    return go_time_format(local, layout)
