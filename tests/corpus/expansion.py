"""Two expansions of one calendar text over one window, in UTC, and what differs between them.

calmesh's side is :func:`calmesh.ical.expand`, exactly what free/busy and detection read from an
ICS source (connectors/ics.py) and from every CalDAV object. The reference is allenporter's
``ical`` library, an independent RFC 5545 implementation (its own parser, its own recurrence
code). Neither side gets the other's help: the windows come from a plain scan of the text.

Floating times and dates are read in UTC on both sides, so that an all-day event is compared
as the same 24 hours. An occurrence is compared by what free/busy and a copy depend on: its start
and end in UTC, its transparency, its status and its summary.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from calmesh import ical as calmesh_ical
from calmesh.model import EventStatus, Window


@dataclass(frozen=True, slots=True, order=True)
class Occurrence:
    start: datetime
    end: datetime
    transparent: bool
    status: str
    summary: str
    uid: str = field(default="", compare=False)
    """Not compared (an event without UID gets a made-up one on either side); used to leave out
    the events the reference cannot read."""

    def show(self) -> str:
        flags = ("T" if self.transparent else "O") + ("" if self.status == "CONFIRMED" else f" {self.status}")
        return f"{self.start:%Y-%m-%d %H:%M}Z..{self.end:%Y-%m-%d %H:%M}Z [{flags}] {self.summary[:30]!r}"


@dataclass(frozen=True, slots=True)
class NamedWindow:
    name: str
    window: Window


class Unreadable(Exception):
    """One side cannot read the file at all (or cannot expand it): the reason is the message."""


# ------------------------------------------------------------------------------- windows
_DTSTART = re.compile(rb"^DTSTART[^:\r\n]*:(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2}))?", re.M)
_RRULE = re.compile(rb"^RRULE[^:\r\n]*:([^\r\n]*)", re.M)
_SECONDLY = re.compile(rb"FREQ=SECONDLY", re.I)
_MINUTELY = re.compile(rb"FREQ=MINUTELY", re.I)
_HOURLY = re.compile(rb"FREQ=HOURLY", re.I)


_EVENT_BLOCK = re.compile(rb"^BEGIN:VEVENT\r?\n.*?^END:VEVENT", re.S | re.M)


def _earliest_start(data: bytes) -> datetime | None:
    """The earliest DTSTART date of the text's events (a VTIMEZONE's observances start in 1970 or
    1601, which no window should be put around)."""
    starts = []
    for y, m, d, hh, mm in _DTSTART.findall(b"\n".join(_EVENT_BLOCK.findall(data))):
        try:
            starts.append(datetime(int(y), int(m), int(d), int(hh or 0), int(mm or 0), tzinfo=UTC))
        except ValueError:
            continue
    return min(starts) if starts else None


def _day(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


SECONDLY_REASON = "FREQ=SECONDLY: not compared (issue 13 item 7: expansion is not bounded by work)"


def windows(data: bytes) -> list[NamedWindow]:
    """The windows a file is compared over: around its first DTSTART, around the spring and autumn
    DST changes (US, EU and southern ones fall in these weeks), and ten years later when a rule has
    no end. Minutely rules get only the hours around their first start, secondly ones nothing
    (see SECONDLY_REASON), hourly rules no later window: both libraries walk a rule from its
    DTSTART, so ten years later is 90,000 steps for an hourly rule and millions for finer ones
    (issue 13 item 7)."""
    first = _earliest_start(data)
    if first is None or first.year < 1900 or first.year > 2200:
        return []
    if _SECONDLY.search(data):
        return []
    if _MINUTELY.search(data):  # the first start's local time read as UTC: the true start is within 14 h
        return [NamedWindow("start", Window(first - timedelta(hours=14), first + timedelta(hours=15)))]
    day = first.date()
    length = timedelta(days=42)
    out = [NamedWindow("start", Window(_day(day) - timedelta(days=1), _day(day) + length))]
    year = day.year if day.month < 3 else day.year + 1
    spring = _day(date(year, 3, 1))
    autumn = _day(date(day.year if day.month < 10 else day.year + 1, 10, 15))
    out.append(NamedWindow("dst-spring", Window(spring, spring + timedelta(days=45))))
    out.append(NamedWindow("dst-autumn", Window(autumn, autumn + timedelta(days=27))))
    events = b"\n".join(_EVENT_BLOCK.findall(data))  # not the VTIMEZONEs' endless yearly rules
    endless = [r for r in _RRULE.findall(events) if b"COUNT=" not in r.upper() and b"UNTIL=" not in r.upper()]
    if endless and not _HOURLY.search(data):
        later = _day(day.replace(day=1, year=day.year + 10))
        out.append(NamedWindow("later", Window(later, later + length)))
    return out


def in_window(window: Window, start: datetime, end: datetime) -> bool:
    """Half-open overlap; an instant (end == start) counts when it lies in the window."""
    if end <= start:
        return window.start <= start < window.end
    return start < window.end and end > window.start


# ------------------------------------------------------------------------------- calmesh
def calmesh_side(data: bytes, window: Window) -> tuple[list[Occurrence], list[str]]:
    """calmesh's occurrences in ``window`` and the problems it reported (as text)."""
    events, problems = calmesh_ical.expand(data, window, "corpus", UTC)
    out = []
    for event in events:
        start, end = event.span_utc(UTC)
        if in_window(window, start, end):
            out.append(Occurrence(start, end, event.transparent, event.status.value, event.summary or "",
                                  event.uid))
    return sorted(out), [p.message for p in problems]


