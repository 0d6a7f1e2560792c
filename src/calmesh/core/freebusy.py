"""Free/busy arithmetic: merging busy time, working hours, availability-view strings. Pure.

Everything here works on :class:`~calmesh.model.BusyPeriod` lists in UTC. Merging is a sweep over
period boundaries keeping a count per busy type, so it is O(n log n) and, by construction,
idempotent, order-independent and loss-free (every instant keeps the highest type covering it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from calmesh.model import (
    BusyPeriod,
    BusyType,
    Event,
    Window,
    WorkingHours,
    as_utc,
)

_TYPES = tuple(BusyType)
_HIGHEST_FIRST = tuple(range(len(_TYPES) - 1, -1, -1))


def merge_busy(periods: Iterable[BusyPeriod]) -> list[BusyPeriod]:
    """Merge overlapping and adjacent periods; where types overlap the highest wins.

    FREE periods carry no information once merged and are dropped. The winning period's source
    and details are kept for each merged stretch (the first one seen at its start).
    """
    points: list[tuple[datetime, int, int, BusyPeriod]] = []
    for p in periods:
        if p.type is BusyType.FREE:
            continue
        # ends sort before starts at the same instant so that adjacent periods do not double-count
        points.append((p.start, 1, 1, p))
        points.append((p.end, 0, -1, p))
    if not points:
        return []
    points.sort(key=lambda t: (t[0], t[1]))
    counts = [0] * len(_TYPES)
    active: dict[int, list[BusyPeriod]] = {t: [] for t in range(len(_TYPES))}
    out: list[BusyPeriod] = []
    seg_start: datetime | None = None
    seg_top: BusyPeriod | None = None
    i = 0
    while i < len(points):
        instant = points[i][0]
        while i < len(points) and points[i][0] == instant:
            _, _, delta, p = points[i]
            counts[p.type] += delta
            if delta > 0:
                active[p.type].append(p)
            else:
                active[p.type].remove(p)
            i += 1
        top = next((t for t in _HIGHEST_FIRST if counts[t] > 0), None)
        top_period = active[top][0] if top is not None else None
        if seg_top is not None and (top_period is None or top_period.type != seg_top.type) and seg_start is not None:
            _append(out, seg_start, instant, seg_top)
            seg_start, seg_top = None, None
        if top_period is not None and seg_top is None:
            seg_start, seg_top = instant, top_period
    return out


def _append(out: list[BusyPeriod], start: datetime, end: datetime, like: BusyPeriod) -> None:
    if out and out[-1].end == start and out[-1].type == like.type and out[-1].summary == like.summary:
        prev = out.pop()
        start = prev.start
        like = prev
    if like.start == start and like.end == end:
        out.append(like)  # a period that stands alone (most): the same immutable period
    else:
        out.append(BusyPeriod(start, end, like.type, like.source, like.summary, like.location))


def clip(periods: Iterable[BusyPeriod], window: Window) -> list[BusyPeriod]:
    out = []
    for p in periods:
        if p.start >= window.start and p.end <= window.end:
            out.append(p)  # inside already (most periods): the same immutable period
            continue
        span = window.clip(p.start, p.end)
        if span:
            out.append(BusyPeriod(span[0], span[1], p.type, p.source, p.summary, p.location))
    return out


def busy_from_events(
    events: Iterable[Event],
    window: Window,
    *,
    owner: str | None = None,
    source: str | None = None,
    default_tz: tzinfo = UTC,
    with_details: bool = False,
) -> list[BusyPeriod]:
    """The busy periods events put on their owner's time: transparent, cancelled and declined
    events do not block; private events never carry details even when details are granted."""
    out = []
    for event in events:
        kind = event.effective_busy_type(owner)
        if kind is BusyType.FREE:
            continue
        start, end = event.span_utc(default_tz)
        if end <= start:
            continue
        span = window.clip(start, end)
        if span is None:
            continue
        show = with_details and not event.private
        out.append(BusyPeriod(span[0], span[1], kind, source,
                              event.summary if show else None, event.location if show else None))
    return out


def outside_working_hours(hours: WorkingHours, window: Window) -> list[BusyPeriod]:
    """BUSY-UNAVAILABLE periods covering the window outside the working hours.

    Computed day by day in the owner's zone, so a DST change moves the UTC hours as it should.
    """
    zone = hours.zone
    local_start = window.start.astimezone(zone).date() - timedelta(days=1)
    local_end = window.end.astimezone(zone).date() + timedelta(days=1)
    working: list[BusyPeriod] = []
    day = local_start
    while day <= local_end:
        for period in hours.periods:
            if day.weekday() in period.days:
                s = datetime.combine(day, period.start, tzinfo=zone).astimezone(UTC)
                e = datetime.combine(day, period.end, tzinfo=zone).astimezone(UTC)
                if e > s:
                    working.append(BusyPeriod(s, e, BusyType.FREE))
        day += timedelta(days=1)
    return invert(working, window, BusyType.BUSY_UNAVAILABLE, source="working-hours")


def invert(
    periods: Sequence[BusyPeriod], window: Window, kind: BusyType, source: str | None = None
) -> list[BusyPeriod]:
    """The parts of ``window`` not covered by any of ``periods``, typed ``kind``."""
    spans = sorted((p.start, p.end) for p in periods)
    out, cursor = [], window.start
    for s, e in spans:
        if s > cursor:
            end = min(s, window.end)
            if end > cursor:
                out.append(BusyPeriod(cursor, end, kind, source))
        cursor = max(cursor, e)
        if cursor >= window.end:
            break
    if cursor < window.end:
        out.append(BusyPeriod(cursor, window.end, kind, source))
    return out


def unknown(window: Window, source: str | None = None) -> list[BusyPeriod]:
    """The whole window as UNKNOWN: what a platform that did not answer contributes."""
    return [BusyPeriod(window.start, window.end, BusyType.UNKNOWN, source)]


def status_in(periods: Sequence[BusyPeriod], start: datetime, end: datetime) -> BusyType:
    """The highest busy type touching ``[start, end)`` (FREE when nothing does)."""
    best = BusyType.FREE
    for p in periods:
        if p.start < end and p.end > start and p.type > best:
            best = p.type
    return best


def availability_view(periods: Sequence[BusyPeriod], window: Window, interval: timedelta) -> str:
    """Exchange's MergedFreeBusy / Graph's availabilityView: one digit per interval, the highest
    status inside it (0 free, 1 tentative, 2 busy, 3 out of office, 4 no data)."""
    if interval <= timedelta(0):
        raise ValueError("interval must be positive")
    # each period raises the intervals it touches: O(periods + intervals), no merge needed
    count = -(-(window.end - window.start) // interval)
    digits = bytearray(b"0" * count)  # the digits' characters: no conversion per interval at the end
    for p in periods:
        if p.end <= window.start or p.start >= window.end:
            continue
        first = max(0, (p.start - window.start) // interval)
        last = min(count - 1, -(-(p.end - window.start) // interval) - 1)
        digit = ord("0") + p.type
        for i in range(first, last + 1):
            if digit > digits[i]:
                digits[i] = digit
    return digits.decode("ascii")


def to_local(value: datetime, zone: tzinfo) -> datetime:
    return as_utc(value).astimezone(zone)
