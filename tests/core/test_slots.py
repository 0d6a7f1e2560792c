"""Meeting-time search (calmesh.core.slots): pure, no servers needed.

Time-zone cases use Paris, New York and Tokyo around the 2026 DST changes: Europe leaves summer
time on 2026-10-25, the US on 2026-11-01, Japan has none, so the common hours move twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calmesh.core.slots import (
    Availability,
    SlotAttendee,
    SlotQuery,
    Suggestion,
    find_slots,
)
from calmesh.model import BusyPeriod, BusyType, PersonFreeBusy, Window, WorkingHours

MON = datetime(2026, 10, 19, tzinfo=UTC)  # Monday, both sides of the Atlantic on summer time
NOW = MON - timedelta(days=3)
HOUR = timedelta(hours=1)
WEEKS = Window(MON, MON + timedelta(weeks=3))


def utc(day: int, hour: float) -> datetime:
    return MON + timedelta(days=day, hours=hour)


def person(email: str, busy: list[tuple[datetime, datetime, BusyType]] = (),  # type: ignore[assignment]
           hours: WorkingHours | None = None, window: Window = WEEKS) -> PersonFreeBusy:
    return PersonFreeBusy(email, window, [BusyPeriod(s, e, t) for s, e, t in busy], working_hours=hours)


def query(*attendees: SlotAttendee, **kw: object) -> SlotQuery:
    options: dict[str, object] = {"duration": HOUR, "window": Window(utc(0, 8), utc(0, 18)), "now": NOW,
                                  "max_candidates": 100}
    options.update(kw)
    return SlotQuery(tuple(attendees), **options)  # type: ignore[arg-type]


def starts(suggestions: list[Suggestion]) -> list[datetime]:
    return [s.start for s in suggestions]


def status(s: Suggestion, email: str) -> Availability:
    return next(a.availability for a in s.attendees if a.email == email)


# ---- basics ----------------------------------------------------------------------------------

def test_required_busy_time_is_never_suggested() -> None:
    ann = person("ann@x.org", [(utc(0, 10), utc(0, 11), BusyType.BUSY)])
    result = find_slots(query(SlotAttendee(ann)))
    assert result.empty_reason is None
    got = starts(result.suggestions)
    assert utc(0, 9.5) not in got and utc(0, 10) not in got and utc(0, 10.5) not in got
    assert got[:2] == [utc(0, 8), utc(0, 8.5)] and utc(0, 11) in got


def test_ranking_all_required_then_optional_then_tentative_then_earliest() -> None:
    ann = person("ann@x.org", [(utc(0, 8), utc(0, 9), BusyType.BUSY_TENTATIVE)])
    bob = person("bob@x.org", [(utc(0, 9), utc(0, 10), BusyType.BUSY)])
    cid = person("cid@x.org", [(utc(0, 9), utc(0, 11), BusyType.BUSY_TENTATIVE)])
    eve = person("eve@x.org", [(utc(0, 11), utc(0, 12), BusyType.BUSY), (utc(0, 12), utc(0, 13), BusyType.BUSY_TENTATIVE)])
    result = find_slots(query(SlotAttendee(ann), *(SlotAttendee(p, required=False) for p in (bob, cid, eve)),
                              window=Window(utc(0, 8), utc(0, 13)), granularity=HOUR))
    # 11:00 two optional free, none tentative; 10:00 and 12:00 two optional free, one tentative
    # (earliest first); 09:00 one optional free; 08:00 last: the required attendee is tentative
    assert starts(result.suggestions) == [utc(0, 11), utc(0, 10), utc(0, 12), utc(0, 9), utc(0, 8)]
    first = result.suggestions[0]
    assert [a.availability for a in first.attendees] == [Availability.FREE, Availability.FREE,
                                                         Availability.FREE, Availability.BUSY]
    assert first.confidence == 75.0
    assert result.suggestions[-1].required_not_free == 1


def test_unknown_is_shown_as_unknown_never_free() -> None:
    failed = person("dan@x.org", [(utc(0, 8), utc(0, 18), BusyType.UNKNOWN)])
    free = person("eve@x.org")
    [first, *_] = find_slots(query(SlotAttendee(free), SlotAttendee(failed))).suggestions
    assert status(first, "dan@x.org") is Availability.UNKNOWN
    assert first.required_not_free == 1 and first.confidence == pytest.approx((100 + 49) / 2)


def test_known_busy_time_is_not_hidden_by_a_failed_platform() -> None:
    # Exchange answered (busy 10-11), Zoho failed (unknown all day): 10:00 is busy, not unknown
    ann = person("ann@x.org", [(utc(0, 10), utc(0, 11), BusyType.BUSY), (utc(0, 8), utc(0, 18), BusyType.UNKNOWN)])
    result = find_slots(query(SlotAttendee(ann), granularity=HOUR))
    assert utc(0, 10) not in starts(result.suggestions)
    assert {status(s, "ann@x.org") for s in result.suggestions} == {Availability.UNKNOWN}
    optional = find_slots(query(SlotAttendee(person("bob@x.org")), SlotAttendee(ann, required=False), granularity=HOUR))
    assert {s.start: status(s, "ann@x.org") for s in optional.suggestions}[utc(0, 10)] is Availability.BUSY


def test_time_not_covered_by_the_answer_is_unknown() -> None:
    partial = person("fay@x.org", window=Window(utc(0, 8), utc(0, 12)))
    result = find_slots(query(SlotAttendee(partial), granularity=HOUR))
    by_start = {s.start: status(s, "fay@x.org") for s in result.suggestions}
    assert by_start[utc(0, 11)] is Availability.FREE
    assert by_start[utc(0, 12)] is Availability.UNKNOWN
    # known-free slots rank before unknown ones
    assert [status(s, "fay@x.org") for s in result.suggestions[:4]] == [Availability.FREE] * 4


def test_out_of_office_excludes_a_required_attendee_and_shows_for_optional() -> None:
    away = person("gus@x.org", [(utc(0, 8), utc(0, 18), BusyType.BUSY_UNAVAILABLE)])
    here = person("hal@x.org")
    assert find_slots(query(SlotAttendee(away), SlotAttendee(here))).suggestions == []
    result = find_slots(query(SlotAttendee(here), SlotAttendee(away, required=False)))
    assert status(result.suggestions[0], "gus@x.org") is Availability.OUT_OF_OFFICE


def test_buffers_pad_events_but_not_working_hours() -> None:
    hours = WorkingHours.simple("UTC", time(9), time(17))
    ann = person("ann@x.org", [(utc(0, 12), utc(0, 13), BusyType.BUSY)], hours)
    result = find_slots(query(SlotAttendee(ann), buffer_before=timedelta(minutes=10),
                              buffer_after=timedelta(minutes=10)))
    got = starts(result.suggestions)
    assert got[0] == utc(0, 9)  # the buffer before 09:00 is outside hours: not a reason to refuse
    assert utc(0, 11) not in got and utc(0, 13) not in got  # 10 minutes of air around the meeting
    assert utc(0, 10.5) in got and utc(0, 13.5) in got
    assert max(got) == utc(0, 16)


def test_minimum_notice_and_granularity() -> None:
    now = utc(0, 9) + timedelta(minutes=7)
    result = find_slots(query(SlotAttendee(person("ann@x.org")), now=now, minimum_notice=HOUR,
                              granularity=timedelta(minutes=15)))
    assert starts(result.suggestions)[0] == utc(0, 10.25)
    too_late = find_slots(query(SlotAttendee(person("ann@x.org")), now=utc(0, 17.5)))
    assert too_late.suggestions == [] and "minimum notice" in (too_late.empty_reason or "")


def test_organizer_working_hours_limit_candidates() -> None:
    tokyo = WorkingHours.simple("Asia/Tokyo", time(9), time(18))  # 00:00Z-09:00Z
    result = find_slots(query(SlotAttendee(person("ann@x.org")), organizer_hours=tokyo,
                              window=Window(utc(0, 0), utc(1, 0))))
    assert min(starts(result.suggestions)) == utc(0, 0) and max(starts(result.suggestions)) == utc(0, 8)
    none = find_slots(query(SlotAttendee(person("ann@x.org")), organizer_hours=tokyo,
                            window=Window(utc(0, 10), utc(0, 14))))
    assert none.suggestions == [] and "organizer" in (none.empty_reason or "")


def test_max_candidates() -> None:
    result = find_slots(query(SlotAttendee(person("ann@x.org")), max_candidates=3))
    assert starts(result.suggestions) == [utc(0, 8), utc(0, 8.5), utc(0, 9)]


@pytest.mark.parametrize(("change", "message"), [
    ({"duration": timedelta(0)}, "duration"),
    ({"granularity": timedelta(0)}, "granularity"),
    ({"buffer_after": -HOUR}, "buffer_after"),
    ({"minimum_notice": -HOUR}, "minimum_notice"),
    ({"max_candidates": 0}, "max_candidates"),
    ({"now": datetime(2026, 10, 19)}, "timezone-aware"),
])
def test_bad_queries_are_refused_clearly(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        query(SlotAttendee(person("ann@x.org")), **change)


def test_attendees_are_needed_and_unique() -> None:
    with pytest.raises(ValueError, match="at least one"):
        query()
    with pytest.raises(ValueError, match="twice"):
        query(SlotAttendee(person("ann@x.org")), SlotAttendee(person("ann@x.org"), required=False))


# ---- Paris, New York, Tokyo across the DST changes ---------------------------------------------

PARIS = WorkingHours.simple("Europe/Paris", time(9), time(18))
NEW_YORK = WorkingHours.simple("America/New_York", time(9), time(18))
TOKYO_LATE = WorkingHours.simple("Asia/Tokyo", time(7), time(23))  # 22:00Z-14:00Z, no DST


def _day_slots(day: int, *attendees: SlotAttendee) -> list[Suggestion]:
    window = Window(utc(day, 0), utc(day + 1, 0))
    return find_slots(query(*attendees, window=window)).suggestions


@pytest.mark.parametrize(("day", "first", "last"), [
    (3, 13, 15),    # Thu 22 Oct: Paris UTC+2, NY UTC-4 -> common 13:00Z-16:00Z
    (8, 13, 16),    # Tue 27 Oct: Paris UTC+1, NY still UTC-4 -> 13:00Z-17:00Z
    (15, 14, 16),   # Tue 3 Nov: Paris UTC+1, NY UTC-5 -> 14:00Z-17:00Z
])
def test_paris_new_york_common_hours_follow_both_dst_changes(day: int, first: int, last: int) -> None:
    slots = _day_slots(day, SlotAttendee(person("p@x.org", hours=PARIS)),
                       SlotAttendee(person("n@x.org", hours=NEW_YORK)))
    got = starts(slots)
    assert min(got) == utc(day, first) and max(got) == utc(day, last)
    assert all(s.confidence == 100.0 for s in slots)


def test_tokyo_optional_attendee_loses_the_overlap_when_new_york_changes() -> None:
    attendees = (SlotAttendee(person("p@x.org", hours=PARIS)), SlotAttendee(person("n@x.org", hours=NEW_YORK)),
                 SlotAttendee(person("t@x.org", hours=TOKYO_LATE), required=False))
    before = _day_slots(11, *attendees)  # Fri 30 Oct: NY 09:00 = 13:00Z, Tokyo 23:00 = 14:00Z
    assert before[0].start == utc(11, 13) and status(before[0], "t@x.org") is Availability.FREE
    after = _day_slots(14, *attendees)  # Mon 2 Nov: NY 09:00 = 14:00Z, Tokyo has gone home
    assert after[0].start == utc(14, 14)
    tokyo = next(a for a in after[0].attendees if a.email == "t@x.org")
    assert tokyo.outside_working_hours and tokyo.availability is Availability.OUT_OF_OFFICE
    assert after[0].confidence == pytest.approx(200 / 3, abs=0.01)


def test_weekend_is_outside_working_hours() -> None:
    assert _day_slots(5, SlotAttendee(person("p@x.org", hours=PARIS))) == []  # Saturday


# ---- properties ------------------------------------------------------------------------------

KINDS = [BusyType.BUSY_TENTATIVE, BusyType.BUSY, BusyType.BUSY_UNAVAILABLE, BusyType.UNKNOWN]


@st.composite
def people(draw: st.DrawFn) -> list[SlotAttendee]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        busy = []
        for _ in range(draw(st.integers(0, 6))):
            start = draw(st.integers(0, 47)) * 15
            length = draw(st.integers(1, 12)) * 15
            busy.append((utc(0, 6) + timedelta(minutes=start), utc(0, 6) + timedelta(minutes=start + length),
                         draw(st.sampled_from(KINDS))))
        hours = draw(st.sampled_from([None, PARIS, NEW_YORK, WorkingHours.simple("UTC", time(7), time(19))]))
        out.append(SlotAttendee(person(f"p{i}@x.org", busy, hours), required=draw(st.booleans())))
    return out


@st.composite
def queries(draw: st.DrawFn) -> SlotQuery:
    return SlotQuery(
        tuple(draw(people())),
        duration=timedelta(minutes=draw(st.sampled_from([15, 30, 60, 90]))),
        window=Window(utc(0, 6), utc(0, 18)),
        now=utc(0, draw(st.integers(0, 10))),
        granularity=timedelta(minutes=draw(st.sampled_from([15, 30]))),
        buffer_before=timedelta(minutes=draw(st.sampled_from([0, 5, 15]))),
        buffer_after=timedelta(minutes=draw(st.sampled_from([0, 10]))),
        minimum_notice=timedelta(minutes=draw(st.sampled_from([0, 30, 120]))),
        max_candidates=draw(st.integers(1, 30)),
    )


@settings(max_examples=200, deadline=None, derandomize=True)
@given(queries())
def test_suggestions_respect_every_rule(q: SlotQuery) -> None:
    result = find_slots(q)
    assert len(result.suggestions) <= q.max_candidates
    assert (result.empty_reason is None) == bool(result.suggestions)
    keys = [s.rank_key() for s in result.suggestions]
    assert keys == sorted(keys)
    for s in result.suggestions:
        assert s.end - s.start == q.duration and q.window.start <= s.start and s.end <= q.window.end
        assert s.start >= q.now + q.minimum_notice
        assert (s.start - datetime(1970, 1, 1, tzinfo=UTC)) % q.granularity == timedelta(0)
        assert 0.0 <= s.confidence <= 100.0
        for attendee, answer in zip(q.attendees, s.attendees, strict=True):
            assert answer.email == attendee.email
            touching = [p.type for p in attendee.freebusy.busy
                        if p.start < s.end + q.buffer_after and p.end > s.start - q.buffer_before]
            if attendee.required:  # never over a required attendee's busy or away time
                assert BusyType.BUSY not in touching and BusyType.BUSY_UNAVAILABLE not in touching
                assert not answer.outside_working_hours
            if BusyType.UNKNOWN in touching:  # unknown is never shown as free (known busy time wins)
                assert answer.availability in (Availability.UNKNOWN, Availability.BUSY, Availability.OUT_OF_OFFICE)
            if answer.availability is Availability.FREE:
                assert not touching and not answer.outside_working_hours


@settings(max_examples=100, deadline=None, derandomize=True)
@given(queries(), st.integers(1, 30))
def test_ranking_is_a_prefix_of_the_full_order(q: SlotQuery, k: int) -> None:
    """Asking for fewer candidates returns the head of the same ranking."""
    from dataclasses import replace
    everything = find_slots(replace(q, max_candidates=10_000)).suggestions
    assert find_slots(replace(q, max_candidates=k)).suggestions == everything[:k]


@settings(max_examples=100, deadline=None, derandomize=True)
@given(queries())
def test_attendee_order_does_not_change_the_ranking(q: SlotQuery) -> None:
    from dataclasses import replace
    flipped = find_slots(replace(q, attendees=tuple(reversed(q.attendees)))).suggestions
    assert starts(flipped) == starts(find_slots(q).suggestions)
