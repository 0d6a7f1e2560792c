"""The web page's layout arithmetic (no browser): the time axis across DST changes, where blocks
and working hours fall, and query validation. The browser tests check the same numbers drawn."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request

from calmesh.model import BusyPeriod, BusyType, PersonFreeBusy, WorkingHours
from calmesh.server.context import BadRequest
from calmesh.server.web import (
    block,
    parse_query,
    platform_link,
    span_text,
    ticks,
    view_axis,
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


def _request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode(), "headers": []})


@pytest.mark.parametrize(("query", "message"), [
    ("view=month", "view must be one of day, workweek, week"),
    ("group=colour", "group must be one of team, platform"),
    ("tz=Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("date=23/11/2026", "is not an ISO date"),
    ("date=0999-01-01", "between the years 1900 and 2500"),
])
def test_bad_queries_say_what_to_fix(query: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_query(_request(query), "Europe/Paris")


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
