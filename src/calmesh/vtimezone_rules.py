"""The zones icalendar builds from VTIMEZONEs, answered by binary search over each observance's
onsets instead of dateutil's walk from the first one.

icalendar (its ``zoneinfo`` provider) builds the zone of a VTIMEZONE it has no IANA name for with
dateutil's ``tzical``, whose every ``utcoffset()``, ``dst()`` and ``tzname()`` asks each
observance's recurrence for its last onset before the time asked, by walking the onsets from the
observance's DTSTART: from 1601 in Outlook's exports (``Customized Time Zone``, Windows names),
some 425 steps an observance for a time of 2026. Reading 500 weekly events in such a zone and
expanding them took seconds (docs/benchmarks.md, "Zones defined by the calendar").

:class:`IndexedDefinition` is the same zone, dateutil's observances and its choice among them
(the latest onset wins, a tie goes to the first observance, the second of two ambiguous times is
looked up an offset later in an observance that turns clocks back), but for a wall time the
clocks skip (read with the offset before the gap, as RFC 5545 3.3.5 says), with each observance's
onsets listed once, as far as a time has been asked, and searched by bisection. Where the list
cannot answer (a time before every observance's first onset, onsets that are not naive times in
order) it asks dateutil as before, so every other answer is dateutil's, but for two faults of
dateutil's that moved events in zones whose rules change (issue 13): its ``fromutc`` assumed a
constant standard offset (:meth:`IndexedDefinition.fromutc`), and it read an observance's UTC
``UNTIL`` as a local time (:func:`local_until`). :func:`use_indexed_definitions` has icalendar
build these zones (its documented way: a timezone provider).
"""

from __future__ import annotations

import copy
import threading
from bisect import bisect_right
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from dateutil.rrule import YEARLY
from dateutil.tz.tz import _tzicalvtz
from icalendar.timezone import tzp
from icalendar.timezone.zoneinfo import ZONEINFO

_ZERO = timedelta(0)
_TICK = timedelta(microseconds=1)


class _Onsets:
    """One observance's onsets (naive local times, the clock before the change), listed in order
    as far as a time has been asked; every onset before ``bound`` is in ``listed``.

    The onsets come from the observance's recurrence through its uncached generator
    (``_iter``): its public iterator fills the rule's own cache, whose lock dateutil leaves taken
    when the cache completes (a finite rule: one-off RDATE observances, an UNTIL), which hung a
    later walk of the same rule (docs/benchmarks.md). Threads share a zone: one extends the list
    at a time, and readers only ever meet onsets at or after the bound they read."""

    __slots__ = ("_lock", "_onsets", "bound", "listed")

    def __init__(self, rule: Any) -> None:
        self.listed: list[datetime] = []
        self.bound = datetime.min
        walk = getattr(rule, "_iter", None)
        self._onsets: Iterator[Any] | None = walk() if callable(walk) else None
        self._lock = threading.Lock()

    def around(self, asked: datetime) -> tuple[datetime | None, datetime] | None:
        """The last onset at or before ``asked`` (None: there is none) and the first after it
        (``datetime.max``: there is none); None when the list cannot say and dateutil must."""
        if asked >= self.bound:
            self._extend(asked)
            if asked >= self.bound:
                return None
        listed = self.listed
        at = bisect_right(listed, asked)  # below the bound read: later onsets are after it
        return (listed[at - 1] if at else None), (listed[at] if at < len(listed) else datetime.max)

    def _extend(self, asked: datetime) -> None:
        """List onsets up to the first one after ``asked`` (all of them for a finite rule)."""
        with self._lock:
            while self._onsets is not None and asked >= self.bound:
                try:
                    onset = next(self._onsets)
                except StopIteration:
                    self._onsets, self.bound = None, datetime.max
                    return
                last = self.listed[-1] if self.listed else None
                if type(onset) is not datetime or onset.tzinfo is not None or (last is not None and onset < last):
                    self._onsets = None  # dateutil's walk answers beyond what is listed
                    return
                self.listed.append(onset)
                self.bound = onset  # every earlier onset is listed; an equal one may follow


