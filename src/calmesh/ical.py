"""iCalendar in and out: text <-> :mod:`calmesh.model`, recurrence expansion, VFREEBUSY.

Parsing goes through ``icalendar``; recurrence through ``recurring-ical-events`` (which handles
RRULE/RDATE/EXDATE, RECURRENCE-ID overrides and DST); ``X-WR-TIMEZONE`` calendars are normalised
with ``x-wr-timezone``. What this module adds is damage control: one bad event (truncated text,
bad dates, unknown TZID, a 5 MB description) becomes a :class:`~calmesh.model.Problem` naming the
event, and every other event of the calendar still counts.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

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
    Role,
    Temporal,
    Window,
    as_utc,
    normalize_email,
    rrule_problem,
)
from calmesh.timezones import to_iana

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


class ICalError(ValueError):
    """A calendar text could not be read at all."""


# ------------------------------------------------------------------------------------ parsing
def _text(component: icalendar.cal.Component, name: str, problems: list[str]) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    text = str(value)
    if len(text) > MAX_TEXT_PROPERTY:
        problems.append(f"{name} of {len(text) / 1e6:.1f} MB cut to {MAX_TEXT_PROPERTY // 1024} KB")
        text = text[:MAX_TEXT_PROPERTY]
    return text


def _temporal(component: icalendar.cal.Component, name: str, problems: list[str]) -> Temporal | None:
    prop = component.get(name)
    if prop is None:
        return None
    try:
        value = component.decoded(name)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"bad {name}: {exc}") from exc
    if isinstance(value, timedelta) or not isinstance(value, date):
        raise ValueError(f"bad {name}: {value!r} is not a date or date-time")
    tzid = getattr(prop, "params", {}).get("TZID")
    if isinstance(value, datetime) and value.tzinfo is None and tzid:
        iana = to_iana(tzid)
        if iana is None:
            problems.append(f"unknown TZID {tzid!r} on {name}, read as local time")
        else:
            value = value.replace(tzinfo=ZoneInfo(iana))
    return value


def _dates(component: icalendar.cal.Component, name: str) -> list[Temporal]:
    raw = component.get(name)
    if raw is None:
        return []
    out: list[Temporal] = []
    for prop in raw if isinstance(raw, list) else [raw]:
        for dt in getattr(prop, "dts", []):
            value = dt.dt
            if isinstance(value, date):
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


def event_from_component(component: icalendar.cal.Component) -> tuple[Event, list[str]]:
    """A VEVENT as an :class:`Event`, plus warnings (non-fatal issues). Raises ValueError when the
    event cannot be placed in time at all."""
    warnings: list[str] = []
    uid = str(component.get("UID") or "").strip()
    if not uid:
        raise ValueError("event has no UID")
    start = _temporal(component, "DTSTART", warnings)
    if start is None:
        raise ValueError("event has no DTSTART")
    end = _temporal(component, "DTEND", warnings)
    if end is None and component.get("DURATION") is not None:
        duration = component.decoded("DURATION")
        if not isinstance(duration, timedelta):
            raise ValueError("bad DURATION")
        end = start + duration
    if end is not None and isinstance(start, datetime) != isinstance(end, datetime):
        raise ValueError("DTSTART and DTEND mix a date and a date-time")
    if end is not None and as_utc(end) < as_utc(start):
        raise ValueError(f"DTEND {end} is before DTSTART {start}")
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
    warnings.extend(f"unreadable RRULE {rule!r} ({why}): only the first instance is known"
                    for rule in rules if (why := rrule_problem(rule)))
    try:
        sequence = int(component.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        sequence = 0
    extra = {str(k): str(v) for k, v in component.items() if _KEEP_X.match(str(k).upper())}
    event = Event(
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
    )
    return event, warnings


def _label(component: icalendar.cal.Component) -> str:
    uid = component.get("UID")
    summary = component.get("SUMMARY")
    if uid and summary:
        return f"{str(summary)[:60]!r} (UID {uid})"
    return f"UID {uid}" if uid else (f"{str(summary)[:60]!r}" if summary else "an event without UID")


_BLOCK = re.compile(rb"BEGIN:(VEVENT|VTIMEZONE)\r?\n.*?END:\1\r?\n?", re.S)
_VTIMEZONE = re.compile(
    rb"^BEGIN:VTIMEZONE\r?\n(?:(?!END:VTIMEZONE).)*?^TZID:([^\r\n]*)\r?\n.*?^END:VTIMEZONE\r?\n", re.S | re.M)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[bytes]:
    return frozenset(name.encode() for name in available_timezones())


def _without_known_timezones(data: bytes) -> bytes:
    """``data`` less the VTIMEZONE blocks of zones the IANA database knows by that very TZID.

    icalendar resolves such a TZID to the IANA zone and ignores its VTIMEZONE (it only builds
    zones from definitions it has no name for), so the blocks change nothing in what is read; yet
    they are half the lines of a typical object, and reading them was half the parse time."""
    if b"BEGIN:VTIMEZONE" not in data:
        return data
    known = _known_zones()
    return _VTIMEZONE.sub(lambda m: b"" if m.group(1) in known else m.group(0), data)


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


_FOLD = re.compile(rb"\r?\n[ \t]")


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


def _parse_calendars(data: bytes, platform: str, problems: list[Problem],
                     covers: tuple[datetime, datetime] | None = None) -> list[icalendar.Calendar]:
    """Parse the text; when the whole does not parse (truncated, garbage between components),
    salvage every complete VEVENT/VTIMEZONE block and report the rest.

    What could not be read is unknown, never free: when events were lost, or nothing usable was
    read at all (garbage, binary, an empty or cut file), the calendar-level problem carries
    ``covers`` (the window asked about) as unknown time."""
    data = _as_utf8(data)
    try:
        cals = icalendar.Calendar.from_ical(_without_known_timezones(data), multiple=True)
        if not cals:
            raise ValueError("no VCALENDAR found")
        return [x_wr_timezone.to_standard(c) for c in cals]
    except Exception as exc:  # icalendar raises bare ValueError/IndexError/KeyError on damage
        salvaged = icalendar.Calendar()
        kept = 0
        for m in _BLOCK.finditer(data):
            try:
                components, dropped = _read_block(m.group(0))
            except Exception as inner:  # noqa: BLE001 - reported as a problem below
                problems.append(Problem(platform, f"unreadable component: {inner}", _guess_uid(m.group(0))))
                continue
            problems.extend(Problem(platform, line, _guess_uid(m.group(0))) for line in dropped)
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


def _repair(component: icalendar.cal.Component) -> list[str]:
    """Mend, in place, what real exports get wrong without losing the event's time (each mend
    reported): a broken property that placing the event does not need is dropped (Google writes
    ``CREATED:00001231T000000Z``); a missing UID (RFC 2445 allowed it) becomes one derived from
    the content, so the same event gets the same UID on every read; a floating DTEND next to a
    DTSTART with a TZID is read in the DTSTART's zone, as Outlook and Google mean it."""
    warnings = []
    for name, error in list(getattr(component, "errors", [])):
        if name is None:  # a content line icalendar could not split (it left it out)
            warnings.append("an unreadable content line ignored")
        elif name.upper() not in _NEEDED and name in component:
            del component[name]
            warnings.append(f"unreadable {name} ignored ({error})")
    if not str(component.get("UID") or "").strip():
        content = _STAMP.sub(b"", component.to_ical())
        uid = f"calmesh-{hashlib.sha256(content).hexdigest()[:32]}"
        component.pop("UID", None)
        component.add("UID", uid)
        warnings.append(f"event has no UID: read as {uid}")
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
            warnings.append(f"floating DTEND read in the DTSTART's zone {tzid}")
    return warnings


