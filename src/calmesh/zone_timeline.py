"""A zone's changes of offset as the two forms calendar platforms write zones in: one-off
changes, and yearly rules ("the last Sunday of March at 02:00").

Both calmesh's own VTIMEZONEs (:func:`calmesh.ical._vtimezone`: observances with and without a
yearly RRULE) and the zone definitions it writes to Exchange through EWS
(:mod:`calmesh.connectors._ews_zones`: ``AbsoluteDateTransition`` and ``RecurringDayTransition``)
are the same timeline, taken here from the zone's own offsets (a ``ZoneInfo``, or the rules of a
VTIMEZONE of an object's own) rather than from how a definition happened to spell them: two
definitions with the same offsets are written alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

Kind = tuple[timedelta, timedelta, str | None, bool]
"""A kind of change: offset before, offset after, the zone's name after, daylight time after."""
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True, slots=True)
class Change:
    """One change of offset: the instant (UTC), the offsets either side, the name and whether it
    is daylight time after it."""

    instant: datetime
    before: timedelta
    after: timedelta
    name: str | None
    daylight: bool

    @property
    def wall(self) -> datetime:
        """The local time of the change on the clock before it (naive), as VTIMEZONE observances
        and Windows zone rules give it."""
        return (self.instant + self.before).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class YearlyRule:
    """Changes of one kind on a yearly rule: ``first`` is the first one (local, clock before),
    ``byday`` its RRULE BYDAY (``-1SU``, ``2SU``...), in ``first``'s month at its time."""

    kind: Kind
    first: datetime
    byday: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """A zone from ``start`` (1 January of the first year, local): its offset then, the changes
    before its changes settle into yearly rules, and those rules (none when they never do)."""

    start: datetime
    offset: timedelta
    name: str | None
    daylight: bool
    one_offs: tuple[Change, ...]
    yearly: tuple[YearlyRule, ...]


def timeline(zone: tzinfo, first_year: int) -> Timeline:
    """``zone``'s changes from ``first_year`` up to 2040 (twelve years at least): the one-off
    changes up to where they settle into yearly rules lasting to that year, then those rules."""
    years = max(12, 2040 - first_year)
    changes = _transitions(zone, first_year, years)
    split, rules = _yearly_tail(zone, first_year, years)
    start = datetime(first_year, 1, 1, tzinfo=zone)
    return Timeline(start.replace(tzinfo=None), start.utcoffset() or timedelta(0), start.tzname(), bool(start.dst()),
                    changes[:split], tuple(YearlyRule(kind, first, byday) for kind, first, byday in rules))


@lru_cache(maxsize=512)
def _transitions(zone: tzinfo, first_year: int, years: int) -> tuple[Change, ...]:
    """UTC offset changes of ``zone`` over some years. Cached: every write of an event needs its
    zone's changes, and a scan takes milliseconds.

    A zone of an object's own is asked a week at a time, zoneinfo's a day at a time: the rules
    dateutil builds from a VTIMEZONE walk each observance's RRULE from its DTSTART (1601 in
    Outlook's) for every instant asked, a day at a time took seconds, and no definition changes
    its offset twice within a week."""
    out = []
    stride = 86400 if isinstance(zone, ZoneInfo) else 7 * 86400
    cursor = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp())
    end = int(datetime(first_year + years, 1, 1, tzinfo=UTC).timestamp())

    def offset(ts: int) -> timedelta:
        return datetime.fromtimestamp(ts, zone).utcoffset() or timedelta(0)

    before = offset(cursor)
    while cursor < end:
        step = cursor + stride
        if offset(step) != before:
            lo, hi = cursor, step  # bisect to the second: offset(lo) == before != offset(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
            after_local = datetime.fromtimestamp(hi, zone)
            out.append(Change(datetime.fromtimestamp(hi, UTC), before, offset(hi), after_local.tzname(),
                              bool(after_local.dst())))
            before = offset(hi)
        cursor = step
    return tuple(out)


@lru_cache(maxsize=512)
def _yearly_tail(zone: tzinfo, first_year: int, years: int) -> tuple[int, tuple[tuple[Kind, datetime, str], ...]]:
    """Where the zone's changes (:func:`_transitions`) settle into yearly rules lasting to the
    last year: (index of the first such change, (kind, first local change, BYDAY) of each rule);
    (number of changes, ()) when they never do. Cached: every write of an event needs it."""
    changes = _transitions(zone, first_year, years)
    last_year = first_year + years - 1
    for i in range(len(changes)):  # the longest run of yearly changes lasting to the last year
        if changes[-1].instant.year < last_year:
            break
        rules = _yearly_kinds(changes[i:])
        if rules is not None:
            return i, tuple((key, starts[0], byday) for key, starts, byday in rules)
    return len(changes), ()


def _yearly_kinds(changes: Sequence[Change]) -> list[tuple[Kind, list[datetime], str]] | None:
    """``changes`` as two kinds of change (to and from summer time) each on a yearly rule over
    five years at least: (kind, local change times, BYDAY) each; None when they are not."""
    kinds: dict[Kind, list[datetime]] = {}
    for change in changes:
        kinds.setdefault((change.before, change.after, change.name, change.daylight), []).append(change.wall)
    if len(kinds) != 2 or any(len(starts) < 5 for starts in kinds.values()):
        return None
    out = []
    for key, starts in kinds.items():
        byday = _yearly_rule(starts)
        if byday is None:
            return None
        out.append((key, starts, byday))
    return out


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
        return f"{nth.pop()}{WEEKDAYS[first.weekday()]}"
    if all(d.day + 7 > _days_in_month(d) for d in starts):
        return f"-1{WEEKDAYS[first.weekday()]}"
    return None


def _days_in_month(value: datetime) -> int:
    following = value.replace(day=28) + timedelta(days=4)
    return (following - timedelta(days=following.day)).day
