"""Mapping shared by the EWS and Graph connectors (and their fakes): one Exchange vocabulary.

EWS and Graph are two doors onto the same Exchange store, so busy statuses, sensitivities,
response types, the calmesh marker's named property and recurrence patterns mean the same thing
on both. Keeping the translation here means an event written through EWS and read through Graph
(or the other way round) comes back identical, and the two connectors hold no copy-paste twins.

Recurrence: Exchange stores patterns, not RRULEs. :class:`Pattern` is Exchange's model (Graph's
``patternedRecurrence`` names, which EWS's ``Recurrence`` element mirrors one-to-one) and converts
to and from the RFC 5545 RRULE strings carried on :class:`calmesh.model.Event`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from icalendar import vRecur

from calmesh.connectors import _fitting
from calmesh.connectors.base import Adaptation
from calmesh.model import (
    MARKER_PROPERTY,
    BusyPeriod,
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    PartStat,
    Temporal,
    instant,
)
from calmesh.timezones import DefinedZone, to_iana

PS_PUBLIC_STRINGS = "00020329-0000-0000-C000-000000000046"
"""MAPI named-property set both EWS (``DistinguishedPropertySetId="PublicStrings"``) and Graph
(``String {guid} Name X``) address: the marker written through one API is read by the other."""
GRAPH_MARKER_ID = f"String {{{PS_PUBLIC_STRINGS}}} Name {MARKER_PROPERTY}"

# ------------------------------------------------------------------------------ busy statuses
_BUSY_FROM_EXCHANGE = {
    "free": BusyType.FREE,
    "tentative": BusyType.BUSY_TENTATIVE,
    "busy": BusyType.BUSY,
    "oof": BusyType.BUSY_UNAVAILABLE,
    # WorkingElsewhere means "working, reachable, somewhere else": it does not block time,
    # exactly as Exchange's own availability view reports it as 0 (free).
    "workingelsewhere": BusyType.FREE,
    "nodata": BusyType.UNKNOWN,
    "unknown": BusyType.UNKNOWN,
}
_EWS_STATUS = {
    BusyType.FREE: "Free",
    BusyType.BUSY_TENTATIVE: "Tentative",
    BusyType.BUSY: "Busy",
    BusyType.BUSY_UNAVAILABLE: "OOF",
    BusyType.UNKNOWN: "NoData",
}
_GRAPH_SHOW_AS = {
    BusyType.FREE: "free",
    BusyType.BUSY_TENTATIVE: "tentative",
    BusyType.BUSY: "busy",
    BusyType.BUSY_UNAVAILABLE: "oof",
    BusyType.UNKNOWN: "unknown",
}


def busy_from_exchange(status: str | None) -> BusyType:
    """EWS ``LegacyFreeBusyStatus``/``BusyType`` or Graph ``showAs``/``status`` -> BusyType.

    Free->FREE, Tentative->BUSY_TENTATIVE, Busy->BUSY, OOF->BUSY_UNAVAILABLE,
    WorkingElsewhere->FREE (it does not block), NoData/unknown->UNKNOWN (never shown as free).
    An unrecognised value is treated as BUSY, the safe reading for availability.
    """
    if not status:
        return BusyType.BUSY
    return _BUSY_FROM_EXCHANGE.get(status.strip().lower(), BusyType.BUSY)


def write_busy(event: Event) -> BusyType:
    """The busy status to store for an event calmesh writes (explicit type, else STATUS/TRANSP)."""
    if event.transparent:
        return BusyType.FREE
    if event.busy_type is not None:
        return event.busy_type
    return BusyType.BUSY_TENTATIVE if event.status is EventStatus.TENTATIVE else BusyType.BUSY


def ews_status(busy: BusyType) -> str:
    return _EWS_STATUS[busy]


def graph_show_as(busy: BusyType) -> str:
    return _GRAPH_SHOW_AS[busy]


def busy_fields(status: str | None) -> tuple[BusyType | None, bool]:
    """Exchange status -> (Event.busy_type, Event.transparent): only OOF/NoData need an explicit
    type; Free becomes TRANSP:TRANSPARENT and Tentative/Busy follow from STATUS."""
    busy = busy_from_exchange(status)
    if busy is BusyType.FREE:
        return None, True
    if busy in (BusyType.BUSY_UNAVAILABLE, BusyType.UNKNOWN, BusyType.BUSY_TENTATIVE):
        return busy, False
    return None, False


def periods_from_view(view: str, start: datetime, interval: timedelta, source: str | None) -> list[BusyPeriod]:
    """Exchange availability-view digits (one per ``interval`` from ``start``) -> busy periods.

    Used when a server sends only the merged view; runs of the same non-free digit are joined.
    """
    periods: list[BusyPeriod] = []
    run_start, run_digit = 0, "0"
    for i, digit in enumerate(view + "0"):
        if digit != run_digit:
            if run_digit != "0" and run_digit.isdigit():
                busy = BusyType(min(int(run_digit), int(BusyType.UNKNOWN)))
                periods.append(BusyPeriod(start + interval * run_start, start + interval * i, busy, source))
            run_start, run_digit = i, digit
    return periods


# ------------------------------------------------------------------- sensitivity and responses
_CLASS_FROM_SENSITIVITY = {
    "normal": Classification.PUBLIC,
    "personal": Classification.PRIVATE,
    "private": Classification.PRIVATE,
    "confidential": Classification.CONFIDENTIAL,
}
_SENSITIVITY_FROM_CLASS = {
    Classification.PUBLIC: "Normal",
    Classification.PRIVATE: "Private",
    Classification.CONFIDENTIAL: "Confidential",
}
_PARTSTAT = {
    "accept": PartStat.ACCEPTED,
    "accepted": PartStat.ACCEPTED,
    "organizer": PartStat.ACCEPTED,
    "tentative": PartStat.TENTATIVE,
    "tentativelyaccepted": PartStat.TENTATIVE,
    "decline": PartStat.DECLINED,
    "declined": PartStat.DECLINED,
}


def classification(sensitivity: str | None) -> Classification:
    return _CLASS_FROM_SENSITIVITY.get((sensitivity or "normal").lower(), Classification.PRIVATE)


def sensitivity(value: Classification) -> str:
    """EWS spelling ("Private"); Graph wants the same word lower-cased."""
    return _SENSITIVITY_FROM_CLASS[value]


def partstat(response: str | None) -> PartStat:
    """EWS ``ResponseType`` or Graph ``responseStatus.response`` -> PARTSTAT (unanswered: NEEDS-ACTION)."""
    return _PARTSTAT.get((response or "").lower(), PartStat.NEEDS_ACTION)


# --------------------------------------------------------------------------------- weekdays
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_RRULE_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
INDEXES = ("first", "second", "third", "fourth", "last")


def weekday_index(name: str) -> int:
    """``"Monday"``/``"monday"`` -> 0. Raises ValueError for anything else."""
    try:
        return WEEKDAYS.index(name.strip().lower())
    except ValueError:
        raise ValueError(f"unknown weekday {name!r}") from None


def weekday_set(names: Iterable[str]) -> frozenset[int]:
    """Day names, including EWS's groups ``Day``/``Weekday``/``WeekendDay``, -> weekday numbers."""
    days: set[int] = set()
    for name in names:
        lowered = name.strip().lower()
        if lowered == "day":
            days.update(range(7))
        elif lowered == "weekday":
            days.update(range(5))
        elif lowered == "weekendday":
            days.update((5, 6))
        elif lowered:
            days.add(weekday_index(lowered))
    return frozenset(days)