def _guess_uid(block: bytes) -> str | None:
    m = re.search(rb"^UID:(.*)$", block, re.M)
    return f"UID {m.group(1).decode(errors='replace').strip()}" if m else None


def parse_items(data: str | bytes, platform: str = "") -> tuple[list[CalendarItem], list[Problem]]:
    """Calendar text -> items grouped by UID (master + overrides), plus problems per bad event."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    problems: list[Problem] = []
    by_uid: dict[str, CalendarItem] = {}
    for cal in _parse_calendars(data, platform, problems):
        for component in cal.walk("VEVENT"):
            mended = _repair(component)
            try:
                event, warnings = event_from_component(component)
            except (ValueError, TypeError, KeyError) as exc:
                problems.append(Problem(platform, str(exc), _label(component)))
                continue
            problems.extend(Problem(platform, w, _label(component)) for w in mended + warnings)
            item = by_uid.setdefault(event.uid, CalendarItem(event.uid, []))
            item.components.append(event)
    for item in by_uid.values():
        item.components.sort(key=lambda e: (e.recurrence_id is not None, str(e.recurrence_id)))
    return list(by_uid.values()), problems


_Parsed = tuple[list[tuple[str, list[Event]]], list[Problem]]
_STAMP = re.compile(rb"^DTSTAMP:\d{8}T\d{6}Z\r?\n", re.M)


class _ObjectMemo:
    """The last objects read, by their exact bytes (a byte budget bounds it), shared by every
    connector of the process and safe across threads.

    The same stored bytes are read again and again: on both sides of a first comparison of two
    calendars filled from one export (10,000 objects each, every one parsed twice), and by every
    reader of a meeting a server copies into each attendee's calendar. A well-formed DTSTAMP line
    is left out of the key: it says when the object was written out, which nothing read from it
    depends on, and some servers (and any two exports) stamp the same event differently. Results
    are shared; the item wrappers are not, since callers attach their own ``ref``."""

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._size = 0
        self._entries: OrderedDict[bytes, _Parsed] = OrderedDict()
        self._running: dict[bytes, threading.Event] = {}
        """Keys being parsed right now: a second thread asking for one waits for the first (two
        calendars read side by side meet the same objects at the same moment)."""
        self._lock = threading.Lock()

    def parse(self, data: bytes, platform: str) -> tuple[list[CalendarItem], list[Problem]]:
        key = _STAMP.sub(b"", data)
        mine = other = None
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            elif (other := self._running.get(key)) is None:
                self._running[key] = mine = threading.Event()
        if other is not None:  # another thread is reading these bytes: wait for it
            other.wait()
            with self._lock:
                found = self._entries.get(key)  # None if it was too big to keep
        if found is None:
            try:
                items, problems = parse_items(data)
                found = ([(i.uid, i.components) for i in items], problems)
            finally:
                if mine is not None:
                    self._keep(key, found)
                    mine.set()
        parts, problems = found
        return ([CalendarItem(uid, list(components)) for uid, components in parts],
                [replace(p, platform=platform) for p in problems])

    def _keep(self, key: bytes, found: _Parsed | None) -> None:
        with self._lock:
            del self._running[key]
            if found is None or len(key) > self._budget // 100 or key in self._entries:
                return
            self._entries[key] = found
            self._size += len(key)
            while self._size > self._budget:
                self._size -= len(self._entries.popitem(last=False)[0])


_OBJECTS = _ObjectMemo(64 * 1024 * 1024)


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
    rule cannot be read or costs more than :data:`MAX_EXPANSION_STEPS`.
    """
    problems: list[Problem] = []
    covers = (window.start, window.end)
    if isinstance(data, icalendar.Calendar):
        cals = [data]
    else:
        cals = _parse_calendars(data.encode() if isinstance(data, str) else data, platform, problems, covers)
    occurrences: list[Event] = []
    # all-day and floating events are local time: widen the query by a day each side, filter after
    lo, hi = window.start - timedelta(days=1), window.end + timedelta(days=1)
    for cal in cals:
        timezones = list(cal.walk("VTIMEZONE"))
        groups: dict[str, list[icalendar.cal.Component]] = {}
        mended: dict[int, list[str]] = {}
        for component in cal.walk("VEVENT"):
            mended[id(component)] = _repair(component)
            groups.setdefault(str(component.get("UID", "")), []).append(component)
        for group in groups.values():
            cancel.check()  # the asker gave up (a deadline passed): stop here, not hours later
            components = []
            first_end: datetime | None = None  # where a master's first instance ends
            unusable: list[str] = []  # why the master's rules cannot be expanded
            for component in group:  # validate first: a clear message per bad component
                try:
                    event, warnings = event_from_component(component)
                except (ValueError, TypeError, KeyError) as exc:
                    problems.append(Problem(platform, str(exc), _label(component)))
                    continue
                problems.extend(Problem(platform, w, _label(component))
                                for w in mended[id(component)] + warnings if not w.startswith("unreadable RRULE"))
                if event.recurrence_id is None and (event.rrule or event.rdate):
                    first_end = event.span_utc(default_tz)[1]
                    unusable = [f"unreadable RRULE {r!r} ({why})" for r in event.rrule if (why := rrule_problem(r))]
                    if not unusable and (costly := _cost(component, lo, hi)):
                        unusable = [costly]
                components.append(component)
            if not components:
                continue
            recurring = any(c.get("RRULE") or c.get("RDATE") or c.get("RECURRENCE-ID") for c in components)
            found = None
            for attempt in range(2):
                if unusable:  # keep what is certain: the first instance, RDATEs, overrides
                    for component in components:
                        component.pop("RRULE", None)
                single = icalendar.Calendar()
                for tz in timezones:
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
                # an error shown to whoever asks for free/busy: the UID only, never the title
                problems.append(Problem(platform, "; ".join(unusable) + ": the rest of the series is unknown",
                                        f"UID {components[0].get('UID')}",
                                        unknown=(rest, window.end) if rest < window.end else None))
            for occurrence in found or []:
                try:
                    event, _ = event_from_component(occurrence)
                except (ValueError, TypeError, KeyError) as exc:
                    problems.append(Problem(platform, str(exc), _label(occurrence)))
                    continue
                if not recurring:
                    event.recurrence_id = None
                elif event.recurrence_id is None:
                    event.recurrence_id = event.start
                event.rrule, event.rdate, event.exdate = [], [], []
                start, end = event.span_utc(default_tz)
                if window.overlaps(start, end if end > start else start + timedelta(microseconds=1)):
                    occurrences.append(event)
    return occurrences, list(dict.fromkeys(problems))  # each problem once, in order


