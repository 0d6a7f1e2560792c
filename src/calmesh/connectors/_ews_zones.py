"""A zone of an object's own on EWS: a VTIMEZONE no IANA zone matches <-> the
``TimeZoneDefinitionType`` a ``CalendarItem``'s ``StartTimeZone``/``EndTimeZone`` may carry
(Exchange 2010 and later: ``Periods``, ``TransitionsGroups``, ``Transitions``).

Written: the zone's timeline (:func:`calmesh.zone_timeline.timeline`, the same one calmesh's own
VTIMEZONEs are written from) from the year before the event: a ``Period`` per offset, a group
holding one ``Transition`` to it per fixed stretch, the one-off changes as top-level
``AbsoluteDateTransition`` s switching to those groups, and the yearly rules as one group of
``RecurringDayTransition`` s (a month, a weekday, its occurrence 1-4 or -1 for the last, the time
of day on the clock before the change, as Windows zone rules give it). An
``AbsoluteDateTransition``'s ``DateTime`` is likewise the local time on the clock before it.

Read: a definition becomes a VTIMEZONE (one observance per fixed stretch, a yearly RRULE per
``RecurringDayTransition`` or ``RecurringDateTransition``, with its UNTIL where its group ends),
read as calmesh reads any VTIMEZONE of an object (:func:`calmesh.ical.zone_of_vtimezone`): an
IANA zone when one matches (Outlook's ``Customized Time Zone`` with US Eastern rules is
``America/New_York``), else the definition, which a CalDAV copy then carries.

Why not exchangelib's own ``TimeZoneDefinition`` element (5.x), made for reading
``GetServerTimeZones``: its ``Period.Bias`` refuses negative values (every zone east of UTC), its
``AbsoluteDateTransition`` keeps a date without the time, and its ``TimeZoneField`` writes a
zone's ``Id`` only and reads a zone it does not know as None. :class:`ZoneField` takes that
field's place on exchangelib's CalendarItem for ``StartTimeZone`` and ``EndTimeZone``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

import icalendar
from exchangelib import CalendarItem as EWSItem
from exchangelib import EWSTimeZone
from exchangelib.errors import UnknownTimeZone
from exchangelib.fields import TimeZoneField
from exchangelib.util import TNS, add_xml_child, create_element

from calmesh import ical
from calmesh.timezones import DefinedZone, fixed_zone
from calmesh.zone_timeline import WEEKDAYS, timeline

_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_FAR_PAST = datetime(1601, 1, 1)


@dataclass(frozen=True, slots=True)
class Period:
    id: str
    name: str
    """``Standard`` or ``Daylight``."""
    bias: timedelta
    """UTC minus local time: -offset."""

    @property
    def offset(self) -> timedelta:
        return -self.bias


@dataclass(frozen=True, slots=True)
class Change:
    """A transition to ``to`` (a Period's or a group's Id): once at ``at``
    (``AbsoluteDateTransition``), yearly in ``month`` (``RecurringDayTransition``: ``weekday``
    0-6 and ``occurrence`` 1-4 or -1; ``RecurringDateTransition``: ``day``) at ``clock``, or, with
    neither, from the start (``Transition``)."""

    to: str
    at: datetime | None = None
    month: int | None = None
    weekday: int | None = None
    occurrence: int | None = None
    day: int | None = None
    clock: timedelta = timedelta(0)

    def on(self, year: int) -> datetime | None:
        """A yearly change's local time in ``year`` (None: not yearly, or no such day)."""
        if self.month is None:
            return None
        if self.day is not None:
            try:
                return datetime(year, self.month, self.day) + self.clock
            except ValueError:
                return None
        assert self.weekday is not None and self.occurrence is not None
        first = date(year, self.month, 1)
        day = first + timedelta((self.weekday - first.weekday()) % 7)
        if self.occurrence == -1:
            while (day + timedelta(7)).month == self.month:
                day += timedelta(7)
        else:
            day += timedelta(7 * (self.occurrence - 1))
            if day.month != self.month:
                return None
        return datetime.combine(day, time()) + self.clock


