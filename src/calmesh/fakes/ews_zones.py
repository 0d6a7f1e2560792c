"""The EWS fake's reading of a ``TimeZoneDefinitionType`` (a ``CalendarItem``'s
``StartTimeZone``/``EndTimeZone`` with its own Periods and Transitions, Exchange 2010 and later),
as Exchange keeps and expands a series in such a zone.

Checked as Types.xsd and Microsoft's reference pages give it: ``Periods`` (each ``Period`` with
``Bias``, ``Name``, ``Id``), ``TransitionsGroups`` (each ``TransitionsGroup`` with an ``Id`` and its
``Transition``, ``AbsoluteDateTransition``, ``RecurringDayTransition`` or
``RecurringDateTransition`` elements, each with a ``To`` naming a Period) and ``Transitions``
(the same elements, their ``To`` naming a group: the first plain, the later ones from a date).
A definition that breaks this is answered ``ErrorTimeZone``.

Offsets are computed here from the definition itself, not through calmesh's own conversion
(:mod:`calmesh.connectors._ews_zones`), so a test reading a series back through this fake
checks that conversion against an independent reading: a transition happens at its local time
on the clock before it (``TimeOffset`` of a ``RecurringDayTransition``, as Windows zone rules give
it; ``DateTime`` of an ``AbsoluteDateTransition`` likewise); Occurrence -1 is the last such weekday
of the month; times in a gap or an overlap follow PEP 495's ``fold``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from xml.etree.ElementTree import Element

T = "http://schemas.microsoft.com/exchange/services/2006/types"
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_KINDS = ("Transition", "AbsoluteDateTransition", "RecurringDayTransition", "RecurringDateTransition")
_DURATION = re.compile(r"^(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


class InvalidZone(ValueError):
    """A StartTimeZone/EndTimeZone that is no valid TimeZoneDefinitionType."""


@dataclass(frozen=True)
class _Rule:
    to: str
    kind: str
    at: datetime | None = None
    month: int = 0
    weekday: int = 0
    occurrence: int = 0
    day: int = 0
    clock: timedelta = timedelta(0)

    def when(self, year: int) -> datetime | None:
        """Local time (clock before) of this rule's transition in ``year``."""
        return _when(self, year)


@lru_cache(maxsize=8192)
def _when(rule: _Rule, year: int) -> datetime | None:
    """:meth:`_Rule.when`, kept: a series asks it of every occurrence's year."""
    if rule.kind == "AbsoluteDateTransition":
        return rule.at if rule.at is not None and rule.at.year == year else None
    if rule.kind == "RecurringDateTransition":
        try:
            return datetime(year, rule.month, rule.day) + rule.clock
        except ValueError:
            return None
    if rule.kind == "RecurringDayTransition":
        first = date(year, rule.month, 1)
        days = [first + timedelta(d) for d in range(31)]
        matching = [d for d in days if d.month == rule.month and d.weekday() == rule.weekday]
        pick = matching[-1] if rule.occurrence == -1 else (
            matching[rule.occurrence - 1] if rule.occurrence <= len(matching) else None)
        return None if pick is None else datetime(pick.year, pick.month, pick.day) + rule.clock
    return None


def _duration(text: str | None, what: str) -> timedelta:
    found = _DURATION.match((text or "").strip())
    if not text or found is None or text.strip().rstrip("T").endswith("P"):
        raise InvalidZone(f"{what} is not an xs:duration: {text!r}")
    sign, days, hours, minutes, seconds = found.groups()
    value = timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0), seconds=int(seconds or 0))
    return -value if sign else value


def _child(elem: Element, tag: str) -> str:
    found = elem.find(f"{{{T}}}{tag}")
    if found is None or not (found.text or "").strip():
        raise InvalidZone(f"{elem.tag.rsplit('}', 1)[-1]} needs {tag}")
    return (found.text or "").strip()


def _rule(elem: Element, target: str) -> _Rule:
    kind = elem.tag.rsplit("}", 1)[-1]
    if kind not in _KINDS:
        raise InvalidZone(f"unexpected {kind}")
    to = elem.find(f"{{{T}}}To")
    if to is None or to.get("Kind") != target or not (to.text or "").strip():
        raise InvalidZone(f"{kind} needs a To of Kind {target}")
    name = (to.text or "").strip()
    if kind == "Transition":
        return _Rule(name, kind)
    if kind == "AbsoluteDateTransition":
        try:
            return _Rule(name, kind, at=datetime.fromisoformat(_child(elem, "DateTime")[:19]))
        except ValueError as exc:
            raise InvalidZone(f"AbsoluteDateTransition DateTime: {exc}") from exc
    clock = _duration(_child(elem, "TimeOffset"), "TimeOffset")
    month = int(_child(elem, "Month"))
    if not 1 <= month <= 12:
        raise InvalidZone(f"Month {month}")
    if kind == "RecurringDateTransition":
        return _Rule(name, kind, month=month, day=int(_child(elem, "Day")), clock=clock)
    day, occurrence = _child(elem, "DayOfWeek"), int(_child(elem, "Occurrence"))
    if day not in _DAYS or occurrence not in (1, 2, 3, 4, 5, -1):
        raise InvalidZone(f"DayOfWeek {day!r}, Occurrence {occurrence}")
    return _Rule(name, kind, month=month, weekday=_DAYS.index(day), occurrence=-1 if occurrence == 5 else occurrence,
                 clock=clock)


