"""Properties of the free/busy core: merging never loses or invents busy time, and the
availability view is the highest status per interval."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from calmesh.core.freebusy import (
    availability_view,
    busy_from_events,
    invert,
    merge_busy,
    outside_working_hours,
    status_in,
)
from calmesh.model import (
    Attendee,
    BusyPeriod,
    BusyType,
    Classification,
    Event,
    EventStatus,
    PartStat,
    Window,
    WorkingHours,
)

BASE = datetime(2026, 11, 23, tzinfo=UTC)


def minute(n: int) -> datetime:
    return BASE + timedelta(minutes=n)


@st.composite
def periods(draw: st.DrawFn) -> BusyPeriod:
    start = draw(st.integers(0, 600))
    length = draw(st.integers(1, 180))
    kind = draw(st.sampled_from(list(BusyType)))
    summary = draw(st.sampled_from([None, "a", "b"]))
    return BusyPeriod(minute(start), minute(start + length), kind, draw(st.sampled_from([None, "zoho", "ews"])),
                      summary)


period_lists = st.lists(periods(), max_size=25)


def shape(merged: list[BusyPeriod]) -> list[tuple[datetime, datetime, BusyType]]:
    return [(p.start, p.end, p.type) for p in merged]


def type_at(ps: list[BusyPeriod], instant: datetime) -> BusyType | None:
    """The highest non-FREE type covering ``instant`` (half-open periods), None when uncovered."""
    types = [p.type for p in ps if p.start <= instant < p.end and p.type is not BusyType.FREE]
    return max(types) if types else None


def probes(ps: list[BusyPeriod]) -> list[datetime]:
    """One instant inside every elementary segment between boundaries, plus the boundaries."""
    cuts = sorted({p.start for p in ps} | {p.end for p in ps})
    mids = [a + (b - a) / 2 for a, b in zip(cuts, cuts[1:], strict=False)]
    return cuts + mids + [BASE - timedelta(minutes=1)]


@given(period_lists)
def test_merge_is_idempotent(ps: list[BusyPeriod]) -> None:
    once = merge_busy(ps)
    assert shape(merge_busy(once)) == shape(once)


@given(period_lists, st.randoms(use_true_random=False))
def test_merge_is_order_independent(ps: list[BusyPeriod], rnd: random.Random) -> None:
    shuffled = list(ps)
    rnd.shuffle(shuffled)
    assert shape(merge_busy(shuffled)) == shape(merge_busy(ps))


@given(period_lists)
def test_merge_never_loses_or_invents_busy_time(ps: list[BusyPeriod]) -> None:
    merged = merge_busy(ps)
    for instant in probes(ps):
        wanted = type_at(ps, instant)
        got = type_at(merged, instant)
        if wanted is None:
            assert got is None, f"{instant} is covered by the output but by no busy input"
        else:
            assert got is not None and got >= wanted, f"{instant}: {wanted!r} became {got!r}"
            assert got == wanted  # and never escalated either: the highest type wins, nothing more


@given(period_lists)
def test_merge_output_is_sorted_disjoint_and_never_free(ps: list[BusyPeriod]) -> None:
    merged = merge_busy(ps)
    assert all(p.type is not BusyType.FREE for p in merged)
    for a, b in zip(merged, merged[1:], strict=False):
        assert a.end <= b.start
        if a.end == b.start and a.summary == b.summary:
            assert a.type != b.type, "adjacent equal periods are joined"


@given(period_lists, st.sampled_from([15, 30, 60, 45]))
def test_availability_view_is_the_highest_status_per_interval(ps: list[BusyPeriod], step: int) -> None:
    window = Window(minute(0), minute(8 * 60 + 10))
    interval = timedelta(minutes=step)
    view = availability_view(ps, window, interval)
    assert len(view) == math.ceil(window.duration / interval)
    busy = [p for p in ps if p.type is not BusyType.FREE]
    for i, digit in enumerate(view):
        start = window.start + i * interval
        end = min(start + interval, window.end)
        assert int(digit) == int(status_in(busy, start, end)), f"interval {i}"


def test_availability_view_digits_follow_exchange() -> None:
    window = Window(minute(0), minute(5 * 30))
    view = availability_view([
        BusyPeriod(minute(30), minute(60), BusyType.BUSY_TENTATIVE),
        BusyPeriod(minute(60), minute(90), BusyType.BUSY),
        BusyPeriod(minute(90), minute(100), BusyType.BUSY_UNAVAILABLE),
        BusyPeriod(minute(120), minute(150), BusyType.UNKNOWN),
    ], window, timedelta(minutes=30))
    assert view == "01234"


def test_busy_from_events_maps_statuses_for_the_owner() -> None:
    window = Window(minute(0), minute(24 * 60))
    me = "alice@example.com"

    def ev(uid: str, hour: int, **fields: object) -> Event:
        return Event(uid=uid, start=minute(hour * 60), end=minute(hour * 60 + 60), summary=uid, **fields)  # type: ignore[arg-type]

    events = [
        ev("busy", 8),
        ev("tentative", 9, status=EventStatus.TENTATIVE),
        ev("free", 10, transparent=True),
        ev("cancelled", 11, status=EventStatus.CANCELLED),
        ev("declined", 12, attendees=[Attendee(me, partstat=PartStat.DECLINED)]),
        ev("unanswered", 13, attendees=[Attendee(me)]),
        ev("oof", 14, busy_type=BusyType.BUSY_UNAVAILABLE),
        ev("private", 15, classification=Classification.PRIVATE),
    ]
    out = busy_from_events(events, window, owner=me, with_details=True)
    assert [(p.summary, p.type) for p in out] == [
        ("busy", BusyType.BUSY), ("tentative", BusyType.BUSY_TENTATIVE),
        ("unanswered", BusyType.BUSY_TENTATIVE), ("oof", BusyType.BUSY_UNAVAILABLE), (None, BusyType.BUSY),
    ]


def test_working_hours_follow_dst() -> None:
    paris = ZoneInfo("Europe/Paris")
    hours = WorkingHours.simple("Europe/Paris", time(9), time(17), days=range(7))
    # Saturday 24 (CEST) and Sunday 25 October 2026 (CET)
    window = Window(datetime(2026, 10, 24, tzinfo=paris), datetime(2026, 10, 26, tzinfo=paris))
    off = outside_working_hours(hours, window)
    free = invert(off, window, BusyType.FREE)
    assert [(p.start.astimezone(UTC).hour, p.end.astimezone(UTC).hour) for p in free] == [(7, 15), (8, 16)]