def expand_items(items: Iterable[CalendarItem], window: Window, platform: str = "",
                 default_tz: tzinfo = UTC) -> tuple[list[Event], list[Problem]]:
    return expand(to_calendar(items), window, platform, default_tz)


# ------------------------------------------------------------------------------------ writing
def _portable(value: Temporal) -> Temporal:
    """A date-time iCalendar can carry as it is: one in a fixed UTC offset (no zone name, as
    Graph, EWS or a parsed ``+01:00`` give) is written in UTC, the same instant. Written as it is it
    would get a made-up TZID ("UTC+01:00") with no VTIMEZONE, which readers take as floating time."""
    if isinstance(value, datetime) and value.tzinfo is not None and not isinstance(value.tzinfo, ZoneInfo) \
            and value.utcoffset() is not None and value.tzinfo is not UTC:
        return value.astimezone(UTC)
    return value


def _add_temporal(component: icalendar.cal.Component, name: str, value: Temporal) -> None:
    component.add(name, _portable(value))


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
    component = icalendar.Event()
    component.add("UID", event.uid)
    component.add("DTSTAMP", stamp or datetime.now(UTC))
    _add_temporal(component, "DTSTART", event.start)
    if event.end is not None:
        _add_temporal(component, "DTEND", event.end)
    if event.recurrence_id is not None:
        _add_temporal(component, "RECURRENCE-ID", event.recurrence_id)
    for name, value in (("SUMMARY", event.summary), ("DESCRIPTION", event.description),
                        ("LOCATION", event.location)):
        if value is not None:
            component.add(name, value)
    for rule in event.rrule:
        if rrule_problem(rule) is None:
            component.add("RRULE", icalendar.vRecur.from_ical(rule))
        else:  # written as it was read, so rewriting a file loses nothing (the sync quarantines it)
            component.add("RRULE", icalendar.prop.vInline(rule))
    if event.rdate:
        component.add("RDATE", [_portable(d) for d in event.rdate])
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
    return component


