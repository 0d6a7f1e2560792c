"""iCalendar in and out: text <-> :mod:`calmesh.model`, recurrence expansion, VFREEBUSY.

Parsing goes through ``icalendar``; recurrence through ``recurring-ical-events`` (which handles
RRULE/RDATE/EXDATE, RECURRENCE-ID overrides and DST); ``X-WR-TIMEZONE`` calendars are normalised
with ``x-wr-timezone``. What this module adds is damage control: one bad event (truncated text,
bad dates, unknown TZID, a 5 MB description) becomes a :class:`~calmesh.model.Problem` naming the
event, and every other event of the calendar still counts.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
import x_wr_timezone

from calmesh import cancel
from calmesh.model import (
    Attendee,
    BusyPeriod,
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    PartStat,
    Problem,
    ProblemCode,
    Role,
    Temporal,
    Window,
    as_utc,
    in_writable_form,
    instant,
    is_endless,
    normalize_email,
    rrule_problem,
)
from calmesh.timezones import DefinedZone, is_iana_name, matching_iana, to_iana
from calmesh.vtimezone_rules import use_indexed_definitions
from calmesh.zone_timeline import timeline

use_indexed_definitions()  # zones of VTIMEZONEs answered by bisection, not dateutil's walk from 1601

PRODID = "-//calmesh//calmesh hub//EN"
MAX_TEXT_PROPERTY = 256 * 1024
"""Longer SUMMARY/DESCRIPTION/LOCATION values are cut (with a warning): no calendar needs them,
and a hostile 5 MB description must not be copied to every platform."""

_CDO_BUSY = {
    "FREE": BusyType.FREE,
    "TENTATIVE": BusyType.BUSY_TENTATIVE,
    "BUSY": BusyType.BUSY,
    "OOF": BusyType.BUSY_UNAVAILABLE,
    "WORKINGELSEWHERE": BusyType.FREE,
}
_CDO_OUT = {
    BusyType.FREE: "FREE",
    BusyType.BUSY_TENTATIVE: "TENTATIVE",
    BusyType.BUSY: "BUSY",
    BusyType.BUSY_UNAVAILABLE: "OOF",
}
_KEEP_X = re.compile(r"^X-(CALMESH-|MICROSOFT-CDO-(?!BUSYSTATUS))")
"""X- properties carried across platforms: calmesh's own markers and Outlook's hints."""
_MODELLED = frozenset({
    "BEGIN", "END", "UID", "DTSTAMP", "DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "SUMMARY",
    "DESCRIPTION", "LOCATION", "RRULE", "RDATE", "EXDATE", "TRANSP", "STATUS", "CLASS", "SEQUENCE",
    "LAST-MODIFIED", "CREATED", "ORGANIZER", "ATTENDEE", "X-MICROSOFT-CDO-BUSYSTATUS",
})
"""VEVENT properties read into :class:`Event`'s fields (and written from them)."""


class ICalError(ValueError):
    """A calendar text could not be read at all."""


class UnplaceableEvent(ValueError):
    """A VEVENT that cannot be placed in time at all; ``code`` says why in words any asker may read
    (the message may quote the event's values)."""

    def __init__(self, message: str, code: ProblemCode = ProblemCode.BAD_TIME) -> None:
        super().__init__(message)
        self.code = code


Notice = tuple[ProblemCode, str]
"""A non-fatal issue met reading one event: its kind, and exactly what (which may quote the event)."""


# ------------------------------------------------------------------------------------ parsing
def _text(component: icalendar.cal.Component, name: str, problems: list[Notice]) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    text = str(value)
    if len(text) > MAX_TEXT_PROPERTY:
        problems.append((ProblemCode.TEXT_CUT,
                         f"{name} of {len(text) / 1e6:.1f} MB cut to {MAX_TEXT_PROPERTY // 1024} KB"))
        text = text[:MAX_TEXT_PROPERTY]
    return text


def _temporal(component: icalendar.cal.Component, name: str, problems: list[Notice]) -> Temporal | None:
    prop = component.get(name)
    if prop is None:
        return None
    try:
        value = component.decoded(name)
    except (ValueError, TypeError, KeyError) as exc:
        raise UnplaceableEvent(f"bad {name}: {exc}") from exc
    if isinstance(value, timedelta) or not isinstance(value, date):
        raise UnplaceableEvent(f"bad {name}: {value!r} is not a date or date-time")
    tzid = getattr(prop, "params", {}).get("TZID")
    if isinstance(value, datetime) and tzid:
        value = _in_own_zone(value, str(tzid), name, problems)
    return value


def _in_own_zone(value: datetime, tzid: str, name: str, problems: list[Notice]) -> datetime:
    """``value`` (wall time under ``TZID=tzid``) in the zone a copy can keep: the IANA zone the
    definition matches, else the definition itself (a :class:`DefinedZone`)."""
    if isinstance(value.tzinfo, DefinedZone) and value.tzinfo.key == tzid:
        return value  # built from an event read before (expand_items): its definition is known
    written = scoped_tzid_name(tzid)
    if written != tzid and value.tzinfo is not None:  # defined in the object
        zoned = value.replace(tzinfo=_zone_of_definition(tzid, value.tzinfo, value.year))
        if zoned.utcoffset() == value.utcoffset():
            return zoned
        # the IANA zone matches from a change of this year on (sampled from the year's start in
        # UTC), but this time is before it or in its gap: only the definition says when it is
        return value.replace(tzinfo=_defined_zone(tzid, value.tzinfo))
    # not defined here: by name only, never from a zone icalendar kept from another object
    iana = to_iana(written)
    if iana is None:
        problems.append((ProblemCode.UNKNOWN_ZONE, f"unknown TZID {written!r} on {name}, read as local time"))
        return value.replace(tzinfo=None)
    return value.replace(tzinfo=ZoneInfo(iana))


@lru_cache(maxsize=4096)
def _zone_of_definition(tzid: str, rules: tzinfo, year: int) -> tzinfo:
    """The zone for a scoped TZID (see :func:`_scoped_timezones`) around ``year``: an IANA zone
    when the definition agrees with one from that year on (see
    :func:`calmesh.timezones.matching_iana`), so a copy names a zone every platform knows;
    else the definition, carried into every copy as read."""
    iana = matching_iana(scoped_tzid_name(tzid), rules, year)
    return ZoneInfo(iana) if iana is not None else _defined_zone(tzid, rules)


def _defined_zone(tzid: str, rules: tzinfo) -> tzinfo:
    """The definition read under a scoped TZID, as a zone a copy carries."""
    with _DEFINITIONS_LOCK:
        definition = _DEFINITIONS.get(tzid)
    if definition is None:  # pushed out by 4,096 newer definitions meanwhile: keep the rules
        return rules
    return DefinedZone(scoped_tzid_name(tzid), definition, rules)


def read_scheduling_message(data: bytes) -> icalendar.Calendar:
    """One iTIP message (a CalDAV outbox POST) as icalendar reads it, with its VTIMEZONEs scoped
    to it as every calendar calmesh reads (see :func:`_prepare_timezones`); ``ValueError`` when it
    is not iCalendar."""
    return icalendar.Calendar.from_ical(_prepare_timezones(_as_utf8(data)))


def zoned_time(component: icalendar.cal.Component, name: str) -> Temporal | None:
    """``name`` (DTSTART, DTEND...) of a component read by :func:`read_scheduling_message`, in
    its own zone. ``ValueError`` when it cannot be placed in time: a TZID that is neither a zone
    calmesh knows nor defined by a VTIMEZONE of the message (RFC 5545 3.2.19) would otherwise be
    read in some other zone and answer for the wrong hours."""
    problems: list[Notice] = []
    value = _temporal(component, name, problems)
    if problems:
        tzid = scoped_tzid_name(str(component[name].params.get("TZID", "")))
        raise ValueError(f"{name} names the time zone {tzid!r}, which is neither a known zone nor "
                         "defined by a VTIMEZONE in the message")
    return value


def _dates(component: icalendar.cal.Component, name: str) -> list[Temporal]:
    raw = component.get(name)
    if raw is None:
        return []
    out: list[Temporal] = []
    for prop in raw if isinstance(raw, list) else [raw]:
        tzid = getattr(prop, "params", {}).get("TZID")
        for dt in getattr(prop, "dts", []):
            value = dt.dt
            if isinstance(value, datetime) and tzid:
                out.append(_in_own_zone(value, str(tzid), name, []))
            elif isinstance(value, date):
                out.append(value)
    return out


def _person(prop: Any) -> Attendee:
    params = getattr(prop, "params", {})
    partstat = params.get("PARTSTAT", "NEEDS-ACTION").upper()
    role = params.get("ROLE", "REQ-PARTICIPANT").upper()
    return Attendee(
        email=str(prop),
        name=params.get("CN"),
        partstat=PartStat(partstat) if partstat in PartStat._value2member_map_ else PartStat.NEEDS_ACTION,
        role=Role(role) if role in Role._value2member_map_ else Role.REQUIRED,
        rsvp=str(params.get("RSVP", "FALSE")).upper() == "TRUE",
    )


def _zone_name(value: Temporal | None) -> str | None:
    if isinstance(value, datetime) and value.tzinfo is not None:
        key = getattr(value.tzinfo, "key", None) or getattr(value.tzinfo, "zone", None)
        return to_iana(key) if key else None
    return None


