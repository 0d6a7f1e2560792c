"""The CalDAV connector against real servers: every test runs against Radicale and Xandikos.

Servers are real processes on 127.0.0.1 (see ``tests/conftest.py``); each test writes into its
own fresh calendar collection. Malformed objects are PUT as raw text with httpx, the way a buggy
client would store them.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import copy_context
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from calmesh.config import parse_config
from calmesh.connectors.base import (
    AuthenticationError,
    FreeBusyRequest,
    InvalidTokenError,
    NotFoundError,
    PreconditionFailed,
    RetryBudget,
    RetryPolicy,
    TransientError,
    retry_budget,
    with_retries,
)
from calmesh.connectors.caldav import CalDAVConnector, CalDAVSettings
from calmesh.core.freebusy import busy_from_events, merge_busy
from calmesh.demo.servers import free_port
from calmesh.model import (
    Attendee,
    BusyPeriod,
    BusyType,
    CalendarItem,
    Event,
    EventStatus,
    ItemRef,
    PartStat,
    Window,
)
from calmesh.services import availability
from calmesh.services.hub import Hub

from .loopback import MultistatusHandler, QuietHandler, serving

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the fixtures

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
WEEK = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))


def at(day: int, hour: int, minute: int = 0, tz: ZoneInfo = PARIS) -> datetime:
    """A time in the week of Monday 2026-11-23."""
    return datetime(2026, 11, 23 + day, hour, minute, tzinfo=tz)


def single(uid: str, start: datetime, hours: float = 1, **fields: object) -> CalendarItem:
    event = Event(uid=uid, start=start, end=start + timedelta(hours=hours), summary=uid, **fields)  # type: ignore[arg-type]
    return CalendarItem(uid, [event])


def utc(periods: list[BusyPeriod]) -> list[tuple[datetime, datetime, BusyType]]:
    return [(p.start, p.end, p.type) for p in periods]


def put_raw(server: CalDAVServer, calendar: str, name: str, text: str) -> httpx.Response:
    return httpx.put(calendar + name, content=text.encode("utf-8"), auth=(server.username, server.password),
                     headers={"Content-Type": "text/calendar; charset=utf-8"}, timeout=30)


# ------------------------------------------------------------------------------------ discovery
def test_discovers_calendars_and_owner(caldav_server: CalDAVServer) -> None:
    calendar = caldav_server.new_calendar("Team work")
    with caldav_server.connector() as connector:
        found = {c.id: c for c in connector.calendars()}
        assert calendar in found
        info = found[calendar]
        assert info.name == "Team work"
        assert info.owner == "alice@example.com"  # Radicale/Xandikos give no mailto: the login is used
        assert not info.read_only
        assert calendar in connector.calendars_of("Alice@Example.com")
        with pytest.raises(NotFoundError):
            connector.calendars_of("bob@example.com")


def test_explicit_calendar_list(caldav_server: CalDAVServer) -> None:
    wanted, _other = caldav_server.new_calendar(), caldav_server.new_calendar()
    with caldav_server.connector(calendars=[wanted]) as connector:
        assert [c.id for c in connector.calendars()] == [wanted]


def test_check_reports_what_works(caldav_server: CalDAVServer) -> None:
    caldav_server.new_calendar()
    with caldav_server.connector() as connector:
        lines = connector.check()
    assert any("calendar(s)" in line for line in lines)
    assert "free-busy-query: answered by the server" in lines
    assert "sync-collection: supported" in lines


# ------------------------------------------------------------------------------------ writes
def test_round_trip_with_etags(caldav_server: CalDAVServer) -> None:
    calendar = caldav_server.new_calendar()
    with caldav_server.connector() as connector:
        item = single("round-trip@test", at(1, 10))
        ref = connector.put(calendar, item)
        assert ref.etag and ref.id.endswith("/round-trip@test.ics")

        items, problems = connector.items(calendar)
        assert problems == []
        assert [(i.uid, i.ref) for i in items] == [("round-trip@test", ref)]

        events, _ = connector.events(calendar, WEEK)
        assert [(e.uid, e.start) for e in events] == [("round-trip@test", at(1, 10))]

        with pytest.raises(PreconditionFailed):  # create again: If-None-Match: *
            connector.put(calendar, item)

        moved = CalendarItem(item.uid, [item.components[0].with_changes(start=at(1, 11), end=at(1, 12))], ref)
        new_ref = connector.put(calendar, moved, if_match=ref.etag)
        assert new_ref.id == ref.id and new_ref.etag and new_ref.etag != ref.etag
        events, _ = connector.events(calendar, WEEK)
        assert [e.start for e in events] == [at(1, 11)]

        with pytest.raises(PreconditionFailed):  # somebody else's edit is never overwritten
            connector.put(calendar, moved, if_match=ref.etag)
        with pytest.raises(PreconditionFailed):
            connector.delete(calendar, ref, if_match=ref.etag)

        connector.delete(calendar, new_ref, if_match=new_ref.etag)
        assert connector.items(calendar) == ([], [])
        with pytest.raises(NotFoundError):
            connector.delete(calendar, new_ref)


def test_replacing_an_object_keeps_what_calmesh_cannot_read(caldav_server: CalDAVServer) -> None:
    """A change written over a stored object keeps what calmesh does not read of it: the object's
    own properties, as the server stored them (regression: the object was written from what was
    read). (Both servers refuse X- components in an object, so none is tried here.)"""
    calendar = caldav_server.new_calendar()
    response = put_raw(caldav_server, calendar, "kept.ics",
                       "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Vendor//Tool//EN\r\nX-VENDOR-FLAG:on\r\n"
                       "BEGIN:VEVENT\r\nUID:kept@test\r\nDTSTAMP:20261101T000000Z\r\nSUMMARY:Kept\r\n"
                       "DTSTART:20261124T090000Z\r\nDTEND:20261124T100000Z\r\nEND:VEVENT\r\n"
                       "END:VCALENDAR\r\n")
    assert response.status_code in (201, 204), response.text[:200]
    with caldav_server.connector() as connector:
        (item,), _ = connector.items(calendar)
        assert item.ref is not None
        moved = CalendarItem(item.uid, [item.components[0].with_changes(start=at(1, 11), end=at(1, 12))], item.ref)
        connector.put(calendar, moved, if_match=item.ref.etag)
        (again,), _ = connector.items(calendar)
    assert again.master is not None and again.master.start == at(1, 11)
    stored = httpx.get(calendar + "kept.ics", auth=(caldav_server.username, caldav_server.password)).text
    assert "X-VENDOR-FLAG:on" in stored and "PRODID:-//Vendor//Tool//EN" in stored, stored


def test_unsafe_uid_gets_a_hashed_name(caldav_server: CalDAVServer) -> None:
    calendar = caldav_server.new_calendar()
    with caldav_server.connector() as connector:
        ref = connector.put(calendar, single("a/b c?d#e@test", at(2, 9)))
        assert "/" not in ref.id.rsplit("/", 1)[1] and ref.id.endswith(".ics")
        items, _ = connector.items(calendar)
        assert [(i.uid, i.ref.id if i.ref else None) for i in items] == [("a/b c?d#e@test", ref.id)]


# ------------------------------------------------------------------------------------ reading
def test_recurrence_with_exdate_and_overrides(caldav_server: CalDAVServer) -> None:
    calendar = caldav_server.new_calendar()
    master = Event(uid="standup@test", start=at(0, 9), end=at(0, 9, 15), summary="Stand-up",
                   rrule=["FREQ=DAILY;COUNT=5"], exdate=[at(2, 9)])
    moved = Event(uid="standup@test", recurrence_id=at(3, 9), start=at(3, 14), end=at(3, 14, 30),
                  summary="Stand-up (moved)")
    cancelled = Event(uid="standup@test", recurrence_id=at(4, 9), start=at(4, 9), end=at(4, 9, 15),
                      status=EventStatus.CANCELLED)
    with caldav_server.connector() as connector:
        connector.put(calendar, CalendarItem("standup@test", [master, moved, cancelled]))
        events, problems = connector.events(calendar, WEEK)
        assert problems == []
        seen = sorted((e.start, e.summary, e.status) for e in events)
        assert seen == [
            (at(0, 9), "Stand-up", EventStatus.CONFIRMED),
            (at(1, 9), "Stand-up", EventStatus.CONFIRMED),
            (at(3, 14), "Stand-up (moved)", EventStatus.CONFIRMED),
            (at(4, 9), None, EventStatus.CANCELLED),
        ]
        busy = merge_busy(busy_from_events(events, WEEK))
        assert [p.start for p in busy] == [at(0, 9), at(1, 9), at(3, 14)]
        items, _ = connector.items(calendar)
        assert len(items) == 1 and len(items[0].components) == 3  # the series travels whole


@pytest.mark.parametrize(("zone", "first_day", "before_utc", "after_utc"), [
    (PARIS, date(2026, 10, 22), 7, 8),       # CEST -> CET on Sunday 2026-10-25
    (NEW_YORK, date(2026, 10, 29), 13, 14),  # EDT -> EST on Sunday 2026-11-01
])
def test_dst_weeks(caldav_server: CalDAVServer, zone: ZoneInfo, first_day: date, before_utc: int,
                   after_utc: int) -> None:
    calendar = caldav_server.new_calendar()
    start = datetime.combine(first_day, datetime.min.time().replace(hour=9), tzinfo=zone)
    series = Event(uid=f"dst-{zone.key}@test", start=start, end=start + timedelta(hours=1),
                   rrule=["FREQ=DAILY;COUNT=7"])
    window = Window(datetime.combine(first_day, datetime.min.time(), tzinfo=UTC),
                    datetime.combine(first_day + timedelta(days=8), datetime.min.time(), tzinfo=UTC))
    with caldav_server.connector() as connector:
        connector.put(calendar, CalendarItem(series.uid, [series]))
        events, problems = connector.events(calendar, window)
    assert problems == []
    hours = [e.start.astimezone(UTC).hour for e in sorted(events, key=lambda e: e.start)]
    assert len(hours) == 7
    assert hours[:3] == [before_utc] * 3 and hours[-3:] == [after_utc] * 3  # always 9:00 local
    assert all(e.start.astimezone(zone).hour == 9 for e in events)


def test_all_day_and_floating_events_use_the_platform_zone(caldav_server: CalDAVServer) -> None:
    calendar = caldav_server.new_calendar()
    holiday = Event(uid="holiday@test", start=date(2026, 11, 25), end=date(2026, 11, 26), summary="Holiday")
    floating = Event(uid="floating@test", start=datetime(2026, 11, 26, 10), end=datetime(2026, 11, 26, 11))
    with caldav_server.connector(timezone="Europe/Paris") as connector:
        for event in (holiday, floating):
            connector.put(calendar, CalendarItem(event.uid, [event]))
        events, problems = connector.events(calendar, WEEK)
        assert problems == []
        by_uid = {e.uid: e for e in events}
        assert by_uid["holiday@test"].all_day and by_uid["floating@test"].start.tzinfo is None
        busy = busy_from_events(events, WEEK, default_tz=PARIS)
        assert sorted(utc(busy)) == [
            (datetime(2026, 11, 24, 23, tzinfo=UTC), datetime(2026, 11, 25, 23, tzinfo=UTC), BusyType.BUSY),
            (datetime(2026, 11, 26, 9, tzinfo=UTC), datetime(2026, 11, 26, 10, tzinfo=UTC), BusyType.BUSY),
        ]
        # an all-day event just outside a window is not returned
        monday = Window(datetime(2026, 11, 23, tzinfo=PARIS), datetime(2026, 11, 24, tzinfo=PARIS))
        assert connector.events(calendar, monday)[0] == []


# ------------------------------------------------------------------------------------ free/busy
OWNER = "alice@example.com"


def _busy_kinds_calendar(server: CalDAVServer, connector: CalDAVConnector, *, declined: bool) -> str:
    """A day with one event of each kind that matters for availability."""
    calendar = server.new_calendar()
    items = [
        single("confirmed@test", at(1, 9)),
        single("tentative@test", at(1, 11), status=EventStatus.TENTATIVE),
        single("transparent@test", at(1, 13), transparent=True),
        single("cancelled@test", at(1, 15), status=EventStatus.CANCELLED),
        single("oof@test", at(2, 9), hours=8, busy_type=BusyType.BUSY_UNAVAILABLE),
    ]
    if declined:
        items.append(single("declined@test", at(1, 17), organizer=Attendee("boss@example.com"),
                            attendees=[Attendee(OWNER, partstat=PartStat.DECLINED)]))
    for item in items:
        connector.put(calendar, item)
    return calendar


def test_busy_types_from_events(caldav_server: CalDAVServer) -> None:
    with caldav_server.connector() as connector:
        calendar = _busy_kinds_calendar(caldav_server, connector, declined=True)
        events, problems = connector.events(calendar, WEEK)
        assert problems == []
        busy = merge_busy(busy_from_events(events, WEEK, owner=OWNER))
        assert utc(busy) == [
            (at(1, 9).astimezone(UTC), at(1, 10).astimezone(UTC), BusyType.BUSY),
            (at(1, 11).astimezone(UTC), at(1, 12).astimezone(UTC), BusyType.BUSY_TENTATIVE),
            (at(2, 9).astimezone(UTC), at(2, 17).astimezone(UTC), BusyType.BUSY_UNAVAILABLE),
        ]  # transparent, cancelled and declined do not block


def test_free_busy_query_equals_events_derived_busy(caldav_server: CalDAVServer) -> None:
    """The server's free-busy-query and calmesh's own computation agree on what servers know.

    Declined invitations are left out: RFC 4791 free/busy is computed from STATUS and TRANSP only,
    so a server cannot know the owner declined (calmesh's event path does, see the test above);
    Exchange's OOF hint (X-MICROSOFT-CDO-BUSYSTATUS) is likewise invisible to the server.
    """
    with caldav_server.connector(freebusy_source="server") as native, caldav_server.connector() as computed:
        calendar = _busy_kinds_calendar(caldav_server, native, declined=False)
        request = [FreeBusyRequest(OWNER, (calendar,))]
        [from_server] = native.freebusy(request, WEEK)
        [from_events] = computed.freebusy(request, WEEK)
        assert native._freebusy_query == {calendar: True}  # the server really answered
        assert from_server.errors == [] and from_events.errors == []

        def normalise(periods: list[BusyPeriod]) -> list[tuple[datetime, datetime, BusyType]]:
            # the server only speaks BUSY / BUSY-TENTATIVE here: OOF is a calmesh/Exchange notion
            return [(s, e, min(t, BusyType.BUSY)) for s, e, t in utc(periods)]

        assert normalise(from_server.busy) == normalise(from_events.busy)
        assert normalise(from_server.busy)[:2] == [
            (at(1, 9).astimezone(UTC), at(1, 10).astimezone(UTC), BusyType.BUSY),
            (at(1, 11).astimezone(UTC), at(1, 12).astimezone(UTC), BusyType.BUSY_TENTATIVE),
        ]


@pytest.mark.parametrize("zone", ["Europe/London", "Australia/Sydney", "America/New_York", "Asia/Tokyo",
                                  "Africa/Casablanca"])
def test_servers_place_calmesh_written_times_right(caldav_server: CalDAVServer, zone: str) -> None:
    """The server's own free/busy reads the VTIMEZONE calmesh writes the way calmesh means it.
    (With icalendar's default RDATE-list VTIMEZONEs, Radicale put London and Sydney an hour off.)"""
    calendar = caldav_server.new_calendar()
    local = ZoneInfo(zone)
    with caldav_server.connector(freebusy_source="server") as connector:
        for day in range(1, 6):
            connector.put(calendar, single(f"tz-{day}@test", at(day, 9, tz=local)))
        [answer] = connector.freebusy([FreeBusyRequest(OWNER, (calendar,))], WEEK)
    assert connector._freebusy_query == {calendar: True}
    assert utc(answer.busy) == [(at(d, 9, tz=local).astimezone(UTC), at(d, 10, tz=local).astimezone(UTC),
                                 BusyType.BUSY) for d in range(1, 6)]


def test_server_free_busy_cannot_know_a_declined_invitation(caldav_server: CalDAVServer) -> None:
    """Why ``freebusy_source`` defaults to events: the server's answer keeps declined time busy."""
    with caldav_server.connector(freebusy_source="server") as native, caldav_server.connector() as computed:
        calendar = _busy_kinds_calendar(caldav_server, native, declined=True)
        declined = (at(1, 17).astimezone(UTC), at(1, 18).astimezone(UTC), BusyType.BUSY)
        request = [FreeBusyRequest(OWNER, (calendar,))]
        assert declined in utc(native.freebusy(request, WEEK)[0].busy)
        assert declined not in utc(computed.freebusy(request, WEEK)[0].busy)


def test_freebusy_names_the_failing_calendar(caldav_server: CalDAVServer) -> None:
    good = caldav_server.new_calendar()
    missing = caldav_server.home + "no-such-calendar/"
    with caldav_server.connector() as connector:
        connector.put(good, single("meeting@test", at(1, 9)))
        [answer] = connector.freebusy([FreeBusyRequest(OWNER, (good, missing))], WEEK)
    assert len(answer.errors) == 1 and "no-such-calendar" in answer.errors[0].message
    assert answer.errors[0].platform == "dav"
    assert (at(1, 9).astimezone(UTC), at(1, 10).astimezone(UTC), BusyType.UNKNOWN) not in utc(answer.busy)
    # the missing calendar's time is UNKNOWN (never free); the good calendar's meeting was read
    assert utc(answer.busy) == [(WEEK.start, WEEK.end, BusyType.UNKNOWN)]
    assert answer.busy[0].source == "dav"


def test_freebusy_of_unknown_person_is_an_error_not_free(caldav_server: CalDAVServer) -> None:
    caldav_server.new_calendar()
    with caldav_server.connector() as connector:
        [answer] = connector.freebusy([FreeBusyRequest("nobody@example.com")], WEEK)
    assert answer.errors and "nobody@example.com" in answer.errors[0].message
    assert utc(answer.busy) == [(WEEK.start, WEEK.end, BusyType.UNKNOWN)]


def test_availability_service_over_caldav(caldav_server: CalDAVServer) -> None:
    """The hub's free/busy across a CalDAV platform, with details (the hub reads events) and
    without (the connector's own free/busy): declined, cancelled and transparent never block."""
    with caldav_server.connector() as connector:
        calendar = _busy_kinds_calendar(caldav_server, connector, declined=True)
    text = f"""
[hub]
timezone = "Europe/Paris"
[platforms.dav]
kind = "caldav"
url = "{caldav_server.url}"
username = "{caldav_server.username}"
password_env = "{caldav_server.password_env}"
[[people]]
email = "{OWNER}"
platform = "dav"
calendars = ["{calendar}"]
"""
    day = Window(at(1, 0), at(2, 0))
    expected = [
        (at(1, 9).astimezone(UTC), at(1, 10).astimezone(UTC), BusyType.BUSY),
        (at(1, 11).astimezone(UTC), at(1, 12).astimezone(UTC), BusyType.BUSY_TENTATIVE),
    ]
    with Hub(parse_config(text)) as hub:
        [with_details] = availability.freebusy(hub, [OWNER], day, details_for=lambda _e: True)
        [busy_only] = availability.freebusy(hub, [OWNER], day)
    assert with_details.errors == [] and busy_only.errors == []
    assert utc(with_details.busy) == expected
    assert [p.summary for p in with_details.busy] == ["confirmed@test", "tentative@test"]
    assert utc(busy_only.busy) == expected


# ------------------------------------------------------------------------------------ damage
GOOD = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//EN\r
BEGIN:VEVENT\r
UID:{uid}\r
DTSTAMP:20261101T000000Z\r
DTSTART:{start}\r
DTEND:20261124T120000Z\r
SUMMARY:{summary}\r
{extra}END:VEVENT\r
END:VCALENDAR\r
"""

MALFORMED = {
    "truncated": GOOD.format(uid="truncated@test", start="20261124T090000Z", summary="Truncated",
                             extra="")[:-40],
    "bad-dates": GOOD.format(uid="bad-dates@test", start="20261399T250000Z", summary="Bad dates", extra=""),
    "unknown-tzid": GOOD.format(uid="unknown-tzid@test", start="20261124T100000", summary="Unknown zone",
                                extra="").replace("DTSTART:", "DTSTART;TZID=Mars/Olympus_Mons:"),
    "huge-description": GOOD.format(uid="huge@test", start="20261124T080000Z", summary="Huge",
                                    extra="DESCRIPTION:" + "x" * (5 * 1024 * 1024) + "\r\n"),
}
REFUSED_ON_PUT = {
    # Each server validates objects on PUT; what it refuses can never be stored there, so that
    # case is dropped for that server (the test asserts the refusal, then skips). Radicale also
    # hides a broken file put straight into its storage folder ("Skip broken item" in its log),
    # so no client can ever see those two there. Xandikos refuses with 412 + valid-calendar-data.
    "radicale": {"truncated", "bad-dates"},
    "xandikos": {"truncated"},
}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c == "huge-description" else c
                                  for c in sorted(MALFORMED)])  # storing 5 MB takes Radicale ~6 s
def test_malformed_stored_object_is_a_problem_not_a_failure(caldav_server: CalDAVServer, case: str) -> None:
    calendar = caldav_server.new_calendar()
    with caldav_server.connector() as connector:
        connector.put(calendar, single("fine@test", at(1, 14)))
        response = put_raw(caldav_server, calendar, f"{case}.ics", MALFORMED[case])
        if case in REFUSED_ON_PUT[caldav_server.kind]:
            assert response.status_code in (400, 403, 409, 412, 415, 422), response.text[:200]
            pytest.skip(f"{caldav_server.kind} refuses {case} iCalendar on PUT, so it cannot be stored")
        assert response.status_code in (201, 204), response.text[:200]

        events, problems = connector.events(calendar, WEEK)
        with caldav_server.connector(freebusy_source="server") as native:
            [answer] = native.freebusy([FreeBusyRequest(OWNER, (calendar,))], WEEK)
    fine = (at(1, 14).astimezone(UTC), at(1, 15).astimezone(UTC), BusyType.BUSY)
    assert answer.errors == [] and fine in utc(answer.busy)  # the server's free/busy still answers
    assert "fine@test" in {e.uid for e in events}  # the other events still count
    assert problems, "the damaged object must be reported"
    for problem in problems:
        assert problem.platform == "dav"
        assert problem.item and f"{case}.ics" in problem.item  # names the stored object
    text = " ".join(str(p) for p in problems)
    if case == "huge-description":
        assert "DESCRIPTION" in text and "Huge" in text
        assert "huge@test" in {e.uid for e in events}  # still busy time, description cut
    if case == "unknown-tzid":
        assert "Mars/Olympus_Mons" in text


# ------------------------------------------------------------------------------------ changes
def inner(token: str) -> str:
    """The change token proper, without the CTag a token may carry (``ctag:<base64>:<token>``)."""
    return token.split(":", 2)[2] if token.startswith("ctag:") else token


@pytest.mark.parametrize("sync_collection", [True, False], ids=["sync-collection", "etag-fallback"])
def test_changes_through_the_token(caldav_server: CalDAVServer, sync_collection: bool) -> None:
    calendar = caldav_server.new_calendar()
    with caldav_server.connector(sync_collection=sync_collection) as connector:
        keep = connector.put(calendar, single("keep@test", at(1, 9)))
        doomed = connector.put(calendar, single("doomed@test", at(1, 11)))

        first = connector.changes(calendar, None)
        assert first.complete and first.deleted == []
        assert sorted(i.uid for i in first.changed) == ["doomed@test", "keep@test"]
        assert first.token and inner(first.token).startswith("sync:" if sync_collection else "etags:")

        quiet = connector.changes(calendar, first.token)
        assert (quiet.changed, quiet.deleted, quiet.complete) == ([], [], False)

        added = connector.put(calendar, single("new@test", at(2, 9)))
        edited = CalendarItem("keep@test", [Event("keep@test", at(1, 10), at(1, 11), summary="moved")], keep)
        connector.put(calendar, edited, if_match=keep.etag)
        connector.delete(calendar, doomed, if_match=doomed.etag)

        later = connector.changes(calendar, quiet.token)
        assert not later.complete
        assert sorted(i.uid for i in later.changed) == ["keep@test", "new@test"]
        assert {i.ref.id for i in later.changed if i.ref} == {keep.id, added.id}
        assert next(i for i in later.changed if i.uid == "keep@test").components[0].summary == "moved"
        assert [r.id for r in later.deleted] == [doomed.id]

        with pytest.raises(InvalidTokenError):
            connector.changes(calendar, "sync:http://example.com/not-a-token/1" if sync_collection
                              else "etags:not-base64!")
        with pytest.raises(InvalidTokenError):
            connector.changes(calendar, "some-other-platform-token")


@pytest.mark.parametrize("sync_collection", [True, False], ids=["sync-collection", "etag-fallback"])
def test_ctag_says_nothing_changed_with_one_propfind(caldav_server: CalDAVServer, sync_collection: bool) -> None:
    """``unchanged_since``: a token made by a listing between two equal CTag reads carries that
    CTag, and a calendar still at it is unchanged without a listing; any write, deletion
    included, makes it changed again. A token carrying no CTag is never taken as unchanged, and
    every token still works as a change token."""
    calendar = caldav_server.new_calendar()
    with caldav_server.connector(sync_collection=sync_collection) as connector:
        doomed = connector.put(calendar, single("doomed@test", at(1, 9)))
        token = connector.changes(calendar, None).token  # first contact: CTag read around the listing
        assert token is not None and token.startswith("ctag:")
        plain = token.split(":", 2)[2]
        assert not connector.unchanged_since(calendar, plain)  # no CTag in it: read one
        assert connector.changes(calendar, plain).token == token  # the listing after that read carries it
        assert connector.unchanged_since(calendar, token)
        assert connector.changes(calendar, token).changed == []
        added = connector.put(calendar, single("new@test", at(2, 9)))
        assert not connector.unchanged_since(calendar, token)
        later = connector.changes(calendar, token)
        assert [i.ref.id for i in later.changed if i.ref] == [added.id] and later.token is not None
        assert connector.unchanged_since(calendar, later.token)
        connector.delete(calendar, doomed, if_match=doomed.etag)
        assert not connector.unchanged_since(calendar, later.token)
        assert [r.id for r in connector.changes(calendar, later.token).deleted] == [doomed.id]
        with pytest.raises(InvalidTokenError):
            connector.changes(calendar, "ctag:not base64:sync:x")


@pytest.mark.parametrize("sync_collection", [True, False], ids=["sync-collection", "etag-fallback"])
def test_changes_skip_objects_at_a_known_etag(caldav_server: CalDAVServer, sync_collection: bool) -> None:
    """``changes_skipping``: an object listed at the ETag the caller recorded is reported by
    reference, unfetched; one at another ETag, or unknown, is fetched. A new connector (no object
    cache) shows it, in full listings and through a token alike."""
    calendar = caldav_server.new_calendar()
    with caldav_server.connector(sync_collection=sync_collection) as writer:
        same = writer.put(calendar, single("same@test", at(1, 9)))
        moved = writer.put(calendar, single("moved@test", at(1, 11)))
        token = writer.changes(calendar, None).token
        fresh = writer.put(calendar, single("fresh@test", at(2, 9)))
    known = {same.id: str(same.etag), moved.id: '"an-older-version"', fresh.id: str(fresh.etag)}
    with caldav_server.connector(sync_collection=sync_collection) as reader:
        full = reader.changes_skipping(calendar, None, known)
        assert full.complete
        assert sorted(r.id for r in full.unchanged) == sorted([same.id, fresh.id])
        assert [i.uid for i in full.changed] == ["moved@test"]
        since = reader.changes_skipping(calendar, token, known)
        assert [r.id for r in since.unchanged] == [fresh.id] and since.changed == []


def test_first_listing_brings_the_objects_with_it(caldav_server: CalDAVServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """On first contact (no token, nothing known) the objects are asked for in the
    sync-collection REPORT itself: no multiget where the server sends them (Radicale does), a
    multiget for those it does not send, and a plain listing where it refuses to."""
    calendar = caldav_server.new_calendar()
    series = Event("series@test", at(2, 9), at(2, 10), summary="series", rrule=["FREQ=DAILY;COUNT=3"], tzid="Europe/Paris")
    moved = Event("series@test", at(3, 11), at(3, 12), summary="moved", recurrence_id=at(3, 9), tzid="Europe/Paris")
    with caldav_server.connector() as writer:
        refs = {writer.put(calendar, single("one@test", at(1, 9))).id,
                writer.put(calendar, CalendarItem("series@test", [series, moved])).id}
    multigets: list[int] = []
    real_batch = CalDAVConnector._multiget_batch

    def counting(self: CalDAVConnector, cal: str, hrefs: Sequence[str]) -> list[Any]:
        multigets.append(len(hrefs))
        return real_batch(self, cal, hrefs)

    monkeypatch.setattr(CalDAVConnector, "_multiget_batch", counting)
    real_report = CalDAVConnector._sync_report
    for refuse in (False, True):
        multigets.clear()
        if refuse:  # a server that will not serve the data-carrying REPORT: answered with its refusal
            monkeypatch.setattr(CalDAVConnector, "_sync_report", lambda self, cal, token, *, with_data=False:
                                real_report(self, cal, "http://calmesh.test/not-a-token" if with_data else token))
        with caldav_server.connector() as reader:
            first = reader.changes(calendar, None)
        assert first.complete and first.token and inner(first.token).startswith("sync:")
        assert {i.ref.id for i in first.changed if i.ref} == refs
        got = {i.uid: i for i in first.changed}
        assert [c.summary for c in got["series@test"].components] == ["series", "moved"]
        assert got["series@test"].components[1].start == at(3, 11)
        if caldav_server.kind == "radicale" and not refuse:
            assert multigets == []
        else:
            assert sum(multigets) == 2


def test_etag_fallback_for_huge_calendars_lists_everything_on_change(caldav_server: CalDAVServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the token size limit the ETag map becomes a hash: a change yields a complete listing."""
    monkeypatch.setattr("calmesh.connectors.caldav._MAX_MAP_TOKEN", 0)
    calendar = caldav_server.new_calendar()
    with caldav_server.connector(sync_collection=False) as connector:
        connector.put(calendar, single("one@test", at(1, 9)))
        first = connector.changes(calendar, None)
        assert first.token and inner(first.token).startswith("etaghash:")
        assert connector.changes(calendar, first.token) == type(first)([], [], first.token)
        connector.put(calendar, single("two@test", at(1, 10)))
        later = connector.changes(calendar, first.token)
        assert later.complete and sorted(i.uid for i in later.changed) == ["one@test", "two@test"]


# ------------------------------------------------------------------------------------ errors
def test_wrong_password_is_an_authentication_error(caldav_server: CalDAVServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    if not caldav_server.checks_passwords:
        pytest.skip("Xandikos authenticates only over TLS (--htpasswd needs --autocert)")
    monkeypatch.setenv("CALMESH_TEST_WRONG_PASSWORD", "not-the-password")
    with caldav_server.connector(password_env="CALMESH_TEST_WRONG_PASSWORD") as connector:
        with pytest.raises(AuthenticationError, match="credentials refused"):
            connector.calendars()
        [answer] = connector.freebusy([FreeBusyRequest(OWNER)], WEEK)
    assert answer.errors and "credentials refused" in answer.errors[0].message


def test_missing_password_variable_is_an_authentication_error(caldav_server: CalDAVServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALMESH_TEST_UNSET_PASSWORD", raising=False)
    with caldav_server.connector(password_env="CALMESH_TEST_UNSET_PASSWORD") as connector:
        with pytest.raises(AuthenticationError, match="CALMESH_TEST_UNSET_PASSWORD"):
            connector.calendars()


def test_server_down_is_transient() -> None:
    settings = CalDAVSettings(kind="caldav", url=f"http://127.0.0.1:{free_port()}/", username="x", timeout=2)
    connector = CalDAVConnector("down", settings)
    connector.sleep = lambda _s: None
    with pytest.raises(TransientError, match="unreachable"):
        connector.calendars()
    with pytest.raises(TransientError):
        connector.changes("http://127.0.0.1:1/cal/", None)


def test_server_that_never_answers_times_out_as_transient() -> None:
    with socket.socket() as listener:  # accepts connections (kernel backlog) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        connector = CalDAVConnector("stuck", CalDAVSettings(kind="caldav", url=url, username="x", timeout=0.5))
        connector.retry = RetryPolicy(attempts=1)
        with pytest.raises(TransientError, match="timed out"):
            connector.calendars()


class _OneWriteAtATime(QuietHandler):
    """Stores one PUT at a time, as Xandikos does (each is a Git commit under one lock), and
    answers 423 Locked to a PUT arriving meanwhile. The next PUT stored once ``crowd`` is set
    takes until that many others were refused so, or 1 s: writes sent together meet the lock.
    ``held`` first PUTs are refused whatever comes, as by a lock someone else holds. Logs every
    answer."""

    answers: list[int] = []
    held = crowd = 0
    storing = threading.Lock()
    refused = threading.Semaphore(0)

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls = type(self)
        status = 423
        if cls.held:
            cls.held -= 1
        elif cls.storing.acquire(blocking=False):
            try:
                crowd, cls.crowd = cls.crowd, 0
                for _ in range(crowd):
                    if not cls.refused.acquire(timeout=1):
                        break
                status = 201
            finally:
                cls.storing.release()
        else:
            cls.refused.release()
        cls.answers.append(status)
        self.send_empty(status, f'"{len(cls.answers)}"' if status == 201 else None)


@contextmanager
def _one_write_at_a_time(held: int = 0) -> Iterator[str]:
    _OneWriteAtATime.answers, _OneWriteAtATime.held, _OneWriteAtATime.crowd = [], held, 0
    _OneWriteAtATime.refused = threading.Semaphore(0)
    with serving(_OneWriteAtATime) as url:
        yield url


def test_a_locked_resource_is_transient_and_the_write_is_retried() -> None:
    """423 Locked (RFC 4918) is a lock that will be released, a WebDAV lock or the server's own
    while it commits a concurrent write: the write is asked again at once, in turn, then, still
    refused (a lock someone else holds), retried later like any transient failure, not failed (a
    failed write waits for the next run). Loopback server: a lock cannot be timed on a real one."""
    with _one_write_at_a_time(held=2) as url:
        connector = CalDAVConnector("locked", CalDAVSettings(kind="caldav", url=url, timeout=10.0))
        item = single("locked@test", at(1, 10))
        with pytest.raises(TransientError, match="HTTP 423"):
            connector.put(url, item)
        assert _OneWriteAtATime.answers == [423, 423]
        ref = with_retries(lambda: connector.put(url, item), policy=RetryPolicy(attempts=2, base_delay=0.01))
        assert (ref.etag, _OneWriteAtATime.answers) == ('"3"', [423, 423, 201])


def test_writes_refused_while_another_is_stored_are_made_one_at_a_time() -> None:
    """Eight writes made four at a time (``[hub] sync_write_workers = 4``), under a sync run's
    retry budget of three failures, on a server that stores one write at a time and refuses the
    others meanwhile (423 Locked): every write lands and the budget is not spent. The writes sent
    beside one being stored meet a 423 (the server holds it until three did, or 1 s); the
    connector then makes them in turn. Before, each 423 was charged to the run, which gave up on
    the platform at the third. (The calendar's first write, which goes alone, is made first.)"""
    with _one_write_at_a_time() as url:
        connector = CalDAVConnector("serial", CalDAVSettings(kind="caldav", url=url, timeout=10.0))
        connector.put(url, single("first@test", at(1, 9)))
        _OneWriteAtATime.answers, _OneWriteAtATime.crowd = [], 3
        with retry_budget(RetryBudget(3)):
            contexts = [copy_context() for _ in range(8)]

        def write(n: int) -> ItemRef:
            return contexts[n].run(with_retries, lambda: connector.put(url, single(f"w{n}@test", at(1, 10))),
                                   policy=RetryPolicy(attempts=3, base_delay=0.01))

        with ThreadPoolExecutor(4) as pool:
            refs = list(pool.map(write, range(8)))
        assert len({r.etag for r in refs}) == 8
        assert _OneWriteAtATime.answers.count(201) == 8


class _LockedThenTogether(QuietHandler):
    """Refuses the first ``held`` PUTs with 423 Locked, as a lock someone else holds would, then
    stores every PUT, each once ``together`` PUTs are in flight at once (or, after 10 s, anyway,
    counted in ``alone``)."""

    held = 0
    together: threading.Barrier
    alone = 0

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls = type(self)
        if cls.held:
            cls.held -= 1
            self.send_empty(423)
            return
        try:
            cls.together.wait(timeout=10)
        except threading.BrokenBarrierError:
            cls.alone += 1
        self.send_empty(201, f'"{uuid.uuid4().hex}"')


def test_writes_go_together_again_once_a_lock_is_shown_to_be_someone_elses() -> None:
    """A 423 Locked met by a write sent alone cannot come from the connector's own writes (a
    client's WebDAV LOCK on one object, another program writing): after it, writes are sent
    together again. Before, one such lock made the connector write one at a time until the
    process ended (``calmesh serve`` for months). Loopback server: the first two PUTs are refused,
    then four writes are each held until four are in flight together."""
    _LockedThenTogether.held, _LockedThenTogether.alone = 2, 0
    _LockedThenTogether.together = threading.Barrier(4)
    with serving(_LockedThenTogether) as url:
        try:
            connector = CalDAVConnector("locked", CalDAVSettings(kind="caldav", url=url, timeout=30.0))
            with pytest.raises(TransientError, match="HTTP 423"):
                connector.put(url, single("locked@test", at(1, 10)))  # refused together, then alone
            with ThreadPoolExecutor(4) as pool:
                refs = list(pool.map(lambda n: connector.put(url, single(f"w{n}@test", at(1, 11))), range(4)))
            assert len({r.etag for r in refs}) == 4
            assert _LockedThenTogether.alone == 0
        finally:
            _LockedThenTogether.together.abort()


class _SlowFirstWrite(QuietHandler):
    """Takes 0.3 s over the first PUT it gets, as Xandikos takes over its first write to a
    calendar (it reads every object's UID then), counting the PUTs that arrive meanwhile; stores
    every PUT (201 with an ETag)."""

    puts = beside_first = 0
    lock = threading.Lock()
    first_done = threading.Event()

    def do_PUT(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls = type(self)
        with cls.lock:
            cls.puts += 1
            first = cls.puts == 1
            cls.beside_first += not first and not cls.first_done.is_set()
        if first:
            time.sleep(0.3)
            cls.first_done.set()
        self.send_empty(201, f'"{cls.puts}"')


def test_the_first_write_to_a_calendar_goes_alone() -> None:
    """Eight writes made four at a time: none reaches the server while the first is being
    stored, then they go together. Xandikos reads every object's UID on its first write to a
    calendar (0.85 s at 1,000 objects, 0.04 s for the next write), and each write sent beside it
    did so again: four first writes at once took 3.6 s each. Loopback server: a real one cannot
    say what arrived while it was busy."""
    _SlowFirstWrite.puts = _SlowFirstWrite.beside_first = 0
    _SlowFirstWrite.first_done = threading.Event()
    with serving(_SlowFirstWrite) as url:
        connector = CalDAVConnector("first", CalDAVSettings(kind="caldav", url=url, timeout=10.0))
        with ThreadPoolExecutor(4) as pool:
            refs = list(pool.map(lambda n: connector.put(url, single(f"f{n}@test", at(1, 10))), range(8)))
        assert len(refs) == 8 and (_SlowFirstWrite.puts, _SlowFirstWrite.beside_first) == (8, 0)


class _PairedReports(MultistatusHandler):
    """Answers every REPORT with an empty multistatus once another one is in flight beside it
    (a barrier of two: a lone request waits up to 10 s) and 0.3 s more, counting the most in
    flight at once; a PROPFIND with a calendar collection, nothing more."""

    inside = most = lone = 0
    lock = threading.Lock()
    pair = threading.Barrier(2, timeout=10)

    def do_REPORT(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls = type(self)
        with cls.lock:
            cls.inside += 1
            cls.most = max(cls.most, cls.inside)
        try:
            cls.pair.wait()
        except threading.BrokenBarrierError:  # no other request came beside it
            with cls.lock:
                cls.lone += 1
            cls.pair.reset()
        time.sleep(0.3)  # held in flight: a third request let through meanwhile would be counted
        with cls.lock:
            cls.inside -= 1
        self.send_multistatus(b'<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:"/>')

    def do_PROPFIND(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_multistatus(
            f'<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:" '
            f'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:response><d:href>{self.path}</d:href><d:propstat>'
            '<d:prop><d:resourcetype><d:collection/><c:calendar/></d:resourcetype></d:prop>'
            '<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>'.encode())


def test_answers_computed_together_share_the_platforms_request_slots() -> None:
    """Two free/busy answers of four people each, asked at once of a platform allowing two
    requests in flight (``parallel_requests``): the server never has more than two REPORTs at
    once, and has two (each REPORT is answered only once another is in flight beside it).
    Bounded per answer, the two answers had four in flight: a burst of askers multiplied the
    load a vendor's throttling budget counts per account. Loopback server: no real server lets
    a test see how many requests it holds at once."""
    _PairedReports.inside = _PairedReports.most = 0
    with serving(_PairedReports) as url:
        connector = CalDAVConnector("paired", CalDAVSettings(kind="caldav", url=url, timeout=30.0,
                                                             parallel_requests=2))
        people = [FreeBusyRequest(f"p{n}@test", (f"{url}p{n}/",)) for n in range(4)]
        with ThreadPoolExecutor(2) as pool:
            answers = list(pool.map(lambda _n: connector.freebusy(people, WEEK), range(2)))
        assert [[p.busy for p in answer] for answer in answers] == [[[]] * 4] * 2
        assert all(not p.errors for answer in answers for p in answer)
        assert _PairedReports.most == 2


class _PairedReportsBehindLogin(_PairedReports):
    """:class:`_PairedReports` asking for a login on REPORT only (a 401 with a Basic challenge to
    a REPORT without it), its PROPFINDs open: a server that asks on some paths only."""

    login = "Basic " + base64.b64encode(b"u:secret").decode()

    def do_REPORT(self) -> None:  # noqa: N802
        if self.headers.get("Authorization") == self.login:
            return super().do_REPORT()
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="paired"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return None


@pytest.mark.parametrize("handler", [_PairedReports, _PairedReportsBehindLogin],
                         ids=["never asks", "asks on REPORT only"])
def test_a_server_answering_without_a_login_gets_requests_together(
        handler: type[_PairedReports], monkeypatch: pytest.MonkeyPatch) -> None:
    """A connector given credentials, against a server that answered without asking for any:
    later requests go out together, two REPORTs in flight at once (each is answered only once
    another is beside it), instead of one at a time waiting for a 401 that never comes (a
    Xandikos, or a server behind a proxy that logs in for it). Where the server does ask later,
    on REPORT only, the requests refused because another learnt its scheme meanwhile are asked
    once more, with it: every answer arrives, with no error. Loopback server, as above."""
    monkeypatch.setenv("CALMESH_TEST_PAIRED_PASSWORD", "secret")
    handler.inside = handler.most = handler.lone = 0
    with serving(handler) as url:
        connector = CalDAVConnector("paired", CalDAVSettings(
            kind="caldav", url=url, timeout=30.0, parallel_requests=2, username="u",
            password_env="CALMESH_TEST_PAIRED_PASSWORD"))
        assert [c.id for c in connector.calendars()] == [url]  # a PROPFIND, answered without a login
        people = [FreeBusyRequest(f"p{n}@test", (f"{url}p{n}/",)) for n in range(6)]
        answer = connector.freebusy(people, WEEK)
        assert [p.busy for p in answer] == [[]] * 6 and all(not p.errors for p in answer)
        assert handler.most == 2 and handler.lone == 0


def test_missing_calendar_is_not_found(caldav_server: CalDAVServer) -> None:
    with caldav_server.connector() as connector:
        with pytest.raises(NotFoundError):
            connector.events(caldav_server.home + "missing/", WEEK)


@pytest.mark.parametrize("sync_collection", [True, False], ids=["sync-collection", "etag-map"])
def test_unreadable_objects_are_reported_never_deleted(xandikos: CalDAVServer, sync_collection: bool) -> None:
    """A stored object calmesh cannot read travels in ``ChangeSet.unreadable`` with the reason,
    so that sync quarantines it instead of taking its absence from ``changed`` for a deletion.
    (Xandikos stores an object with impossible dates; Radicale refuses it on PUT.)"""
    connector = xandikos.connector(sync_collection=sync_collection)
    calendar = xandikos.new_calendar()
    connector.put(calendar, single("fine@test", at(3, 10)))
    assert put_raw(xandikos, calendar, "bad-dates.ics", MALFORMED["bad-dates"]).status_code in (201, 204)
    first = connector.changes(calendar, None)
    assert first.complete and [i.uid for i in first.changed] == ["fine@test"]
    ((ref, problem),) = first.unreadable
    assert ref.id.endswith("bad-dates.ics") and "DTSTART" in problem.message
    connector.put(calendar, single("later@test", at(4, 10)))
    after = connector.changes(calendar, first.token)
    assert [i.uid for i in after.changed] == ["later@test"] and not after.deleted


def test_concurrent_first_requests_all_log_in(radicale: CalDAVServer) -> None:
    """A fresh connector asked by many threads at once (free/busy fans out per person): every
    request logs in. The caldav library learns the server's auth scheme from the first 401 and
    refuses any later 401 once it has, so a request that left before the scheme was learnt and
    came back after used to fail as "refused the login" with a right password."""
    calendar = radicale.new_calendar()
    for _round in range(5):
        conn = radicale.connector()
        barrier = threading.Barrier(12)

        def first(_: int, conn: CalDAVConnector = conn, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            return len(conn.items(calendar)[0])

        with ThreadPoolExecutor(12) as pool:
            assert list(pool.map(first, range(12))) == [0] * 12
        conn.close()


def test_two_connectors_reaching_their_servers_first_on_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caldav library fills a class-wide table on its first client, publishing it before
    filling it: two connectors building their clients at once (a first sync of two CalDAV
    platforms reads them side by side) must not see it half made. The library's filling is slowed
    here so that the two builds meet; no server is contacted."""
    from caldav.compatibility_hints import FeatureSet

    monkeypatch.delattr(FeatureSet, "_feature_tree", raising=False)
    fill = FeatureSet._dots_to_tree

    def slowly(target: dict[str, Any], source: dict[str, Any]) -> None:
        time.sleep(0.2)
        fill(target, source)

    monkeypatch.setattr(FeatureSet, "_dots_to_tree", staticmethod(slowly))
    monkeypatch.setenv("CALMESH_TEST_RACE_PASSWORD", "secret")
    connectors = [CalDAVConnector(name, CalDAVSettings(kind="caldav", url=f"http://127.0.0.1:9/{name}/", username="u",
                                                       password_env="CALMESH_TEST_RACE_PASSWORD"))
                  for name in ("zoho", "nextcloud")]
    with ThreadPoolExecutor(2) as pool:
        clients = list(pool.map(lambda c: c._dav(), connectors))
    assert len({id(c) for c in clients}) == 2