@lru_cache(maxsize=512)
def _transitions(zone: ZoneInfo, first_year: int, years: int) -> tuple[tuple[datetime, timedelta, timedelta], ...]:
    """UTC offset changes of ``zone`` over some years: (instant in UTC, offset before, offset after).
    Cached: every write of an event needs its zone's changes, and a scan takes milliseconds."""
    out = []
    cursor = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(first_year + years, 1, 1, tzinfo=UTC).timestamp())

    def offset(ts: int) -> timedelta:
        return datetime.fromtimestamp(ts, zone).utcoffset() or timedelta(0)

    before = offset(cursor)
    while cursor < end:
        step = cursor + 86400
        if offset(step) != before:
            lo, hi = cursor, step  # bisect to the second: offset(lo) == before != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
            out.append((datetime.fromtimestamp(hi, UTC), before, offset(hi)))
            before = offset(hi)
        cursor = step
    return tuple(out)


def _observance(local: datetime, before: timedelta, after: timedelta, name: str | None,
                daylight: bool) -> icalendar.cal.Component:
    observance = icalendar.TimezoneDaylight() if daylight else icalendar.TimezoneStandard()
    observance.add("DTSTART", local)
    observance.add("TZOFFSETFROM", before)
    observance.add("TZOFFSETTO", after)
    if name:
        observance.add("TZNAME", name)
    return observance