def event_from_component(component: icalendar.cal.Component, *,
                         ordered: bool = True) -> tuple[Event, list[Notice]]:
    """A VEVENT as an :class:`Event`, plus warnings (non-fatal issues). Raises ValueError
    (:class:`UnplaceableEvent` when the values are the cause) when the event cannot be placed in
    time at all. ``ordered=False`` leaves an end before the start to the caller: an occurrence
    the recurrence library made has an end the caller recomputes (see :class:`_Lengths`)."""
    warnings: list[Notice] = []
    uid = str(component.get("UID") or "").strip()
    if not uid:
        raise UnplaceableEvent("event has no UID", ProblemCode.NO_UID)
    start = _temporal(component, "DTSTART", warnings)
    if start is None:
        raise UnplaceableEvent("event has no DTSTART")
    end = _temporal(component, "DTEND", warnings)
    if end is None and component.get("DURATION") is not None:
        duration = component.decoded("DURATION")
        if not isinstance(duration, timedelta):
            raise UnplaceableEvent("bad DURATION")
        end = after(start, duration, written_days(component["DURATION"]))
    if end is not None and isinstance(start, datetime) != isinstance(end, datetime):
        raise UnplaceableEvent("DTSTART and DTEND mix a date and a date-time")
    if ordered:
        _check_order(start, end)
    status = str(component.get("STATUS", "CONFIRMED")).upper()
    klass = str(component.get("CLASS", "PUBLIC")).upper()
    cdo = component.get("X-MICROSOFT-CDO-BUSYSTATUS")
    last_modified = component.get("LAST-MODIFIED")
    created = component.get("CREATED")
    organizer = component.get("ORGANIZER")
    attendees = component.get("ATTENDEE")
    if attendees is not None and not isinstance(attendees, list):
        attendees = [attendees]
    rrules = component.get("RRULE")
    if rrules is not None and not isinstance(rrules, list):
        rrules = [rrules]
    # a rule icalendar could not parse stays text (a str): its raw value, not an escaped one
    rules = [str(r) if isinstance(r, str) else r.to_ical().decode() for r in rrules or []]
    warnings.extend((ProblemCode.RECURRENCE, f"unreadable RRULE {rule!r} ({why}): only the first instance is known")
                    for rule in rules if (why := rrule_problem(rule)))
    try:
        sequence = int(component.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        sequence = 0
    extra = {str(k): str(v) for k, v in component.items() if _KEEP_X.match(str(k).upper())}
    event = Event(
        unmodelled=_unmodelled(component, warnings),
        uid=uid,
        start=start,
        end=end,
        summary=_text(component, "SUMMARY", warnings),
        description=_text(component, "DESCRIPTION", warnings),
        location=_text(component, "LOCATION", warnings),
        recurrence_id=_temporal(component, "RECURRENCE-ID", warnings),
        rrule=rules,
        rdate=_dates(component, "RDATE"),
        exdate=_dates(component, "EXDATE"),
        transparent=str(component.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT",
        status=EventStatus(status) if status in EventStatus._value2member_map_ else EventStatus.CONFIRMED,
        classification=(Classification(klass) if klass in Classification._value2member_map_
                        else Classification.PRIVATE),  # unknown x-classes are treated as private
        sequence=sequence,
        last_modified=last_modified.dt if last_modified is not None else None,
        created=created.dt if created is not None else None,
        organizer=_person(organizer) if organizer is not None else None,
        attendees=[_person(a) for a in attendees or []],
        busy_type=_CDO_BUSY.get(str(cdo).upper()) if cdo is not None else None,
        tzid=_zone_name(start),
        extra=extra,
        this_and_future=str(getattr(component.get("RECURRENCE-ID"), "params", {}).get("RANGE", ""))
        .upper() == "THISANDFUTURE",
        alarms=[alarm.to_ical().decode() for alarm in component.subcomponents if alarm.name == "VALARM"],
    )
    return event, warnings


def _check_order(start: Temporal, end: Temporal | None) -> None:
    """Refuse an event that ends before it starts (RFC 5545 3.8.2.2: DTEND is later)."""
    if end is not None and as_utc(end) < as_utc(start):
        raise UnplaceableEvent(f"DTEND {end} is before DTSTART {start}", ProblemCode.END_BEFORE_START)


def _unmodelled(component: icalendar.cal.Component, warnings: list[Notice]) -> tuple[str, ...]:
    """The content lines of the properties calmesh has no field for (CATEGORIES, URL, ATTACH,
    GEO, COMMENT, a client's X- properties...), as read, so that writing the event back (a
    move, a cancellation, a sync update of the original) or copying it to another iCalendar
    calendar keeps them instead of dropping what the person's own client put there. A property
    with a TZID is left out: its zone is scoped to the object it was read from (see
    :func:`_scoped_timezones`) and could not be written anywhere else."""
    lines: list[str] = []
    for name, value in component.property_items(recursive=False, sorted=False):
        if name in _MODELLED or _KEEP_X.match(name):
            continue
        if "TZID" in getattr(value, "params", {}):
            continue
        try:
            lines.append(str(component.content_line(name, value, sorted=False)))
        except (TypeError, ValueError, UnicodeError) as exc:
            warnings.append((ProblemCode.PROPERTY, f"unreadable {name} left out ({exc})"))
    return tuple(lines)


@lru_cache(maxsize=1024)
def _unmodelled_properties(lines: tuple[str, ...]) -> tuple[tuple[str, Any], ...]:
    """The properties of :func:`_unmodelled`'s lines, read back for writing (a line that no
    longer reads, which lines written by :func:`_unmodelled` always do, is left out rather than
    costing the whole write)."""
    out: list[tuple[str, Any]] = []
    for line in lines:
        try:
            carrier = icalendar.Event.from_ical(f"BEGIN:VEVENT\r\n{line}\r\nEND:VEVENT\r\n")
        except ValueError:
            continue
        out += [(name, value) for name, value in carrier.property_items(recursive=False, sorted=False)
                if name not in ("BEGIN", "END")]
    return tuple(out)


def after(start: Temporal, duration: timedelta, days: int | None = None) -> Temporal:
    """The end of ``duration`` from ``start`` as RFC 5545 3.3.6 counts it: days (and weeks) are
    nominal, the same local time so many days on; hours, minutes and seconds are exact, elapsed
    time. ``DURATION:PT3H`` from 01:00 on the night clocks go forward ends at 05:00 local, three
    hours later, where datetime arithmetic (local time throughout) would say 04:00. ``days``: the
    days the duration was written with (:func:`written_days`), when known; else its whole days."""
    if not isinstance(start, datetime) or start.tzinfo is None:
        return start + duration
    nominal = timedelta(days=duration.days if days is None else days)
    return ((start + nominal).astimezone(UTC) + (duration - nominal)).astimezone(start.tzinfo)


_EXACT_DURATION = re.compile(rb"^(DURATION)((?:;[^:\r\n]*)?:[+-]?PT(?:\d+[HMS])+[ \t]*\r?$)", re.M | re.I)
_EXACT = "X-CALMESH-EXACT"
"""A parameter :func:`_mark_exact_durations` puts on a DURATION written in hours, minutes and
seconds only; never written out (calmesh writes DTEND)."""


def _mark_exact_durations(data: bytes) -> bytes:
    """``data`` with every DURATION of exact time only (``PT24H``, ``PT1440M``) marked as such:
    icalendar decodes it to ``timedelta(days=1)``, as it does ``P1D`` (one day: 23 or 25 hours
    across a change of clocks), and writes both back as ``P1D``, so the event lasted an hour too
    long or short on the day the clocks change. See :func:`written_days`."""
    if b"PT" not in data:
        return data
    return _EXACT_DURATION.sub(rb"\1;" + _EXACT.encode() + rb"=TRUE\2", data)


def written_days(prop: Any) -> int | None:
    """The nominal days of a DURATION property as written: none for one marked exact by
    :func:`_mark_exact_durations`, else None (the decoded value's whole days)."""
    return 0 if _EXACT in getattr(prop, "params", {}) else None


def _periods(component: icalendar.cal.Component) -> list[tuple[Temporal, Temporal]]:
    """The ``RDATE;VALUE=PERIOD`` values of a VEVENT as (start, end) pairs."""
    raw = component.get("RDATE")
    out: list[tuple[Temporal, Temporal]] = []
    for prop in (raw if isinstance(raw, list) else [raw]) if raw is not None else []:
        tzid = getattr(prop, "params", {}).get("TZID")
        for value in getattr(prop, "dts", []):
            if isinstance(value.dt, tuple) and len(value.dt) == 2:
                start, end = value.dt
                if isinstance(start, datetime) and tzid:
                    start = _in_own_zone(start, str(tzid), "RDATE", [])
                if isinstance(end, timedelta):
                    end = after(start, end)
                elif isinstance(end, datetime) and isinstance(start, datetime) and start.tzinfo and end.tzinfo:
                    end = end.astimezone(start.tzinfo)  # the same instant, in the start's zone
                out.append((start, end))
    return out


def _period_overrides(master: Event, periods: list[tuple[Temporal, Temporal]],
                      overridden: set[str]) -> list[Event]:
    """``RDATE;VALUE=PERIOD`` in the form every platform holds: the start as a plain RDATE (added
    to ``master``) and an override at that start carrying the period's end, unless the object
    overrides that instance already (then the override says when it ends). Same occurrences,
    same ends (RFC 5545 3.8.5.2); Radicale refuses PERIOD values and most clients ignore them."""
    out = []
    for start, end in periods:
        master.rdate.append(start)
        if _rid_key(start) not in overridden:
            out.append(replace(master, recurrence_id=start, start=start, end=end, rrule=[], rdate=[],
                               exdate=[], this_and_future=False, alarms=list(master.alarms),
                               attendees=list(master.attendees), extra=dict(master.extra)))
    return out


def _rid_key(value: Temporal) -> str:
    return as_utc(value).isoformat() if isinstance(value, datetime) and value.tzinfo else str(value)


def _problem(platform: str, component: icalendar.cal.Component, code: ProblemCode, message: str,
             unknown: tuple[datetime, datetime] | None = None) -> Problem:
    """A problem with one VEVENT, naming it (UID, title) and saying whether it is private, so each
    door shows it as its asker may see it (:func:`calmesh.model.shown`)."""
    uid = str(component.get("UID") or "").strip()
    summary = component.get("SUMMARY")
    return Problem(platform, message, f"UID {uid}" if uid else "an event without UID", unknown, code,
                   title=str(summary)[:60] if summary else None,
                   private=str(component.get("CLASS", "PUBLIC")).strip().upper() != "PUBLIC")


def _unplaceable(platform: str, component: icalendar.cal.Component, exc: Exception) -> Problem:
    code = exc.code if isinstance(exc, UnplaceableEvent) else ProblemCode.UNREADABLE
    return _problem(platform, component, code, str(exc))


_BLOCK = re.compile(rb"BEGIN:(VEVENT|VTIMEZONE)\r?\n.*?END:\1\r?\n?", re.S)
_VTIMEZONE = re.compile(
    rb"^BEGIN:VTIMEZONE\r?\n(?:(?!END:VTIMEZONE).)*?^TZID:([^\r\n]*)\r?\n.*?^END:VTIMEZONE\r?\n", re.S | re.M)


def _is_iana_tzid(tzid: bytes) -> bool:
    """Whether a VTIMEZONE's TZID names an IANA zone exactly: icalendar then uses that zone."""
    try:
        return is_iana_name(tzid.decode())
    except UnicodeDecodeError:
        return False


_FOLD = re.compile(rb"\r?\n[ \t]")
_CALENDAR = re.compile(rb"^BEGIN:VCALENDAR\r?\n.*?^END:VCALENDAR[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_TZID_LINE = re.compile(rb"^TZID:[^\r\n]*\r?\n", re.M)
_TZID_PARAM = re.compile(rb';TZID=(?:"([^"\r\n]*)"|([^;:,"\r\n]*))', re.I)
_TEXT_ESCAPE = re.compile(rb"\\([\\,;])")
_SCOPE = "~calmesh-"
"""Joins a TZID to the digest of its definition in the names icalendar sees (see
:func:`_scoped_timezones`); never written out."""
_DEFINITIONS: OrderedDict[str, bytes] = OrderedDict()
"""Scoped TZID -> the VTIMEZONE text as read (its TZID as written), for the zones no IANA zone
matches, which a copy must carry. Keyed by content, so shared safely; the last 4,096 kept."""
_DEFINITIONS_LOCK = threading.Lock()


def _prepare_timezones(data: bytes) -> bytes:
    """``data`` as icalendar should read it: the VTIMEZONEs of zones the IANA database knows by
    that very TZID left out, every other VTIMEZONE scoped to its object.

    Left out: icalendar resolves such a TZID to the IANA zone and ignores its VTIMEZONE, so the
    blocks change nothing in what is read (IANA rules win over a stale definition under an IANA
    name: docs/timezones.md); yet they are half the lines of a typical object, and reading them was
    half the parse time."""
    if b"BEGIN:VTIMEZONE" not in data:
        return data
    data = _FOLD.sub(b"", data)  # a TZID folded across lines is still found
    data = _VTIMEZONE.sub(lambda m: b"" if _is_iana_tzid(m.group(1).strip()) else m.group(0), data)
    if b"BEGIN:VTIMEZONE" not in data:
        return data
    if _CALENDAR.search(data) is None:  # salvaging a damaged text: one scope
        return _scoped_timezones(data)
    return _CALENDAR.sub(lambda m: _scoped_timezones(m.group(0)), data)


def _scoped_timezones(text: bytes) -> bytes:
    """One VCALENDAR with each VTIMEZONE renamed, and every TZID parameter naming it, to its TZID
    joined to a digest of its definition.

    Why: icalendar keeps the zone it builds from a VTIMEZONE process-wide under its TZID, first
    definition wins, so two calendars each defining Outlook's ``Customized Time Zone`` (one
    +09:00, one US Eastern) would read in whichever zone came first. RFC 5545 3.2.19: a TZID
    refers to the VTIMEZONE of its own object. Keyed by content, equal definitions still share
    one zone (and icalendar's cache stays bounded by the distinct definitions met)."""
    renames: dict[bytes, bytes] = {}

    def scope(match: re.Match[bytes]) -> bytes:
        block, name = match.group(0), _TEXT_ESCAPE.sub(rb"\1", match.group(1).strip())  # TZID:A\, B
        body = _TZID_LINE.sub(b"", block).replace(b"\r\n", b"\n")
        scoped = name + _SCOPE.encode() + hashlib.sha256(body).hexdigest()[:16].encode()
        renames[name] = scoped
        with _DEFINITIONS_LOCK:
            _DEFINITIONS[scoped.decode(errors="replace")] = block
            _DEFINITIONS.move_to_end(scoped.decode(errors="replace"))
            while len(_DEFINITIONS) > 4096:
                _DEFINITIONS.popitem(last=False)
        escaped = scoped.replace(b"\\", b"\\\\").replace(b",", b"\\,").replace(b";", b"\\;")
        return _TZID_LINE.sub(lambda _m: b"TZID:" + escaped + b"\r\n", block, count=1)

    text = _VTIMEZONE.sub(scope, text)

    def param(match: re.Match[bytes]) -> bytes:
        name = (match.group(1) if match.group(1) is not None else match.group(2)).strip()
        return b';TZID="' + renames[name] + b'"' if name in renames else match.group(0)

    return _TZID_PARAM.sub(param, text)


def scoped_tzid_name(tzid: str) -> str:
    """The TZID as written, for a name read through :func:`_scoped_timezones`."""
    return tzid.split(_SCOPE, 1)[0]


@lru_cache(maxsize=256)
def zone_of_vtimezone(vtimezone: bytes, year: int) -> tzinfo:
    """The zone a time of ``year`` under the TZID of ``vtimezone`` (one VTIMEZONE's text) reads
    in: an IANA zone when the definition matches one, else the definition (a
    :class:`DefinedZone` a copy carries), exactly as when the two come in one calendar object;
    so a zone another platform defined (an Exchange ``TimeZoneDefinition``) reads as a
    VTIMEZONE would. ValueError when the text defines no zone."""
    found = re.search(rb"^TZID:([^\r\n]*)", _FOLD.sub(b"", vtimezone), re.M)
    tzid = _TEXT_ESCAPE.sub(rb"\1", found.group(1).strip()) if found else b""
    if not tzid or b'"' in tzid:
        raise ValueError("a VTIMEZONE without a TZID that can be named in a parameter")
    text = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:" + PRODID.encode() + b"\r\n" + vtimezone.rstrip(b"\r\n")
            + b"\r\nBEGIN:VEVENT\r\nUID:zone\r\nDTSTAMP:20000101T000000Z\r\nDTSTART;TZID=\"" + tzid + b"\":"
            + f"{year:04d}0101T120000".encode() + b"\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    items, problems = parse_items(text)
    start = items[0].components[0].start if items and not problems else None
    if not isinstance(start, datetime) or start.tzinfo is None:
        raise ValueError(f"the VTIMEZONE {tzid.decode(errors='replace')!r} cannot be read"
                         + (f": {problems[0].message}" if problems else ""))
    return start.tzinfo


_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _as_utf8(data: bytes) -> bytes:
    """``data`` as UTF-8, whatever the exporter wrote. Outlook and Windows tools save UTF-16 (with
    a byte-order mark, sometimes without), older exporters Latin-1; read as UTF-8 such a file is
    garbage, and a calendar that is not read must not pass for an empty one."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec).encode()
            except UnicodeDecodeError:
                return data
    if len(data) > 1 and (data[0] == 0) != (data[1] == 0):  # "\0B\0E" or "B\0E\0": UTF-16 without a mark
        try:
            return data.decode("utf-16-be" if data[0] == 0 else "utf-16-le").encode()
        except UnicodeDecodeError:
            return data
    try:
        data.decode()
    except UnicodeDecodeError:
        return data.decode("latin-1").encode()  # every byte is a Latin-1 character: never fails
    return data


def _read_block(block: bytes) -> tuple[list[icalendar.cal.Component], list[str]]:
    """One VEVENT/VTIMEZONE block, less the content lines that cannot be parsed at all (each one
    reported): a broken property must not cost the event."""
    try:
        return list(icalendar.Calendar.from_ical(block, multiple=True)), []
    except Exception:  # noqa: BLE001 - retried line by line below
        kept, dropped = [], []
        for line in _FOLD.sub(b"", block).splitlines():
            try:
                icalendar.parser.Contentline(line.decode()).parts()
                kept.append(line)
            except Exception:  # noqa: BLE001 - reported as a dropped line
                dropped.append(line[:40].decode(errors="replace"))
        components = icalendar.Calendar.from_ical(b"\r\n".join(kept) + b"\r\n", multiple=True)
        return list(components), [f"unreadable line {line!r} ignored" for line in dropped]


def _block_problem(platform: str, block: bytes, code: ProblemCode, message: str) -> Problem:
    """A problem with a block of text icalendar could not read whole: its UID and class as written."""
    uid = re.search(rb"^UID:(.*)$", block, re.M)
    klass = re.search(rb"^CLASS[;:](.*)$", block, re.M)
    return Problem(platform, message, f"UID {uid.group(1).decode(errors='replace').strip()}" if uid else None,
                   code=code, private=klass is not None and not klass.group(1).strip().upper().endswith(b"PUBLIC"))


class _LocalTimes(x_wr_timezone.UTCChangingWalker):
    """:mod:`x_wr_timezone`'s walker (UTC and floating times into the X-WR-TIMEZONE zone), but
    a time is floating only when it has no zone. The library takes any time whose zone has no
    name for floating, and a VTIMEZONE without TZNAME (Outlook's ``Customized Time Zone`` often
    has none) gives such a zone: its events were read in the X-WR-TIMEZONE zone instead of their
    own, hours off."""

    def is_Floating(self, dt: datetime) -> bool:  # noqa: N802 - the library's name
        return dt.tzinfo is None


def _x_wr_standard(cal: icalendar.Calendar) -> icalendar.Calendar:
    """``cal`` as RFC 5545 reads it, its X-WR-TIMEZONE applied (see docs/timezones.md)."""
    name = cal.get(x_wr_timezone.X_WR_TIMEZONE)
    if name is None:
        return cal
    result: icalendar.Calendar = _LocalTimes(ZoneInfo(str(name))).walk(cal)
    return result


def _parse_calendars(data: bytes, platform: str, problems: list[Problem],
                     covers: tuple[datetime, datetime] | None = None) -> list[icalendar.Calendar]:
    """Parse the text; when the whole does not parse (truncated, garbage between components),
    salvage every complete VEVENT/VTIMEZONE block and report the rest.

    What could not be read is unknown, never free: when events were lost, or nothing usable was
    read at all (garbage, binary, an empty or cut file), the calendar-level problem carries
    ``covers`` (the window asked about) as unknown time."""
    data = _mark_exact_durations(_prepare_timezones(_as_utf8(data)))
    try:
        cals = icalendar.Calendar.from_ical(data, multiple=True)
        if not cals:
            raise ValueError("no VCALENDAR found")
        return [_x_wr_standard(c) for c in cals]
    except Exception as exc:  # icalendar raises bare ValueError/IndexError/KeyError on damage
        salvaged = icalendar.Calendar()
        kept = 0
        for m in _BLOCK.finditer(data):
            try:
                components, dropped = _read_block(m.group(0))
            except Exception as inner:  # noqa: BLE001 - reported as a problem below
                problems.append(_block_problem(platform, m.group(0), ProblemCode.UNREADABLE,
                                               f"unreadable component: {inner}"))
                continue
            problems.extend(_block_problem(platform, m.group(0), ProblemCode.PROPERTY, line) for line in dropped)
            for comp in components:
                salvaged.add_component(comp)
            kept += 1
        lost = kept == 0 or len(salvaged.walk("VEVENT")) < len(re.findall(rb"^BEGIN:VEVENT", data, re.M))
        # the parser's message quotes the text (a SUMMARY, perhaps of a private event): only its kind
        what = "unreadable" if kept == 0 else "malformed"
        problems.append(Problem(platform, f"calendar text is {what} ({type(exc).__name__}); salvaged {kept} "
                                f"component(s)" + ("; its time is unknown" if lost and covers else ""),
                                unknown=covers if lost else None))
        return [salvaged]


_NEEDED = frozenset({"DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE"})


def _repair(component: icalendar.cal.Component) -> list[Notice]:
    """Mend, in place, what real exports get wrong without losing the event's time (each mend
    reported): a broken property that placing the event does not need is dropped (Google writes
    ``CREATED:00001231T000000Z``); a missing UID (RFC 2445 allowed it) becomes one derived from
    the content, so the same event gets the same UID on every read; a floating DTEND next to a
    DTSTART with a TZID is read in the DTSTART's zone, as Outlook and Google mean it."""
    warnings: list[Notice] = []
    for name, error in list(getattr(component, "errors", [])):
        if name is None:  # a content line icalendar could not split (it left it out)
            warnings.append((ProblemCode.PROPERTY, "an unreadable content line ignored"))
        elif name.upper() not in _NEEDED and name in component:
            del component[name]
            warnings.append((ProblemCode.PROPERTY, f"unreadable {name} ignored ({error})"))
    if not str(component.get("UID") or "").strip():
        content = _STAMP.sub(b"", component.to_ical())
        uid = f"calmesh-{hashlib.sha256(content).hexdigest()[:32]}"
        component.pop("UID", None)
        component.add("UID", uid)
        warnings.append((ProblemCode.NO_UID, f"event has no UID: read as {uid}"))
    warnings.extend(_mend_end(component))
    start, end = component.get("DTSTART"), component.get("DTEND")
    tzid = getattr(start, "params", {}).get("TZID")  # (a repeated DTSTART is a list: no params)
    if tzid and hasattr(end, "params") and not end.params.get("TZID"):
        try:
            start_value, end_value = start.dt, end.dt
        except (ValueError, TypeError, AttributeError):
            return warnings
        if isinstance(end_value, datetime) and end_value.tzinfo is None and isinstance(start_value, datetime) \
                and start_value.tzinfo is not None:
            del component["DTEND"]
            component.add("DTEND", end_value.replace(tzinfo=start_value.tzinfo))
            warnings.append((ProblemCode.FLOATING_END, f"floating DTEND read in the DTSTART's zone {tzid}"))
    return warnings


def _mend_end(component: icalendar.cal.Component) -> list[Notice]:
    """A DTEND that cannot be read is dropped (the event keeps its start); one of another value
    type than DTSTART (RFC 5545 3.8.2.2: MUST be the same) is read as the type of DTSTART: a
    date-time end of an all-day event ends with the day it falls in (the next midnight, unless
    it is one), a date end of a timed event at that day's midnight in the start's zone. A
    DURATION of hours for an all-day event (RFC 5545 3.8.2.5: days or weeks only) lasts the
    days it reaches into."""
    start, end = component.get("DTSTART"), component.get("DTEND")
    if end is None and start is not None and not isinstance(start, list) and _date_only(start) \
            and (duration := component.get("DURATION")) is not None and hasattr(duration, "dt") \
            and isinstance(duration.dt, timedelta) and duration.dt % timedelta(days=1):
        days = max(1, -(-duration.dt // timedelta(days=1)))  # whole days, rounded up: busy is safe
        component.pop("DURATION")
        component.add("DURATION", timedelta(days=days))
        return [(ProblemCode.PROPERTY, f"DURATION {duration.to_ical().decode()} of an all-day event read as {days} day(s)")]
    if end is None or isinstance(end, list):
        return []
    try:
        end_value = end.dt
        start_value = start.dt if start is not None and not isinstance(start, list) else None
    except (ValueError, TypeError, AttributeError):
        start_value = end_value = None
    if not isinstance(end_value, date):
        del component["DTEND"]
        return [(ProblemCode.PROPERTY, f"unreadable DTEND {end.to_ical().decode(errors='replace')[:40]!r} ignored: read from its start")]
    if not isinstance(start_value, date) or isinstance(start_value, datetime) == isinstance(end_value, datetime):
        return []
    del component["DTEND"]
    if isinstance(end_value, datetime):  # an all-day start
        day = end_value.date() + timedelta(days=1 if end_value.time() != time(0) else 0)
        component.add("DTEND", max(day, start_value + timedelta(days=1)))
        return [(ProblemCode.PROPERTY, f"DTEND {end_value.isoformat()} of an all-day event read as the date {day.isoformat()}")]
    assert isinstance(start_value, datetime)
    component.add("DTEND", datetime.combine(end_value, time(0), start_value.tzinfo))
    return [(ProblemCode.PROPERTY, f"DTEND {end_value.isoformat()} of a timed event read as midnight of that day")]


def _date_only(prop: Any) -> bool:
    try:
        return not isinstance(prop.dt, datetime) and isinstance(prop.dt, date)
    except (AttributeError, ValueError, TypeError):
        return False


def _masterless(components: Sequence[icalendar.cal.Component]) -> list[Notice]:
    """An object of one component changing "this and every later" occurrence of a series it
    does not hold (Lotus Notes writes whole series so: RECURRENCE-ID;RANGE=THISANDFUTURE with
    the occurrences as RDATEs) is that series: read as its master, in place, with a warning."""
    if len(components) != 1:
        return []
    [component] = components
    rid = component.get("RECURRENCE-ID")
    if rid is None or str(getattr(rid, "params", {}).get("RANGE", "")).upper() != "THISANDFUTURE" \
            or not (component.get("RDATE") or component.get("RRULE")):
        return []
    del component["RECURRENCE-ID"]
    return [(ProblemCode.PROPERTY, "a change to this and later occurrences of a series the object lacks "
             "(RANGE=THISANDFUTURE, as Lotus Notes writes series) read as the series")]


def parse_items(data: str | bytes, platform: str = "") -> tuple[list[CalendarItem], list[Problem]]:
    """Calendar text -> items grouped by UID (master + overrides), plus problems per bad event."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    problems: list[Problem] = []
    by_uid: dict[str, CalendarItem] = {}
    periods: list[tuple[CalendarItem, Event, list[tuple[Temporal, Temporal]]]] = []
    for cal in _parse_calendars(data, platform, problems):
        groups: dict[str, list[icalendar.cal.Component]] = {}
        mended_by: dict[int, list[Notice]] = {}
        for component in cal.walk("VEVENT"):
            mended_by[id(component)] = _repair(component)
            groups.setdefault(str(component.get("UID", "")), []).append(component)
        for group in groups.values():
            for w in _masterless(group):
                mended_by[id(group[0])].append(w)
        for component in (c for group in groups.values() for c in group):
            mended = mended_by[id(component)]
            try:
                event, warnings = event_from_component(component)
            except (ValueError, TypeError, KeyError) as exc:
                problems.append(_unplaceable(platform, component, exc))
                continue
            problems.extend(_problem(platform, component, code, w) for code, w in mended + warnings)
            item = by_uid.setdefault(event.uid, CalendarItem(event.uid, []))
            item.components.append(event)
            if event.recurrence_id is None and (found := _periods(component)):
                periods.append((item, event, found))
    for item, master, found in periods:
        overridden = {_rid_key(e.recurrence_id) for e in item.components if e.recurrence_id is not None}
        item.components.extend(_period_overrides(master, found, overridden))
    for item in by_uid.values():
        item.components.sort(key=lambda e: (e.recurrence_id is not None, str(e.recurrence_id)))
    return list(by_uid.values()), problems


_Parsed = tuple[list[tuple[str, list[Event]]], list[Problem]]
_T = TypeVar("_T")
_STAMP = re.compile(rb"^DTSTAMP:\d{8}T\d{6}Z\r?\n", re.M)


class _TextMemo(Generic[_T]):
    """Results computed from calendar text, by its exact bytes (the last ones, a byte budget on
    the texts bounds it), shared by every connector of the process and safe across threads.

    A text is known by its digest (BLAKE2b, 128 bits), not kept itself: the texts were over a
    third of what a memo held (10,000 stored objects of ~880 bytes: 8.5 MB of keys beside 13.6 MB
    of parsed events), and nothing read from them needs them again. The budget still
    counts the texts' lengths, so a memo keeps as many results as before; what it holds is the
    results alone (:data:`_OBJECTS` and :data:`_READS` say how much that is).

    A thread asking for a text another thread is computing right now waits for that result
    (two calendars read side by side meet the same objects at the same moment). A text above
    ``largest`` bytes is computed but never kept: one huge text must not push out thousands."""

    def __init__(self, budget: int, largest: int | None = None) -> None:
        self._budget = budget
        self._largest = budget // 100 if largest is None else largest
        self._size = 0
        self._entries: OrderedDict[bytes, tuple[_T, int]] = OrderedDict()
        """digest -> (result, the text's length)"""
        self._running: dict[bytes, threading.Event] = {}
        self._lock = threading.Lock()

    def get(self, text: bytes, compute: Callable[[], _T], keep: Callable[[_T], bool] = lambda _found: True) -> _T:
        """The result for ``text``, computed (and kept if ``keep`` says so) when not known."""
        key = hashlib.blake2b(text, digest_size=16).digest()
        mine = other = None
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return entry[0]
            if (other := self._running.get(key)) is None:
                self._running[key] = mine = threading.Event()
        if other is not None:  # another thread is computing it: wait for that result
            other.wait()
            with self._lock:
                entry = self._entries.get(key)  # None if it was not kept
            if entry is not None:
                return entry[0]
        result: _T | None = None
        try:
            result = compute()
            return result
        finally:
            if mine is not None:
                self._keep(key, len(text), result if result is not None and keep(result) else None)
                mine.set()

    def _keep(self, key: bytes, size: int, found: _T | None) -> None:
        with self._lock:
            del self._running[key]
            if found is None or size > self._largest or key in self._entries:
                return
            self._entries[key] = (found, size)
            self._size += size
            while self._size > self._budget:
                self._size -= self._entries.popitem(last=False)[1][1]


class _ObjectMemo(_TextMemo[_Parsed]):
    """Stored calendar objects read into items, by their bytes.

    The same stored bytes are read again and again: on both sides of a first comparison of two
    calendars filled from one export (10,000 objects each, every one parsed twice), and by every
    reader of a meeting a server copies into each attendee's calendar. A well-formed DTSTAMP line
    is left out of the key: it says when the object was written out, which nothing read from it
    depends on, and some servers (and any two exports) stamp the same event differently. Results
    are shared; the item wrappers are not, since callers attach their own ``ref``."""

    def parse(self, data: bytes, platform: str) -> tuple[list[CalendarItem], list[Problem]]:
        def read() -> _Parsed:
            items, problems = parse_items(data)
            return [(i.uid, i.components) for i in items], problems

        parts, problems = self.get(_STAMP.sub(b"", data), read)
        return ([CalendarItem(uid, list(components)) for uid, components in parts],
                [replace(p, platform=platform) for p in problems])


_OBJECTS = _ObjectMemo(64 * 1024 * 1024)
"""Stored objects read into items, for texts of up to 64 MB in all: the items take about 1.7
times their texts' size (measured on the sync bench's objects), so at most ~110 MB."""


def parse_object(data: str | bytes, platform: str = "") -> tuple[list[CalendarItem], list[Problem]]:
    """:func:`parse_items` for one stored calendar object (a CalDAV resource), remembered by its
    bytes: identical bytes are parsed once (see :class:`_ObjectMemo`)."""
    return _OBJECTS.parse(data.encode("utf-8") if isinstance(data, str) else data, platform)


MAX_EXPANSION_STEPS = 100_000
"""Recurrence steps one series may cost (a step is one FREQ period from its DTSTART to the end of
the window: dateutil walks them all, about 10 µs each, whatever the window). ``FREQ=SECONDLY``
without an end, begun years ago, would otherwise keep a core busy for hours, long after the asker
gave up: a series over the budget counts its first instance, and the rest of its time is unknown."""
MAX_OCCURRENCES = 5_000
"""Occurrences one series may have in the window asked (each costs about a millisecond to build):
more than one every two minutes for a week is no calendar a person keeps. Beyond, as above."""

_PERIOD = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400,
           "MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}


def _utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _cost(master: icalendar.cal.Component, lo: datetime, hi: datetime) -> str | None:
    """Why expanding ``master`` over ``[lo, hi)`` costs too much (see MAX_EXPANSION_STEPS and
    MAX_OCCURRENCES), or None. An estimate from the rule, made before any work is done."""
    start = _utc(master.decoded("DTSTART"))
    rules = master.get("RRULE")
    if start is None or rules is None:
        return None
    steps = occurrences = 0.0
    for rule in rules if isinstance(rules, list) else [rules]:
        period = _PERIOD.get(str((rule.get("FREQ") or [""])[0]).upper(), 86400)
        try:
            interval = max(1, int((rule.get("INTERVAL") or [1])[0]))
            count = float(rule["COUNT"][0]) if rule.get("COUNT") else float("inf")
        except (TypeError, ValueError):
            interval, count = 1, float("inf")
        end = min(hi, _utc((rule.get("UNTIL") or [None])[0]) or hi)
        step = interval * period
        per_step = 1  # BYHOUR=9,17 on a DAILY rule: two occurrences a step (finer parts only expand)
        for name, unit in (("BYHOUR", 3600), ("BYMINUTE", 60), ("BYSECOND", 1)):
            if period > unit:
                per_step *= len(rule.get(name) or [0])
        steps += min(count, max(0.0, (end - start).total_seconds()) / step)
        occurrences += min(count, max(0.0, (end - max(lo, start)).total_seconds()) / step) * per_step
    if steps > MAX_EXPANSION_STEPS:
        return f"recurrence too costly to expand ({steps:.3g} steps from its start)"
    if occurrences > MAX_OCCURRENCES:
        return f"recurrence too costly to expand ({occurrences:.3g} occurrences in the window)"
    return None


@dataclass(slots=True)
class _Series:
    """One UID of a calendar text, read and checked: what expanding it in any window needs.

    Built once per text and shared by every thread reading that text (see :data:`_READS`), so
    never changed afterwards (but for ``blocks``, under :data:`_SPANS_LOCK`): a window whose
    expansion must drop a rule works on copies."""

    timezones: list[icalendar.cal.Component]
    components: list[icalendar.cal.Component]
    """The readable components, mended (:func:`_repair`)."""
    problems: list[Problem]
    """What reading them found, whatever the window (platform left blank)."""
    master: Event | None
    """The (last) component with a rule, as read: where its first instance ends."""
    master_component: icalendar.cal.Component | None
    unusable: list[str]
    """Why the master's rules cannot be expanded in any window."""
    recurring: bool
    lengths: _Lengths
    fixed: list[Event] | None = None
    """A UID without rules or overrides: its occurrences, the same in every window (each window
    only picks those it overlaps). None: expanded for each window."""
    excluded: frozenset[Temporal] = frozenset()
    """The master's zoned EXDATEs as UTC instants (:func:`calmesh.model.instant`), taken out of
    its component and applied to the occurrences here (see :func:`_taken_over`)."""
    overrides: tuple[Event, ...] = ()
    """Its overrides of single instances, taken out of the components and put in place of the
    instances they override here (see :func:`_taken_over`)."""
    blocks: dict[datetime, list[Event] | None] = field(default_factory=dict)
    """A series' occurrences in the :data:`_SPAN` starting at each key, kept for the next window
    in that block; None where expanding the block found a problem (each window is expanded on its
    own there, so its problems name that window)."""


_WIDE = Window(datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
"""Where a UID without rules is expanded once; one beyond it is expanded for each window."""
_SPAN = timedelta(days=28)
"""A series is expanded by these blocks (from :data:`_SPAN_EPOCH`), each kept on the series: the
windows asked of a calendar are mostly the weeks around now, and expanding a series (the
recurrence library's occurrences, each turned into an event) was the largest share of reading a
calendar once its text was read. A block costs about four weeks' expansion, once."""
_SPAN_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)
_SPANS_KEPT = 3
"""Blocks kept per series (the oldest goes first): memory stays a few blocks' occurrences."""
_SPANS_LOCK = threading.Lock()


def _read_series(cals: Sequence[icalendar.Calendar], platform: str) -> list[_Series]:
    """Each UID of the calendars, checked once (each bad component a problem naming it)."""
    out: list[_Series] = []
    for cal in cals:
        timezones = list(cal.walk("VTIMEZONE"))
        groups: dict[str, list[icalendar.cal.Component]] = {}
        mended: dict[int, list[Notice]] = {}
        for component in cal.walk("VEVENT"):
            mended[id(component)] = _repair(component)
            groups.setdefault(str(component.get("UID", "")), []).append(component)
        for group in groups.values():
            mended[id(group[0])].extend(_masterless(group))
        for group in groups.values():
            cancel.check()  # the asker gave up (a deadline passed): stop here, not hours later
            problems: list[Problem] = []
            components = []
            events: dict[int, Event] = {}
            master: Event | None = None
            master_component = None
            unusable: list[str] = []
            for component in group:  # validate first: a clear message per bad component
                try:
                    event, warnings = event_from_component(component)
                except (ValueError, TypeError, KeyError) as exc:
                    problems.append(_unplaceable(platform, component, exc))
                    continue
                problems.extend(_problem(platform, component, code, w)  # a rule's problem: reported below
                                for code, w in mended[id(component)] + warnings if code is not ProblemCode.RECURRENCE)
                if event.recurrence_id is None and (event.rrule or event.rdate):
                    master, master_component = event, component
                    unusable = [f"unreadable RRULE {r!r} ({why})" for r in event.rrule if (why := rrule_problem(r))]
                components.append(component)
                events[id(component)] = event
            recurring = any(c.get("RRULE") or c.get("RDATE") or c.get("RECURRENCE-ID") for c in components)
            lengths = _Lengths(components)
            expanded, excluded, overrides = _taken_over(master, master_component, components, events)
            if expanded is not components:  # the master alone, less its zoned EXDATEs
                master_component = expanded[0]
            series = _Series(timezones, expanded, problems, master, master_component, unusable, recurring, lengths,
                             excluded=excluded, overrides=overrides)
            if components and not recurring:
                found, issues = _expanded(series, _WIDE, platform, UTC)
                if not issues and len(found) == len(components):
                    series.fixed, series.components = found, []
            out.append(series)
    return out


def _expanded(series: _Series, window: Window, platform: str, default_tz: tzinfo) -> tuple[list[Event], list[Problem]]:
    """The occurrences of one UID near ``window`` (all-day and floating events are local time:
    a day more each side, the caller keeps those overlapping it), and what went wrong."""
    lo, hi = window.start - timedelta(days=1), window.end + timedelta(days=1)
    problems: list[Problem] = []
    components = series.components
    unusable = list(series.unusable)
    first_end = series.master.span_utc(default_tz)[1] if series.master is not None else None
    if series.master_component is not None and not unusable and (costly := _cost(series.master_component, lo, hi)):
        unusable = [costly]
    found = None
    for attempt in range(2):
        if unusable:  # keep what is certain: the first instance, RDATEs, overrides
            components = [_without_rules(c) for c in components]
        single = icalendar.Calendar()
        for tz in series.timezones:
            single.add_component(tz)
        for component in components:
            single.add_component(component)
        try:
            found = recurring_ical_events.of(single).between(lo, hi)
            break
        except Exception as exc:  # noqa: BLE001 - the library raises many kinds on bad series
            unusable = unusable or [f"cannot expand recurrence: {exc}"]
            first_end = first_end if attempt == 0 else None  # nothing of it could be read
    if unusable:
        rest = max(window.start, first_end) if first_end is not None else window.start
        problems.append(_problem(platform, components[0], ProblemCode.RECURRENCE,
                                 "; ".join(unusable) + ": the rest of the series is unknown",
                                 unknown=(rest, window.end) if rest < window.end else None))
    overridden = {instant(o.recurrence_id) for o in series.overrides if o.recurrence_id is not None}
    occurrences = []
    for occurrence in found or []:
        try:
            # the library ends an occurrence at the same wall-clock distance from its start:
            # one starting at a time the clocks skip (read with the offset before the gap, RFC
            # 5545 3.3.5) could end before it starts, and was dropped (its time shown free)
            event, _ = event_from_component(occurrence, ordered=False)
            if instant(event.recurrence_id or event.start) in overridden:
                continue  # its override is in its place (its end, in a gap, would be no end)
            event.end = series.lengths.end_of(event)
            _check_order(event.start, event.end)
        except (ValueError, TypeError, KeyError) as exc:
            problems.append(_unplaceable(platform, occurrence, exc))
            continue
        if not series.recurring:
            event.recurrence_id = None
        elif event.recurrence_id is None:
            event.recurrence_id = event.start
        event.rrule, event.rdate, event.exdate = [], [], []
        occurrences.append(event)
    occurrences += [replace(o) for o in series.overrides if _overlaps(o, Window(lo, hi), default_tz)]
    return _by_instant(occurrences, series.excluded), problems


def _by_instant(occurrences: list[Event], excluded: frozenset[Temporal]) -> list[Event]:
    """``occurrences`` each instance once, less those ``excluded``, by :func:`calmesh.model.instant`
    of their RECURRENCE-ID (and start: the later instances a ``RANGE=THISANDFUTURE`` override
    moves all carry its RECURRENCE-ID). recurring-ical-events compares instances by Python
    equality, and EXDATEs by both the UTC and the wall-clock reading of each time: an RDATE at an
    RRULE instance's instant, written in UTC or another zone, counted twice when it fell in the
    hour the clocks go back over; an EXDATE at 10:00 Paris excluded an RDATE at 10:00 UTC, and an
    EXDATE at 11:00 Paris (10:00 UTC) the 10:00 and 12:00 instances of an hourly rule too (which
    is why :func:`_taken_over` takes such EXDATEs out of its hands)."""
    out: dict[tuple[str, Temporal | None, Temporal], Event] = {}
    for event in occurrences:
        key = instant(event.recurrence_id) if event.recurrence_id is not None else None
        if key is not None and key in excluded:
            continue
        out.setdefault((event.uid, key, instant(event.start)), event)
    return list(out.values())


def _taken_over(master: Event | None, master_component: icalendar.cal.Component | None,
                components: list[icalendar.cal.Component], events: dict[int, Event],
                ) -> tuple[list[icalendar.cal.Component], frozenset[Temporal], tuple[Event, ...]]:
    """What of a zoned series calmesh matches by instant itself rather than leave to
    recurring-ical-events, which matches EXDATEs and RECURRENCE-IDs by both the UTC and the
    wall-clock reading of each time (see :func:`_by_instant`; an override of the 11:00 instance
    of an hourly rule in Paris also took the place of the 10:00 and 12:00 ones, shown free): the
    components left for the library (the master, less its zoned EXDATEs), those EXDATEs as
    instants, and the overrides (of one RECURRENCE-ID, the one with the highest SEQUENCE). All is
    left to the library for a floating series (an EXDATE in UTC excludes its wall time there), one
    with a ``RANGE=THISANDFUTURE`` override (the instances it moves carry its RECURRENCE-ID, not
    their own), or with a component that is no override of one zoned instance."""
    nothing: tuple[list[icalendar.cal.Component], frozenset[Temporal], tuple[Event, ...]] = (components, frozenset(), ())
    if master is None or master_component is None or not isinstance(master.start, datetime) \
            or master.start.tzinfo is None:
        return nothing
    overrides = [events[id(c)] for c in components if c is not master_component]
    if any(o.this_and_future or o.rrule or o.rdate or not isinstance(o.recurrence_id, datetime)
           or o.recurrence_id.tzinfo is None for o in overrides):
        return nothing
    zoned = [x for x in master.exdate if isinstance(x, datetime) and x.tzinfo]
    if not zoned and not overrides:
        return nothing
    # of two overrides of one instance, the one with the higher SEQUENCE wins, as in the library
    chosen = {instant(o.recurrence_id): o for o in sorted(overrides, key=lambda o: o.sequence) if o.recurrence_id}
    bare = _without_zoned_exdates(master_component, master.exdate) if zoned else master_component
    return [bare], frozenset(instant(x) for x in zoned), tuple(chosen.values())


def _without_zoned_exdates(component: icalendar.cal.Component, exdates: list[Temporal]) -> icalendar.cal.Component:
    """A copy of ``component`` whose EXDATEs are only its dates and floating times (those left to
    the recurrence library, which compares them as the values they are)."""
    bare = copy.copy(component)
    bare.pop("EXDATE", None)
    rest = [x for x in exdates if not (isinstance(x, datetime) and x.tzinfo)]
    if rest:
        bare.add("EXDATE", rest)
    return bare


def _without_rules(component: icalendar.cal.Component) -> icalendar.cal.Component:
    """A copy of ``component`` less its RRULE (the original may be shared by other readers)."""
    bare = copy.copy(component)
    bare.pop("RRULE", None)
    return bare


def _overlaps(event: Event, window: Window, default_tz: tzinfo) -> bool:
    start, end = event.span_utc(default_tz)
    return window.overlaps(start, end if end > start else start + timedelta(microseconds=1))


_READS: _TextMemo[tuple[list[_Series], list[Problem]]] = _TextMemo(32 * 1024 * 1024, largest=4 * 1024 * 1024)
"""Calendar texts read for expansion, by their bytes: a cold free/busy answer reads the same
stored objects and files as the one before it whenever they have not changed, and reading them
(icalendar's parsing, checking each component) was most of its cost. Only texts read whole are
kept: one needing salvage is read again each time (its problems name the window asked). What a
read holds (icalendar's components, the series, the blocks of occurrences already expanded) takes
about four times its text's size (the sync bench's objects, one week expanded), so at most
~130 MB for the 32 MB of texts."""


def expand(
    data: str | bytes | icalendar.Calendar,
    window: Window,
    platform: str = "",
    default_tz: tzinfo = UTC,
) -> tuple[list[Event], list[Problem]]:
    """Occurrences overlapping ``window``, recurrence expanded, from one calendar text.

    Each UID is expanded on its own so a broken series is reported and skipped while the rest
    of the calendar still counts. What cannot be read is unknown, never free: a problem that
    leaves time unaccounted for carries it (``Problem.unknown``): the whole window when the text
    could not be read or lost events, the rest of a series after its first instance when its
    rule cannot be read or costs more than :data:`MAX_EXPANSION_STEPS`. A text read before is
    not read again (:data:`_READS`); only the expansion in ``window`` is done each time.
    """
    problems: list[Problem] = []
    expand_series = _by_blocks  # series kept in the memo keep their blocks for the next window
    if isinstance(data, icalendar.Calendar):
        all_series = _read_series([data], platform)
        expand_series = _expanded  # read for this call only: a block would be expanded for nothing
    else:
        text = data.encode() if isinstance(data, str) else data

        def read() -> tuple[list[_Series], list[Problem]]:
            text_problems: list[Problem] = []
            cals = _parse_calendars(text, "", text_problems, (window.start, window.end))
            return _read_series(cals, ""), text_problems

        all_series, text_problems = _READS.get(text, read, keep=lambda found: not found[1])
        problems = [replace(p, platform=platform) for p in text_problems]
    occurrences: list[Event] = []
    for series in all_series:
        cancel.check()  # the asker gave up (a deadline passed): stop here, not hours later
        problems.extend(replace(p, platform=platform) for p in series.problems)
        if series.fixed is not None:
            occurrences.extend(e for e in series.fixed if _overlaps(e, window, default_tz))
            continue
        if not series.components:
            continue
        found, issues = expand_series(series, window, platform, default_tz)
        problems.extend(issues)
        occurrences.extend(e for e in found if _overlaps(e, window, default_tz))
    return occurrences, list(dict.fromkeys(problems))  # each problem once, in order


def _by_blocks(series: _Series, window: Window, platform: str, default_tz: tzinfo
               ) -> tuple[list[Event], list[Problem]]:
    """What :func:`_expanded` gives for ``window`` (a superset of the occurrences overlapping
    it), from the series' kept :data:`_SPAN` expansions. A block whose expansion has a problem
    (a rule too costly there, an occurrence unreadable) is never used: the window is expanded on
    its own, as before blocks, so what is reported is what this window finds."""
    first = (window.start - _SPAN_EPOCH) // _SPAN
    last = -(-(window.end - _SPAN_EPOCH) // _SPAN)
    if last - first > _SPANS_KEPT:  # a long window: its blocks would push each other out
        return _expanded(series, window, platform, default_tz)
    found: list[Event] = []
    for n in range(first, last):
        start = _SPAN_EPOCH + n * _SPAN
        with _SPANS_LOCK:
            seen, kept = start in series.blocks, series.blocks.get(start)
        if not seen:
            expanded, issues = _expanded(series, Window(start, start + _SPAN), platform, default_tz)
            kept = None if issues else expanded
            with _SPANS_LOCK:
                series.blocks[start] = kept
                while len(series.blocks) > _SPANS_KEPT:
                    del series.blocks[next(iter(series.blocks))]
        if kept is None:
            return _expanded(series, window, platform, default_tz)
        found.extend(kept)
    if last - first > 1:  # an occurrence near a block's edge is in both blocks' expansions
        found = _by_instant(found, frozenset())
    return found, []


class _Lengths:
    """How long each generated instance of a series lasts (RFC 5545 3.8.5.3): the exact duration
    of its DTSTART-DTEND when DTEND is given, the nominal days plus exact time of its DURATION
    otherwise; taken from the latest ``RANGE=THISANDFUTURE`` override before it, else from the
    master. recurring-ical-events adds the local-time difference instead, so an instance spanning
    a change of clocks came out an hour short or long."""

    def __init__(self, components: Sequence[icalendar.cal.Component]) -> None:
        self._master: tuple[timedelta, int | None] | None = None
        self._future: list[tuple[datetime, tuple[timedelta, int | None] | None]] = []
        self._explicit: set[str] = set()
        for component in components:
            rid = component.get("RECURRENCE-ID")
            if rid is None:
                self._master = _length(component)
                # a PERIOD RDATE gives its own end
                self._explicit.update(_rid_key(start) for start, _end in _periods(component))
            elif str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE" and isinstance(rid.dt, datetime):
                self._future.append((as_utc(rid.dt), _length(component)))
                self._explicit.add(_rid_key(rid.dt))
            else:
                self._explicit.add(_rid_key(rid.dt))
        self._future.sort(key=lambda pair: pair[0])

    def end_of(self, occurrence: Event) -> Temporal | None:
        start, rid = occurrence.start, occurrence.recurrence_id
        if not isinstance(start, datetime) or start.tzinfo is None \
                or (rid is not None and _rid_key(rid) in self._explicit):
            return occurrence.end  # its own component says when it ends
        length = self._master
        for since, future in self._future:
            if rid is not None and since <= as_utc(rid):
                length = future
        if length is None:
            return occurrence.end
        return after(start, *length)


def _length(component: icalendar.cal.Component) -> tuple[timedelta, int | None] | None:
    """How long an instance lasts, as :func:`after` takes it: (DTEND - DTSTART in elapsed time,
    no nominal days), or (DURATION, the days it is written with); None otherwise."""
    try:
        start = component.decoded("DTSTART")
        if component.get("DTEND") is not None:
            end = component.decoded("DTEND")
            if isinstance(start, datetime) and isinstance(end, datetime) and start.tzinfo and end.tzinfo:
                return as_utc(end) - as_utc(start), 0
            return None
        if component.get("DURATION") is not None:
            duration = component.decoded("DURATION")
            return (duration, written_days(component["DURATION"])) if isinstance(duration, timedelta) else None
    except (ValueError, TypeError, KeyError):
        pass
    return None


def expand_items(items: Iterable[CalendarItem], window: Window, platform: str = "",
                 default_tz: tzinfo = UTC) -> tuple[list[Event], list[Problem]]:
    return expand(to_calendar(items), window, platform, default_tz)


def without_this_and_future(item: CalendarItem) -> CalendarItem:
    """``item`` with each ``RANGE=THISANDFUTURE`` override spelled out as an override of every
    instance it changes: the same occurrences, for platforms without such a range (Exchange, by
    EWS and Graph, overrides one occurrence at a time). Raises ValueError for an endless series
    (no COUNT or UNTIL), which would take endless overrides: the write fails with that reason
    rather than leave later instances at their old time."""
    futures = [e for e in item.components if e.this_and_future and e.recurrence_id is not None]
    master = item.master
    if not futures or master is None:
        return item
    if is_endless(master):
        raise ValueError("a change to an occurrence and every later one (RANGE=THISANDFUTURE) of an "
                         "endless series cannot be written here: it has no such range")

    def since(override: Event) -> datetime:
        assert override.recurrence_id is not None
        return as_utc(override.recurrence_id)

    first = min(since(e) for e in futures)
    # the instances as the master alone makes them, from the first change on
    originals, problems = expand_items([CalendarItem(item.uid, [master])],
                                       Window(first, datetime(2200, 1, 1, tzinfo=UTC)))
    if problems:
        raise ValueError(f"cannot spell out RANGE=THISANDFUTURE: {problems[0].message}")
    explicit = {_rid_key(e.recurrence_id): e for e in item.overrides
                if not e.this_and_future and e.recurrence_id is not None}
    components = [master]
    for occurrence in originals:
        rid = occurrence.recurrence_id
        if rid is None or as_utc(rid) < first or _rid_key(rid) in explicit:
            continue
        governing = max((f for f in futures if since(f) <= as_utc(rid)), key=since)
        start, end = _shifted(rid, governing)
        components.append(replace(governing, recurrence_id=rid, start=start, end=end, this_and_future=False))
    components.extend(explicit.values())
    return CalendarItem(item.uid, components, item.ref)


def _shifted(rid: Temporal, change: Event) -> tuple[Temporal, Temporal]:
    """Where the instance at ``rid`` goes under a THISANDFUTURE ``change`` (RFC 5545 3.8.4.4):
    moved as the changed instance was, in local time, lasting as long as it does."""
    assert change.recurrence_id is not None
    if not isinstance(rid, datetime) or rid.tzinfo is None:
        start = rid + (change.start - change.recurrence_id)  # type: ignore[operator]
        return start, start + (change.effective_end() - change.start)  # type: ignore[operator]
    zone = rid.tzinfo

    def wall(value: Temporal) -> datetime:
        return as_utc(value).astimezone(zone).replace(tzinfo=None)

    start = (rid.replace(tzinfo=None) + (wall(change.start) - wall(change.recurrence_id))).replace(tzinfo=zone)
    length = as_utc(change.effective_end()) - as_utc(change.start)
    return start, (start.astimezone(UTC) + length).astimezone(zone)


# ------------------------------------------------------------------------------------ writing
def _portable(value: Temporal) -> Temporal:
    """A date-time iCalendar can carry as it is, the same instant. One in a fixed UTC offset (no
    zone name, as Graph, EWS or a parsed ``+01:00`` give) is written in UTC: written as it is it
    would get a made-up TZID ("UTC+01:00") with no VTIMEZONE, which readers take as floating time.

    So is the second of two equal wall times in its zone (the hour the clocks repeat when they
    go back; PEP 495's fold 1): RFC 5545 3.3.5 reads such a local time as its first occurrence,
    an hour earlier, so an event ending then (an end computed from a DURATION, or from an instant
    another platform gave) came back ending an hour early, or before it starts. The DTSTART of a
    series, whose rule must recur in its zone, never is one here (see
    :func:`calmesh.model.in_writable_form`)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.tzinfo is UTC:
        return value
    if not isinstance(value.tzinfo, ZoneInfo | DefinedZone):
        return value.astimezone(UTC) if value.utcoffset() is not None else value
    if value.fold and value.replace(fold=0).utcoffset() != value.utcoffset():
        return value.astimezone(UTC)
    return value


def _add_temporal(component: icalendar.cal.Component, name: str, value: Temporal) -> None:
    component.add(name, _portable(value))


def _by_zone(values: Iterable[Temporal]) -> list[list[Temporal]]:
    """``values`` grouped by zone (dates and floating times together), in order of first
    appearance: one RDATE line holds one TZID (icalendar gives a list the TZID of its last zoned
    value, so a value of another zone, or one in UTC, would be read in that zone)."""
    groups: dict[object, list[Temporal]] = {}
    for value in values:
        zone = value.tzinfo if isinstance(value, datetime) else None
        groups.setdefault((type(value), zone), []).append(value)
    return list(groups.values())


def _person_prop(person: Attendee) -> icalendar.vCalAddress:
    prop = icalendar.vCalAddress(f"mailto:{person.email}")
    if person.name:
        prop.params["CN"] = person.name
    prop.params["PARTSTAT"] = person.partstat.value
    prop.params["ROLE"] = person.role.value
    if person.rsvp:
        prop.params["RSVP"] = "TRUE"
    return prop


def event_to_component(event: Event, *, stamp: datetime | None = None) -> icalendar.Event:
    event = in_writable_form(event)
    component = icalendar.Event()
    component.add("UID", event.uid)
    component.add("DTSTAMP", stamp or datetime.now(UTC))
    _add_temporal(component, "DTSTART", event.start)
    if event.end is not None:
        _add_temporal(component, "DTEND", event.end)
    if event.recurrence_id is not None:
        _add_temporal(component, "RECURRENCE-ID", event.recurrence_id)
        if event.this_and_future:
            component["RECURRENCE-ID"].params["RANGE"] = "THISANDFUTURE"
    for name, value in (("SUMMARY", event.summary), ("DESCRIPTION", event.description),
                        ("LOCATION", event.location)):
        if value is not None:
            component.add(name, value)
    for rule in event.rrule:
        if rrule_problem(rule) is None:
            component.add("RRULE", icalendar.vRecur.from_ical(rule))
        else:  # written as it was read, so rewriting a file loses nothing (the sync quarantines it)
            component.add("RRULE", icalendar.prop.vInline(rule))
    for group in _by_zone(_portable(d) for d in event.rdate):
        component.add("RDATE", group)
    for exdate in event.exdate:
        component.add("EXDATE", _portable(exdate))
    if event.transparent:
        component.add("TRANSP", "TRANSPARENT")
    if event.status is not EventStatus.CONFIRMED:
        component.add("STATUS", event.status.value)
    if event.classification is not Classification.PUBLIC:
        component.add("CLASS", event.classification.value)
    if event.sequence:
        component.add("SEQUENCE", event.sequence)
    if event.last_modified is not None:
        component.add("LAST-MODIFIED", event.last_modified.astimezone(UTC))
    if event.created is not None:
        component.add("CREATED", event.created.astimezone(UTC))
    if event.organizer is not None:
        component.add("ORGANIZER", _person_prop(event.organizer))
    for attendee in event.attendees:
        component.add("ATTENDEE", _person_prop(attendee))
    if event.busy_type is not None and event.busy_type in _CDO_OUT:
        component.add("X-MICROSOFT-CDO-BUSYSTATUS", _CDO_OUT[event.busy_type])
    for name, value in event.extra.items():
        component.add(name, value)
    if event.unmodelled:
        for name, value in _unmodelled_properties(event.unmodelled):
            component.add(name, value, encode=False)
    for alarm in event.alarms:
        component.add_component(icalendar.Alarm.from_ical(alarm))
    return component


def observance(local: datetime, before: timedelta, after: timedelta, name: str | None,
               daylight: bool) -> icalendar.cal.Component:
    """A VTIMEZONE's STANDARD or DAYLIGHT observance: a change at ``local`` (on the clock before
    it) from offset ``before`` to ``after``."""
    observance = icalendar.TimezoneDaylight() if daylight else icalendar.TimezoneStandard()
    observance.add("DTSTART", local)
    observance.add("TZOFFSETFROM", before)
    observance.add("TZOFFSETTO", after)
    if name:
        observance.add("TZNAME", name)
    return observance


def _vtimezone(zone: ZoneInfo, first_year: int) -> icalendar.Timezone:
    """A VTIMEZONE for ``zone`` valid from ``first_year``, written the way Outlook, Apple and
    Google write them: one observance per kind of change with a yearly RRULE for the years the
    zone's changes follow such rules (up to now and on); one observance per change before that
    (US before 2007, Sydney before 2008) and for zones without yearly rules (Casablanca,
    Jerusalem...): :func:`calmesh.zone_timeline.timeline`. Never one observance listing its
    changes in an RDATE: Radicale keeps only the first value of such a list and reads every later
    change as never happening (a Sydney series an hour off from 2001 in its copy and in
    Radicale's own free/busy).

    Why not icalendar's ``add_missing_timezones``: it lists every change as an RDATE from 1970,
    Radicale then misplaces London and Sydney times by an hour (its time-range queries and
    free/busy go wrong) and Outlook is known to misread such lists; it also drops Casablanca's
    2027 changes. The changes are taken from zoneinfo itself.
    """
    line = timeline(zone, first_year)
    vtz = icalendar.Timezone()
    vtz.add("TZID", zone.key)
    if line.one_offs or not line.yearly:
        # before the first change (or forever, for a zone without changes): the offset then
        vtz.add_component(observance(line.start, line.offset, line.offset, line.name, line.daylight))
    for change in line.one_offs:  # one observance per change
        vtz.add_component(observance(change.wall, change.before, change.after, change.name, change.daylight))
    for rule in line.yearly:
        yearly = observance(rule.first, *rule.kind)
        yearly.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": rule.first.month, "BYDAY": rule.byday})
        vtz.add_component(yearly)
    return vtz


VTIMEZONES_SINCE = 2000
"""The first year calmesh's VTIMEZONEs cover (see :func:`_add_timezones`): zones on today's yearly
rules since then take two observances, zones whose rules changed since one more per change."""


def _add_timezones(cal: icalendar.Calendar, items: Sequence[CalendarItem]) -> None:
    """VTIMEZONEs for the zones the events use (see :func:`_vtimezone`), valid from
    :data:`VTIMEZONES_SINCE` (or a year before the earliest event, if earlier).

    One definition per zone, whatever the events: Radicale (through vobject) keeps the first
    VTIMEZONE it reads for a TZID for as long as it runs and reads every later object by it, so
    a definition valid only from this year's events would misplace, in its free/busy, an older
    series copied later (a Sydney series from 2001 an hour off)."""
    first_year: dict[str, tuple[ZoneInfo, int]] = {}
    defined: dict[str, DefinedZone] = {}
    for item in items:
        for event in item.components:
            for value in (event.start, event.end, event.recurrence_id, *event.exdate, *event.rdate):
                if isinstance(value, datetime) and isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key:
                    zone = value.tzinfo
                    year = min(value.year, first_year.get(zone.key, (zone, value.year))[1])
                    first_year[zone.key] = (zone, year)
                elif isinstance(value, datetime) and isinstance(value.tzinfo, DefinedZone):
                    defined.setdefault(value.tzinfo.key, value.tzinfo)
    missing = cal.get_missing_tzids()
    for key, (zone, year) in first_year.items():
        if key in missing:
            cal.add_component(_vtimezone(zone, min(year - 1, VTIMEZONES_SINCE)))
    for key, definition in defined.items():  # a zone no IANA zone matches: as it was read
        if key in missing:
            # read under its scoped name: icalendar keeps every VTIMEZONE it reads process-wide
            # by TZID, and this one must not stand for the name in other objects
            vtz = icalendar.Timezone.from_ical(_scoped_timezones(definition.definition))
            vtz["TZID"] = icalendar.vText(key)
            cal.add_component(vtz)
    cal.add_missing_timezones()  # any other named tzinfo (dateutil zones); fixed offsets go as UTC
    # VTIMEZONEs first, as Apple, Google and Outlook write them: a reader meeting a TZID before its
    # definition may have to read the object twice (icalendar does, for forward references)
    cal.subcomponents.sort(key=lambda c: c.name != "VTIMEZONE")


def to_calendar(items: Iterable[CalendarItem], *, method: str | None = None) -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    if method:
        cal.add("METHOD", method)
    items = list(items)
    for item in items:
        for event in item.components:
            cal.add_component(event_to_component(event))
    _add_timezones(cal, items)
    return cal


def item_to_ical(item: CalendarItem, *, method: str | None = None) -> bytes:
    """One calendar object resource (what a CalDAV PUT carries), with its VTIMEZONEs."""
    return to_calendar([item], method=method).to_ical()


# ------------------------------------------------------------------------------- editing a file
@dataclass(slots=True)
class _Block:
    """One component of a VCALENDAR in a text: its name and where its lines are."""

    name: bytes
    start: int
    end: int


@dataclass(slots=True)
class _Object:
    """One VCALENDAR in a text: where it begins, where its own properties end (its first
    component, or its END line) and where its END line begins."""

    start: int
    header_end: int
    end: int
    blocks: list[_Block]


def _objects(data: bytes) -> list[_Object] | None:
    """The VCALENDARs of ``data`` and their components, by position; None when its BEGIN and END
    lines do not nest (a cut or damaged text): such a text is not edited."""
    objects: list[_Object] = []
    stack: list[tuple[bytes, int]] = []
    offset = 0
    for line in data.splitlines(keepends=True):
        here, offset = offset, offset + len(line)
        text = line.rstrip(b"\r\n").rstrip(b" \t").upper()
        if text.startswith(b"BEGIN:"):
            name = text[6:]
            if (name == b"VCALENDAR") != (not stack):
                return None
            if name == b"VCALENDAR":
                objects.append(_Object(here, -1, -1, []))
            elif len(stack) == 1 and objects[-1].header_end < 0:
                objects[-1].header_end = here
            stack.append((name, here))
        elif text.startswith(b"END:") and stack:
            name, begun = stack.pop()
            if text[4:] != name:
                return None
            if name == b"VCALENDAR":
                objects[-1].end = here
                if objects[-1].header_end < 0:
                    objects[-1].header_end = here
            elif len(stack) == 1:
                objects[-1].blocks.append(_Block(name, begun, offset))
    return None if stack else objects


def _property(block: bytes, name: bytes) -> str | None:
    """The text value of the first ``name`` property of a component's text, unfolded and
    unescaped (``UID:a\\,b`` is ``a,b``, as the parser reads it); None if none (or if that line
    cannot be read)."""
    found = re.search(rb"^" + name + rb"[;:][^\r\n]*", _FOLD.sub(b"", block), re.M | re.I)
    if found is None:
        return None
    try:
        value = icalendar.parser.Contentline(found.group(0).decode(errors="replace")).parts()[2]
        return str(icalendar.vText.from_ical(value)).strip()
    except (ValueError, IndexError):
        return None


def _zone_body(block: bytes) -> bytes:
    """A VTIMEZONE's definition less its TZID, for comparing two definitions of one TZID."""
    return _TZID_LINE.sub(b"", _FOLD.sub(b"", block)).replace(b"\r\n", b"\n")


def replace_in_text(data: bytes, uid: str, item: CalendarItem | None, *, present: bool,
                    one_object: bool = False) -> bytes:
    """A calendar file's text with the components calmesh reads as the item ``uid`` replaced by
    ``item``'s (removed when None), and every other byte as it was.

    Why not write the file from what was read: what calmesh could not read (an event with a
    broken DTSTART, a VTODO, an X- component, the calendar's own properties, a property calmesh
    does not model) would be gone from the file, and with it a person's data. Here only the
    blocks of ``uid`` that calmesh reads are taken out, and only the new text is added: into the
    object that held the item (or the last one) when it means the same there, else as an object
    of its own after the others (RFC 5545 3.4: a stream may hold several). It would not where
    that object defines the item's zone name otherwise, or where its ``X-WR-TIMEZONE`` would
    make a series in UTC recur in local time (:mod:`x_wr_timezone`).

    ``present``: whether ``uid`` was read from ``data``; raises :class:`ICalError` when its text
    cannot be told apart (a damaged file), rather than leave the old version beside the new, and,
    with ``one_object`` (a CalDAV resource holds one VCALENDAR: RFC 4791 4.1), when the new text
    would need an object of its own."""
    data = _as_utf8(data)
    objects = _objects(data)
    if not objects:
        raise ICalError("no complete VCALENDAR in the text")
    newline = b"\r\n" if b"\r\n" in data or b"\n" not in data else b"\n"
    edits: list[tuple[int, int, bytes]] = []
    home: _Object | None = None
    for obj in objects:
        zones = [data[b.start:b.end] for b in obj.blocks if b.name == b"VTIMEZONE"]
        for block in obj.blocks:
            if block.name != b"VEVENT":
                continue
            text = data[block.start:block.end]
            written = _property(text, b"UID")
            if written != uid and (written or not uid.startswith("calmesh-")):  # derived UIDs: see _repair
                continue
            alone = data[obj.start:obj.header_end] + b"".join(zones) + text + b"END:VCALENDAR\r\n"
            read, _ = parse_items(alone)
            if any(i.uid == uid for i in read):  # a block calmesh cannot read stays, whatever its UID
                edits.append((block.start, block.end, b""))
                home = home or obj
    if bool(edits) != present:
        raise ICalError("the event's text cannot be told apart in this file" if present
                        else "the file holds an event with this UID that could not be read whole")
    if item is not None:
        edits.extend(_insertion(data, home or objects[-1], item, newline, one_object))
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text + data[end:]
    return data


def _insertion(data: bytes, obj: _Object, item: CalendarItem, newline: bytes,
               one_object: bool) -> list[tuple[int, int, bytes]]:
    """Where and what to add to ``data`` for ``item`` (see :func:`replace_in_text`)."""
    new = item_to_ical(item)
    if newline != b"\r\n":
        new = new.replace(b"\r\n", newline)
    parts = _objects(new)
    assert parts is not None and len(parts) == 1
    own = parts[0]
    defined = {_property(data[b.start:b.end], b"TZID"): _zone_body(data[b.start:b.end])
               for b in obj.blocks if b.name == b"VTIMEZONE"}
    zones, events = b"", b""
    separate = False
    for block in own.blocks:
        text = new[block.start:block.end]
        if block.name != b"VTIMEZONE":
            events += text
            continue
        tzid = _property(text, b"TZID") or ""
        if tzid not in defined:
            zones += text
        elif not is_iana_name(tzid) and defined[tzid] != _zone_body(text):
            separate = True  # another definition under this name in that object
    header = _FOLD.sub(b"", data[obj.start:obj.header_end])
    if re.search(rb"^X-WR-TIMEZONE[;:]", header, re.M | re.I) and any(
            (e.rrule or e.rdate) and isinstance(e.start, datetime) and (e.start.tzname() or "").upper() == "UTC"
            for e in item.components):
        separate = True  # read there, a series in UTC would recur in local time
    if separate and one_object:
        raise ICalError("the new text would need a calendar object of its own")
    if separate:
        lead = b"" if data.endswith((b"\n", b"\r")) else newline
        return [(len(data), len(data), lead + new)]
    if not obj.blocks:
        return [(obj.end, obj.end, zones + events)]
    return [(obj.blocks[0].start, obj.blocks[0].start, zones), (obj.end, obj.end, events)]


def new_uid(domain: str = "calmesh") -> str:
    return f"{uuid.uuid4()}@{domain}"


# ------------------------------------------------------------------------------------ free/busy
def parse_vfreebusy(data: str | bytes, platform: str = "") -> list[BusyPeriod]:
    """Busy periods from VFREEBUSY components (a CalDAV free-busy-query answer or a .vfb file)."""
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise ICalError(f"{platform}: free/busy answer is not iCalendar: {exc}") from exc
    out: list[BusyPeriod] = []
    for component in cal.walk("VFREEBUSY"):
        props = component.get("FREEBUSY")
        if props is None:
            continue
        for prop in props if isinstance(props, list) else [props]:
            kind = BusyType.from_fbtype(prop.params.get("FBTYPE"))
            for period in _freebusy_periods(prop):
                start, end = period
                if kind is not BusyType.FREE and end > start:
                    out.append(BusyPeriod(start, end, kind, platform or None))
    return out


def _freebusy_periods(prop: Any) -> list[tuple[datetime, datetime]]:
    periods = []
    for value in getattr(prop, "dts", None) or [prop]:
        dt = getattr(value, "dt", value)
        if isinstance(dt, tuple) and len(dt) == 2:
            start, end = dt
            if isinstance(end, timedelta):
                end = start + end
            periods.append((as_utc(start), as_utc(end)))
    if not periods:  # older icalendar: a comma-separated string of periods
        for part in str(prop.to_ical().decode() if hasattr(prop, "to_ical") else prop).split(","):
            period = icalendar.vPeriod.from_ical(part.strip())
            start, end = period
            if isinstance(end, timedelta):
                end = start + end
            periods.append((as_utc(start), as_utc(end)))
    return periods


def vfreebusy(
    periods: Sequence[BusyPeriod],
    window: Window,
    *,
    attendee: str | None = None,
    organizer: str | None = None,
    uid: str | None = None,
    method: str | None = None,
    stamp: datetime | None = None,
) -> icalendar.Calendar:
    """A VCALENDAR with one VFREEBUSY (RFC 5545 3.6.4), periods grouped by FBTYPE, in UTC."""
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    if method:
        cal.add("METHOD", method)
    fb = icalendar.FreeBusy()
    fb.add("UID", uid or new_uid())
    fb.add("DTSTAMP", stamp or datetime.now(UTC))
    fb.add("DTSTART", window.start)
    fb.add("DTEND", window.end)
    if organizer:
        fb.add("ORGANIZER", f"mailto:{normalize_email(organizer)}")
    if attendee:
        fb.add("ATTENDEE", f"mailto:{normalize_email(attendee)}")
    for period in sorted(periods, key=lambda p: p.start):
        if period.type is BusyType.FREE:
            continue
        fb.add("FREEBUSY", (period.start.astimezone(UTC), period.end.astimezone(UTC)),
               parameters={"FBTYPE": period.type.fbtype})
    cal.add_component(fb)
    return cal
