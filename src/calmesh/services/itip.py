"""iTIP (RFC 5546) scheduling messages and their delivery by iMIP (RFC 6047) email.

calmesh invites people on platforms it cannot write to by sending what every calendar client
understands: a ``METHOD:REQUEST`` calendar in an email. Replies (``METHOD:REPLY``) update the
organiser's copy; ``METHOD:CANCEL`` withdraws a meeting. One UID everywhere, and SEQUENCE
ordering (RFC 5546 2.1.4) decides which message is newer.
"""

from __future__ import annotations

import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import collapse_rfc2231_value, formataddr, make_msgid

import icalendar

from calmesh import ical
from calmesh.config import SmtpConfig, secret
from calmesh.model import (
    Attendee,
    CalendarItem,
    Event,
    EventStatus,
    PartStat,
    Temporal,
    instant,
    normalize_email,
)


class ITIPError(ValueError):
    """A scheduling message that cannot be applied (wrong UID, not an attendee, stale...)."""


# ------------------------------------------------------------------------------ building
def request(item: CalendarItem) -> bytes:
    """``METHOD:REQUEST`` for a whole item (master and overrides): an invitation or an update."""
    _require_organizer(item)
    return ical.item_to_ical(item, method="REQUEST")


def cancel(item: CalendarItem, attendees: Sequence[str] | None = None, *, comment: str | None = None,
           sequence: int | None = None) -> bytes:
    """``METHOD:CANCEL``: the meeting is withdrawn (for everyone, or for the named attendees);
    ``comment`` (the organiser's reason) travels as COMMENT, which RFC 5546 3.2.5 allows.
    ``sequence`` is the cancellation's SEQUENCE when the caller knows a higher one than the
    item's own plus one (the organiser's identity record)."""
    organizer_event = _require_organizer(item)
    wanted = {normalize_email(a) for a in attendees} if attendees else None
    components = []
    for event in item.components:
        kept = [a for a in event.attendees if wanted is None or a.email in wanted]
        components.append(replace(event, status=EventStatus.CANCELLED, sequence=event.sequence + 1 if sequence is None else sequence,
                                  attendees=kept, organizer=organizer_event.organizer,
                                  rrule=list(event.rrule), exdate=list(event.exdate),
                                  extra={**event.extra, "COMMENT": comment} if comment else event.extra))
    return ical.item_to_ical(CalendarItem(item.uid, components), method="CANCEL")


def reply(item: CalendarItem, attendee: str, partstat: PartStat) -> bytes:
    """``METHOD:REPLY`` from one attendee: only that attendee is listed (RFC 5546 3.2.3)."""
    email = normalize_email(attendee)
    components = []
    for event in item.components:
        me = next((a for a in event.attendees if a.email == email), None)
        if me is None:
            raise ITIPError(f"{email} is not an attendee of {item.uid}")
        components.append(replace(event, attendees=[replace(me, partstat=partstat, rsvp=False)],
                                  description=None, location=event.location, unmodelled=()))
    return ical.item_to_ical(CalendarItem(item.uid, components), method="REPLY")


def _require_organizer(item: CalendarItem) -> Event:
    event = item.master or (item.components[0] if item.components else None)
    if event is None or event.organizer is None:
        raise ITIPError(f"{item.uid} has no ORGANIZER: iTIP needs one")
    return event


# ------------------------------------------------------------------------------ receiving
@dataclass(frozen=True, slots=True)
class Message:
    method: str
    item: CalendarItem


def parse(data: str | bytes) -> Message:
    """Read an iTIP calendar (the text/calendar part of an iMIP mail)."""
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise ITIPError(f"not an iCalendar object: {exc}") from exc
    method = str(cal.get("METHOD", "")).upper()
    if method not in {"REQUEST", "REPLY", "CANCEL", "PUBLISH", "COUNTER", "DECLINECOUNTER", "REFRESH", "ADD"}:
        raise ITIPError(f"missing or unknown METHOD {method!r}")
    items, problems = ical.parse_items(data)
    if problems and not items:
        raise ITIPError(str(problems[0]))
    if len(items) != 1:
        raise ITIPError(f"an iTIP message carries exactly one UID, found {len(items)}")
    return Message(method, items[0])


def apply_reply(stored: CalendarItem, message: Message, sent: int | None = None) -> CalendarItem:
    """The organiser's copy with the replying attendee's PARTSTAT updated, per instance.

    A reply to an older SEQUENCE than the stored one is stale and refused (RFC 5546 2.1.5), unless
    it answers ``sent``, the SEQUENCE of the last version the attendees were sent: an organiser who
    edits the meeting in their own client (which raises SEQUENCE) without an update reaching the
    attendees leaves them nothing newer to answer.
    """
    if message.method != "REPLY":
        raise ITIPError(f"expected a REPLY, got {message.method}")
    if message.item.uid != stored.uid:
        raise ITIPError(f"reply is for {message.item.uid}, not {stored.uid}")
    updated = [replace(e, attendees=list(e.attendees)) for e in stored.components]
    for answer in message.item.components:
        if len(answer.attendees) != 1:
            raise ITIPError("a REPLY names exactly one attendee")
        who = answer.attendees[0]
        targets = [e for e in updated if _occurrence(e.recurrence_id) == _occurrence(answer.recurrence_id)]
        if not targets and answer.recurrence_id is not None and stored.master is not None:
            # a reply to a single occurrence of a series: record it as an override of that instance
            master = next(e for e in updated if e.recurrence_id is None)
            override = replace(master, recurrence_id=answer.recurrence_id, start=answer.start, end=answer.end,
                               rrule=[], rdate=[], exdate=[], attendees=list(master.attendees))
            updated.append(override)
            targets = [override]
        for event in targets:
            if answer.sequence < (event.sequence if sent is None else min(event.sequence, sent)):
                raise ITIPError(f"stale reply from {who.email} (SEQUENCE {answer.sequence} < {event.sequence})")
            if not any(a.email == who.email for a in event.attendees):
                raise ITIPError(f"{who.email} is not an attendee of {stored.uid}")
            event.attendees = [replace(a, partstat=who.partstat) if a.email == who.email else a
                               for a in event.attendees]
    return CalendarItem(stored.uid, updated, stored.ref)