def _vtimezone(zone: ZoneInfo, first_year: int) -> icalendar.Timezone:
    """A VTIMEZONE for ``zone`` valid from ``first_year``, written the way Outlook, Apple and
    Google write them: one observance per kind of change with a yearly RRULE, when the zone's
    changes follow such rules; else (Casablanca, Jerusalem...) each change listed as an RDATE.

    Why not icalendar's ``add_missing_timezones``: it lists every change as an RDATE from 1970,
    Radicale then misplaces London and Sydney times by an hour (its time-range queries and
    free/busy go wrong) and Outlook is known to misread such lists; it also drops Casablanca's
    2027 changes. The changes are taken from zoneinfo itself (:func:`_transitions`).
    """
    years = max(12, 2040 - first_year)
    changes = _transitions(zone, first_year, years)
    vtz = icalendar.Timezone()
    vtz.add("TZID", zone.key)
    kinds: dict[tuple[timedelta, timedelta, str | None, bool], list[datetime]] = {}
    for instant, before, after in changes:
        after_local = instant.astimezone(zone)
        key = (before, after, after_local.tzname(), bool(after_local.dst()))
        kinds.setdefault(key, []).append((instant + before).replace(tzinfo=None))
    rules = {key: _yearly_rule(starts) for key, starts in kinds.items()}
    if len(kinds) == 2 and all(rules.values()):
        for key, starts in kinds.items():
            observance = _observance(starts[0], *key)
            observance.add("RRULE", {"FREQ": "YEARLY", "BYMONTH": starts[0].month, "BYDAY": rules[key]})
            vtz.add_component(observance)
        return vtz
    # before the first change (or forever, for a zone without changes): the offset then
    start = datetime(first_year, 1, 1, tzinfo=zone)
    offset = start.utcoffset() or timedelta(0)
    vtz.add_component(_observance(start.replace(tzinfo=None), offset, offset, start.tzname(), bool(start.dst())))
    for key, starts in kinds.items():
        observance = _observance(starts[0], *key)
        if starts[1:]:
            observance.add("RDATE", starts[1:])
        vtz.add_component(observance)
    return vtz


def _yearly_rule(starts: list[datetime]) -> str | None:
    """The BYDAY of a yearly rule (``-1SU``, ``2SU``...) producing exactly these local change
    times, one a year in the same month at the same time; None when there is no such rule."""
    first = starts[0]
    if [d.year for d in starts] != list(range(first.year, first.year + len(starts))):
        return None
    if {(d.month, d.weekday(), d.time()) for d in starts} != {(first.month, first.weekday(), first.time())}:
        return None
    nth = {(d.day - 1) // 7 + 1 for d in starts}
    if len(nth) == 1 and nth != {5}:
        return f"{nth.pop()}{_WEEKDAYS[first.weekday()]}"
    if all(d.day + 7 > _days_in_month(d) for d in starts):
        return f"-1{_WEEKDAYS[first.weekday()]}"
    return None


_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def _days_in_month(value: datetime) -> int:
    following = value.replace(day=28) + timedelta(days=4)
    return (following - timedelta(days=following.day)).day


def _add_timezones(cal: icalendar.Calendar, items: Sequence[CalendarItem]) -> None:
    """VTIMEZONEs for the zones the events use (see :func:`_vtimezone`), valid from a year before
    the earliest event."""
    first_year: dict[str, tuple[ZoneInfo, int]] = {}
    for item in items:
        for event in item.components:
            for value in (event.start, event.end, event.recurrence_id, *event.exdate, *event.rdate):
                if isinstance(value, datetime) and isinstance(value.tzinfo, ZoneInfo) and value.tzinfo.key:
                    zone = value.tzinfo
                    year = min(value.year, first_year.get(zone.key, (zone, value.year))[1])
                    first_year[zone.key] = (zone, year)
    missing = cal.get_missing_tzids()
    for key, (zone, year) in first_year.items():
        if key in missing:
            cal.add_component(_vtimezone(zone, year - 1))
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
