"""iTIP messages (RFC 5546) and their delivery as iMIP mail (RFC 6047) through a real SMTP
server (aiosmtpd on 127.0.0.1) whose received messages are parsed back as iTIP."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta

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