def apply_cancel(stored: CalendarItem, message: Message) -> CalendarItem | None:
    """An attendee's copy after a CANCEL: None when the whole meeting is withdrawn, otherwise the
    series with the cancelled occurrences marked cancelled."""
    if message.method != "CANCEL":
        raise ITIPError(f"expected a CANCEL, got {message.method}")
    if message.item.uid != stored.uid:
        raise ITIPError(f"cancel is for {message.item.uid}, not {stored.uid}")
    if any(e.recurrence_id is None for e in message.item.components):
        return None
    cancelled = {_occurrence(e.recurrence_id): e.recurrence_id for e in message.item.components}
    components = [replace(e, status=EventStatus.CANCELLED) if _occurrence(e.recurrence_id) in cancelled else e
                  for e in stored.components]
    master = stored.master
    held = {_occurrence(e.recurrence_id) for e in stored.components}
    for rid in (value for key, value in cancelled.items() if key not in held):
        if master is not None and rid is not None:
            components = [replace(e, exdate=[*e.exdate, rid]) if e.recurrence_id is None else e for e in components]
    return CalendarItem(stored.uid, components, stored.ref)


def _occurrence(recurrence_id: Temporal | None) -> Temporal | None:
    """What names an occurrence in a message and in the stored copy alike: its instant
    (:func:`calmesh.model.instant`). Python's ``==`` takes the two 01:30 of a night the clocks
    go back for one time in one zone, and never matches such a time written in another zone
    (Outlook answers with RECURRENCE-IDs in UTC)."""
    return None if recurrence_id is None else instant(recurrence_id)


# ------------------------------------------------------------------------------ iMIP
def imip_message(calendar: bytes, method: str, sender: str, recipients: Sequence[str], subject: str,
                 body: str, organizer: Attendee | None = None) -> EmailMessage:
    """An RFC 6047 message: a readable text part and the ``text/calendar; method=...`` part."""
    msg = EmailMessage()
    msg["From"] = formataddr((organizer.name or "", sender)) if organizer else sender
    if organizer is not None and organizer.email != normalize_email(sender):
        msg["Reply-To"] = organizer.email
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] if "@" in sender else None)
    msg.set_content(body)
    msg.add_alternative(calendar, maintype="text", subtype="calendar",
                        params={"method": method, "charset": "UTF-8"}, cte="base64")
    msg.add_attachment(calendar, maintype="application", subtype="ics", filename="invite.ics")
    return msg


def calendar_part(message: EmailMessage) -> tuple[str, bytes]:
    """The iTIP method and calendar of an iMIP message (what a receiving side reads)."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            method = collapse_rfc2231_value(part.get_param("method") or "").upper()
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return method, payload
    raise ITIPError("no text/calendar part in this message")


def send(smtp: SmtpConfig, message: EmailMessage) -> None:
    """Deliver one iMIP message through the configured SMTP server."""
    password = secret(smtp.password_env, "smtp.password_env")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=30) as client:
        if smtp.starttls:
            client.starttls()
        if smtp.username and password:
            client.login(smtp.username, password)
        client.send_message(message)


INVITED = "Sent by calmesh on behalf of the organiser. Accept or decline in your calendar."
MOVED = "The organiser moved this meeting (sent by calmesh). Please accept or decline the new time."
CANCELLED = "The organiser cancelled this meeting (sent by calmesh)."
"""Closing lines of the mail bodies: what the recipient is asked to do."""


def describe(event: Event, zone_name: str, note: str = INVITED) -> str:
    """A plain-text summary for the mail body, in the recipient's zone, ending with ``note``."""
    from calmesh.timezones import zoneinfo

    zone = zoneinfo(zone_name)
    start, end = event.span_utc(zone)
    lines = [event.summary or "Meeting",
             f"When: {start.astimezone(zone):%A %d %B %Y, %H:%M}–{end.astimezone(zone):%H:%M} ({zone.key})"]
    if event.location:
        lines.append(f"Where: {event.location}")
    if event.organizer:
        lines.append(f"Organiser: {event.organizer.name or event.organizer.email}")
    if event.attendees:
        lines.append("Attendees: " + ", ".join(a.name or a.email for a in event.attendees))
    lines.append("")
    lines.append(note)
    return "\n".join(lines)