@dataclass(frozen=True, slots=True)
class Definition:
    """A ``TimeZoneDefinitionType``: ``groups`` maps a TransitionsGroup's Id to its changes
    (to Periods), ``transitions`` are the top-level ones (to groups), the first from the start."""

    id: str
    name: str
    periods: tuple[Period, ...]
    groups: tuple[tuple[str, tuple[Change, ...]], ...]
    transitions: tuple[Change, ...]


# ------------------------------------------------------------------------------------ writing
def definition_of(zone: DefinedZone, first_year: int) -> Definition:
    """``zone`` from ``first_year`` as EWS defines zones (see module docstring)."""
    line = timeline(zone, first_year)
    periods: dict[tuple[timedelta, bool], Period] = {}

    def period(offset: timedelta, daylight: bool) -> str:
        if (offset, daylight) not in periods:
            name = "Daylight" if daylight else "Standard"
            periods[offset, daylight] = Period(f"trule:calmesh/{len(periods) + 1}-{name}", name, -offset)
        return periods[offset, daylight].id

    groups: dict[tuple[Change, ...], str] = {}

    def group(changes: tuple[Change, ...]) -> str:
        return groups.setdefault(changes, str(len(groups)))

    # a fixed stretch first where the yearly rules do not hold from the start: one-off changes
    # before them, none at all, or rules that begin in a later year (summer time from 2026: as
    # one group from the start, the definition had summer time in the years before)
    begun = not line.yearly or min(rule.first for rule in line.yearly).year > line.start.year
    fixed = [Change(group((Change(period(line.offset, line.daylight)),)))] if line.one_offs or begun else []
    fixed += [Change(group((Change(period(c.after, c.daylight)),)), at=c.wall) for c in line.one_offs]
    yearly = tuple(Change(period(rule.kind[1], rule.kind[3]), month=rule.first.month,
                          weekday=WEEKDAYS.index(rule.byday[-2:]), occurrence=int(rule.byday[:-2]),
                          clock=rule.first - datetime.combine(rule.first.date(), time()))
                   for rule in sorted(line.yearly, key=lambda r: (r.first.month, r.first.day)))
    if yearly:
        first = min(rule.first for rule in line.yearly)
        fixed.append(Change(group(yearly), at=first if fixed else None))
    return Definition(zone.key, zone.key, tuple(periods.values()),
                      tuple((gid, changes) for changes, gid in groups.items()), tuple(fixed))


def definition_xml(definition: Definition, tag: str) -> Any:
    """``definition`` as the element ``tag`` (``t:StartTimeZone``...) in the order Types.xsd gives."""
    elem = create_element(tag, attrs={"Id": definition.id, "Name": definition.name})
    periods = create_element("t:Periods")
    for p in definition.periods:
        periods.append(create_element("t:Period", attrs={"Bias": _duration(p.bias), "Name": p.name, "Id": p.id}))
    elem.append(periods)
    groups = create_element("t:TransitionsGroups")
    for gid, changes in definition.groups:
        holder = create_element("t:TransitionsGroup", attrs={"Id": gid})
        for change in changes:
            holder.append(_change_xml(change, "Period"))
        groups.append(holder)
    elem.append(groups)
    transitions = create_element("t:Transitions")
    for change in definition.transitions:
        transitions.append(_change_xml(change, "Group"))
    elem.append(transitions)
    return elem


def _change_xml(change: Change, kind: str) -> Any:
    name = ("t:AbsoluteDateTransition" if change.at is not None else "t:RecurringDayTransition"
            if change.month is not None else "t:Transition")
    elem = create_element(name)
    to = create_element("t:To", attrs={"Kind": kind})
    to.text = change.to
    elem.append(to)
    if change.at is not None:
        add_xml_child(elem, "t:DateTime", change.at.strftime("%Y-%m-%dT%H:%M:%S"))
    elif change.month is not None:
        assert change.weekday is not None
        add_xml_child(elem, "t:TimeOffset", _duration(change.clock))
        add_xml_child(elem, "t:Month", str(change.month))
        add_xml_child(elem, "t:DayOfWeek", _DAY_NAMES[change.weekday])
        add_xml_child(elem, "t:Occurrence", str(change.occurrence))
    return elem


