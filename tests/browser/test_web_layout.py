"""The web page's layout arithmetic (no browser): the time axis across DST changes, where blocks
and working hours fall, and query validation. The browser tests check the same numbers drawn."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request

from calmesh.config import PersonConfig, WorkingHoursConfig
from calmesh.model import BusyPeriod, BusyType, PersonFreeBusy, WorkingHours
from calmesh.server.context import BadRequest
from calmesh.server.web import (
    block,
    hour_ticks,
    parse_query,
    platform_link,
    shown_hours,
    span_text,
    ticks,
    view_axis,
    view_days,
    working_bands,
)

PARIS = ZoneInfo("Europe/Paris")


def test_week_axis_runs_midnight_to_midnight_and_keeps_dst_days_honest() -> None:
    axis = view_axis("week", date(2026, 10, 21), PARIS)  # a Wednesday; Paris leaves DST on Sunday 25th
    assert axis.start == datetime(2026, 10, 19, tzinfo=PARIS)
    assert axis.end.astimezone(UTC) - axis.start.astimezone(UTC) == timedelta(hours=169)
    days = ticks(axis, "week", PARIS)
    assert [t.label for t in days][::6] == ["Mon 19 Oct", "Sun 25 Oct"]
    assert days[-1].width == pytest.approx(100 * 25 / 169, abs=1e-3)  # the 25-hour Sunday is wider
    assert sum(t.width for t in days) == pytest.approx(100, abs=1e-3)


def test_work_week_is_monday_to_friday() -> None:
    axis = view_axis("workweek", date(2026, 11, 27), PARIS)
    assert (axis.start, axis.end) == (datetime(2026, 11, 23, tzinfo=PARIS), datetime(2026, 11, 28, tzinfo=PARIS))
    assert [t.label for t in ticks(axis, "workweek", PARIS)] == ["Mon 23 Nov", "Tue 24 Nov", "Wed 25 Nov",
                                                                "Thu 26 Nov", "Fri 27 Nov"]


def test_day_axis_on_the_dst_change_has_25_hours_with_2_oclock_twice() -> None:
    axis = view_axis("day", date(2026, 10, 25), PARIS)
    hours = [t.label for t in ticks(axis, "day", PARIS)]
    assert len(hours) == 25 and hours.count("02:00") == 2


def test_blocks_and_working_hours_are_placed_by_share_of_the_span() -> None:
    axis = view_axis("day", date(2026, 11, 23), PARIS)
    period = BusyPeriod(datetime(2026, 11, 23, 13, tzinfo=UTC), datetime(2026, 11, 23, 15, tzinfo=UTC),
                        BusyType.BUSY_TENTATIVE, summary="Review")
    drawn = block(period, axis, PARIS)
    assert (drawn.kind, drawn.start, drawn.end) == ("tentative", "2026-11-23T14:00:00+01:00", "2026-11-23T16:00:00+01:00")
    assert (drawn.left, drawn.width) == (pytest.approx(100 * 14 / 24, abs=1e-3), pytest.approx(100 * 2 / 24, abs=1e-3))
    assert drawn.title == "Tentative, Mon 23 Nov 14:00–16:00: Review"
    tokyo = PersonFreeBusy("farid@agency.example", axis.window,
                           working_hours=WorkingHours.simple("Asia/Tokyo", time(10), time(19)))
    # Tokyo 10:00-19:00 is Paris 02:00-11:00
    assert working_bands(tokyo, axis) == [(pytest.approx(100 * 2 / 24, abs=1e-3), pytest.approx(100 * 9 / 24, abs=1e-3))]


def test_blocks_beyond_the_axis_are_clipped() -> None:
    axis = view_axis("day", date(2026, 11, 23), PARIS)
    period = BusyPeriod(datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 23, 11, tzinfo=UTC))
    assert axis.place(period.start, period.end) == (0.0, pytest.approx(100 * 12 / 24, abs=1e-3))


def test_a_working_hours_week_leaves_the_nights_out() -> None:
    axis = view_axis("workweek", date(2026, 11, 25), PARIS, (9, 18))
    assert axis.hours == 45 and len(axis.segments) == 5
    assert axis.segments[1] == (datetime(2026, 11, 24, 9, tzinfo=PARIS), datetime(2026, 11, 24, 18, tzinfo=PARIS))
    # Tuesday 10:00 is 10 shown hours in: 9 on Monday, 1 on Tuesday
    assert axis.percent(datetime(2026, 11, 24, 10, tzinfo=PARIS)) == pytest.approx(100 * 10 / 45, abs=1e-3)
    # a time in a hidden night sits at the edge of the day before it; a block inside one has no width
    assert axis.percent(datetime(2026, 11, 24, 2, tzinfo=PARIS)) == pytest.approx(100 * 9 / 45, abs=1e-3)
    assert axis.place(datetime(2026, 11, 24, 1, tzinfo=PARIS), datetime(2026, 11, 24, 3, tzinfo=PARIS))[1] == 0
    assert [t.label for t in ticks(axis, "workweek", PARIS)][:2] == ["Mon 23 Nov", "Tue 24 Nov"]
    hours = hour_ticks(axis, PARIS, every=1)
    assert len(hours) == 45 and [t.label for t in hours[:2]] == ["09:00", "10:00"]
    assert hours[9].left == pytest.approx(100 * 9 / 45, abs=1e-3) and hours[9].label == "09:00"


def _person(email: str, zone: str, start: time, end: time) -> PersonConfig:
    return PersonConfig(email=email, platform="p", timezone=zone, working_hours=WorkingHoursConfig(start=start, end=end))


def test_shown_hours_are_those_of_the_people_in_the_zone_shown() -> None:
    paris = _person("a@x.example", "Europe/Paris", time(9), time(18))
    new_york = _person("c@x.example", "America/New_York", time(8, 30), time(17))
    tokyo = _person("f@x.example", "Asia/Tokyo", time(10), time(19))
    days = view_days("workweek", date(2026, 11, 23))
    assert shown_hours([paris, new_york, tokyo], "Europe/Paris", "UTC", days) == (9, 18)
    assert shown_hours([paris, new_york, tokyo], "America/New_York", "UTC", days) == (8, 17)
    # nobody lives in London: everyone's hours as London reads them (Tokyo 01:00 to New York 22:00)
    assert shown_hours([paris, new_york, tokyo], "Europe/London", "UTC", days) == (1, 22)
    # Tokyo's day seen from New York runs over midnight there: the whole day
    assert shown_hours([tokyo], "America/New_York", "UTC", days) == (0, 24)
    assert shown_hours([PersonConfig(email="n@x.example", platform="p")], "Europe/Paris", "UTC", days) == (0, 24)


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []})


@pytest.mark.parametrize(("query", "message"), [
    ("view=month", "view must be one of day, workweek, week"),
    ("group=colour", "group must be one of team, platform"),
    ("tz=Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("date=23/11/2026", "is not an ISO date"),
    ("date=0999-01-01", "between the years 1900 and 2500"),
    ("hours=night", "hours must be one of work, all"),
])
def test_bad_queries_say_what_to_fix(query: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_query(_request(query), "Europe/Paris")


def test_whole_day_ticked_wins_over_the_forms_default() -> None:
    """The form sends ``hours=work`` always and ``hours=all`` when "Whole day" is ticked."""
    assert parse_query(_request("hours=work&hours=all"), "UTC").hours == "all"
    assert parse_query(_request("hours=work"), "UTC").hours == "work"
    assert parse_query(_request(""), "UTC").hours == "work"


def test_windows_zone_names_are_accepted() -> None:
    query = parse_query(_request("tz=Eastern+Standard+Time&date=2026-11-23&view=day"), "UTC")
    assert (query.zone_name, query.day, query.view) == ("America/New_York", date(2026, 11, 23), "day")


def test_links_and_spans() -> None:
    assert platform_link("zoho", "https://calendar.zoho.eu/caldav/abc/events/", {}) == \
        "https://calendar.zoho.eu/caldav/abc/events/"
    assert platform_link("exchange", "alice@agency.example", {"service_endpoint": "https://mail.example/EWS/Exchange.asmx"}) == \
        "https://mail.example/EWS/Exchange.asmx"
    assert platform_link("projects", "alice.ics", {"path": "projects"}) is None
    assert span_text("2026-11-26T13:00:00+00:00", "2026-11-26T14:30:00+00:00") == "Thu 26 Nov 13:00–14:30"
