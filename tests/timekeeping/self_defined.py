"""Zones that only a calendar's own VTIMEZONE defines (issue 13), given as their rules: the
VTIMEZONE a client writes for them, and an independent reading of their wall times as RFC 5545
3.3.5 says (a time shown twice is its first occurrence; a time the clocks skip takes the offset
before the gap), which the tests of calmesh's reading, copies and syncs compare with.

Why not allenporter's ``ical`` library (the corpus reference) here: it refuses a VTIMEZONE whose
rules end (``UNTIL`` with a zone-aware DTSTART), reads a skipped time with the offset after the
gap, and reads some definitions it cannot name (a single fixed-offset observance) as UTC. Why not
dateutil's ``tzical``: calmesh builds on it. The reading here takes the changes from the rules
themselves: month, n-th Sunday, local time on the clock before the change."""

from __future__ import annotations

import bisect
import calendar as cal
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

STAMP = "%Y%m%dT%H%M%S"


def offset(text: str) -> timedelta:
    """``+0545`` as a timedelta."""
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))


def spelled(value: timedelta) -> str:
    """A timedelta as ``-0330``."""
    sign = "-" if value < timedelta(0) else "+"
    minutes = abs(int(value.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}{minutes % 60:02d}"


def _sunday(year: int, month: int, nth: int) -> date:
    sundays = [d for d in range(1, cal.monthrange(year, month)[1] + 1) if date(year, month, d).weekday() == 6]
    return date(year, month, sundays[nth - 1 if nth > 0 else nth])


Rule = tuple[int, int, int, int]
"""A yearly change: month, n-th Sunday (-1 the last), hour and minute on the clock before it."""


@dataclass(frozen=True)
class Era:
    """The zone's rules from 1 January of ``since``: its standard offset, and its summer
    offset with the rules of the changes to and from it (none: no summer time)."""

    since: int
    standard: str
    daylight: str | None = None
    to_daylight: Rule = (3, -1, 2, 0)
    to_standard: Rule = (10, -1, 3, 0)

    @property
    def southern(self) -> bool:
        return self.daylight is not None and self.to_daylight[0] > self.to_standard[0]

    def at_new_year(self) -> timedelta:
        return offset(self.daylight if self.southern and self.daylight else self.standard)

    def changes(self, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
        """This year's changes: local time (clock before), offset before, offset after."""
        if self.daylight is None:
            return []
        out = [(self._local(year, rule), offset(before), offset(after)) for rule, before, after in (
            (self.to_daylight, self.standard, self.daylight), (self.to_standard, self.daylight, self.standard))]
        return sorted(out)

    @staticmethod
    def _local(year: int, rule: Rule) -> datetime:
        month, nth, hour, minute = rule
        return datetime.combine(_sunday(year, month, nth), datetime.min.time()) + timedelta(hours=hour, minutes=minute)


@dataclass(frozen=True)
class SelfZone:
    """A zone as a sequence of eras (the rules changed on 1 January of each later era's year, at
    local midnight); ``outlook`` writes the first era's observances from 1601, as Outlook does."""

    tzid: str
    eras: tuple[Era, ...]
    outlook: bool = False
    FIRST = 1990
    LAST = 2060

    def transitions(self) -> tuple[timedelta, list[tuple[datetime, timedelta, timedelta]]]:
        """The offset before the first change, and every change (naive UTC instant, before, after)."""
        current = first = self.eras[0].at_new_year()
        out = []
        for i, era in enumerate(self.eras):
            end = self.eras[i + 1].since if i + 1 < len(self.eras) else self.LAST
            if i and era.at_new_year() != current:
                out.append((datetime(era.since, 1, 1) - current, current, era.at_new_year()))
                current = era.at_new_year()
            for year in range(max(era.since, self.FIRST), end):
                for local, before, after in era.changes(year):
                    out.append((local - before, before, after))
                    current = after
        return first, out

    def vtimezone(self) -> str:
        """The VTIMEZONE a client writes: per era a yearly observance per kind of change (its
        RRULE ending with an UNTIL in UTC, RFC 5545 3.3.10, where a later era begins), and a
        one-off observance where an era begins with another offset."""
        lines = ["BEGIN:VTIMEZONE", f"TZID:{self.tzid}"]
        _first, changes = self.transitions()
        for i, era in enumerate(self.eras):
            begins = self.eras[i].since if i else (1601 if self.outlook else self.FIRST)
            until = self.eras[i + 1].since - 1 if i + 1 < len(self.eras) else None
            switch = [c for c in changes if i and c[0] + c[1] == datetime(era.since, 1, 1)]
            if switch:
                _instant, before, after = switch[0]
                kind = "DAYLIGHT" if era.southern else "STANDARD"
                lines += [f"BEGIN:{kind}", f"DTSTART:{era.since}0101T000000", f"TZOFFSETFROM:{spelled(before)}",
                          f"TZOFFSETTO:{spelled(after)}", f"END:{kind}"]
            if era.daylight is None:
                if not switch:
                    lines += ["BEGIN:STANDARD", f"DTSTART:{begins}0101T000000", f"TZOFFSETFROM:{era.standard}",
                              f"TZOFFSETTO:{era.standard}", "END:STANDARD"]
                continue
            for rule, before, after, kind in ((era.to_daylight, era.standard, era.daylight, "DAYLIGHT"),
                                              (era.to_standard, era.daylight, era.standard, "STANDARD")):
                onset = datetime(1601, 1, 1, rule[2], rule[3]) if begins == 1601 else Era._local(begins, rule)
                recur = f"RRULE:FREQ=YEARLY;BYMONTH={rule[0]};BYDAY={rule[1]}SU"
                if until is not None:
                    recur += f";UNTIL={Era._local(until, rule) - offset(before):%Y%m%dT%H%M%SZ}"
                lines += [f"BEGIN:{kind}", f"DTSTART:{onset:{STAMP}}", f"TZOFFSETFROM:{before}",
                          f"TZOFFSETTO:{after}", recur, f"END:{kind}"]
        return "\n".join([*lines, "END:VTIMEZONE"])


class Reading:
    """A zone's wall times as RFC 5545 3.3.5 reads them, from its changes alone."""

    def __init__(self, zone: SelfZone) -> None:
        first, changes = zone.transitions()
        self.instants = [instant for instant, _before, _after in changes]
        self.offsets = [first] + [after for _instant, _before, after in changes]

    def _offset(self, instant: datetime) -> timedelta:
        return self.offsets[bisect.bisect_right(self.instants, instant)]

    def instant(self, wall: datetime) -> datetime:
        """The UTC instant of a wall time: its first occurrence, or, where the clocks skip it,
        the offset before the gap."""
        wall = wall.replace(tzinfo=None)
        shown = sorted(u for u in {wall - o for o in self.offsets} if u + self._offset(u) == wall)
        if shown:
            return shown[0].replace(tzinfo=UTC)
        for i, change in enumerate(self.instants):
            before, after = self.offsets[i], self.offsets[i + 1]
            if change + before <= wall < change + after:
                return (wall - before).replace(tzinfo=UTC)
        raise AssertionError(f"{wall} is neither shown nor skipped")

    def wall(self, instant: datetime) -> datetime:
        """What the clocks show at an instant (naive)."""
        naive = instant.astimezone(UTC).replace(tzinfo=None)
        return naive + self._offset(naive)

    def changes_between(self, first: int, last: int) -> list[datetime]:
        """The local times (clock before) of the changes in these years."""
        return [i + self.offsets[n] for n, i in enumerate(self.instants) if first <= i.year <= last]


ZONES = {zone.tzid: zone for zone in (
    SelfZone("Customized Time Zone", (Era(1990, "+0100", "+0200", (3, -1, 0, 0), (10, -1, 0, 0)),)),
    SelfZone("Midnight South", (Era(1990, "-0300", "-0200", (10, 1, 0, 0), (2, 3, 0, 0)),)),
    SelfZone("Chile-like", (Era(1990, "-0400", "-0300", (9, 1, 0, 0), (4, 1, 0, 0)),)),
    SelfZone("Newfoundland-like", (Era(1990, "-0330", "-0230", (3, 2, 2, 0), (11, 1, 2, 0)),)),
    SelfZone("Nepal-like", (Era(1990, "+0545"),)),
    SelfZone("Kathmandu summer", (Era(1990, "+0545", "+0645", (4, 1, 2, 0), (9, -1, 3, 0)),)),
    SelfZone("Lord Howe-like", (Era(1990, "+1030", "+1100", (10, 1, 2, 0), (4, 1, 2, 0)),)),
    SelfZone("Sydney before and since 2008", (Era(1990, "+1000", "+1100", (10, -1, 2, 0), (3, -1, 3, 0)),
                                              Era(2008, "+1000", "+1100", (10, 1, 2, 0), (4, 1, 3, 0)))),
    SelfZone("Summer time for good", (Era(1990, "+0300", "+0400", (3, -1, 2, 0), (10, -1, 3, 0)), Era(2027, "+0400"))),
    SelfZone("Winter time for good", (Era(1990, "-0500", "-0400", (3, 2, 2, 0), (11, 1, 2, 0)), Era(2028, "-0500"))),
    SelfZone("Summer time from 2026", (Era(1990, "+0530"), Era(2026, "+0530", "+0630", (3, -1, 2, 0), (10, -1, 3, 0)))),
    SelfZone("Outlook midnight", (Era(1990, "-0330", "-0230", (3, 2, 0, 0), (11, 1, 0, 0)),), outlook=True),
    SelfZone("South without summer", (Era(1990, "-0300", "-0200", (10, 3, 0, 0), (2, 3, 0, 0)), Era(2019, "-0300"))),
    SelfZone("Half an hour back", (Era(1990, "-0930", "-0900", (11, 1, 0, 30), (3, -1, 1, 0)),)),
)}
"""Midnight changes (north and south), southern summers across New Year, negative and odd
offsets, half-hour summer time, and rules that change mid-series: a new standard offset from
2027 (UNTIL on the old rules), summer time dropped or begun, Sydney's 2008 change."""


def end_line(zone: SelfZone, reading: Reading, start: datetime, length: timedelta, name: str = "DTEND") -> str:
    """``name`` for an end ``length`` after ``start`` (an instant), as a careful client writes it:
    the local time, unless that reads as another instant (the hour the clocks repeat, second
    time round), then UTC."""
    wall = reading.wall(start + length)
    if reading.instant(wall) == start + length:
        return f"{name};TZID={zone.tzid}:{wall:{STAMP}}"
    return f"{name}:{(start + length).astimezone(UTC):%Y%m%dT%H%M%SZ}"
