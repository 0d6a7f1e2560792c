"""Moving and cancelling a meeting calmesh booked, across real peers: Alice (the organiser) and Bob
on Radicale, David on Exchange (calmesh.fakes.ews: the protocol-faithful EWS fake, spoken to by
the real EWS connector, as no Exchange is reachable here), and Farid who only gets iMIP mail,
received by a real SMTP server (aiosmtpd on 127.0.0.1) and parsed back as iTIP."""

from __future__ import annotations

import email
import email.policy
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from meeting_world import ALICE, FARID, FARID_HOURS, meeting, utc
from sqlalchemy import delete

from calmesh.config import parse_config
from calmesh.fakes.ews import EWSFake
from calmesh.model import CalendarItem, Event, EventStatus, PartStat, Window
from calmesh.services import availability, itip, scheduling
from calmesh.services.detection import stored_item
from calmesh.services.hub import Hub
from calmesh.services.scheduler import owed_deliveries
from calmesh.store.models import MeetingIdentity
from conftest import CalDAVServer, SmtpInbox

BOB, DAVID = "bob@agency.example", "david@agency.example"
EWS_PASSWORD_ENV = "CALMESH_TEST_EWS_PW"
NOW = utc(10, 25, 12)
SLOT = (utc(10, 27, 14), utc(10, 27, 15))