class IndexedDefinition(_tzicalvtz):
    """dateutil's zone for one VTIMEZONE (see the module's docstring), answering as it does."""

    def __init__(self, tzid: str, comps: list[Any]) -> None:
        super().__init__(tzid, comps)
        self._onsets = [_Onsets(comp.rrule) for comp in comps]
        self._last: tuple[datetime, datetime, Any] = (datetime.max.replace(tzinfo=self),
                                                      datetime.min.replace(tzinfo=self), None)
        """The last observance found for a time without fold, and the times from the latest
        onset up to (not with) the next of any observance, all of which it answers: expanding a
        series asks for each occurrence in turn, most of them between the same two changes.
        The times are in this zone, so comparing one of its own with them asks it nothing."""

    def _find_comp(self, dt: datetime) -> Any:
        """The observance in force at ``dt`` (wall time, its fold saying which of two)."""
        if len(self._comps) == 1:
            return self._comps[0]
        folded = self._fold(dt)
        if not folded and dt.tzinfo is self:
            since, until, found = self._last
            if since <= dt < until:
                return found
        naive = dt.replace(tzinfo=None)
        latest: datetime | None = None
        soonest = datetime.max
        chosen = None
        for comp, onsets in zip(self._comps, self._onsets, strict=True):
            asked = naive - comp.tzoffsetdiff if folded and comp.tzoffsetdiff < _ZERO else naive
            found_around = onsets.around(asked)
            if found_around is None:
                return super()._find_comp(dt)
            onset, following = found_around
            soonest = min(soonest, following)
            if onset is not None and (latest is None or latest < onset):
                latest, chosen = onset, comp
        if latest is None or chosen is None:  # before every first onset: dateutil's choice (a standard observance)
            return super()._find_comp(dt)
        skipped = max(chosen.tzoffsetdiff, _ZERO)
        if not folded and naive < latest + skipped:
            # a wall time the change skips (02:30 on the night clocks go from 02:00 to 03:00):
            # RFC 5545 3.3.5 reads it with the offset before the gap, as PEP 495 does with fold
            # 0 (zoneinfo too); dateutil takes the one after, which made an event ending then
            # end an hour early (zero-length 01:30-02:30). With fold 1, dateutil's answer stands:
            # its fromutc asks that way for the wall time just after the change.
            return self._find_comp((latest - _TICK).replace(tzinfo=self))
        if not folded:
            self._last = ((latest + skipped).replace(tzinfo=self), soonest.replace(tzinfo=self), chosen)
        return chosen

    def fromutc(self, dt: datetime) -> datetime:
        """The wall time of an instant (``dt``: UTC, in this zone): the observance whose latest
        onset, as an instant (its local time on the clock before, less TZOFFSETFROM), is at or
        before it, at its TZOFFSETTO; fold 1 for the hour the clocks repeat after turning back.

        Why not dateutil's: it adds the standard offset and then daylight time (Python's
        generic algorithm), which holds only while the standard offset never changes. Where it
        does (a zone leaving summer time for a new standard offset, as Russia did in 2011 and
        the definitions Outlook writes for it), an event ending after the change ended an hour
        off, or before it began."""
        if not isinstance(dt, datetime) or dt.tzinfo is not self:
            return super().fromutc(dt)  # its checks and errors
        naive = dt.replace(tzinfo=None)
        latest: tuple[datetime, datetime] | None = None
        chosen = None
        for comp, onsets in zip(self._comps, self._onsets, strict=True):
            found = onsets.around(naive + comp.tzoffsetfrom)
            if found is None:
                return super().fromutc(dt)
            onset = found[0]
            # two onsets at one instant (Outlook's observances all begin on 1 January 1601):
            # the later on its clock wins, as for a wall time (_find_comp)
            if onset is not None and (latest is None or latest < (onset - comp.tzoffsetfrom, onset)):
                latest, chosen = (onset - comp.tzoffsetfrom, onset), comp
        if latest is None or chosen is None:  # before every first onset: dateutil's answer
            return super().fromutc(dt)
        comp, onset = chosen, latest[1]
        wall = naive + comp.tzoffsetto
        return wall.replace(tzinfo=self, fold=int(wall < onset))

    def settled_after(self) -> int | None:
        """The last year a change of this zone is given by a date of its own (an observance's
        DTSTART, RDATE, UNTIL or last counted onset): after it every change comes from an endless
        yearly rule, so each year's changes depend only on its kind (the weekday of 1 January,
        leap or not). None when an endless rule is of another kind (every other year, monthly),
        whose changes never settle so."""
        last = 1
        for comp in self._comps:
            onsets = comp.rrule
            if onsets._exrule:  # noqa: SLF001 - dateutil's rruleset, as parsed from the observance
                return None
            for value in (*onsets._rdate, *onsets._exdate):  # noqa: SLF001
                last = max(last, value.year)
            for rule in onsets._rrule:  # noqa: SLF001
                last = max(last, rule._dtstart.year)  # noqa: SLF001
                if rule._until is not None:  # noqa: SLF001
                    last = max(last, rule._until.year)  # noqa: SLF001
                elif rule._count is not None:  # noqa: SLF001
                    last = max([last, *(onset.year for onset in rule._iter())])  # noqa: SLF001
                elif rule._freq != YEARLY or rule._interval != 1:  # noqa: SLF001
                    return None
        return last

    def onsets(self, first_year: int, last_year: int) -> list[datetime]:
        """Every onset of an observance from ``first_year`` to ``last_year``, as UTC instants:
        the only instants its offset can change at. From the lists this zone keeps
        (:class:`_Onsets`), else from each rule's uncached generator."""
        lo, hi = datetime(first_year - 1, 12, 31), datetime(last_year + 1, 1, 2)
        out = []
        for comp, listed in zip(self._comps, self._onsets, strict=True):
            if listed.around(hi) is not None:
                onsets: Iterator[datetime] = iter(listed.listed[bisect_right(listed.listed, lo):])
            else:
                onsets = comp.rrule._iter()  # noqa: SLF001
            for onset in onsets:
                if onset > hi:
                    break
                if onset >= lo:
                    out.append((onset - comp.tzoffsetfrom).replace(tzinfo=UTC))
        return sorted(out)

    def __reduce__(self) -> tuple[type[IndexedDefinition], tuple[str, list[Any]]]:
        """Copied and pickled as icalendar does dateutil's zones: rebuilt from the observances
        (the locks are not copied)."""
        return type(self), (self._tzid, self._comps)


