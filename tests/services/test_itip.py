"""iTIP messages (RFC 5546) and their delivery as iMIP mail (RFC 6047) through a real SMTP
server (aiosmtpd on 127.0.0.1) whose received messages are parsed back as iTIP."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from calmesh.config import SmtpConfig
from calmesh.model import Attendee, CalendarItem, Event, EventStatus, PartStat
from calmesh.services import itip
from conftest import SmtpInbox

START = datetime(2026, 12, 1, 14, tzinfo=UTC)


def meeting(sequence: int = 0) -> CalendarItem:
    organizer = Attendee("alice@agency.example", "Alice Martin", PartStat.ACCEPTED)
    event = Event("mtg-1@calmesh", START, START + timedelta(hours=1), "Atlas kick-off", location="Teams",
                  organizer=organizer, sequence=sequence,
                  attendees=[organizer, Attendee("carla@agency.example", "Carla", rsvp=True),
                             Attendee("emma@agency.example", "Emma", rsvp=True)])
    return CalendarItem(event.uid, [event])


def test_request_travels_by_imip_and_parses_back(smtp_inbox: SmtpInbox) -> None:
    config, inbox = SmtpConfig(host="127.0.0.1", port=smtp_inbox.port, sender="calmesh@agency.example"), smtp_inbox
    item = meeting()
    calendar = itip.request(item)
    organizer = item.master.organizer if item.master else None
    message = itip.imip_message(calendar, "REQUEST", config.sender, ["carla@agency.example"],
                                "Invitation: Atlas kick-off", itip.describe(item.components[0], "America/New_York"),
                                organizer)
    itip.send(config, message)
    ((recipients, raw),) = inbox.messages
    assert recipients == ["carla@agency.example"]
    received = email.message_from_bytes(raw, policy=email.policy.default)
    assert "09:00" in received.get_body(preferencelist=("plain",)).get_content()  # 14:00 UTC in New York
    method, data = itip.calendar_part(received)
    assert method == "REQUEST"
    parsed = itip.parse(data)
    assert parsed.method == "REQUEST" and parsed.item.uid == "mtg-1@calmesh"
    assert {a.email for a in parsed.item.components[0].attendees} == {
        "alice@agency.example", "carla@agency.example", "emma@agency.example"}


def test_reply_updates_partstat() -> None:
    item = meeting()
    answer = itip.parse(itip.reply(item, "carla@agency.example", PartStat.ACCEPTED))
    assert answer.method == "REPLY" and [a.email for a in answer.item.components[0].attendees] == ["carla@agency.example"]
    updated = itip.apply_reply(item, answer)
    states = {a.email: a.partstat for a in updated.components[0].attendees}
    assert states["carla@agency.example"] is PartStat.ACCEPTED
    assert states["emma@agency.example"] is PartStat.NEEDS_ACTION


def test_stale_reply_and_strangers_are_refused() -> None:
    answer = itip.parse(itip.reply(meeting(sequence=0), "emma@agency.example", PartStat.DECLINED))
    with pytest.raises(itip.ITIPError, match="stale"):
        itip.apply_reply(meeting(sequence=2), answer)
    with pytest.raises(itip.ITIPError, match="not an attendee"):
        itip.reply(meeting(), "mallory@evil.example", PartStat.ACCEPTED)


def test_cancel_withdraws_the_meeting() -> None:
    message = itip.parse(itip.cancel(meeting(sequence=1)))
    assert message.method == "CANCEL"
    event = message.item.components[0]
    assert event.status is EventStatus.CANCELLED and event.sequence == 2
    assert itip.apply_cancel(meeting(), message) is None


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(itip.ITIPError):
        itip.parse(b"hello")
    with pytest.raises(itip.ITIPError, match="METHOD"):
        itip.parse(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")


NEW_YORK = ZoneInfo("America/New_York")
FALL_BACK = datetime(2026, 11, 1, 1, 30, tzinfo=NEW_YORK)  # the first 01:30 of the night, 05:30Z


def nightly_with_an_override() -> CalendarItem:
    """A daily 01:30 New York meeting whose occurrence on the night the clocks go back (the first
    01:30, RFC 5545 3.3.5) has its own room."""
    organizer = Attendee("alice@agency.example", "Alice Martin", PartStat.ACCEPTED)
    people = [organizer, Attendee("carla@agency.example", "Carla", rsvp=True)]
    start = datetime(2026, 10, 30, 1, 30, tzinfo=NEW_YORK)
    master = Event("night@calmesh", start, start + timedelta(minutes=30), "Night shift", organizer=organizer,
                   attendees=people, rrule=["FREQ=DAILY;COUNT=5"])
    moved = replace(master, start=FALL_BACK, end=FALL_BACK + timedelta(minutes=30), rrule=[],
                    recurrence_id=FALL_BACK, location="Room 2", attendees=list(people))
    return CalendarItem(master.uid, [master, moved])


def test_a_reply_naming_an_occurrence_in_utc_answers_its_override_in_the_repeated_hour() -> None:
    """Outlook answers with RECURRENCE-IDs in UTC. 05:30Z is the stored override's 01:30 in New
    York, but Python's ``==`` never equals a time in the repeated hour to one in another zone
    (PEP 495): the answer became a second override of the same occurrence."""
    stored = nightly_with_an_override()
    answer = itip.parse(itip.reply(stored, "carla@agency.example", PartStat.DECLINED))
    answer.item.components[:] = [replace(e, recurrence_id=FALL_BACK.astimezone(UTC)) for e in answer.item.components]
    updated = itip.apply_reply(stored, answer)
    [override] = [e for e in updated.components if e.recurrence_id is not None]
    assert override.location == "Room 2"
    assert {a.email: a.partstat for a in override.attendees}["carla@agency.example"] is PartStat.DECLINED


def test_a_cancel_naming_an_occurrence_in_utc_cancels_its_override_in_the_repeated_hour() -> None:
    """The same for a CANCEL of that one occurrence: its override is marked cancelled (it was
    left live, and an EXDATE of an instant no instance has was added)."""
    stored = nightly_with_an_override()
    cancel = itip.parse(itip.cancel(stored))
    only = replace(stored.components[1], recurrence_id=FALL_BACK.astimezone(UTC))
    updated = itip.apply_cancel(stored, replace(cancel, item=CalendarItem(stored.uid, [only])))
    assert updated is not None
    master, override = updated.components
    assert override.status is EventStatus.CANCELLED and master.exdate == []