@pytest.fixture
def ews() -> Iterator[EWSFake]:
    fake = EWSFake(users={"svc": "svc-pw"})
    fake.add_mailbox(DAVID, "America/New_York")
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def hub(tmp_path: Path, radicale: CalDAVServer, ews: EWSFake, smtp_inbox: SmtpInbox,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    monkeypatch.setenv(EWS_PASSWORD_ENV, "svc-pw")
    (tmp_path / "mail-only").mkdir()
    (tmp_path / "farid-hours.ics").write_text(FARID_HOURS, newline="")
    text = f"""
[hub]
timezone = "Europe/Paris"
[smtp]
host = "127.0.0.1"
port = {smtp_inbox.port}
sender = "calmesh@agency.example"
[platforms.radicale]
kind = "caldav"
url = "{radicale.url}"
username = "{radicale.username}"
password_env = "{radicale.password_env}"
timeout = 10
[platforms.exchange]
kind = "ews"
service_endpoint = "{ews.ews_url}"
auth = "basic"
username = "svc"
password_env = "{EWS_PASSWORD_ENV}"
server_version = "Exchange2016"
mailboxes = ["{DAVID}"]
[platforms.mailonly]
kind = "ics"
path = "mail-only"

[[people]]
email = "{ALICE}"
name = "Alice Martin"
platform = "radicale"
calendars = ["{radicale.new_calendar('alice')}"]
timezone = "Europe/Paris"
[[people]]
email = "{BOB}"
name = "Bob Stone"
platform = "radicale"
calendars = ["{radicale.new_calendar('bob')}"]
timezone = "Europe/Paris"
[[people]]
email = "{DAVID}"
name = "David Park"
platform = "exchange"
calendars = ["{DAVID}"]
timezone = "America/New_York"
[[people]]
email = "{FARID}"
name = "Farid Haddad"
platform = "mailonly"
timezone = "Asia/Tokyo"
availability = "farid-hours.ics"
invite = "email"
"""
    with Hub(parse_config(text, tmp_path / "calmesh.toml")) as h:
        yield h


def book(hub: Hub, start: datetime = SLOT[0], end: datetime = SLOT[1]) -> scheduling.Booking:
    return scheduling.book(hub, scheduling.BookingRequest(ALICE, (BOB, DAVID), start, end, "Atlas kick-off",
                                                          optional=(FARID,)), now=NOW)


def copy_of(hub: Hub, who: str, uid: str) -> Event:
    person = hub.directory.get(who)
    return stored_item(hub, person.platform, person.calendars[0], uid).components[0]


def mails(inbox: SmtpInbox) -> list[tuple[str, itip.Message, str]]:
    """(method, iTIP message, plain-text body) of every mail received, in order."""
    out = []
    for _recipients, raw in inbox.messages:
        received = email.message_from_bytes(raw, policy=email.policy.default)
        method, data = itip.calendar_part(received)
        out.append((method, itip.parse(data), received.get_body(preferencelist=("plain",)).get_content()))
    return out


def test_move_reschedules_every_copy_and_resets_the_answers(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox) -> None:
    booking = book(hub)
    assert {d.email: d.method for d in booking.deliveries} == {
        ALICE: "organizer", BOB: "calendar", DAVID: "calendar", FARID: "email"}
    accepted = itip.reply(stored_item(hub, "radicale", hub.directory.get(BOB).calendars[0], booking.uid),
                          BOB, PartStat.ACCEPTED)
    scheduling.process_message(hub, accepted)
    assert copy_of(hub, ALICE, booking.uid).partstat_of(BOB) is PartStat.ACCEPTED

    # half an hour later: the new slot overlaps the meeting's own current time, which must not block it
    new_start, new_end = SLOT[0] + timedelta(minutes=30), SLOT[1] + timedelta(minutes=30)
    moved = scheduling.move_booking(hub, booking.uid, ALICE, new_start, new_end, now=NOW)
    assert {d.email: d.method for d in moved.deliveries} == {
        ALICE: "organizer", BOB: "calendar", DAVID: "calendar", FARID: "email"}

    mine = copy_of(hub, ALICE, booking.uid)
    assert (mine.start, mine.end, mine.sequence) == (new_start, new_end, 1)
    assert mine.partstat_of(BOB) is PartStat.NEEDS_ACTION and mine.partstat_of(ALICE) is PartStat.ACCEPTED
    bob = copy_of(hub, BOB, booking.uid)
    assert (bob.start, bob.sequence, bob.partstat_of(BOB)) == (new_start, 1, PartStat.NEEDS_ACTION)
    david = copy_of(hub, DAVID, booking.uid)  # the EWS connector keeps no SEQUENCE or PARTSTAT: the time shows
    assert (david.start, david.end) == (new_start, new_end)
    assert len([i for i in ews.items.values() if i.mailbox == DAVID]) == 1  # updated in place, not added
    assert ews.invitations_sent == []  # calmesh tells people itself; Exchange must not mail them too

    (_, invitation, _), (method, update, body) = mails(smtp_inbox)
    assert invitation.item.components[0].sequence == 0
    sent = update.item.components[0]
    assert method == "REQUEST" and update.item.uid == booking.uid
    assert (sent.start, sent.sequence, sent.partstat_of(FARID)) == (new_start, 1, PartStat.NEEDS_ACTION)
    assert "23:30" in body and "moved" in body  # 14:30 UTC in Tokyo


def test_a_move_without_an_end_keeps_the_meetings_length(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox) -> None:
    booking = book(hub)
    new_start = SLOT[0] + timedelta(days=1)
    scheduling.move_booking(hub, booking.uid, ALICE, new_start, now=NOW)
    for who in (ALICE, BOB, DAVID):  # CalDAV and Exchange copies alike
        copy = copy_of(hub, who, booking.uid)
        assert (copy.start, copy.end) == (new_start, new_start + (SLOT[1] - SLOT[0]))


def test_a_move_onto_a_busy_slot_changes_nothing(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox) -> None:
    booking = book(hub)
    ews.add_item(DAVID, CalendarItem("d-busy", [meeting("d-busy", utc(10, 27, 16, 30), 60, "Pipeline")]))
    before = {who: copy_of(hub, who, booking.uid) for who in (ALICE, BOB, DAVID)}
    with pytest.raises(scheduling.SlotTaken, match="david@agency.example \\(busy\\)"):
        scheduling.move_booking(hub, booking.uid, ALICE, utc(10, 27, 16), utc(10, 27, 17), now=NOW)
    assert {who: copy_of(hub, who, booking.uid) for who in (ALICE, BOB, DAVID)} == before
    assert len(smtp_inbox.messages) == 1  # the invitation only


def test_cancel_withdraws_every_copy(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox) -> None:
    booking = book(hub)
    cancelled = scheduling.cancel_booking(hub, booking.uid, ALICE, now=NOW, reason="Client postponed")
    assert {d.email: d.method for d in cancelled.deliveries} == {
        ALICE: "organizer", BOB: "calendar", DAVID: "calendar", FARID: "email"}
    for who in (ALICE, BOB):
        copy = copy_of(hub, who, booking.uid)
        assert (copy.status, copy.sequence, copy.transparent) == (EventStatus.CANCELLED, 1, True)
    assert copy_of(hub, DAVID, booking.uid).transparent  # Exchange shows it Free, as it does a cancellation
    assert ews.invitations_sent == []

    people = availability.freebusy(hub, [ALICE, BOB, DAVID], Window(*SLOT))
    assert [p.busy for p in people] == [[], [], []] and not [p.errors for p in people if p.errors]

    method, message, body = mails(smtp_inbox)[-1]
    sent = message.item.components[0]
    assert method == message.method == "CANCEL" and message.item.uid == booking.uid
    assert (sent.status, sent.sequence) == (EventStatus.CANCELLED, 1)
    assert "Client postponed" in body and "cancelled" in body
    with pytest.raises(scheduling.Unchangeable, match="already cancelled"):
        scheduling.cancel_booking(hub, booking.uid, ALICE, now=NOW)


def test_what_cannot_be_moved_or_cancelled_is_refused(hub: Hub) -> None:
    booking = book(hub)
    with pytest.raises(scheduling.BookingNotFound, match="no meeting with UID nope@agency.example"):
        scheduling.cancel_booking(hub, "nope@agency.example", ALICE, now=NOW)
    with pytest.raises(scheduling.NotOrganiser, match=f"{BOB} is an attendee of .*; only {ALICE} "
                                                      r"\(its organiser\) can move it"):
        scheduling.move_booking(hub, booking.uid, BOB, utc(10, 28, 9), utc(10, 28, 10), now=NOW)
    with pytest.raises(scheduling.SchedulingError, match="in the past"):
        scheduling.move_booking(hub, booking.uid, ALICE, utc(10, 20, 9), utc(10, 20, 10), now=NOW)
    with pytest.raises(scheduling.SchedulingError, match="end must be after start"):
        scheduling.move_booking(hub, booking.uid, ALICE, utc(10, 28, 10), utc(10, 28, 9), now=NOW)


def test_a_copy_changed_meanwhile_is_not_overwritten(hub: Hub, radicale: CalDAVServer, smtp_inbox: SmtpInbox,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice edits the meeting in her own client just after calmesh read it: Radicale answers the
    If-Match write with 412, and nothing is written or sent."""
    booking = book(hub)
    home = hub.directory.get(ALICE).calendars[0]

    def read_then_edit(hub_: Hub, platform: str, calendar: str, uid: str, item_id: str | None = None) -> CalendarItem:
        item = stored_item(hub_, platform, calendar, uid, item_id)
        if calendar == home:
            edited = CalendarItem(uid, [item.components[0].with_changes(summary="Edited by Alice")], item.ref)
            radicale.connector().put(home, edited, if_match=item.ref.etag if item.ref else None)
        return item

    with monkeypatch.context() as patched, pytest.raises(scheduling.ChangedMeanwhile,
                                                         match="changed in the calendar of alice@agency.example"):
        patched.setattr(scheduling, "stored_item", read_then_edit)
        scheduling.cancel_booking(hub, booking.uid, ALICE, now=NOW)
    assert copy_of(hub, ALICE, booking.uid).summary == "Edited by Alice"
    assert copy_of(hub, BOB, booking.uid).status is EventStatus.CONFIRMED
    assert len(smtp_inbox.messages) == 1


def test_an_attendee_on_exchange_never_takes_the_meeting_over(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox) -> None:
    """Issue 12, item 1: the EWS fake (like Exchange) makes David, the mailbox owner, ORGANIZER of
    his copy; that copy must not let him move or cancel Alice's meeting, and Alice keeps it."""
    booking = book(hub)
    assert copy_of(hub, DAVID, booking.uid).organizer.email == DAVID  # what Exchange does
    before = {who: copy_of(hub, who, booking.uid) for who in (ALICE, BOB, DAVID)}
    with pytest.raises(scheduling.NotOrganiser, match=f"{DAVID} is an attendee of {booking.uid}; "
                                                      f"only {ALICE} \\(its organiser\\) can move it"):
        scheduling.move_booking(hub, booking.uid, DAVID, utc(10, 28, 14), utc(10, 28, 15), now=NOW)
    with pytest.raises(scheduling.NotOrganiser, match=f"only {ALICE} \\(its organiser\\) can cancel it"):
        scheduling.cancel_booking(hub, booking.uid, DAVID, now=NOW)
    with pytest.raises(scheduling.NotOrganiser, match=f"{FARID} is an attendee"):
        scheduling.cancel_booking(hub, booking.uid, FARID, now=NOW)
    assert {who: copy_of(hub, who, booking.uid) for who in (ALICE, BOB, DAVID)} == before
    assert len(smtp_inbox.messages) == 1  # the invitation only

    moved = scheduling.move_booking(hub, booking.uid, ALICE, utc(10, 28, 14), utc(10, 28, 15), now=NOW)
    assert moved.deliveries[0].email == ALICE
    mine = copy_of(hub, ALICE, booking.uid)
    assert mine.organizer.email == ALICE and mine.partstat_of(ALICE) is PartStat.ACCEPTED


def test_sequence_rises_on_every_change(hub: Hub, smtp_inbox: SmtpInbox) -> None:
    """Each move and the cancel carry a SEQUENCE above the last, on every copy and in every mail,
    even when a platform reads SEQUENCE back lower than it was written."""
    booking = book(hub)
    scheduling.move_booking(hub, booking.uid, ALICE, utc(10, 28, 9), utc(10, 28, 10), now=NOW)
    scheduling.move_booking(hub, booking.uid, ALICE, utc(10, 28, 11), utc(10, 28, 12), now=NOW)
    assert copy_of(hub, ALICE, booking.uid).sequence == copy_of(hub, BOB, booking.uid).sequence == 2
    # Alice's client writes the meeting back with SEQUENCE 0: the record still knows better
    person = hub.directory.get(ALICE)
    stored = stored_item(hub, "radicale", person.calendars[0], booking.uid)
    hub.connector("radicale").put(person.calendars[0], CalendarItem(
        booking.uid, [stored.components[0].with_changes(sequence=0)], stored.ref),
        if_match=stored.ref.etag if stored.ref else None)
    scheduling.cancel_booking(hub, booking.uid, ALICE, now=NOW)
    assert copy_of(hub, ALICE, booking.uid).sequence == copy_of(hub, BOB, booking.uid).sequence == 3
    assert [m.item.components[0].sequence for _, m, _ in mails(smtp_inbox)] == [0, 1, 2, 3]
    assert hub.identities().get(booking.uid).sequence == 3


def test_a_meeting_without_a_record_is_changed_only_by_its_own_organiser(hub: Hub) -> None:
    """A meeting booked before calmesh kept identity records: a copy calmesh wrote (it carries the
    marker) grants nothing, whatever its ORGANIZER says; the organiser's own copy does, and the
    meeting is then recorded."""
    booking = book(hub)
    sessions = hub.identities()._sessions
    with sessions() as session, session.begin():
        session.execute(delete(MeetingIdentity))
    with pytest.raises(scheduling.NotOrganiser, match="one calmesh wrote .*only its organiser can move it"):
        scheduling.move_booking(hub, booking.uid, DAVID, utc(10, 28, 14), utc(10, 28, 15), now=NOW)
    assert hub.identities().get(booking.uid) is None
    scheduling.move_booking(hub, booking.uid, ALICE, utc(10, 28, 14), utc(10, 28, 15), now=NOW)
    assert hub.identities().get(booking.uid).organizer == ALICE


THUNDERBIRD_MEETING = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r
BEGIN:VEVENT\r
UID:tb-own-meeting@agency.example\r
DTSTAMP:20261020T090000Z\r
DTSTART:20261027T140000Z\r
DTEND:20261027T150000Z\r
SUMMARY:Budget review\r
ORGANIZER:mailto:alice@agency.example\r
ATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@agency.example\r
ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob@agency.example\r
CATEGORIES:Finance,Q4\\, draft\r
URL:https://intranet.agency.example/budget?q=4\r
ATTACH;FMTTYPE=text/plain;ENCODING=BASE64;VALUE=BINARY:aGVsbG8=\r
X-ALT-DESC;FMTTYPE=text/html:<p>Bring the <b>numbers</b></p>\r
X-MOZ-GENERATION:3\r
PRIORITY:1\r
END:VEVENT\r
END:VCALENDAR\r
"""
KEPT_LINES = ("CATEGORIES:Finance,Q4\\, draft", "URL:https://intranet.agency.example/budget?q=4",
              "ATTACH;ENCODING=BASE64;FMTTYPE=text/plain;VALUE=BINARY:aGVsbG8=",
              "X-ALT-DESC;FMTTYPE=text/html:<p>Bring the <b>numbers</b></p>", "X-MOZ-GENERATION:3", "PRIORITY:1")


def test_moving_and_cancelling_keep_what_the_organisers_client_wrote(hub: Hub, radicale: CalDAVServer) -> None:
    """Alice made the meeting in her own client, which wrote properties calmesh has no field for
    (categories, a link, an attachment, an HTML description, its own X- properties): moving and
    cancelling it through calmesh rewrite her item on Radicale and keep every one of them (they
    were dropped). The attendee's REPLY carries none of them."""
    home = hub.directory.get(ALICE).calendars[0]
    uid = "tb-own-meeting@agency.example"
    response = httpx.put(f"{home}tb-own.ics", content=THUNDERBIRD_MEETING.encode(),
                         auth=(radicale.username, radicale.password), headers={"Content-Type": "text/calendar"})
    assert response.status_code == 201

    def raw() -> str:
        text = httpx.get(f"{home}tb-own.ics", auth=(radicale.username, radicale.password)).text
        return text.replace("\r\n ", "").replace("\n ", "")

    scheduling.move_booking(hub, uid, ALICE, utc(10, 28, 14), utc(10, 28, 15), now=NOW)
    moved = raw()
    assert "DTSTART" in moved and "20261028T" in moved
    assert [line for line in KEPT_LINES if line not in moved] == []
    scheduling.cancel_booking(hub, uid, ALICE, now=NOW)
    cancelled = raw()
    assert "STATUS:CANCELLED" in cancelled
    assert [line for line in KEPT_LINES if line not in cancelled] == []
    answer = itip.reply(stored_item(hub, "radicale", home, uid), BOB, PartStat.ACCEPTED).decode()
    assert not [line for line in KEPT_LINES if line.partition(":")[0].partition(";")[0] in answer]


def test_a_move_an_attendees_calendar_missed_is_delivered_once_it_is_back(hub: Hub, ews: EWSFake,
                                                                          smtp_inbox: SmtpInbox) -> None:
    """Exchange stops answering (the fake is stopped: connections are refused) while Alice moves
    her meeting: David's copy is owed, not forgotten. Retried while Exchange is still down it
    stays owed; once Exchange listens again at its address, the copy gets the new time, once."""
    booking = book(hub)
    ews.stop()
    new_start, new_end = SLOT[0] + timedelta(hours=2), SLOT[1] + timedelta(hours=2)
    moved = scheduling.move_booking(hub, booking.uid, ALICE, new_start, new_end, now=NOW)
    david = next(d for d in moved.deliveries if d.email == DAVID)
    assert (david.method, david.owed, david.calendar) == ("email", True, DAVID)  # mailed now, written later
    assert copy_of(hub, BOB, booking.uid).start == new_start  # the others are told at once

    again = scheduling.redeliver(hub, now=NOW)
    assert [(t.uid, t.delivery.email, t.delivery.method, t.delivery.owed) for t in again] == [
        (booking.uid, DAVID, "failed", True)]
    owed = next(c for c in hub.identities().get(booking.uid).copies if c.platform == "exchange")
    assert (owed.owed, owed.attempts) == (True, 2) and owed.error

    ews.start()
    assert [(t.delivery.email, t.delivery.method) for t in scheduling.redeliver(hub, now=NOW)] == [(DAVID, "calendar")]
    copy = copy_of(hub, DAVID, booking.uid)
    assert (copy.start, copy.end) == (new_start, new_end)
    assert len([i for i in ews.items.values() if i.mailbox == DAVID]) == 1  # the copy moved, not a second one
    delivered = next(c for c in hub.identities().get(booking.uid).copies if c.platform == "exchange")
    assert (delivered.owed, delivered.attempts, delivered.error) == (False, 0, None)
    assert scheduling.redeliver(hub, now=NOW) == []
    assert ews.invitations_sent == []


def test_an_owed_copy_gets_the_meeting_as_it_is_now(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox) -> None:
    """Moved, then cancelled, while David's Exchange was down: what is owed him is the meeting as
    its organiser's copy holds it now (cancelled), not each change in turn. A meeting already
    over by the time its platform is back is owed nothing more."""
    booking = book(hub)
    ews.stop()
    scheduling.move_booking(hub, booking.uid, ALICE, SLOT[0] + timedelta(hours=2), now=NOW)
    scheduling.cancel_booking(hub, booking.uid, ALICE, now=NOW)
    ews.start()
    assert [(t.delivery.email, t.delivery.method) for t in scheduling.redeliver(hub, now=NOW)] == [(DAVID, "calendar")]
    copy = copy_of(hub, DAVID, booking.uid)
    assert copy.transparent and copy.start == SLOT[0] + timedelta(hours=2)

    later = book(hub, SLOT[0] + timedelta(days=1), SLOT[1] + timedelta(days=1))
    ews.stop()
    scheduling.move_booking(hub, later.uid, ALICE, SLOT[0] + timedelta(days=1, hours=2), now=NOW)
    ews.start()
    [over] = scheduling.redeliver(hub, now=SLOT[1] + timedelta(days=2))  # over: given up, not retried
    assert (over.uid, over.delivery.method, over.delivery.owed) == (later.uid, "failed", False)
    assert over.delivery.detail == "given up: the meeting is over"
    assert scheduling.redeliver(hub, now=SLOT[1] + timedelta(days=2)) == []
    assert not any(c.owed for c in hub.identities().get(later.uid).copies)
    assert copy_of(hub, DAVID, later.uid).start == SLOT[0] + timedelta(days=1)


def test_a_move_waits_for_the_owed_copy_being_written(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Alice moves the meeting again (from the web page, say) while the watch loop writes the
    copy owed to David: the move waits for that write, so the last one David's copy gets is the
    move's, not the older owed version."""
    booking = book(hub)
    ews.stop()
    scheduling.move_booking(hub, booking.uid, ALICE, SLOT[0] + timedelta(hours=2), now=NOW)
    ews.start()
    final = SLOT[0] + timedelta(hours=4)
    held, moved = _move_during_redelivery(hub, hub, booking.uid, final, monkeypatch)
    assert held == [True]  # the move waited while this meeting's owed copy was written
    assert {d.email: d.method for d in moved.deliveries}[DAVID] == "calendar"
    assert copy_of(hub, DAVID, booking.uid).start == final


def test_the_watch_loop_writes_owed_copies_and_says_so(hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """The chore ``calmesh serve`` and ``calmesh sync --watch`` run every minute: a copy still
    owed is a warning naming the meeting and why, a copy written an info line."""
    ahead = timedelta(weeks=52 * 20)  # the chore asks at the real time: a meeting still to come
    booking = book(hub, SLOT[0] + ahead, SLOT[1] + ahead)
    ews.stop()
    scheduling.move_booking(hub, booking.uid, ALICE, SLOT[0] + ahead + timedelta(hours=2), now=NOW)
    every, deliver = owed_deliveries(hub)
    assert every == 60
    with caplog.at_level(logging.INFO, logger="calmesh.services.scheduler"):
        deliver()
        assert f"could not yet deliver meeting {booking.uid}, owed to {DAVID} (exchange)" in caplog.text
        ews.start()
        deliver()
        assert f"delivered meeting {booking.uid}, owed to {DAVID} (exchange)" in caplog.text
    assert copy_of(hub, DAVID, booking.uid).start == SLOT[0] + ahead + timedelta(hours=2)


def test_a_mail_the_smtp_server_deferred_is_sent_once_it_takes_it(hub: Hub, ews: EWSFake,
                                                                  smtp_inbox: SmtpInbox) -> None:
    """Farid only gets mail. The SMTP server (aiosmtpd on loopback) answers 451 "try again later"
    while Alice moves the meeting, then cancels it: the mail is owed, and once the server takes
    mail again Farid gets one CANCEL (the meeting as it is now), not each change in turn. A 550
    (no such mailbox) is a refusal for good: given up, said, not retried."""
    booking = book(hub)
    smtp_inbox.refusal = "451 4.3.0 Mail server temporarily unavailable"
    moved = scheduling.move_booking(hub, booking.uid, ALICE, SLOT[0] + timedelta(hours=2), now=NOW)
    farid = next(d for d in moved.deliveries if d.email == FARID)
    assert (farid.method, farid.owed) == ("failed", True) and "451" in (farid.detail or "")
    scheduling.cancel_booking(hub, booking.uid, ALICE, now=NOW)
    again = scheduling.redeliver(hub, now=NOW)
    assert [(t.delivery.email, t.delivery.method, t.delivery.owed) for t in again] == [(FARID, "failed", True)]
    assert len(smtp_inbox.messages) == 1  # the first invitation only

    smtp_inbox.refusal = None
    assert [(t.delivery.email, t.delivery.method) for t in scheduling.redeliver(hub, now=NOW)] == [(FARID, "email")]
    (_, first, _), (method, last, body) = mails(smtp_inbox)
    assert method == "CANCEL" and last.item.uid == booking.uid and "cancelled" in body
    assert last.item.components[0].sequence == 2 and first.item.components[0].sequence == 0
    assert scheduling.redeliver(hub, now=NOW) == []  # sent once
    assert not [c for c in hub.identities().get(booking.uid).copies if c.email == FARID]

    other = book(hub, SLOT[0] + timedelta(days=1), SLOT[1] + timedelta(days=1))
    smtp_inbox.refusal = "550 5.1.1 No such mailbox"
    refused = next(d for d in scheduling.move_booking(hub, other.uid, ALICE, SLOT[0] + timedelta(days=1, hours=2),
                                                      now=NOW).deliveries if d.email == FARID)
    assert (refused.method, refused.owed) == ("failed", False)
    assert scheduling.redeliver(hub, now=NOW) == []


def test_a_move_in_another_process_waits_for_the_owed_copy_being_written(hub: Hub, ews: EWSFake,
                                                                         smtp_inbox: SmtpInbox,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """As above, but the move is made by another process (another hub on the same state store,
    as the web server beside ``calmesh sync --watch``): the hold on the meeting's record keeps
    it waiting, so David's copy ends with the move's time, not the older owed one."""
    booking = book(hub)
    ews.stop()
    scheduling.move_booking(hub, booking.uid, ALICE, SLOT[0] + timedelta(hours=2), now=NOW)
    ews.start()
    final = SLOT[0] + timedelta(hours=4)
    with Hub(hub.config) as server:
        held, moved = _move_during_redelivery(hub, server, booking.uid, final, monkeypatch)
    assert held == [True]  # the other process's move waited for the hold on the meeting
    assert {d.email: d.method for d in moved.deliveries}[DAVID] == "calendar"
    assert copy_of(hub, DAVID, booking.uid).start == final


def test_an_owed_copy_of_a_meeting_organised_on_exchange_keeps_its_cancellation(
        hub: Hub, ews: EWSFake, smtp_inbox: SmtpInbox, radicale: CalDAVServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """David organises on Exchange, which reads a cancelled meeting back as Free, with no STATUS
    and no SEQUENCE. Bob's Radicale calendar stops taking writes (a refused connection) while
    David moves and then cancels: the copy owed to Bob is written from the meeting's record, as
    cancelled with the last SEQUENCE, not as the live, first version Exchange's copy reads as."""
    from calmesh.connectors.base import TransientError
    from calmesh.connectors.caldav import CalDAVConnector

    booking = scheduling.book(hub, scheduling.BookingRequest(DAVID, (BOB,), SLOT[0], SLOT[1], "Pipeline"), now=NOW)
    put = CalDAVConnector.put

    def down(self: CalDAVConnector, calendar: str, item: CalendarItem, if_match: str | None = None) -> object:
        if calendar == hub.directory.get(BOB).calendars[0]:
            raise TransientError(self.name, "connection refused (nothing listens there)")
        return put(self, calendar, item, if_match=if_match)

    with monkeypatch.context() as patched:
        patched.setattr(CalDAVConnector, "put", down)
        scheduling.move_booking(hub, booking.uid, DAVID, SLOT[0] + timedelta(hours=2), now=NOW)
        scheduling.cancel_booking(hub, booking.uid, DAVID, now=NOW)
    assert copy_of(hub, DAVID, booking.uid).status is EventStatus.CONFIRMED  # how Exchange reads it back
    assert [t.delivery.method for t in scheduling.redeliver(hub, now=NOW)] == ["calendar"]
    bob = copy_of(hub, BOB, booking.uid)
    assert (bob.status, bob.sequence, bob.start) == (EventStatus.CANCELLED, 2, SLOT[0] + timedelta(hours=2))


def _move_during_redelivery(hub: Hub, mover: Hub, uid: str, start: datetime,
                            monkeypatch: pytest.MonkeyPatch) -> tuple[list[bool], scheduling.Booking]:
    """Write the copies owed on ``hub`` while ``mover`` moves meeting ``uid`` to ``start`` from
    another thread, started as the owed copy is about to be written: whether the move was still
    waiting half a second later (once), and the move's booking once it is done."""
    write_copy, moved, threads, held = scheduling._write_copy, [], [], []

    def move_meanwhile(*args: object, **kwargs: object) -> object:
        if not threads:
            threads.append(threading.Thread(target=lambda: moved.append(
                scheduling.move_booking(mover, uid, ALICE, start, now=NOW))))
            threads[0].start()
            threads[0].join(0.5)
            held.append(not moved)
        return write_copy(*args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as patched:
        patched.setattr(scheduling, "_write_copy", move_meanwhile)
        assert [t.delivery.method for t in scheduling.redeliver(hub, now=NOW)] == ["calendar"]
    threads[0].join(30)
    return held, moved[0]
