"""Broken real-world iCalendar (issue 13, items 1, 6, 7, 8): what cannot be read is unknown, never
free; a broken property never costs an event; endless rules are bounded by work; what parsing
accepts, writing and the sync planner judge the same way. One test per case, each with the
smallest calendar that shows it."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calmesh import cancel, ical
from calmesh.model import CalendarItem, Window, rrule_problem

WEEK = Window(datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC))
EVENT = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n"
         "DTSTART:20260105T100000Z\r\nDTEND:20260105T110000Z\r\nSUMMARY:Café\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def one_event(*lines: str) -> bytes:
    body = "\r\n".join(lines)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n{body}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n".encode()


def unknown_spans(problems: list) -> list[tuple[datetime, datetime]]:
    return [p.unknown for p in problems if p.unknown is not None]


# ------------------------------------------------------------------------- 1: unreadable text
@pytest.mark.parametrize("data", [
    b"hello world\r\n",
    b"",
    bytes(range(256)),
    EVENT.encode()[:110],  # cut off mid-event
], ids=["garbage", "empty", "binary", "cut-mid-event"])
def test_unreadable_calendar_text_is_unknown_for_the_whole_window(data: bytes) -> None:
    events, problems = ical.expand(data, WEEK, "feed")
    assert events == []
    assert unknown_spans(problems) == [(WEEK.start, WEEK.end)]
    assert "unreadable" in problems[-1].message


def test_a_valid_empty_calendar_is_free_not_unknown() -> None:
    events, problems = ical.expand(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n",
                                   WEEK, "feed")
    assert events == [] and problems == []


def test_a_file_losing_one_event_of_two_is_unknown_where_the_lost_one_might_be() -> None:
    data = EVENT.replace("END:VCALENDAR\r\n", "") + "BEGIN:VEVENT\r\nUID:b\r\nDTSTART:2026010"
    events, problems = ical.expand(data, WEEK, "feed")
    assert [e.uid for e in events] == ["a"]
    assert unknown_spans(problems) == [(WEEK.start, WEEK.end)]


@pytest.mark.parametrize("data", [
    EVENT.encode("utf-16"),  # with its byte-order mark, as Windows tools write it
    EVENT.encode("utf-16-le"),  # without one
    EVENT.encode("utf-16-be"),
    b"\xef\xbb\xbf" + EVENT.encode(),
    EVENT.encode("latin-1"),
], ids=["utf16-bom", "utf16le-no-bom", "utf16be-no-bom", "utf8-bom", "latin1"])
def test_utf16_bom_and_latin1_calendars_are_decoded(data: bytes) -> None:
    events, problems = ical.expand(data, WEEK, "feed")
    assert [(e.uid, e.summary) for e in events] == [("a", "Café")] and problems == []


def test_the_unreadable_message_never_quotes_the_text() -> None:
    _events, problems = ical.expand(b"SUMMARY:Secret merger talks\r\n", WEEK, "feed")
    assert not any("Secret" in str(p) for p in problems)


# ------------------------------------------------------------- 6: broken input keeps the event
def test_event_without_uid_counts_with_a_stable_derived_uid() -> None:
    data = one_event("DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", "SUMMARY:Old export")
    (event,), problems = ical.expand(data, WEEK, "feed")
    (again,), _ = ical.expand(data.replace(b"SUMMARY", b"DTSTAMP:20260101T000000Z\r\nSUMMARY"), WEEK, "feed")
    assert event.uid.startswith("calmesh-") and event.uid == again.uid  # a new DTSTAMP changes nothing
    assert [p.message for p in problems] == [f"event has no UID: read as {event.uid}"]
    (item,), _ = ical.parse_items(data)
    assert item.uid == event.uid


def test_two_events_without_uid_stay_two_events() -> None:
    data = (EVENT.replace("UID:a\r\n", "") .replace("END:VCALENDAR\r\n", "")
            + "BEGIN:VEVENT\r\nDTSTART:20260106T100000Z\r\nDTEND:20260106T110000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    events, _ = ical.expand(data, WEEK, "feed")
    assert len({e.uid for e in events}) == 2


def test_google_created_year_zero_does_not_cost_the_series() -> None:
    data = one_event("UID:g", "CREATED:00001231T000000Z", "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z",
                     "RRULE:FREQ=DAILY;COUNT=3")
    events, problems = ical.expand(data, WEEK, "feed")
    assert len(events) == 3 and unknown_spans(problems) == []
    assert "unreadable CREATED ignored" in problems[0].message
    (item,), _ = ical.parse_items(data)
    assert item.components[0].created is None


def test_unparseable_content_line_does_not_cost_the_event() -> None:
    data = EVENT.replace("SUMMARY:Café\r\n", "SUMMARY:Café\r\nX-BROKEN;=:\r\n").encode()
    events, problems = ical.expand(data, WEEK, "feed")
    assert [e.uid for e in events] == ["a"] and unknown_spans(problems) == []
    assert [p.message for p in problems] == ["an unreadable content line ignored"]


def test_rrule_typo_keeps_the_first_instance_and_marks_the_rest_unknown() -> None:
    data = one_event("UID:u", "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z",
                     "RRULE:FREQ=DAILY;UNTL=20260110T000000Z")
    events, problems = ical.expand(data, WEEK, "feed")
    assert [(e.start, e.end) for e in events] == [(datetime(2026, 1, 5, 10, tzinfo=UTC),
                                                   datetime(2026, 1, 5, 11, tzinfo=UTC))]
    assert unknown_spans(problems) == [(datetime(2026, 1, 5, 11, tzinfo=UTC), WEEK.end)]
    assert "UNTL" in problems[0].message and problems[0].item == "UID u"


def test_rrule_typo_before_the_window_makes_the_whole_window_unknown() -> None:
    data = one_event("UID:u", "DTSTART:20251201T100000Z", "DTEND:20251201T110000Z", "RRULE:FREQ=DAILY;UNTL=2027")
    events, problems = ical.expand(data, WEEK, "feed")
    assert events == [] and unknown_spans(problems) == [(WEEK.start, WEEK.end)]


def test_floating_dtend_is_read_in_the_zone_of_a_tzid_dtstart() -> None:
    new_york = ZoneInfo("America/New_York")
    data = one_event("UID:t", "DTSTART;TZID=America/New_York:20260105T100000", "DTEND:20260105T110000",
                     "RRULE:FREQ=DAILY;COUNT=2")
    events, problems = ical.expand(data, WEEK, "feed")
    assert [(e.start, e.end) for e in events] == [
        (datetime(2026, 1, d, 10, tzinfo=new_york), datetime(2026, 1, d, 11, tzinfo=new_york)) for d in (5, 6)]
    assert unknown_spans(problems) == []
    (item,), _ = ical.parse_items(data)
    assert item.components[0].end == datetime(2026, 1, 5, 11, tzinfo=new_york)


@pytest.mark.parametrize(("dtend", "end"), [
    ("DTEND:20260106T040000", date(2026, 1, 7)),  # a time after midnight: that whole day
    ("DTEND:20260107T000000Z", date(2026, 1, 7)),  # midnight: the day before it is the last
], ids=["time-of-day", "midnight"])
def test_a_date_time_dtend_of_an_all_day_event_ends_with_its_day(dtend: str, end: date) -> None:
    data = one_event("UID:d", "DTSTART;VALUE=DATE:20260105", dtend)
    events, problems = ical.expand(data, WEEK, "feed")
    assert [(e.start, e.end) for e in events] == [(date(2026, 1, 5), end)]
    assert any("all-day event read as the date" in p.message for p in problems)
    (item,), _ = ical.parse_items(data)
    assert item.components[0].end == end


def test_a_date_dtend_of_a_timed_event_ends_at_that_midnight() -> None:
    data = one_event("UID:t", "DTSTART:20260105T220000Z", "DTEND;VALUE=DATE:20260106")
    events, _ = ical.expand(data, WEEK, "feed")
    assert [(e.start, e.end) for e in events] == [(datetime(2026, 1, 5, 22, tzinfo=UTC),
                                                   datetime(2026, 1, 6, tzinfo=UTC))]


def test_an_hours_duration_of_an_all_day_event_lasts_the_days_it_reaches() -> None:
    """RFC 5545 3.8.2.5: a DATE start takes a duration in days or weeks; PT10H reads as one day,
    the same for free/busy and for a copy."""
    data = one_event("UID:h", "DTSTART;VALUE=DATE:20260105", "DURATION:PT10H")
    events, problems = ical.expand(data, WEEK, "feed")
    assert [(e.start, e.end) for e in events] == [(date(2026, 1, 5), date(2026, 1, 6))]
    assert any("read as 1 day" in p.message for p in problems)
    (item,), _ = ical.parse_items(data)
    assert item.components[0].end == date(2026, 1, 6)


def test_an_unreadable_dtend_does_not_cost_the_event() -> None:
    data = one_event("UID:b", "DTSTART:20260105T100000Z", "DTEND:20260105T1100000Z", "SUMMARY:Conference")
    events, problems = ical.expand(data, WEEK, "feed")
    assert [e.start for e in events] == [datetime(2026, 1, 5, 10, tzinfo=UTC)]
    assert any("unreadable DTEND" in p.message for p in problems)


def test_a_lotus_notes_series_without_master_is_read_as_the_series() -> None:
    """One component, RECURRENCE-ID;RANGE=THISANDFUTURE, the occurrences as RDATE periods."""
    data = one_event("UID:lotus", "RECURRENCE-ID;RANGE=THISANDFUTURE:20260105T100000Z",
                     "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z",
                     "RDATE;VALUE=PERIOD:20260105T100000Z/20260105T110000Z,20260107T100000Z/20260107T113000Z")
    events, problems = ical.expand(data, WEEK, "feed")
    assert sorted((e.start, e.end) for e in events) == [
        (datetime(2026, 1, 5, 10, tzinfo=UTC), datetime(2026, 1, 5, 11, tzinfo=UTC)),
        (datetime(2026, 1, 7, 10, tzinfo=UTC), datetime(2026, 1, 7, 11, 30, tzinfo=UTC))]
    assert any("Lotus Notes" in p.message for p in problems)
    (item,), _ = ical.parse_items(data)
    assert item.master is not None and len(item.master.rdate) == 2


# ------------------------------------------------------------------------ 7: bounded expansion
@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY"])
def test_endless_fine_grained_rule_is_bounded_by_work_and_unknown(freq: str) -> None:
    """Without the bound this expands ~190 million steps (hours on one core); with it, it stops
    after estimating the cost, whatever the machine's speed."""
    data = one_event("UID:s", "DTSTART:20200105T100000Z", "DTEND:20200105T100001Z", f"RRULE:FREQ={freq}")
    events, problems = ical.expand(data, WEEK, "feed")
    assert events == []
    assert unknown_spans(problems) == [(WEEK.start, WEEK.end)]
    assert "too costly" in problems[0].message