class DefinitionZone(tzinfo):
    """A zone as a ``StartTimeZone`` defines it; ``element`` is the definition as received (echoed
    in GetItem and FindItem answers), ``key`` its Id."""

    def __init__(self, element: Element) -> None:
        self.element = copy.deepcopy(element)
        self.key = element.get("Id") or ""
        if not self.key:
            raise InvalidZone("a time zone definition needs an Id")
        periods = element.find(f"{{{T}}}Periods")
        if periods is None or not len(periods):
            raise InvalidZone("a time zone definition needs Periods")
        self._offsets: dict[str, timedelta] = {}
        for period in periods:
            if not period.get("Id") or period.get("Name") is None:
                raise InvalidZone("a Period needs Id and Name")
            self._offsets[period.get("Id", "")] = -_duration(period.get("Bias"), "Period Bias")
        self._groups: dict[str, list[_Rule]] = {}
        for group in element.find(f"{{{T}}}TransitionsGroups") or []:
            rules = [_rule(child, "Period") for child in group]
            if not group.get("Id") or not rules or any(r.to not in self._offsets for r in rules):
                raise InvalidZone(f"TransitionsGroup {group.get('Id')!r} is empty or names an unknown Period")
            self._groups[group.get("Id", "")] = rules
        eras = [_rule(child, "Group") for child in element.find(f"{{{T}}}Transitions") or []]
        if not eras or eras[0].kind != "Transition" or any(e.to not in self._groups for e in eras) \
                or any(e.kind != "AbsoluteDateTransition" for e in eras[1:]):
            raise InvalidZone("Transitions must start with a Transition to a group, then switch groups by date")
        self._eras = [(e.at or datetime.min, e.to) for e in eras]
        self._changes: dict[int, tuple[timedelta, list[tuple[datetime, timedelta, timedelta]]]] = {}

    def renamed(self, tag: str) -> Element:
        """The definition as the element ``tag`` (``{types}StartTimeZone``...)."""
        elem = copy.deepcopy(self.element)
        elem.tag = tag
        return elem

    # ----------------------------------------------------------------------- the offsets
    def _group_at(self, wall: datetime) -> str:
        return [group for start, group in self._eras if start <= wall][-1]

    def _in_group(self, group: str, wall: datetime) -> timedelta:
        """The offset ``group``'s rules give at ``wall`` (its latest transition by then)."""
        rules = self._groups[group]
        fired = [(when, r) for r in rules for year in (wall.year - 1, wall.year)
                 if (when := r.when(year)) is not None and when <= wall]
        if fired:
            return self._offsets[max(fired, key=lambda pair: pair[0])[1].to]
        plain = [r for r in rules if r.kind == "Transition"]
        if plain:
            return self._offsets[plain[0].to]
        latest = [(when, r) for r in rules for year in range(wall.year - 2, wall.year + 2) if (when := r.when(year))]
        return self._offsets[max(latest, key=lambda pair: pair[0])[1].to] if latest else self._offsets[rules[0].to]

    def _year(self, year: int) -> tuple[timedelta, list[tuple[datetime, timedelta, timedelta]]]:
        """The offset as ``year`` begins, and (wall time on the clock before, offset before,
        offset after) of the year's changes. Kept: a series asks it of every occurrence."""
        if year not in self._changes:
            walls = {start for start, _group in self._eras if start.year == year}
            walls |= {when for rules in self._groups.values() for r in rules if (when := r.when(year)) is not None}
            start = before = self._offset_at(datetime(year, 1, 1) - timedelta(microseconds=1))
            out = []
            for wall in sorted(walls):
                after = self._offset_at(wall)
                if after != before:
                    out.append((wall, before, after))
                    before = after
            self._changes[year] = (start, out)
        return self._changes[year]

    def _offset_at(self, wall: datetime) -> timedelta:
        return self._in_group(self._group_at(wall), wall)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return self._offset_at(datetime(2000, 1, 1))
        wall = dt.replace(tzinfo=None)
        offset, changes = self._year(wall.year)
        for at, before, after in changes:
            delta = after - before  # a gap (delta > 0) or an overlap: PEP 495's fold decides
            cut = at + delta if (dt.fold == 1) == (delta < timedelta(0)) else at
            if wall < cut:
                return before
            offset = after
        return offset

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return self.key

    def fromutc(self, dt: datetime) -> datetime:
        utc = dt.replace(tzinfo=None)
        offset = self._year(utc.year - 1)[0]
        for year in (utc.year - 1, utc.year, utc.year + 1):
            for at, before, after in self._year(year)[1]:
                if at - before <= utc:
                    offset = after
        local = (utc + offset).replace(tzinfo=self)
        return local if local.utcoffset() == offset else local.replace(fold=1)

    def __repr__(self) -> str:
        return f"DefinitionZone({self.key!r})"


def zone_from(element: Any) -> DefinitionZone:
    """A StartTimeZone/EndTimeZone carrying a definition -> its zone (InvalidZone if broken)."""
    try:
        return DefinitionZone(element)
    except (KeyError, IndexError) as exc:
        raise InvalidZone(f"broken time zone definition: {exc}") from exc