# ------------------------------------------------------------------------------ time values
def zone_of(name: str | None, fallback: str = "UTC") -> ZoneInfo:
    """A ZoneInfo for a Windows or IANA zone name (what Exchange and Graph both send)."""
    return ZoneInfo(to_iana(name) or fallback)


def local_naive(value: Temporal, zone: tzinfo) -> datetime:
    """A value as naive wall-clock time in ``zone``: what Exchange's ``dateTime`` fields carry."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value
        return value.astimezone(zone).replace(tzinfo=None)
    return datetime.combine(value, time(0))


def event_zone(event: Event, default: str) -> ZoneInfo:
    """The zone an event's local times belong to: its TZID, its start's zone, else ``default``."""
    if event.tzid and to_iana(event.tzid):
        return ZoneInfo(to_iana(event.tzid) or default)
    start = event.start
    if isinstance(start, datetime) and isinstance(start.tzinfo, ZoneInfo):
        return start.tzinfo
    return ZoneInfo(to_iana(default) or "UTC")


def own_zone(event: Event, default: str) -> ZoneInfo | DefinedZone:
    """:func:`event_zone`, or the zone only the event's object defines (a VTIMEZONE no IANA zone
    matches), for a door that can carry such a definition (EWS's ``TimeZoneDefinitionType``)."""
    start = event.start
    if isinstance(start, datetime) and isinstance(start.tzinfo, DefinedZone):
        return start.tzinfo
    return event_zone(event, default)


def same_instant(a: Temporal, b: Temporal) -> bool:
    """Do two recurrence ids name the same occurrence (dates compare by day, zoned times by
    instant: :func:`calmesh.model.instant`)?"""
    if isinstance(a, datetime) and isinstance(b, datetime):
        if (a.tzinfo is None) != (b.tzinfo is None):
            return a.replace(tzinfo=None) == b.replace(tzinfo=None)
        return instant(a) == instant(b)
    day_a = a.date() if isinstance(a, datetime) else a
    day_b = b.date() if isinstance(b, datetime) else b
    return day_a == day_b


# ------------------------------------------------------------------------------ recurrence
@dataclass(frozen=True, slots=True)
class Pattern:
    """An Exchange recurrence: pattern (``kind`` in Graph's names) + range."""

    kind: str
    """daily, weekly, absoluteMonthly, relativeMonthly, absoluteYearly, relativeYearly."""
    interval: int = 1
    days_of_week: tuple[int, ...] = ()
    day_of_month: int | None = None
    month: int | None = None
    index: str | None = None
    """first, second, third, fourth, last (relative patterns)."""
    first_day_of_week: int = 0
    range_kind: str = "noEnd"
    """noEnd, endDate (inclusive ``end_date``) or numbered (``count`` occurrences)."""
    start_date: date | None = None
    end_date: date | None = None
    count: int | None = None


def _start_date(start: Temporal, zone: tzinfo) -> date:
    return local_naive(start, zone).date() if isinstance(start, datetime) else start


def pattern_from_rrule(rrule: str, start: Temporal, zone: tzinfo) -> Pattern:
    """An RFC 5545 RRULE -> Exchange pattern. Raises ValueError for rules Exchange cannot store
    (hourly rules, several BYSETPOS values, BYMONTHDAY lists...), so the caller reports the item."""
    rule = vRecur.from_ical(rrule.removeprefix("RRULE:"))
    freq = str(rule.get("FREQ", [""])[0]).upper()
    interval = int(rule.get("INTERVAL", [1])[0])
    unsupported = set(rule) - {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH", "BYSETPOS", "WKST"}
    if unsupported:
        raise ValueError(f"Exchange cannot store RRULE parts {', '.join(sorted(unsupported))}: {rrule}")
    first_day = _RRULE_DAYS.index(str(rule["WKST"][0]).upper()) if "WKST" in rule else 0  # RFC 5545: MO
    day_start = _start_date(start, zone)
    range_kind, end_date, count = "noEnd", None, None
    if "COUNT" in rule:
        range_kind, count = "numbered", int(rule["COUNT"][0])
    elif "UNTIL" in rule:
        until = rule["UNTIL"][0]
        range_kind, end_date = "endDate", (until.astimezone(zone).date() if isinstance(until, datetime) and until.tzinfo
                                          else until.date() if isinstance(until, datetime) else until)
    byday = [str(d).upper() for d in rule.get("BYDAY", [])]
    setpos = [int(p) for p in rule.get("BYSETPOS", [])]
    base = Pattern("daily", interval=interval, first_day_of_week=first_day, range_kind=range_kind,
                   start_date=day_start, end_date=end_date, count=count)

    def relative(days: list[str]) -> tuple[tuple[int, ...], str] | None:
        """``2TU`` or ``TU;BYSETPOS=2`` -> ((1,), "second")."""
        numbers = {d[:-2] for d in days}
        if len(numbers) == 1 and next(iter(numbers)) not in ("", "+"):
            n = int(next(iter(numbers)))
        elif len(setpos) == 1 and numbers <= {""}:
            n = setpos[0]
        else:
            return None
        if n not in (1, 2, 3, 4, -1):
            raise ValueError(f"Exchange only counts 1st-4th or last weekday: {rrule}")
        return tuple(_RRULE_DAYS.index(d[-2:]) for d in days), INDEXES[n - 1 if n > 0 else 4]

    if freq == "DAILY" and not byday:
        return base
    if freq == "WEEKLY" or (freq == "DAILY" and byday):
        days = tuple(_RRULE_DAYS.index(d[-2:]) for d in byday) or (day_start.weekday(),)
        return replace(base, kind="weekly", days_of_week=tuple(sorted(days)))
    if freq in ("MONTHLY", "YEARLY"):
        month = int(rule["BYMONTH"][0]) if "BYMONTH" in rule else day_start.month
        if byday:
            rel = relative(byday)
            if rel is None:
                raise ValueError(f"Exchange cannot store this monthly/yearly rule: {rrule}")
            kind = "relativeMonthly" if freq == "MONTHLY" else "relativeYearly"
            return replace(base, kind=kind, days_of_week=rel[0], index=rel[1],
                           month=month if freq == "YEARLY" else None)
        bymonthday = [int(d) for d in rule.get("BYMONTHDAY", [])]
        if len(bymonthday) > 1 or any(d < 1 for d in bymonthday):
            raise ValueError(f"Exchange stores one positive day of the month: {rrule}")
        day = bymonthday[0] if bymonthday else day_start.day
        kind = "absoluteMonthly" if freq == "MONTHLY" else "absoluteYearly"
        return replace(base, kind=kind, day_of_month=day, month=month if freq == "YEARLY" else None)
    raise ValueError(f"Exchange cannot store FREQ={freq or '?'} rules: {rrule}")


def rrule_from_pattern(pattern: Pattern, start: Temporal, zone: tzinfo) -> str:
    """An Exchange pattern -> RRULE text (no ``RRULE:`` prefix), UNTIL in UTC for timed series."""
    parts: list[str] = []
    kind = pattern.kind
    freq = {"daily": "DAILY", "weekly": "WEEKLY", "absoluteMonthly": "MONTHLY", "relativeMonthly": "MONTHLY",
            "absoluteYearly": "YEARLY", "relativeYearly": "YEARLY"}.get(kind)
    if freq is None:
        raise ValueError(f"unknown Exchange recurrence pattern {kind!r}")
    parts.append(f"FREQ={freq}")
    if pattern.interval != 1:
        parts.append(f"INTERVAL={pattern.interval}")
    if pattern.count is not None and pattern.range_kind == "numbered":
        parts.append(f"COUNT={pattern.count}")
    elif pattern.end_date is not None and pattern.range_kind == "endDate":
        if isinstance(start, datetime):
            local_start = local_naive(start, zone).time()
            until = datetime.combine(pattern.end_date, local_start, zone).astimezone(UTC)
            parts.append("UNTIL=" + until.strftime("%Y%m%dT%H%M%SZ"))
        else:
            parts.append("UNTIL=" + pattern.end_date.strftime("%Y%m%d"))
    days = ",".join(_RRULE_DAYS[d] for d in pattern.days_of_week)
    if kind == "weekly":
        parts.append(f"BYDAY={days or _RRULE_DAYS[_start_date(start, zone).weekday()]}")
        if pattern.first_day_of_week != 0 and pattern.interval != 1:
            parts.append(f"WKST={_RRULE_DAYS[pattern.first_day_of_week]}")
    elif kind.startswith("relative"):
        position = INDEXES.index(pattern.index or "first")
        parts.append(f"BYDAY={days}")
        parts.append(f"BYSETPOS={-1 if position == 4 else position + 1}")
    elif kind.startswith("absolute"):
        parts.append(f"BYMONTHDAY={pattern.day_of_month or _start_date(start, zone).day}")
    if kind.endswith("Yearly"):
        parts.append(f"BYMONTH={pattern.month or _start_date(start, zone).month}")
    return ";".join(parts)


def occurrence_starts(event: Event, zone: tzinfo, until: datetime, limit: int = 5000) -> list[Temporal]:
    """Starts of a master's occurrences up to ``until`` (RRULE/RDATE minus EXDATE), local to ``zone``.

    Exchange addresses occurrences by position and by original start; both fakes and the
    connectors' override handling need the list, computed once here with dateutil.
    """
    if not event.rrule:
        return [event.start]
    all_day = not isinstance(event.start, datetime)
    dtstart = local_naive(event.start, zone)
    found: list[Temporal] = []
    last = until.astimezone(zone)
    for rule in event.rrule:
        text = rule.removeprefix("RRULE:")
        if not all_day and "UNTIL=" in text:
            parsed = rrulestr(text, dtstart=dtstart.replace(tzinfo=zone))
        else:
            parsed = rrulestr(text, dtstart=dtstart)
        for n, occurrence in enumerate(parsed):
            occ = occurrence.replace(tzinfo=None) if occurrence.tzinfo else occurrence
            if n >= limit or occ.replace(tzinfo=zone) > last:
                break
            found.append(occ.date() if all_day else occ.replace(tzinfo=zone))
    for extra in event.rdate:
        found.append(extra)
    found = sorted({instant(v): v for v in reversed(found)}.values(), key=lambda v: local_naive(v, zone))
    return [v for v in found if not any(same_instant(v, x) for x in event.exdate)]


def one_series(master: Event, zone: tzinfo) -> Pattern:
    """The single pattern Exchange stores for ``master``; ValueError when there is none (two
    RRULEs, RDATEs, or a rule no pattern expresses)."""
    if len(master.rrule) != 1 or master.rdate:
        raise ValueError("Exchange stores one recurrence pattern per series and no RDATE")
    return pattern_from_rrule(master.rrule[0], master.start, zone)


def fit(connector: str, item: CalendarItem, zone_default: str, holds: Callable[[Pattern], object],
        reminders: int, carries: Callable[[DefinedZone, Event], object] | None = None,
        local_ends: bool = True) -> tuple[CalendarItem, list[Adaptation]]:
    """``item`` as Exchange (``holds`` checks a pattern the door's own way) or Google can hold it:
    see :mod:`calmesh.connectors._fitting`. ``carries`` (EWS) checks that the door can carry a
    zone of the object's own for this master (ValueError saying why not); without it, or when
    it cannot, such a series is spelled out in a zone the door knows. ``local_ends``: the door
    writes an end as a wall time (Graph; EWS writes UTC)."""
    item, notes = _fitting.without_ranges(connector, item)
    master = item.master
    if master is not None:
        spelled_in = _fitting.own_zone(connector, master, carries)
        zone: ZoneInfo | DefinedZone
        if spelled_in is not None:
            zone, why = spelled_in
            item, spelled = _fitting.spell_out(connector, item, zone, _fitting.refuse(why), "VTIMEZONE")
        else:
            zone = own_zone(master, zone_default) if carries is not None else event_zone(master, zone_default)
            item, dated = _fitting.without_extra_dates(connector, item, zone)
            item, spelled = _fitting.spell_out(connector, item, zone, lambda m: holds(one_series(m, zone)))
            spelled = dated + spelled
        item, apart = _fitting.without_crossings(connector, item, zone)
        spelled += apart
        item, shown = _fitting.from_a_plain_start(connector, item, zone, local_ends)
        item, lengths = _fitting.with_exact_lengths(connector, item, zone)
        notes += spelled + shown + lengths
    return item, notes + _fitting.reminder_notes(item, reminders)