def test_a_rule_with_too_many_occurrences_in_the_window_is_bounded() -> None:
    """Every 30 seconds from the window's start: few steps, but ~20,000 occurrences a week."""
    data = one_event("UID:m", "DTSTART:20260105T000000Z", "DURATION:PT1S", "RRULE:FREQ=SECONDLY;INTERVAL=30")
    events, problems = ical.expand(data, WEEK, "feed")
    assert [e.start for e in events] == [WEEK.start]  # the first instance is certain
    assert "occurrences in the window" in problems[0].message
    assert unknown_spans(problems) == [(WEEK.start + timedelta(seconds=1), WEEK.end)]


def test_expansion_stops_when_its_asker_gave_up() -> None:
    """A deadline passed (``fanout.within`` sets the flag): the next series is not even started."""
    flag = threading.Event()
    flag.set()
    with cancel.watched(flag), pytest.raises(cancel.Abandoned):
        ical.expand(EVENT, WEEK, "feed")


def test_an_affordable_fine_grained_rule_is_still_expanded() -> None:
    data = one_event("UID:q", "DTSTART:20260105T100000Z", "DURATION:PT5M", "RRULE:FREQ=MINUTELY;INTERVAL=15;COUNT=4")
    events, problems = ical.expand(data, WEEK, "feed")
    assert len(events) == 4 and problems == []