def local_until(tz: Any) -> Any:
    """A VTIMEZONE (icalendar's component) with each observance's UNTIL, written in UTC as RFC
    5545 3.3.10 requires, turned into the local time on the clock before the change (UNTIL plus
    TZOFFSETFROM), the clock of the observance's DTSTART and of the onsets dateutil compares it
    with; ``tz`` itself when no UNTIL is in UTC.

    Why: dateutil reads these rules ignoring zones, so it compared the UTC time as a local one.
    East of Greenwich the last change of a rule that ends came after its UNTIL so read, and was
    lost: a zone whose summer time rules stop in 2026 (a change of standard offset from 2027)
    stayed on winter time from October 2025, every event until 2027 an hour off."""
    if not any(isinstance(until, datetime) and until.tzinfo is not None
               for observance in tz.subcomponents for rule in _rules(observance) for until in rule.get("UNTIL", [])):
        return tz
    tz = copy.deepcopy(tz)
    for observance in tz.subcomponents:
        before = observance.get("TZOFFSETFROM")
        for rule in _rules(observance):
            untils = rule.get("UNTIL", [])
            if before is not None and untils and isinstance(untils[0], datetime) and untils[0].tzinfo is not None:
                rule["UNTIL"] = [(u.astimezone(UTC) + before.td).replace(tzinfo=None) for u in untils]
    return tz


def _rules(observance: Any) -> list[Any]:
    rules = observance.get("RRULE")
    return [] if rules is None else rules if isinstance(rules, list) else [rules]


class _Provider(ZONEINFO):
    """icalendar's zoneinfo provider, building :class:`IndexedDefinition` zones, with each
    UNTIL as the onsets are read (:func:`local_until`)."""

    def create_timezone(self, tz: Any) -> tzinfo:  # type: ignore[override] # ZONEINFO's, not the ABC's
        zone = super().create_timezone(tz)
        if isinstance(zone, _tzicalvtz) and not isinstance(zone, IndexedDefinition):
            return IndexedDefinition(zone._tzid, zone._comps)  # noqa: SLF001 - the same observances
        return zone

    def _create_timezone(self, tz: Any) -> tzinfo:
        return super()._create_timezone(local_until(tz))


def use_indexed_definitions() -> None:
    """Have icalendar build the zones of VTIMEZONEs as :class:`IndexedDefinition` (it forgets
    the zones it built before, as at any change of provider): :mod:`calmesh.ical` does, once."""
    tzp.use(_Provider())