def _duration(value: timedelta) -> str:
    """An xs:duration: ``-PT9H``, ``PT2H30M``, ``PT0S``."""
    seconds = int(value.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{seconds}S" if seconds else "")
    return f"{sign}PT{parts or '0S'}"


# ------------------------------------------------------------------------------------ reading
_DURATION = re.compile(r"^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def _parse_duration(text: str | None) -> timedelta:
    found = _DURATION.match((text or "").strip())
    if found is None or not text or text.strip() in ("P", "-P", "PT", "-PT"):
        raise ValueError(f"not a duration: {text!r}")
    sign, days, hours, minutes, seconds = found.groups()
    value = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                      seconds=float(seconds or 0))
    return -value if sign else value


def _text(elem: Any, tag: str) -> str | None:
    child = elem.find(f"{{{TNS}}}{tag}")
    return None if child is None or child.text is None else child.text.strip()


def _read_change(elem: Any) -> Change:
    to = elem.find(f"{{{TNS}}}To")
    if to is None or not (to.text or "").strip():
        raise ValueError("a transition without To")
    kind = elem.tag.rsplit("}", 1)[-1]
    if kind == "Transition":
        return Change(to.text.strip())
    if kind == "AbsoluteDateTransition":
        return Change(to.text.strip(), at=datetime.fromisoformat((_text(elem, "DateTime") or "")[:19]))
    clock, month = _parse_duration(_text(elem, "TimeOffset")), int(_text(elem, "Month") or "0")
    if kind == "RecurringDateTransition":
        return Change(to.text.strip(), month=month, day=int(_text(elem, "Day") or "0"), clock=clock)
    if kind == "RecurringDayTransition":
        occurrence = int(_text(elem, "Occurrence") or "0")
        return Change(to.text.strip(), month=month, weekday=_DAY_NAMES.index(_text(elem, "DayOfWeek") or ""),
                      occurrence=-1 if occurrence in (-1, 5) else occurrence, clock=clock)
    raise ValueError(f"unknown transition {kind}")


def read_definition(elem: Any) -> Definition:
    """A ``StartTimeZone``/``EndTimeZone`` element with its definition. ValueError when it is not one."""
    def children(tag: str) -> list[Any]:
        holder = elem.find(f"{{{TNS}}}{tag}")
        return [] if holder is None else list(holder)

    periods = tuple(Period(p.get("Id", ""), p.get("Name", ""), _parse_duration(p.get("Bias"))) for p in children("Periods"))
    groups = tuple((g.get("Id", ""), tuple(_read_change(c) for c in g)) for g in children("TransitionsGroups"))
    transitions = tuple(_read_change(c) for c in children("Transitions"))
    if not periods or not transitions:
        raise ValueError("a time zone definition without Periods or Transitions")
    return Definition(elem.get("Id") or "", elem.get("Name") or elem.get("Id") or "", periods, groups, transitions)


def vtimezone_of(definition: Definition, tzid: str) -> bytes:
    """``definition`` as a VTIMEZONE named ``tzid`` (see module docstring)."""
    periods = {p.id: p for p in definition.periods}
    groups = dict(definition.groups)
    eras = sorted(definition.transitions, key=lambda c: c.at or _FAR_PAST)
    vtz = icalendar.Timezone()
    vtz.add("TZID", tzid)
    before: timedelta | None = None
    for n, era in enumerate(eras):
        start, end = era.at or _FAR_PAST, eras[n + 1].at if n + 1 < len(eras) else None
        changes = groups.get(era.to)
        if not changes or any(c.to not in periods or c.at is not None for c in changes):
            raise ValueError(f"transitions group {era.to!r} is missing or names no Period")
        yearly = [c for c in changes if c.month is not None]
        now = periods[_state(changes, start).to]
        if before is None or not yearly or (now.offset != before and all(c.on(start.year) != start for c in yearly)):
            vtz.add_component(ical.observance(start, before if before is not None else now.offset, now.offset,
                                              None, now.name == "Daylight"))
        before = now.offset
        for change in yearly:
            target = periods[change.to]
            other = next((periods[c.to].offset for c in yearly if c is not change), target.offset)
            firsts = [at for year in range(start.year, start.year + 2) if (at := change.on(year)) and at >= start]
            if not firsts or (end is not None and firsts[0] >= end):
                continue
            observance = ical.observance(firsts[0], other, target.offset, None, target.name == "Daylight")
            rule: dict[str, Any] = {"FREQ": "YEARLY", "BYMONTH": change.month}
            if change.day is not None:
                rule["BYMONTHDAY"] = change.day
            else:
                rule["BYDAY"] = f"{change.occurrence}{WEEKDAYS[change.weekday or 0]}"
            if end is not None:
                last = max(at for year in range(start.year, end.year + 1) if (at := change.on(year)) and at < end)
                rule["UNTIL"] = (last - other).replace(tzinfo=UTC)
            observance.add("RRULE", rule)
            vtz.add_component(observance)
        if end is not None:
            before = periods[_state(changes, end - timedelta(seconds=1)).to].offset
    return vtz.to_ical()


def _state(changes: tuple[Change, ...], at: datetime) -> Change:
    """The change of a group in force at ``at``: its latest yearly one by then (this year or
    last), or its plain Transition."""
    yearly = [(when, c) for c in changes for year in (at.year - 1, at.year) if (when := c.on(year)) and when <= at]
    if yearly:
        return max(yearly, key=lambda pair: pair[0])[1]
    return next((c for c in changes if c.month is None), changes[0])


def zone_of(definition: Definition, year: int) -> tzinfo:
    """The zone ``definition`` reads as for an item of ``year``: an IANA zone when it matches one,
    else the definition as a zone of the object's own (:func:`calmesh.ical.zone_of_vtimezone`)."""
    tzid = (definition.id or definition.name or "Customized Time Zone").replace('"', "'")  # Id: what Outlook names
    return ical.zone_of_vtimezone(vtimezone_of(definition, tzid), year)


# ------------------------------------------------------------------------------ the EWS field
class ZoneField(TimeZoneField):
    """``StartTimeZone``/``EndTimeZone``: a zone Exchange knows by name (an EWSTimeZone, as
    exchangelib's own field) or a whole :class:`Definition`."""

    def clean(self, value: Any, version: Any = None) -> Any:
        return value if isinstance(value, Definition) else super().clean(value, version=version)

    def from_xml(self, elem: Any, account: Any) -> Any:
        field_elem = elem.find(self.response_tag())
        if field_elem is None or field_elem.find(f"{{{TNS}}}Periods") is None or _known(field_elem.get("Id")):
            return super().from_xml(elem, account)
        try:
            definition = read_definition(field_elem)
        except (ValueError, TypeError) as exc:
            warnings.warn(f"unreadable time zone definition {field_elem.get('Id')!r}: {exc}", stacklevel=2)
            return None
        if _text(elem, "IsAllDayEvent") != "true":
            return definition
        # exchangelib takes an all-day item's dates in this zone, which must then be one it knows:
        # one with the definition's offset at the start gives the same dates
        start = datetime.fromisoformat((_text(elem, "Start") or "").replace("Z", "+00:00"))
        offset = start.astimezone(zone_of(definition, start.year)).utcoffset() or timedelta(0)
        known = fixed_zone(offset, start.year, start.year)
        return None if known is None else EWSTimeZone(known.key)

    def to_xml(self, value: Any, version: Any) -> Any:
        if isinstance(value, Definition):
            return definition_xml(value, self.request_tag())
        return super().to_xml(value, version)


def _known(zone_id: str | None) -> bool:
    try:
        EWSTimeZone.from_ms_id(zone_id or "")
    except UnknownTimeZone:
        return False
    return True


def install() -> None:
    """Put :class:`ZoneField` in the place of exchangelib's StartTimeZone/EndTimeZone fields
    (through its own ``remove_field``/``add_field``, as ``register`` adds extended properties)."""
    for name, uri in (("_start_timezone", "calendar:StartTimeZone"), ("_end_timezone", "calendar:EndTimeZone")):
        old = EWSItem.get_field_by_fieldname(name)
        if isinstance(old, ZoneField):
            continue
        after = EWSItem.FIELDS[EWSItem.FIELDS.index_by_name(name) - 1].name
        EWSItem.remove_field(old)
        EWSItem.add_field(ZoneField(name, field_uri=uri, supported_from=old.supported_from, is_searchable=False),
                          insert_after=after)
