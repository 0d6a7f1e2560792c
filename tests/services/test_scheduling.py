"""Cross-platform scheduling on real platforms: ICS folders (the ICS connector) and an in-house
SQLite table (the SQL connector), people in Paris, New York and Tokyo across the end of US daylight
saving time, and iMIP through a real SMTP server (aiosmtpd on 127.0.0.1) whose received messages
are parsed back as iTIP."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import time, timedelta
from pathlib import Path

import pytest
from meeting_world import ALICE, CARLA, FARID, PARIS, caldav_config, config, meeting, put, utc

from calmesh.core.slots import Availability
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    CalendarItem,
    EventStatus,
    PartStat,
    Role,
    Window,
)
from calmesh.services import itip, scheduling
from calmesh.services.detection import stored_item
from calmesh.services.hub import Hub
from calmesh.vavailability import VAvailabilityError, working_hours
from conftest import SmtpInbox

NOW = utc(10, 25, 12)
FORTNIGHT = Window(utc(10, 26, 0), utc(11, 7, 0))


@pytest.fixture
def hub(tmp_path: Path, smtp_inbox: SmtpInbox) -> Iterator[Hub]:
    with Hub(config(tmp_path, smtp_port=smtp_inbox.port)) as h:
        yield h


def search(hub: Hub, *required: str, optional: tuple[str, ...] = (), **options: object) -> scheduling.TimeSearch:
    request = scheduling.MeetingRequest(ALICE, tuple(required), optional, timedelta(hours=1), FORTNIGHT,
                                        max_candidates=200, **options)  # type: ignore[arg-type]
    return scheduling.find_time(hub, request, now=NOW)


def test_paris_and_new_york_overlap_moves_with_us_dst(hub: Hub) -> None:
    found = search(hub, CARLA, optional=(FARID,))
    starts = sorted(s.start for s in found.search.suggestions)
    # Before 1 November New York is UTC-4: Carla starts 08:30 EDT = 12:30 UTC; Alice (CET) ends 17:00 UTC.
    assert [s for s in starts if s.date() == utc(10, 26, 0).date()][0] == utc(10, 26, 12, 30)
    assert [s for s in starts if s.date() == utc(10, 26, 0).date()][-1] == utc(10, 26, 16)
    # After, New York is UTC-5: 08:30 EST = 13:30 UTC.
    assert [s for s in starts if s.date() == utc(11, 3, 0).date()][0] == utc(11, 3, 13, 30)
    assert not [s for s in starts if s.weekday() >= 5]
    first = found.search.suggestions[0]
    farid = next(a for a in first.attendees if a.email == FARID)
    assert not farid.required and farid.outside_working_hours  # Tokyo is asleep
    assert found.people[2].working_hours is not None and found.people[2].working_hours.timezone == "Asia/Tokyo"
    assert not [p.errors for p in found.people if p.errors]


def test_tokyo_hours_come_from_vavailability(hub: Hub) -> None:
    found = search(hub, FARID)
    monday = sorted(s.start for s in found.search.suggestions if s.start.date() == utc(10, 26, 0).date())
    assert monday == [utc(10, 26, 8), utc(10, 26, 8, 30), utc(10, 26, 9)]  # 09:00-11:00 Paris = 17:00-19:00 Tokyo


def test_busy_buffers_tentative_and_unknown(hub: Hub, tmp_path: Path) -> None:
    put(tmp_path, "exchange", CARLA,
        meeting("c-busy", utc(10, 26, 12, 30), 60, "Pipeline review"),
        meeting("c-maybe", utc(10, 26, 15), 60, "Maybe", status=EventStatus.TENTATIVE))
    found = search(hub, CARLA, "zed@elsewhere.example", buffer_before=timedelta(minutes=15))
    monday = {s.start: s for s in found.search.suggestions if s.start.date() == utc(10, 26, 0).date()}
    assert min(monday) == utc(10, 26, 14)  # 13:30 ends the meeting; 15 minutes of buffer push to 14:00
    statuses = {a.email: a.availability for a in monday[utc(10, 26, 15)].attendees}
    assert statuses[CARLA] is Availability.TENTATIVE
    assert statuses["zed@elsewhere.example"] is Availability.UNKNOWN
    assert any("directory" in str(e) for e in found.people[2].errors)


def test_no_common_time_is_explained(hub: Hub) -> None:
    found = search(hub, CARLA, FARID)
    assert found.search.suggestions == []
    assert "working hours" in (found.search.empty_reason or "")


def book_request(start_hour: int = 14) -> scheduling.BookingRequest:
    start = utc(10, 27, start_hour)
    return scheduling.BookingRequest(ALICE, (CARLA,), start, start + timedelta(hours=1), "Atlas kick-off",
                                     optional=(FARID,), location="Room 4")


def test_book_writes_the_organiser_copy_and_invites_everyone_with_one_uid(
        hub: Hub, smtp_inbox: SmtpInbox) -> None:
    booking = scheduling.book(hub, book_request(), now=NOW)
    methods = {d.email: d.method for d in booking.deliveries}
    assert methods == {ALICE: "organizer", CARLA: "calendar", FARID: "email"}

    mine = stored_item(hub, "zoho", f"{ALICE}.ics", booking.uid).components[0]
    assert mine.organizer == Attendee(ALICE, "Alice Martin", PartStat.ACCEPTED, Role.CHAIR)
    assert {a.email: a.role for a in mine.attendees} == {ALICE: Role.CHAIR, CARLA: Role.REQUIRED, FARID: Role.OPTIONAL}
    assert mine.tzid == "Europe/Paris" and mine.start == utc(10, 27, 14).astimezone(PARIS)

    carla_copy = stored_item(hub, "exchange", f"{CARLA}.ics", booking.uid).components[0]
    assert carla_copy.extra[MARKER_PROPERTY] == f"zoho/{ALICE}.ics/{booking.uid}"
    assert carla_copy.partstat_of(CARLA) is PartStat.NEEDS_ACTION

    ((recipients, raw),) = smtp_inbox.messages
    assert recipients == [FARID]
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert "23:00" in received.get_body(preferencelist=("plain",)).get_content()  # 14:00 UTC in Tokyo
    method, data = itip.calendar_part(received)
    parsed = itip.parse(data)
    assert method == "REQUEST" and parsed.method == "REQUEST" and parsed.item.uid == booking.uid


def test_book_refuses_a_slot_that_became_busy(hub: Hub, tmp_path: Path) -> None:
    found = search(hub, CARLA)
    slot = found.search.suggestions[0]
    put(tmp_path, "exchange", CARLA, meeting("late", slot.start - timedelta(minutes=30), 60, "Booked meanwhile"))
    request = scheduling.BookingRequest(ALICE, (CARLA,), slot.start, slot.end, "Too late")
    with pytest.raises(scheduling.SlotTaken, match="carla@agency.example \\(busy\\) became busy") as caught:
        scheduling.book(hub, request, now=NOW)
    assert caught.value.busy[0][0] == CARLA
    items, _ = hub.connector("zoho").items(f"{ALICE}.ics")
    assert not [i for i in items if i.components[0].summary == "Too late"]  # nothing was written


def test_optional_attendee_busy_only_warns(hub: Hub, tmp_path: Path) -> None:
    put(tmp_path, "zoho", FARID, meeting("f-busy", utc(10, 27, 14), 60, "Dinner"))
    booking = scheduling.book(hub, book_request(), now=NOW)
    assert any(FARID in w and "busy" in w for w in booking.warnings)


def test_reply_and_cancel_update_the_copies(hub: Hub, smtp_inbox: SmtpInbox) -> None:
    booking = scheduling.book(hub, book_request(), now=NOW)
    carla_copy = stored_item(hub, "exchange", f"{CARLA}.ics", booking.uid)
    reply = itip.imip_message(itip.reply(carla_copy, CARLA, PartStat.ACCEPTED), "REPLY", CARLA, [ALICE],
                              "Accepted: Atlas kick-off", "Carla accepted.")
    done = scheduling.process_message(hub, bytes(reply))
    assert done.changes == [f"{CARLA} ACCEPTED"] and done.updated == [f"zoho:{ALICE}.ics"]
    organiser_copy = stored_item(hub, "zoho", f"{ALICE}.ics", booking.uid)
    assert organiser_copy.components[0].partstat_of(CARLA) is PartStat.ACCEPTED

    done = scheduling.process_message(hub, itip.cancel(organiser_copy))  # a bare .ics this time
    assert set(done.updated) == {f"zoho:{ALICE}.ics", f"exchange:{CARLA}.ics"}
    for platform, owner in (("zoho", ALICE), ("exchange", CARLA)):
        copy = stored_item(hub, platform, f"{owner}.ics", booking.uid).components[0]
        assert copy.status is EventStatus.CANCELLED


def test_inbox_refuses_what_it_cannot_apply(hub: Hub) -> None:
    booking = scheduling.book(hub, book_request(), now=NOW)
    organiser_copy = stored_item(hub, "zoho", f"{ALICE}.ics", booking.uid)
    with pytest.raises(itip.ITIPError, match="REPLY and CANCEL"):
        scheduling.process_message(hub, itip.request(organiser_copy))
    with pytest.raises(itip.ITIPError, match="not an attendee"):
        event = organiser_copy.components[0]
        forged = CalendarItem(event.uid, [event.with_changes(attendees=[Attendee("mallory@evil.example")])])
        scheduling.process_message(hub, itip.reply(forged, "mallory@evil.example", PartStat.DECLINED))
    with pytest.raises(itip.ITIPError):
        scheduling.process_message(hub, b"Subject: hello\r\n\r\njust text\r\n")


def test_without_smtp_an_email_invitation_is_reported_failed(tmp_path: Path) -> None:
    with Hub(config(tmp_path)) as hub:
        booking = scheduling.book(hub, book_request(), now=NOW)
    farid = next(d for d in booking.deliveries if d.email == FARID)
    assert farid.method == "failed" and "[smtp]" in (farid.detail or "")


def test_bad_requests_are_clear(hub: Hub) -> None:
    with pytest.raises(scheduling.SchedulingError, match="not in the people directory"):
        scheduling.find_time(hub, scheduling.MeetingRequest("nobody@agency.example", (CARLA,), window=FORTNIGHT),
                             now=NOW)
    with pytest.raises(scheduling.SchedulingError, match="in the past"):
        scheduling.book(hub, book_request(), now=utc(12, 1, 0))
    with pytest.raises(scheduling.SchedulingError, match="end must be after start"):
        scheduling.BookingRequest(ALICE, (CARLA,), utc(10, 27, 14), utc(10, 27, 13), "x")


def test_across_two_caldav_servers_and_email(radicale, xandikos, smtp_inbox: SmtpInbox,  # type: ignore[no-untyped-def]
                                             tmp_path: Path) -> None:
    """Alice on Radicale books Carla on Xandikos (written into her calendar) and Farid (iMIP);
    Carla's REPLY then updates Alice's copy on Radicale with If-Match. One UID everywhere."""
    with Hub(caldav_config(tmp_path, radicale, xandikos, smtp_port=smtp_inbox.port)) as hub:
        alice_home = hub.directory.get(ALICE).calendars[0]
        carla_home = hub.directory.get(CARLA).calendars[0]
        hub.connector("xandikos").put(carla_home, CalendarItem("c-busy", [
            meeting("c-busy", utc(10, 27, 12, 30), 60, "Pipeline review")]))
        found = scheduling.find_time(hub, scheduling.MeetingRequest(
            ALICE, (CARLA,), (FARID,), timedelta(hours=1), FORTNIGHT, max_candidates=200), now=NOW)
        assert not [p.errors for p in found.people if p.errors]
        tuesday = sorted(s.start for s in found.search.suggestions if s.start.date() == utc(10, 27, 0).date())
        assert tuesday[0] == utc(10, 27, 13, 30)  # 12:30-13:30 UTC is Carla's pipeline review on Xandikos
        wednesday_after_dst = sorted(s.start for s in found.search.suggestions
                                     if s.start.date() == utc(11, 4, 0).date())
        assert wednesday_after_dst[0] == utc(11, 4, 13, 30)

        start = tuesday[0]
        booking = scheduling.book(hub, scheduling.BookingRequest(
            ALICE, (CARLA,), start, start + timedelta(hours=1), "Atlas kick-off", optional=(FARID,)), now=NOW)
        assert {d.email: (d.method, d.platform) for d in booking.deliveries} == {
            ALICE: ("organizer", "radicale"), CARLA: ("calendar", "xandikos"), FARID: ("email", None)}
        carla_copy = stored_item(hub, "xandikos", carla_home, booking.uid)
        ((_, raw),) = smtp_inbox.messages
        _, data = itip.calendar_part(email.message_from_bytes(raw, policy=email.policy.default))
        assert itip.parse(data).item.uid == booking.uid == carla_copy.uid

        reply = itip.reply(carla_copy, CARLA, PartStat.TENTATIVE)
        done = scheduling.process_message(hub, reply)
        assert done.updated == [f"radicale:{alice_home}"]
        organiser_copy = stored_item(hub, "radicale", alice_home, booking.uid).components[0]
        assert organiser_copy.partstat_of(CARLA) is PartStat.TENTATIVE

        with pytest.raises(scheduling.SlotTaken, match="alice@agency.example"):
            scheduling.book(hub, scheduling.BookingRequest(
                ALICE, (CARLA,), start, start + timedelta(minutes=30), "Clash"), now=NOW)


def vavailability(*blocks: str, priority: int | None = None, start: str | None = None) -> str:
    head = "BEGIN:VAVAILABILITY\r\nUID:v\r\nDTSTAMP:20260101T000000Z\r\n"
    head += f"PRIORITY:{priority}\r\n" if priority is not None else ""
    head += f"DTSTART:{start}\r\n" if start else ""
    body = "".join(f"BEGIN:AVAILABLE\r\nUID:a{n}\r\nDTSTAMP:20260101T000000Z\r\n{b}END:AVAILABLE\r\n"
                   for n, b in enumerate(blocks))
    return head + body + "END:VAVAILABILITY\r\n"


def calendar(*components: str) -> str:
    return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + "".join(components) + "END:VCALENDAR\r\n"


WEEKDAYS_NY = ("DTSTART;TZID=America/New_York:20260105T080000\r\nDTEND;TZID=America/New_York:20260105T160000\r\n"
               "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR\r\n")


def test_vavailability_priority_and_skipped_components() -> None:
    saturday_once = "DTSTART;TZID=America/New_York:20260110T100000\r\nDURATION:PT2H\r\n"
    summer = ("DTSTART;TZID=America/New_York:20260706T070000\r\nDTEND;TZID=America/New_York:20260706T130000\r\n"
              "RRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH\r\n")
    text = calendar(vavailability(WEEKDAYS_NY, saturday_once),
                    vavailability(summer, priority=1, start="20260701T000000Z"))
    hours, warnings = working_hours(text, at=utc(3, 1, 0))
    assert hours.timezone == "America/New_York" and len(hours.periods) == 1
    assert hours.periods[0].days == frozenset(range(5)) and hours.periods[0].start == time(8)
    assert warnings and "not weekly or daily" in warnings[0]
    summer_hours, _ = working_hours(text, at=utc(7, 15, 0))  # the PRIORITY:1 component now covers
    assert summer_hours.periods[0].days == frozenset(range(4)) and summer_hours.periods[0].end == time(13)


def test_vavailability_errors_are_clear() -> None:
    with pytest.raises(VAvailabilityError, match="no VAVAILABILITY"):
        working_hours(calendar())
    with pytest.raises(VAvailabilityError, match="not an iCalendar"):
        working_hours("hello")
    tokyo = WEEKDAYS_NY.replace("America/New_York", "Asia/Tokyo")
    with pytest.raises(VAvailabilityError, match="several time zones"):
        working_hours(calendar(vavailability(WEEKDAYS_NY, tokyo)))
    with pytest.raises(VAvailabilityError, match="no usable AVAILABLE"):
        working_hours(calendar(vavailability("DTSTART:20260105T220000\r\nDTEND:20260106T020000\r\n"
                                             "RRULE:FREQ=WEEKLY\r\n")))


def test_unreadable_published_hours_fall_back_with_a_warning(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "farid-hours.ics").write_text("garbage")
    with Hub(cfg) as hub:
        found = scheduling.find_time(hub, scheduling.MeetingRequest(ALICE, (FARID,), window=FORTNIGHT), now=NOW)
    farid = found.people[1]
    assert farid.working_hours is None and any("farid-hours.ics" in str(w) for w in farid.warnings)
