"""What Exchange (EWS, Graph) and Google cannot hold of an iCalendar item, and the faithful form
written instead: the pieces of :meth:`calmesh.connectors.base.Connector.fit` those connectors share.

- ``RANGE=THISANDFUTURE`` (none of them has it): spelled out as an override of every occurrence
  it changes (:func:`calmesh.ical.without_this_and_future`); an endless series cannot be.
- a recurrence their patterns lack (EWS: BYSETPOS over several weekdays; Exchange: RDATE, two
  RRULEs, hourly rules, BYMONTHDAY lists...): when the series is finite, it is written as a
  weekly series on the weekdays its occurrences fall on, up to its last occurrence, with every
  occurrence of that series the rule lacks deleted, and an occurrence at another time of day
  moved there. Same occurrences; an endless one cannot be, and is not written (:class:`CannotHold`).
- an RDATE of an RRULE series (Exchange has none) that the rule has already, or on the day of
  an occurrence an EXDATE excludes: left out, or that occurrence moved (:func:`without_extra_dates`).
- a series in a zone only its object defines (no IANA zone matches it): EWS carries the
  definition (:mod:`calmesh.connectors._ews_zones`); Graph and Google cannot, and there (or when
  EWS cannot express it) it is spelled out the same way in a known zone with its first
  occurrence's offset.
- a series whose DTSTART is a time the clocks skip, or whose first instance spans a change of
  clocks (in the zone it is written in): Exchange would recur it an hour late, or give every
  instance that first one's length on the clock; it is written from an earlier occurrence of its
  rule that does neither, the occurrences before the original start deleted
  (:func:`from_a_plain_start`).
- an instance spanning a change of clocks: RFC 5545 gives it the series' exact length, Exchange
  ends it that length later on the clock; written as an override with its own end (finite
  series), or said (:func:`with_exact_lengths`).
- an override moving its occurrence to or past the day of the previous or next occurrence
  (RFC 5545 lets a RECURRENCE-ID move anywhere; Exchange refuses the change,
  ``ErrorOccurrenceCrossingBoundary``: :func:`crosses`): a finite series is spelled out with that
  occurrence deleted and the moved instance as the occurrence of the day it moved to
  (:func:`without_crossings`); an endless one is not written (:class:`CannotHold`).
- VALARMs become reminders (:mod:`calmesh.alarms`): what does not fit is said.
Each change is an :class:`Adaptation` for the sync report; nothing is changed silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

from calmesh import alarms, ical
from calmesh.connectors.base import Adaptation, CannotHold
from calmesh.model import CalendarItem, Event, Temporal, Window, as_utc, is_endless
from calmesh.timezones import DefinedZone, fixed_zone

MAX_SPELLED = 1000
"""Most occurrences a spelled-out series may have (its own and those deleted from it): each
deleted occurrence is one more request to the platform."""
_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def without_ranges(platform: str, item: CalendarItem) -> tuple[CalendarItem, list[Adaptation]]:
    """``item`` with its ``RANGE=THISANDFUTURE`` overrides spelled out one occurrence at a time."""
    ranged = sum(1 for e in item.overrides if e.this_and_future)
    if not ranged:
        return item, []
    try:
        spelled = ical.without_this_and_future(item)
    except ValueError as exc:
        raise CannotHold(platform, "RANGE=THISANDFUTURE", str(exc), item=item.uid) from exc
    added = len(spelled.overrides) - (len(item.overrides) - ranged)
    return spelled, [Adaptation("RANGE=THISANDFUTURE",
                                f"{ranged} change(s) to an occurrence and every later one written as "
                                f"{added} change(s) of single occurrences (no such range here)")]


def without_extra_dates(platform: str, item: CalendarItem, zone: ZoneInfo | DefinedZone) -> tuple[CalendarItem, list[Adaptation]]:
    """``item`` with the RDATEs of its RRULE series that need not be RDATEs (Exchange has none):
    one that is an occurrence of the rule already (RFC 5545 3.8.5.2: an instance counts once)
    or that an EXDATE excludes is left out; one on the day of a rule occurrence an EXDATE
    excludes, and not changed by an override, is that occurrence moved (an override at the
    excluded one, whose EXDATE goes: exporters write a moved occurrence so). Same occurrences,
    endless series too; the RDATEs left are spelled out (:func:`spell_out`) or refused."""
    master = item.master
    if master is None or not master.rrule or not master.rdate:
        return item, []
    excluded = {as_utc(x, zone): x for x in master.exdate}
    overridden = {as_utc(o.recurrence_id, zone) for o in item.overrides if o.recurrence_id is not None}
    length = _length(master)
    rule = CalendarItem(item.uid, [master.with_changes(rdate=[], exdate=[])])
    kept: list[Temporal] = []
    moved: list[Event] = []
    dropped = 0
    for value in master.rdate:
        at = as_utc(value, zone)
        day = _local(value, zone).date()
        found, problems = ical.expand_items([rule], Window(at - timedelta(days=2), at + timedelta(days=2)), platform, zone)
        starts = {as_utc(o.recurrence_id or o.start, zone): o.recurrence_id or o.start for o in found}
        if problems:
            kept.append(value)
        elif at in excluded or at in starts:
            dropped += 1
        elif (same := next((u for u, v in sorted(starts.items()) if u in excluded and u not in overridden
                            and _local(v, zone).date() == day), None)) is not None and at not in overridden:
            overridden.add(same)
            moved.append(replace(master, recurrence_id=starts[same], start=value, end=None if master.end is None
                                 else _after(value, length), rrule=[], rdate=[], exdate=[]))
            del excluded[same]
        else:
            kept.append(value)
    if not dropped and not moved:
        return item, []
    fitted = master.with_changes(rdate=kept, exdate=list(excluded.values()))
    detail = "; ".join(part for part in (
        f"{dropped} RDATE(s) that the rule already has, or an EXDATE excludes, left out" if dropped else "",
        f"{len(moved)} RDATE(s) on the day of an excluded occurrence written as that occurrence moved" if moved else "",
    ) if part)
    return (CalendarItem(item.uid, [fitted, *item.overrides, *moved], item.ref),
            [Adaptation("RDATE", f"{detail}: the same occurrences")])


def reminder_notes(item: CalendarItem, most: int, longest: int | None = None) -> list[Adaptation]:
    """What of ``item``'s VALARMs the platform's reminders (``most`` per event, at most
    ``longest`` minutes before) cannot keep."""
    left = [why for event in item.components for why in alarms.reminders(event.alarms, most, longest)[1]]
    if not left:
        return []
    return [Adaptation("VALARM", f"{len(left)} alarm(s) left out, kept as reminders only when minutes "
                                 f"before the start: {'; '.join(sorted(set(left))[:3])}")]


def own_zone(platform: str, master: Event | None,
             carries: Callable[[DefinedZone, Event], object] | None = None) -> tuple[ZoneInfo, str] | None:
    """For a series whose times are in a zone only its object defines (a VTIMEZONE matching no
    IANA zone, :class:`calmesh.timezones.DefinedZone`) and that the platform cannot carry: a
    zone the platform knows with the offset of its first occurrence, in which :func:`spell_out`
    writes it (the occurrences at the definition's other offsets moved to their own time), and
    why. None for other items, and where ``carries`` (EWS: a ``StartTimeZone`` with its own
    Periods and Transitions, :mod:`calmesh.connectors._ews_zones`) accepts the zone. Graph and
    Google take only zone names (``dateTimeTimeZone.timeZone``, ``EventDateTime.timeZone``)."""
    if master is None or not (master.rrule or master.rdate) or not isinstance(master.start, datetime) \
            or not isinstance(master.start.tzinfo, DefinedZone):
        return None
    own = master.start.tzinfo
    cannot = "matches no zone this platform knows"
    if carries is not None:
        try:
            carries(own, master)
            return None
        except ValueError as exc:
            cannot = f"cannot be carried here ({exc})"
    offset = master.start.utcoffset()
    assert offset is not None
    zone = fixed_zone(offset, master.start.year, master.start.year + 30)
    if zone is None:
        raise CannotHold(platform, "VTIMEZONE", f"zone {own.key!r} (defined by the object) {cannot}, "
                         f"and no zone this platform knows has its offset {offset}", item=master.uid)
    return zone, (f"zone {own.key!r} (defined by the object) {cannot}: written in {zone.key}, "
                  f"its first occurrence's offset")


def refuse(why: str) -> Callable[[Event], object]:
    """A ``holds`` for :func:`spell_out` that holds nothing as it is."""
    def holds(_master: Event) -> object:
        raise ValueError(why)
    return holds


def spell_out(platform: str, item: CalendarItem, zone: ZoneInfo | DefinedZone, holds: Callable[[Event], object],
              feature: str = "RRULE") -> tuple[CalendarItem, list[Adaptation]]:
    """``item`` with a master the platform cannot hold (``holds`` raises ValueError saying why)
    rewritten as a weekly series with deleted occurrences (see module docstring), local to
    ``zone``. An occurrence at another time of day (an RDATE) becomes a moved occurrence of
    that day's; two on one day cannot be written so."""
    master = item.master
    if master is None or not (master.rrule or master.rdate):
        return item, []
    try:
        holds(master)
        return item, []
    except ValueError as exc:
        why = str(exc)
    what = "RRULE " + "; ".join(master.rrule) if master.rrule else "RDATE"
    if is_endless(master):
        raise CannotHold(platform, feature, f"{why}; an endless series cannot be spelled out"
                         + _extra_dates(master, zone), item=item.uid)
    # from the earliest of DTSTART and the RDATEs: an extra date may come before the rule's start
    # (an occurrence moved before its series, :func:`without_crossings`)
    earliest = min(as_utc(value, zone) for value in [master.start, *master.rdate])
    found, problems = ical.expand_items([CalendarItem(item.uid, [master.with_changes(exdate=[])])],
                                        Window(earliest - timedelta(days=1), datetime(2200, 1, 1, tzinfo=UTC)),
                                        platform, zone)
    if problems:
        raise CannotHold(platform, feature, f"{why}; {problems[0].message}", item=item.uid)
    excluded = {as_utc(x, zone) for x in master.exdate}
    # by instant: the two 01:30 of a night the clocks go back are one wall clock time, two instances
    instants = {as_utc(o.recurrence_id or o.start, zone): o.recurrence_id or o.start for o in found}
    at = _local(master.start, zone).time()
    starts: dict[datetime, Temporal] = {}
    by_day: dict[date, list[datetime]] = {}
    for value in (v for u, v in instants.items() if u not in excluded):
        wall = _local(value, zone)
        by_day.setdefault(wall.date(), []).append(wall)
        starts[wall] = value
    if any(len(walls) > 1 for walls in by_day.values()):
        raise CannotHold(platform, feature, f"{why}; it has two occurrences on one day", item=item.uid)
    first, last = min(by_day), max(by_day)
    weekdays = sorted({d.weekday() for d in by_day})
    weekly = [first + timedelta(n) for n in range((last - first).days + 1)
              if (first + timedelta(n)).weekday() in weekdays]
    if len(weekly) > MAX_SPELLED:
        raise CannotHold(platform, feature, f"{why}; spelled out it would take {len(weekly)} occurrences "
                                            f"(at most {MAX_SPELLED})", item=item.uid)
    timed = isinstance(master.start, datetime)

    def slot(day: date) -> Temporal:
        return datetime.combine(day, at, zone) if timed else day

    until = (last.strftime("%Y%m%d") if not timed
             else datetime.combine(last, at, zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    rule = f"FREQ=WEEKLY;UNTIL={until};BYDAY={','.join(_DAYS[d] for d in weekdays)}"
    start = slot(first)
    length = _length(master)
    fitted = replace(master, start=start, end=None if master.end is None else _after(start, length),
                     rrule=[rule], rdate=[], exdate=[slot(d) for d in weekly if d not in by_day],
                     tzid=zone.key if timed else None)
    overrides = {_local(o.recurrence_id, zone): o for o in item.overrides if o.recurrence_id is not None}
    components = [fitted]
    moved = 0
    for day, (wall,) in sorted(by_day.items()):
        override = overrides.pop(wall, None)
        if wall.time() == at and override is None:
            continue
        if override is None:  # an occurrence at its own time of day: that day's, moved there
            moved += 1
            value = starts[wall]
            override = replace(master, recurrence_id=value, start=value, tzid=zone.key,
                               end=None if master.end is None else _after(value, length),
                               rrule=[], rdate=[], exdate=[])
        components.append(replace(override, recurrence_id=slot(day)))
    components.extend(overrides.values())  # overrides of no occurrence: the platform will say
    deleted = len(fitted.exdate)
    detail = (f"{what} ({why}) written as {rule} with {deleted} occurrence(s) deleted"
              + (f" and {moved} moved to their own time" if moved else "") + f": the same {len(by_day)} occurrence(s)")
    return CalendarItem(item.uid, components, item.ref), [Adaptation(feature, detail)]


def crosses(start: datetime, before: datetime | None, after: datetime | None, zone: tzinfo) -> str | None:
    """Which neighbour (``"previous"``, ``"next"``) an occurrence of an Exchange series moved to
    ``start`` crosses, or None: Exchange refuses an occurrence moved to or before the day (in the
    series' zone) of the previous occurrence, or to or after the day of the next (``before``,
    ``after``: their starts as they are now, moved or not; a deleted occurrence is no neighbour).
    Microsoft Graph's "Update event" page: HTTP 400, ErrorOccurrenceCrossingBoundary, "Modified
    occurrence is crossing or overlapping adjacent occurrence", the restriction stated by days
    as here (microsoftgraph/microsoft-graph-docs#2275); EWS answers the same ResponseCode. An
    instance lasting past the next one's start (RFC 5545 exact hours across a change of clocks,
    :func:`with_exact_lengths`) is not refused by that statement, so not here. The fakes refuse
    by this rule, and :func:`without_crossings` avoids it."""
    day = start.astimezone(zone).date()
    if before is not None and day <= before.astimezone(zone).date():
        return "previous"
    if after is not None and day >= after.astimezone(zone).date():
        return "next"
    return None


_NEIGHBOURS = timedelta(days=3660)
"""How far either side of its original start an override's neighbours are looked for."""


def without_crossings(platform: str, item: CalendarItem, zone: ZoneInfo | DefinedZone) -> tuple[CalendarItem, list[Adaptation]]:
    """``item`` with every override Exchange would refuse (:func:`crosses`, neighbours as the
    series is written: EXDATEs deleted, other overrides moved) written in the closest faithful
    form Exchange holds: that occurrence deleted and the moved instance an extra date of the
    series, spelled out (:func:`spell_out`) as the occurrence of the day it moved to, with the
    override's own content. Same instances at the same times; the moved one's RECURRENCE-ID is
    that day's (what the copy reads back), which a copy cannot avoid: Exchange has no other
    place for it inside the series, and one copy per item is the model. An endless series cannot
    be spelled out, so it is refused (:class:`CannotHold`) naming the occurrence, never written
    with the instance elsewhere or missing."""
    master = item.master
    moved = {as_utc(o.recurrence_id, zone): o for o in item.overrides if o.recurrence_id is not None}
    if master is None or not master.rrule or not moved:
        return item, []
    found, problems = ical.expand_items([CalendarItem(item.uid, [master])],
                                        Window(min(moved) - _NEIGHBOURS, max(moved) + _NEIGHBOURS), platform, zone)
    if problems:
        return item, []
    originals = sorted({as_utc(o.recurrence_id or o.start, zone) for o in found} | set(moved))

    def start_of(original: datetime) -> datetime:
        override = moved.get(original)
        return original if override is None else as_utc(override.start, zone)

    crossing: list[tuple[datetime, str]] = []
    for at, override in sorted(moved.items()):
        n = originals.index(at)
        side = crosses(start_of(at), start_of(originals[n - 1]) if n else None,
                       start_of(originals[n + 1]) if n + 1 < len(originals) else None, zone)
        if side is not None:
            crossing.append((at, f"the occurrence of {_local(at, zone):%Y-%m-%d %H:%M} "
                                 f"moved to {_local(override.start, zone):%Y-%m-%d %H:%M} reaches the day of the "
                                 f"{side} occurrence, which Exchange refuses (ErrorOccurrenceCrossingBoundary)"))
    if not crossing:
        return item, []
    why = "; ".join(reason for _at, reason in crossing)
    if is_endless(master):
        raise CannotHold(platform, "RECURRENCE-ID", f"{why}; an endless series cannot be spelled out with it "
                         "as an occurrence of its own day", item=item.uid)
    out = {at for at, _reason in crossing}
    if any(as_utc(moved[at].start, zone) in originals for at in out):
        raise CannotHold(platform, "RECURRENCE-ID", f"{why}; it moved to the very time of another occurrence, "
                         "and a series has one occurrence at a time", item=item.uid)
    # the new start as an extra date, in the series' zone like its other dates
    apart = [replace(o, recurrence_id=o.start.astimezone(zone) if isinstance(o.start, datetime) else o.start)
             for at, o in moved.items() if at in out]
    rewritten = master.with_changes(exdate=[*master.exdate, *(moved[at].recurrence_id for at in sorted(out))],
                                    rdate=[*master.rdate, *(o.recurrence_id for o in apart if o.recurrence_id is not None)])
    kept = [o for o in item.components if o.recurrence_id is not None and as_utc(o.recurrence_id, zone) not in out]
    return spell_out(platform, CalendarItem(item.uid, [rewritten, *kept, *apart], item.ref), zone,
                     refuse(why), "RECURRENCE-ID")


def _one_rule_series(item: CalendarItem, zone: tzinfo) -> Event | None:
    """The master of ``item`` if it is a series of one rule starting at a time in ``zone`` (the
    zone it is written in): what :func:`from_a_plain_start` and :func:`with_exact_lengths` look at."""
    master = item.master
    if master is None or len(master.rrule) != 1 or not isinstance(master.start, datetime) \
            or master.start.tzinfo is not zone:
        return None
    return master


_STEP = {"DAILY": "days", "WEEKLY": "weeks", "MONTHLY": "months", "YEARLY": "years"}
_EARLIER = 4
"""How many of the rule's periods back :func:`from_a_plain_start` looks for a plain occurrence."""


def _unplain(start: datetime, length: timedelta, zone: tzinfo, local_ends: bool) -> str | None:
    """Why an instance starting at ``start`` (wall time in ``zone``) and lasting ``length`` of
    elapsed time cannot start an Exchange series as it is (``local_ends``: where its end is
    written as a wall time); None when it can."""
    wall = start.replace(tzinfo=None)
    shown = as_utc(start).astimezone(zone).replace(tzinfo=None)
    if shown != wall:
        return (f"{wall:%Y-%m-%d %H:%M} is a time the clocks skip in {getattr(zone, 'key', zone)}: here a series' "
                f"start is an instant, which shows {shown:%H:%M}, and the series would recur at that time")
    ends = (as_utc(start) + length).astimezone(zone).replace(tzinfo=None)
    if local_ends and ends - wall != length:
        return (f"its first instance ({wall:%Y-%m-%d %H:%M}, {_hours(length)}) spans a change of clocks in "
                f"{getattr(zone, 'key', zone)}: it ends at {ends:%H:%M} on the clock, which here would give every "
                f"instance {_hours(ends - wall)}")
    return None


def _hours(length: timedelta) -> str:
    minutes = int(length.total_seconds()) // 60
    return f"{minutes // 60}h{minutes % 60:02d}"


def from_a_plain_start(platform: str, item: CalendarItem, zone: ZoneInfo | DefinedZone,
                       local_ends: bool) -> tuple[CalendarItem, list[Adaptation]]:
    """``item`` with a series that cannot start where it does on Exchange (:func:`_unplain`)
    rewritten to start at an earlier occurrence of its rule that can, every occurrence before the
    original start deleted (EXDATE; COUNT raised by as many). Same occurrences, endless series
    too; a rule with no such earlier start is refused.

    Why: RFC 5545 reads a skipped DTSTART with the offset before the gap (3.3.5) and gives every
    instance the exact length from DTSTART to DTEND (3.8.5.3). Exchange keeps a series' start as
    an instant (EWS writes it in UTC, Graph answers it so), whose wall time is the one after the
    gap: the series recurred at that later time, an hour late. And where its ends are local
    (``local_ends``: Graph's ``dateTimeTimeZone``; EWS writes UTC), the end of a first instance
    spanning a change of clocks is a wall time (the second of two equal ones reads as the first)
    whose distance from the start on the clock became every instance's length, an hour off. An
    occurrence in the gap Exchange reads as RFC 5545 does; one spanning a change gets its own
    end (:func:`with_exact_lengths`)."""
    master = _one_rule_series(item, zone)
    if master is None:
        return item, []
    start = master.start
    assert isinstance(start, datetime)
    length = _length(master)
    why = _unplain(start, length, zone, local_ends)
    if why is None:
        return item, []
    wall = start.replace(tzinfo=None)
    parts = dict(part.split("=", 1) for part in master.rrule[0].upper().removeprefix("RRULE:").split(";") if "=" in part)
    count = int(parts.pop("COUNT", "0")) or None
    unbounded = ";".join(f"{key}={value}" for key, value in parts.items())
    step = _STEP.get(parts.get("FREQ", ""), "days")
    later = list(rrulestr(master.rrule[0].removeprefix("RRULE:"), dtstart=start).xafter(start, count=40, inc=True))
    for periods in range(1, _EARLIER + 1):
        earlier = (wall - relativedelta(**{step: periods * int(parts.get("INTERVAL", "1"))})).replace(tzinfo=zone)
        if _unplain(earlier, length, zone, local_ends) is not None:
            continue
        before = [o for o in rrulestr(unbounded, dtstart=earlier).between(earlier, start, inc=True) if o < start]
        written = master.rrule[0] if count is None else f"{unbounded};COUNT={count + len(before)}"
        if not before or list(rrulestr(written, dtstart=earlier).xafter(start, count=40, inc=True)) != later:
            continue  # that start would change the rule's occurrences
        fitted = master.with_changes(start=earlier, end=None if master.end is None else _after(earlier, length),
                                     rrule=[written], exdate=[*master.exdate, *before])
        return (CalendarItem(item.uid, [fitted, *item.overrides], item.ref),
                [Adaptation("DTSTART", f"{why}; written from {earlier:%Y-%m-%d %H:%M} with the {len(before)} "
                                       f"occurrence(s) before {wall:%Y-%m-%d} deleted: the same occurrences")])
    raise CannotHold(platform, "DTSTART", f"{why}, and the rule has no plain occurrence in the {_EARLIER} "
                     "periods before it to start the series from", item=item.uid)


_AHEAD = timedelta(days=3653)
"""How far an endless series is looked at for instances spanning a change of clocks."""


def with_exact_lengths(platform: str, item: CalendarItem, zone: ZoneInfo | DefinedZone) -> tuple[CalendarItem, list[Adaptation]]:
    """``item`` with every instance of its series that spans a change of clocks (in ``zone``,
    the zone it is written in) written as an override with its own end. Why: RFC 5545 gives each
    instance the exact length from DTSTART to DTEND (3.8.5.3), or a DURATION in hours exact
    (3.3.6: ``PT24H`` is 24 hours, not a day); Exchange ends each occurrence that length later on
    the clock (the recurrence's end is a local time), an hour more or less across a change. An
    endless series cannot have its every such instance overridden: it is written as it is, and
    said."""
    master = _one_rule_series(item, zone)
    if master is None:
        return item, []
    start = master.start
    assert isinstance(start, datetime)
    length = _length(master)
    endless = is_endless(master)
    begins = as_utc(start)
    found, problems = ical.expand_items([CalendarItem(item.uid, [master.with_changes(exdate=[])])],
                                        Window(begins, begins + _AHEAD if endless else datetime(2200, 1, 1, tzinfo=UTC)),
                                        platform, zone)
    if problems:
        return item, []
    taken = {as_utc(x, zone) for x in master.exdate} | {as_utc(o.recurrence_id, zone) for o in item.overrides
                                                         if o.recurrence_id is not None}
    spanning = []
    for occurrence in found:
        original = occurrence.recurrence_id or occurrence.start
        if not isinstance(original, datetime) or as_utc(original, zone) in taken:
            continue
        on_the_clock = (_local(original, zone) + length).replace(tzinfo=zone)
        if as_utc(on_the_clock) != as_utc(original, zone) + length:
            spanning.append(original)
    if not spanning:
        return item, []
    if endless:
        return item, [Adaptation("DTEND", f"instances spanning a change of clocks in {zone.key} (the first on "
                                          f"{_local(spanning[0], zone):%Y-%m-%d %H:%M}) end {_hours(length)} later "
                                          "on the clock here, not after exactly that time: an endless series cannot "
                                          "have them all overridden")]
    moved = [replace(master, recurrence_id=o, start=o, end=_after(o, length), rrule=[], rdate=[], exdate=[])
             for o in spanning]
    return (CalendarItem(item.uid, [*item.components, *moved], item.ref),
            [Adaptation("DTEND", f"{len(moved)} instance(s) spanning a change of clocks in {zone.key} written with "
                                 f"their own end (here an occurrence ends {_hours(length)} later on the clock): the "
                                 "same occurrences")])


def _extra_dates(master: Event, zone: ZoneInfo | DefinedZone, shown: int = 5) -> str:
    """Which extra dates (RDATEs) of a series that is not written go without a copy, for the
    notice: the person reading the report must know which times are missing beside the rule's
    (local times in ``zone``; the first ``shown`` of them)."""
    if not master.rdate:
        return ""
    walls = sorted(_local(value, zone) for value in master.rdate)
    named = ", ".join(w.strftime("%Y-%m-%d %H:%M" if isinstance(master.start, datetime) else "%Y-%m-%d")
                      for w in walls[:shown])
    more = f" and {len(walls) - shown} more" if len(walls) > shown else ""
    return (f"; with it, its {len(walls)} extra date(s) no rule gives go without a copy: "
            f"{named}{more} ({zone.key})")


def _length(master: Event) -> timedelta:
    """How long each instance of ``master``'s series lasts: the elapsed time from its DTSTART to
    its end (RFC 5545 3.8.5.3); a difference of two zoned times in Python is wall-clock time,
    an hour off for a master spanning a change of clocks (every spelled-out instance too)."""
    start, end = master.start, master.effective_end()
    if isinstance(start, datetime) and isinstance(end, datetime) and start.tzinfo and end.tzinfo:
        return as_utc(end) - as_utc(start)
    return end - start  # type: ignore[operator]


def _after(start: Temporal, length: timedelta) -> Temporal:
    """The end of an instance starting at ``start`` lasting ``length`` of elapsed time."""
    if isinstance(start, datetime) and start.tzinfo is not None:
        return (start.astimezone(UTC) + length).astimezone(start.tzinfo)
    return start + length


def _local(value: Temporal, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(zone).replace(tzinfo=None) if value.tzinfo else value
    return datetime.combine(value, datetime.min.time())