# ------------------------------------------------------------------------------- reference
def _utc(value: date | datetime) -> datetime:
    if not isinstance(value, datetime):
        return _day(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _reference_end(event: object) -> datetime:
    """The end in UTC per RFC 5545 3.3.6: a DURATION's days are nominal (wall-clock), its hours,
    minutes and seconds exact. (``ical`` adds a duration to an aware datetime, wall-clock for
    all of it, which puts a PT3H event across a DST change at 2 or 4 hours.)"""
    start = event.start  # type: ignore[attr-defined]
    duration = event.duration  # type: ignore[attr-defined]
    if duration is None or not isinstance(start, datetime):
        return _utc(event.end)  # type: ignore[attr-defined]
    days = timedelta(days=duration.days)
    return _utc(start + days) + (duration - days)


_VEVENT = re.compile(r"^BEGIN:VEVENT\r?\n.*?^END:VEVENT\r?\n?", re.S | re.M)
_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?\n?", re.S | re.M)
_UID = re.compile(r"^UID[^:\r\n]*:([^\r\n]*)", re.M)


@dataclass
class Reference:
    """What the reference library read: its calendars, and the UIDs of the events it could not
    read (with why) when it had to read the file event by event."""

    calendars: list[object]
    unreadable: dict[str, str] = field(default_factory=dict)


def _parse(text: str) -> list[object]:
    from ical.calendar_stream import CalendarStream
    from ical.compat import enable_compat_mode
    from ical.compat.timezone_compat import enable_extended_timezones

    with enable_extended_timezones(), enable_compat_mode(text) as fixed:
        return list(CalendarStream.from_ics(fixed).calendars)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"


def split_objects(text: str) -> dict[str, str]:
    """A calendar text cut as a CalDAV server stores it: one object per UID (its master and
    overrides) with every VTIMEZONE of the text. Plain text work, so that neither library under
    comparison decides what an object is; events without UID share the key ``""``."""
    groups: dict[str, list[str]] = {}
    for block in _VEVENT.findall(text):
        uid = _UID.search(block)
        groups.setdefault(uid.group(1).strip() if uid else "", []).append(block)
    zones = "".join(_VTIMEZONE.findall(text))
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//corpus//EN\r\n"
    return {uid: head + zones + "".join(blocks) + "END:VCALENDAR\r\n" for uid, blocks in groups.items()}


def reference_calendars(data: bytes) -> Reference:
    """The ``ical`` library's reading of a text (compat mode on, as for Exchange and Google feeds,
    Windows zone names allowed). When the whole does not parse, each UID's events are read on
    their own (with the file's VTIMEZONEs), so that one event it refuses does not hide the rest;
    raises :class:`Unreadable` when nothing can be read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    if "BEGIN:VCALENDAR" not in text and "BEGIN:VEVENT" in text:  # a bare event, as some tests keep them
        text = f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//corpus//EN\r\n{text.strip()}\r\nEND:VCALENDAR\r\n"
    try:
        return Reference(_parse(text))
    except Exception as exc:  # noqa: BLE001 - the library raises parse and validation errors of many kinds
        whole = _reason(exc)
    groups = split_objects(text)
    if not groups:
        raise Unreadable(whole)
    reference = Reference([])
    for uid, single in groups.items():
        try:
            reference.calendars.extend(_parse(single))
        except Exception as exc:  # noqa: BLE001 - as above
            reference.unreadable[uid] = _reason(exc)
    if not reference.calendars:
        raise Unreadable(whole)
    return reference


def reference_side(calendars: list[object], window: Window) -> list[Occurrence]:
    lo, hi = window.start - timedelta(days=1), window.end + timedelta(days=1)
    out = []
    try:
        for calendar in calendars:
            for event in calendar.timeline_tz(UTC).overlapping(lo, hi):  # type: ignore[attr-defined]
                start, end = _utc(event.start), _reference_end(event)
                if not in_window(window, start, end):
                    continue
                status = str(getattr(event.status, "value", event.status) or "CONFIRMED").upper()
                transp = str(event.transparency or "OPAQUE").upper()
                out.append(Occurrence(start, end, transp == "TRANSPARENT",
                                      status if status in EventStatus._value2member_map_ else "CONFIRMED",
                                      event.summary or "", str(event.uid or "")))
    except Exception as exc:  # noqa: BLE001 - a series the library cannot expand
        raise Unreadable(f"cannot expand: {_reason(exc)}") from None
    return sorted(out)


# ------------------------------------------------------------------------------- comparing
@dataclass
class Difference:
    window: str
    only_calmesh: list[Occurrence] = field(default_factory=list)
    only_reference: list[Occurrence] = field(default_factory=list)

    def lines(self) -> Iterator[str]:
        for o in self.only_reference[:5]:
            yield f"  {self.window}: reference only  {o.show()}"
        for o in self.only_calmesh[:5]:
            yield f"  {self.window}: calmesh only    {o.show()}"
        more = len(self.only_reference) + len(self.only_calmesh) - len(self.only_reference[:5]) - len(self.only_calmesh[:5])
        if more:
            yield f"  {self.window}: ... and {more} more"


@dataclass
class FileResult:
    """One file compared over its windows."""

    windows: int = 0
    agreed: int = 0
    occurrences: int = 0
    """Reference occurrences over all windows."""
    differences: list[Difference] = field(default_factory=list)
    calmesh_problems: list[str] = field(default_factory=list)
    reference_error: str | None = None
    reference_skipped: dict[str, str] = field(default_factory=dict)
    """UIDs the reference could not read, left out on both sides: UID -> the reference's reason."""
    calmesh_error: str | None = None
    not_compared: str | None = None
    """Why no window was compared, when that is by choice (see SECONDLY_REASON)."""

    def report(self) -> str:
        lines = []
        if self.reference_error:
            lines.append(f"  reference cannot read it: {self.reference_error}")
        for uid, reason in self.reference_skipped.items():
            lines.append(f"  reference cannot read UID {uid!r}: {reason}")
        if self.calmesh_error:
            lines.append(f"  calmesh raised: {self.calmesh_error}")
        for problem in dict.fromkeys(self.calmesh_problems):
            lines.append(f"  calmesh problem: {problem[:200]}")
        for difference in self.differences:
            lines.extend(difference.lines())
        return "\n".join(lines)


def compare(data: bytes) -> FileResult:
    result = FileResult()
    try:
        reference: Reference | None = reference_calendars(data)
    except Unreadable as exc:
        result.reference_error = str(exc)
        reference = None
    skipped = reference.unreadable if reference else {}
    result.reference_skipped = dict(skipped)
    if _SECONDLY.search(data):
        result.not_compared = SECONDLY_REASON
    for named in windows(data):
        try:
            mine, problems = calmesh_side(data, named.window)
        except Exception as exc:  # noqa: BLE001 - reported, and the file fails
            result.calmesh_error = f"{type(exc).__name__}: {exc}"
            return result
        result.calmesh_problems.extend(problems)
        if reference is None:
            continue
        mine = [o for o in mine if o.uid not in skipped]
        try:
            theirs = reference_side(reference.calendars, named.window)
        except Unreadable as exc:
            result.reference_error = str(exc)
            return result
        result.windows += 1
        result.occurrences += len(theirs)
        a, b = Counter(mine), Counter(theirs)
        if a == b:
            result.agreed += 1
        else:
            result.differences.append(Difference(named.name, sorted((a - b).elements()),
                                                 sorted((b - a).elements())))
    return result