# ----------------------------------------------------------------- 8: parse and write agree
def test_invalid_freq_is_judged_alike_by_parse_expand_and_write() -> None:
    """Parsing reports the rule, expansion keeps the first instance, the writer keeps the rule as
    it was read (rewriting a file loses nothing) instead of raising, the sync quarantines it."""
    rule = "FREQ=FORTNIGHTLY;BYDAY=MO,TU"
    data = one_event("UID:f", "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", f"RRULE:{rule}")
    (item,), problems = ical.parse_items(data)
    assert item.components[0].rrule == [rule] and rrule_problem(rule) is not None
    assert any(f"unreadable RRULE {rule!r}" in p.message for p in problems)
    assert f"RRULE:{rule}\r\n".encode() in ical.item_to_ical(item)
    (again,), _ = ical.parse_items(ical.item_to_ical(item))
    assert again.components[0].rrule == [rule]
    events, problems = ical.expand(data, WEEK, "feed")
    assert len(events) == 1 and unknown_spans(problems) == [(datetime(2026, 1, 5, 11, tzinfo=UTC), WEEK.end)]


@pytest.mark.parametrize("rule", ["FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=MONTHLY;BYMONTHDAY=-1;UNTIL=20270101T000000Z",
                                  "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU;COUNT=5", "FREQ=DAILY;INTERVAL=2;UNTIL=20270101"])
def test_valid_rules_pass_the_shared_test_and_the_writer(rule: str) -> None:
    data = one_event("UID:v", "DTSTART:20260105T100000Z", "DTEND:20260105T110000Z", f"RRULE:{rule}")
    (item,), problems = ical.parse_items(data)
    assert rrule_problem(rule) is None and problems == []
    assert ical.item_to_ical(CalendarItem(item.uid, item.components))
