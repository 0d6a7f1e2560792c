"""Meetings across platforms: find a time, book it, and process the replies.

- :func:`find_time` fans free/busy out to every attendee's platforms (without working-hours
  padding) and hands it to the pure :func:`calmesh.core.slots.find_slots`, which applies each
  person's working hours in their own zone. Working hours come, in this order, from the person's
  published VAVAILABILITY (``availability`` in the config, RFC 7953), their ``working_hours`` in
  the config, then their platform (Exchange). The organiser is always a required attendee.
- :func:`book` re-checks the slot first (an answer may be minutes old: no double booking from a
  stale suggestion), creates the event on the organiser's home calendar through its connector, then
  reaches every other attendee with the same UID: written straight into their home calendar where
  calmesh may (see :func:`delivery_mode`), else by an iMIP ``REQUEST`` mail (RFC 6047).
- :func:`move_booking` and :func:`cancel_booking` change a meeting, but only for its organiser:
  the person who booked it, as the identity record in the state store says
  (:mod:`calmesh.store.identities`), or for a meeting made elsewhere the ORGANIZER of the copy in
  the person's own calendar when that copy is not one calmesh wrote. Platforms put their mailbox
  owner as organiser of every copy (Exchange does), so an attendee's copy never grants authority.
  The organiser's copy is rewritten with If-Match and a SEQUENCE above every one seen or recorded,
  then every attendee is told the same ways :func:`book` invited them (their calendar copy
  rewritten, else an iMIP ``REQUEST`` or ``CANCEL``).
- :func:`process_message` applies an incoming iTIP ``REPLY`` (PARTSTAT) or ``CANCEL`` (from an
  iMIP mail or a bare ``.ics``) to the organiser's stored copy, and a CANCEL also to the copies
  calmesh wrote into attendees' calendars.
"""

from __future__ import annotations

import email
import email.policy
import functools
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from email.message import EmailMessage
from typing import Any, Concatenate, ParamSpec

import httpx

from calmesh import ical
from calmesh.config import PersonConfig, SmtpConfig
from calmesh.connectors.base import (
    CannotHold,
    ConnectorError,
    NotFoundError,
    PreconditionFailed,
    TransientError,
)
from calmesh.core.freebusy import status_in
from calmesh.core.slots import SlotAttendee, SlotQuery, SlotSearch, find_slots
from calmesh.core.syncplan import Notice
from calmesh.directory import UnknownPerson
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    BusyPeriod,
    BusyType,
    CalendarItem,
    Event,
    EventStatus,
    ItemRef,
    PartStat,
    PersonFreeBusy,
    Problem,
    ProblemCode,
    Role,
    Window,
    normalize_email,
    shown,
)
from calmesh.services import availability, itip
from calmesh.services.detection import stored_item
from calmesh.services.hub import Hub
from calmesh.services.public_errors import log_failures, publicise
from calmesh.store.db import StoreError
from calmesh.store.identities import INVITATION, MAIL, CopyRecord, Identity, IdentityRepository
from calmesh.timezones import zoneinfo
from calmesh.vavailability import VAvailabilityError, working_hours


class SchedulingError(ValueError):
    """A request that cannot be carried out, with what to change."""


class BookingNotFound(SchedulingError):
    """No meeting with this UID in the organiser's home calendar."""


class Unchangeable(SchedulingError):
    """The meeting exists but cannot be changed this way (another organiser, already cancelled,
    a recurring series)."""


class NotOrganiser(Unchangeable):
    """The person named as organiser does not organise the meeting (an attendee, or someone
    else): only the organiser, or a user granted over them, changes a meeting."""


class ChangedMeanwhile(SchedulingError):
    """The organiser's copy changed between calmesh reading and writing it (HTTP 412, stale
    ChangeKey): nothing was written or sent, the caller reads again and retries."""


class SlotTaken(SchedulingError):
    """The slot is no longer free for some required attendees (named in ``busy``)."""

    def __init__(self, busy: Sequence[tuple[str, BusyType]]) -> None:
        self.busy = list(busy)
        who = ", ".join(f"{email} ({kind.label.lower()})" for email, kind in self.busy)
        super().__init__(f"the slot is no longer free: {who} became busy since it was suggested; "
                         "search again")


# ------------------------------------------------------------------------------------ find a time
@dataclass(frozen=True, slots=True)
class MeetingRequest:
    organizer: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    duration: timedelta = timedelta(minutes=30)
    window: Window | None = None
    granularity: timedelta = timedelta(minutes=30)
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    minimum_notice: timedelta = timedelta(0)
    max_candidates: int = 10

    def attendees(self) -> list[tuple[str, bool]]:
        """(email, required) with the organiser first and required, each person once."""
        seen: dict[str, bool] = {normalize_email(self.organizer): True}
        for address in self.required:
            seen.setdefault(normalize_email(address), True)
        for address in self.optional:
            seen.setdefault(normalize_email(address), False)
        return list(seen.items())


@dataclass(slots=True)
class TimeSearch:
    search: SlotSearch
    people: list[PersonFreeBusy]
    """Each attendee's free/busy as used (errors say whose data is missing and why)."""


def find_time(hub: Hub, request: MeetingRequest, *, now: datetime) -> TimeSearch:
    """Ranked suggestions for ``request``, as of ``now``."""
    if request.window is None:
        raise SchedulingError("a search window is needed")
    _person(hub, request.organizer, "organiser")
    attendees = request.attendees()
    padded = Window(request.window.start - request.buffer_before, request.window.end + request.buffer_after)
    people = availability.freebusy(hub, [e for e, _ in attendees], padded, working_hours=False)
    _use_published_hours(hub, people, now)
    try:
        query = SlotQuery(
            attendees=tuple(SlotAttendee(fb, required) for fb, (_, required) in zip(people, attendees, strict=True)),
            duration=request.duration, window=request.window, now=now, granularity=request.granularity,
            buffer_before=request.buffer_before, buffer_after=request.buffer_after,
            minimum_notice=request.minimum_notice, max_candidates=request.max_candidates,
            organizer_hours=people[0].working_hours)
    except ValueError as exc:
        raise SchedulingError(str(exc)) from None
    return TimeSearch(find_slots(query), people)


def _person(hub: Hub, address: str, what: str) -> PersonConfig:
    try:
        return hub.directory.get(address)
    except UnknownPerson:
        raise SchedulingError(f"the {what} {address} is not in the people directory") from None


def _use_published_hours(hub: Hub, people: Sequence[PersonFreeBusy], now: datetime) -> None:
    """Replace working hours with a person's published VAVAILABILITY, where configured; a
    source that cannot be read is a warning and the other hours stay."""
    for answer in people:
        person = hub.directory.find(answer.email)
        if person is None or not person.availability:
            continue
        try:
            text = _read_source(hub, person.availability)
            hours, warnings = working_hours(text, default_zone=hub.directory.zone_of(person.email), at=now)
        except (OSError, httpx.HTTPError, VAvailabilityError) as exc:
            answer.warnings.append(Problem("availability", str(exc), person.availability, code=ProblemCode.WORKING_HOURS))
            continue
        answer.working_hours = hours
        answer.warnings.extend(Problem("availability", w, person.availability, code=ProblemCode.WORKING_HOURS)
                               for w in warnings)


def _read_source(hub: Hub, source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        response = httpx.get(source, timeout=hub.config.hub.freebusy_timeout, follow_redirects=True)
        response.raise_for_status()
        return response.content
    return hub.config.resolve_path(source).read_bytes()


# ------------------------------------------------------------------------------------ booking
@dataclass(frozen=True, slots=True)
class BookingRequest:
    organizer: str
    required: tuple[str, ...]
    start: datetime
    end: datetime
    summary: str
    optional: tuple[str, ...] = ()
    description: str | None = None
    location: str | None = None
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise SchedulingError("start and end need a time zone")
        if self.end <= self.start:
            raise SchedulingError("end must be after start")
        if not self.summary.strip():
            raise SchedulingError("a meeting needs a title")


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one attendee was reached: ``calendar`` (written into it), ``email`` (iMIP),
    ``organizer`` (the organiser's own copy) or ``failed`` (``detail`` says why)."""

    email: str
    method: str
    platform: str | None = None
    calendar: str | None = None
    detail: str | None = None
    item_id: str | None = None
    """The copy written into the attendee's calendar (``calendar`` deliveries), as recorded."""
    owed: bool = False
    """The write into the attendee's calendar (at ``platform`` and ``calendar``) failed and is
    made again once the platform answers (:func:`redeliver`): it did not answer, or the copy
    changed under the write. The delivery is ``failed``, or ``email`` when the person was mailed
    meanwhile."""


@dataclass(slots=True)
class Booking:
    uid: str
    item: CalendarItem
    ref: ItemRef
    deliveries: list[Delivery] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    adapted: list[Notice] = field(default_factory=list)
    """What a platform written to could not hold as it is, and the form written instead (or
    that it was not written there), as a sync run reports it: never a silent change."""


Mailer = Callable[[SmtpConfig, EmailMessage], None]
P = ParamSpec("P")


def recheck(hub: Hub, request: BookingRequest, *, own_slot: Window | None = None) -> list[str]:
    """Ask every attendee's platforms again for exactly this slot (plus buffers).

    Raises :class:`SlotTaken` when a required attendee is busy or away; returns warnings for
    optional attendees who are, and for anyone whose availability is unknown. ``own_slot`` is
    the current time of a meeting being moved: free/busy carries no UIDs, so that time is cut out
    of everyone's busy periods, or a meeting could never move by less than its own length.
    """
    emails = [e for e, _ in _attendee_roles(request)]
    window = Window(request.start - request.buffer_before, request.end + request.buffer_after)
    answers = availability.freebusy(hub, emails, window, working_hours=False)
    taken, warnings = [], []
    for (address, required), answer in zip(_attendee_roles(request), answers, strict=True):
        known = _without([p for p in answer.busy if p.type is not BusyType.UNKNOWN], own_slot)
        kind = status_in(known, window.start, window.end)
        if kind >= BusyType.BUSY:
            if required:
                taken.append((address, kind))
            else:
                warnings.append(f"optional attendee {address} is {kind.label.lower()} then")
        elif answer.errors or status_in(answer.busy, window.start, window.end) is BusyType.UNKNOWN:
            log_failures(answer.errors, "booking")
            # the booker is granted the organiser, not the attendees: their items are counted, never named
            warnings.append(f"availability of {address} is unknown: "
                            + "; ".join(shown(publicise(answer.errors), details=False)))
    if taken:
        raise SlotTaken(taken)
    return warnings


def _without(periods: list[BusyPeriod], gap: Window | None) -> list[BusyPeriod]:
    """``periods`` with the time of ``gap`` cut out."""
    if gap is None:
        return periods
    out = []
    for p in periods:
        if p.start < gap.start:
            out.append(replace(p, end=min(p.end, gap.start)))
        if p.end > gap.end:
            out.append(replace(p, start=max(p.start, gap.end)))
    return out


def _attendee_roles(request: BookingRequest) -> list[tuple[str, bool]]:
    return MeetingRequest(request.organizer, request.required, request.optional).attendees()


def home_calendar(hub: Hub, person: PersonConfig) -> str:
    """The calendar a person's meetings are booked into: the first configured, else their own."""
    if person.calendars:
        return person.calendars[0]
    return hub.connector(person.platform).calendars_of(person.mailbox or person.email)[0]


def delivery_mode(hub: Hub, person: PersonConfig | None) -> str:
    """``calendar`` or ``email`` for an attendee: the rule documented in docs/scheduling.md.

    People outside the directory get mail. ``invite = "email"`` always mails; ``"calendar"``
    always writes (failing clearly if the platform cannot); ``"auto"`` writes when the home
    platform's connector declares ``write`` capability, and mails otherwise.
    """
    if person is None or person.invite == "email":
        return "email"
    if person.invite == "calendar":
        return "calendar"
    return "calendar" if hub.connector(person.platform).capabilities.write else "email"


def build_item(hub: Hub, request: BookingRequest, *, now: datetime) -> CalendarItem:
    """The meeting as the organiser's copy: organiser CHAIR and accepted, everyone else RSVP."""
    organizer = _person(hub, request.organizer, "organiser")
    zone = zoneinfo(hub.directory.zone_of(organizer.email))
    chair = Attendee(organizer.email, organizer.name, PartStat.ACCEPTED, Role.CHAIR)
    attendees = [chair]
    for address, required in _attendee_roles(request)[1:]:
        known = hub.directory.find(address)
        attendees.append(Attendee(address, known.name if known else None, PartStat.NEEDS_ACTION,
                                  Role.REQUIRED if required else Role.OPTIONAL, rsvp=True))
    domain = organizer.email.rpartition("@")[2]
    event = Event(ical.new_uid(domain), request.start.astimezone(zone), request.end.astimezone(zone),
                  request.summary.strip(), request.description, request.location, organizer=chair,
                  attendees=attendees, created=now, last_modified=now, tzid=zone.key)
    return CalendarItem(event.uid, [event])


def book(hub: Hub, request: BookingRequest, *, now: datetime, mailer: Mailer = itip.send) -> Booking:
    """Re-check, create on the organiser's platform, then invite everyone else (same UID)."""
    if request.start < now:
        raise SchedulingError("the slot is in the past")
    warnings = recheck(hub, request)
    organizer = _person(hub, request.organizer, "organiser")
    item = build_item(hub, request, now=now)
    connector = hub.connector(organizer.platform)
    if not connector.capabilities.write:
        raise SchedulingError(f"the organiser's platform {organizer.platform} cannot be written to")
    calendar = home_calendar(hub, organizer)
    identities = _identities(hub)  # opened first: a meeting nobody could change must not be booked
    adapted: list[Notice] = []
    ref = _put(hub, organizer.platform, calendar, item, None, adapted)
    # recorded before any attendee's copy exists: from now on only the booker may change it
    identity = Identity(item.uid, organizer.email, organizer.platform, calendar, ref.id,
                        item.components[0].sequence, EventStatus.CONFIRMED.value,
                        people=tuple(item.components[0].attendees))
    identities.save(identity)
    notice = _Notice(item, "REQUEST", itip.request(item), "Invitation", itip.INVITED, replaces=False)
    return _tell_attendees(hub, identity, ref, notice, mailer, warnings, adapted)


def _put(hub: Hub, platform: str, calendar: str, item: CalendarItem, if_match: str | None,
         adapted: list[Notice]) -> ItemRef:
    """Write ``item`` as sync writes a copy: noting in ``adapted`` what the platform's form of
    it changes (:meth:`calmesh.connectors.base.Connector.fit`), or that it cannot hold it (then
    :class:`CannotHold` is raised, as the write would)."""
    connector = hub.connector(platform)
    where = f"{platform}:{calendar}"
    try:
        _, adaptations = connector.fit(item)
    except CannotHold as exc:
        adapted.append(Notice(where, item.uid, item.uid, exc.feature, exc.message, written=False))
        raise
    ref = connector.put(calendar, item, if_match=if_match)
    adapted.extend(Notice(where, item.uid, item.uid, a.feature, a.detail) for a in adaptations)
    return ref


@dataclass(frozen=True, slots=True)
class _Notice:
    """What attendees are told, however each is reached: the organiser's version of the meeting
    (written into the calendars calmesh can reach) and the iTIP message mailed to the others."""

    item: CalendarItem
    method: str
    """iTIP method of the mail: REQUEST (an invitation or an update) or CANCEL."""
    message: bytes
    subject: str
    note: str
    """Closing line of the mail body: what the recipient should do."""
    replaces: bool
    """An update: an attendee's existing copy is found by UID and overwritten with If-Match."""
    creates: bool = True
    """Whether a copy missing from an attendee's calendar is created (not for a CANCEL)."""


def _tell_attendees(hub: Hub, identity: Identity, ref: ItemRef, notice: _Notice, mailer: Mailer,
                    warnings: list[str], adapted: list[Notice]) -> Booking:
    """Reach every attendee but the organiser (whose copy is already written at ``ref``), then
    record the meeting's copies, its SEQUENCE and status in its identity record.

    Every copy is marked with the meeting's identity (the organiser's item, named as sync names a
    logical item), so a sync group holding both calendars sees one meeting, not an orphan copy."""
    item = notice.item
    first = item.master or item.components[0]
    booking = Booking(item.uid, item, ref, [Delivery(identity.organizer, "organizer", identity.platform,
                                                     identity.calendar, item_id=ref.id)], warnings, adapted)
    for attendee in first.attendees:
        if attendee.email != identity.organizer:
            booking.deliveries.append(_deliver(hub, notice, attendee.email, identity, mailer, adapted))
    _identities(hub).save(replace(identity, item_id=ref.id, sequence=first.sequence, status=first.status.value,
                                  copies=_copies_after(identity, booking.deliveries), people=tuple(first.attendees)))
    return booking


def _copies_after(identity: Identity, deliveries: Sequence[Delivery]) -> tuple[CopyRecord, ...]:
    """The meeting's copies once ``deliveries`` were made: those written now, those owed now (the
    copy there, if any, is kept on record: it is the one to overwrite), and the others as they
    were."""
    before = {(c.platform, c.calendar): c for c in identity.copies}
    now: dict[tuple[str, str], CopyRecord] = {}
    for d in deliveries:
        if not d.platform and d.method in ("email", "failed"):  # a mail, sent or not: owed only if worth again
            was = before.pop(("", d.email), None)
            if d.owed:
                now[("", d.email)] = CopyRecord(MAIL, "", d.email, None, d.email, identity.logical_id, owed=True,
                                                attempts=(was.attempts if was else 0) + 1, error=d.detail)
            continue
        if not (d.platform and d.calendar):
            continue
        if d.method == "calendar":
            now[(d.platform, d.calendar)] = CopyRecord(INVITATION, d.platform, d.calendar, d.item_id, d.email,
                                                       identity.logical_id)
        elif d.owed:
            was = before.get((d.platform, d.calendar))
            now[(d.platform, d.calendar)] = CopyRecord(
                INVITATION, d.platform, d.calendar, was.item_id if was else None, d.email, identity.logical_id,
                owed=True, attempts=(was.attempts if was and was.owed else 0) + 1, error=d.detail)
    return (*(c for place, c in before.items() if place not in now), *now.values())


def _deliver(hub: Hub, notice: _Notice, address: str, identity: Identity, mailer: Mailer,
             adapted: list[Notice]) -> Delivery:
    """Reach one attendee: into their calendar where calmesh may write it, else (or when that
    write fails and the person accepts mail) by iMIP.

    A calendar write that failed for a reason that passes (:func:`_worth_again`) is owed
    (:func:`redeliver`) when calmesh is the only way the person hears of it (``invite =
    "calendar"``) or when calmesh's copy there already holds an older version: mailed or not,
    that copy would keep showing the old time."""
    person = hub.directory.find(address)
    mode = delivery_mode(hub, person)
    if mode == "calendar" and person is not None:
        calendar = None
        try:
            calendar = home_calendar(hub, person)
            ref = _write_copy(hub, person.platform, calendar, notice, identity, adapted)
            return Delivery(address, "calendar", person.platform, calendar, item_id=ref.id)
        except ConnectorError as exc:
            owed = calendar is not None and _worth_again(exc) and (person.invite == "calendar" or any(
                (c.platform, c.calendar) == (person.platform, calendar) for c in identity.copies))
            if person.invite == "calendar":
                return Delivery(address, "failed", person.platform, calendar, detail=str(exc), owed=owed)
            fallback = f"could not write to {person.platform} ({exc.message}); "
            delivered = _mail(hub, notice, address, mailer)
            detail = fallback + (delivered.detail or "sent by email")
            if owed:  # the copy in their calendar is what is owed (a mail, sent or not, leaves it stale)
                return replace(delivered, detail=detail, platform=person.platform, calendar=calendar, owed=True)
            return replace(delivered, detail=detail)  # the mail itself may be owed
    return _mail(hub, notice, address, mailer)


def _write_copy(hub: Hub, platform: str, calendar: str, notice: _Notice, identity: Identity,
                adapted: list[Notice]) -> ItemRef:
    """Write the meeting into an attendee's calendar, marked as calmesh's (see docs/scheduling.md).

    An update overwrites the copy calmesh wrote before (found where the identity record says it
    was written, else by UID), guarded by its ETag; a copy that is gone (the invitation was mailed,
    or the attendee deleted it) raises :class:`NotFoundError` for a CANCEL, so the caller mails it
    instead, and is written anew otherwise."""
    ref = None
    marker = identity.logical_id
    if notice.replaces:
        written = next((c.item_id for c in identity.copies if (c.platform, c.calendar) == (platform, calendar)), None)
        try:
            ref = stored_item(hub, platform, calendar, notice.item.uid, written).ref
        except NotFoundError:
            if not notice.creates:
                raise
    copy = CalendarItem(notice.item.uid, [replace(e, extra={**e.extra, MARKER_PROPERTY: marker})
                                          for e in notice.item.components], ref)
    return _put(hub, platform, calendar, copy, ref.etag if ref else None, adapted)


def _mail(hub: Hub, notice: _Notice, address: str, mailer: Mailer) -> Delivery:
    smtp = hub.config.smtp
    if smtp is None:
        return Delivery(address, "failed", detail=f"needs an iMIP {notice.method} but no [smtp] is configured")
    event = notice.item.components[0]
    body = itip.describe(event, hub.directory.zone_of(address), notice.note)
    message = itip.imip_message(notice.message, notice.method, smtp.sender, [address],
                                f"{notice.subject}: {event.summary or 'Meeting'}", body, event.organizer)
    try:
        mailer(smtp, message)
    except OSError as exc:  # smtplib errors are OSErrors
        return Delivery(address, "failed", detail=f"SMTP {smtp.host}:{smtp.port} refused or unreachable: {exc}",
                        owed=_mail_again(exc))
    return Delivery(address, "email")


def _mail_again(exc: OSError) -> bool:
    """Whether a mail the SMTP server did not take is owed (sent again later): the server could
    not be reached, dropped the connection, or answered a temporary 4xx; not a refusal for good
    (a 5xx: an unknown recipient, a sender it will not relay for)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return not isinstance(exc, smtplib.SMTPException) or isinstance(exc, smtplib.SMTPServerDisconnected)


def _worth_again(exc: ConnectorError) -> bool:
    """Whether a failed write into an attendee's calendar is owed (made again later): when the
    platform did not answer, or the copy changed between calmesh reading and writing it. Refused
    credentials or a meeting the platform cannot hold would fail the same way every time."""
    return isinstance(exc, TransientError | PreconditionFailed) and not isinstance(exc, CannotHold)


# ------------------------------------------------------------------------------------ owed deliveries
@dataclass(frozen=True, slots=True)
class Redelivery:
    """One owed copy tried by :func:`redeliver`: the meeting (its UID) and how it went."""

    uid: str
    delivery: Delivery


def redeliver(hub: Hub, *, now: datetime, mailer: Mailer = itip.send) -> list[Redelivery]:
    """Write every owed copy (:attr:`Delivery.owed`) whose platform answers again: the meeting as
    its organiser's copy holds it now, as a move or cancellation would have written it then. An
    attendee whose calendar was down while the organiser moved their meeting gets the new time
    once it is back, not the old time for good.

    One :class:`Redelivery` a copy tried, ``calendar`` when written and ``failed`` otherwise: still
    owed when the platform did not answer again, else given up, with why. A meeting that ended
    before ``now`` is given up: rewriting it is of no use to anyone, and a calendar gone for good
    must not be retried forever. A meeting whose organiser's copy cannot be read now is left
    owing, for the next time."""
    identities = _identities(hub)
    done: list[Redelivery] = []
    for owing in identities.owing():
        with hub.changing(owing.uid, wait=0) as holding:  # else being changed: its turn comes next time
            identity = identities.get(owing.uid) if holding else None  # read again: a move may have delivered it
            if identity is not None and any(c.owed for c in identity.copies):
                done.extend(Redelivery(identity.uid, d) for d in _redeliver(hub, identities, identity, now, mailer))
    return done


def _redeliver(hub: Hub, identities: IdentityRepository, identity: Identity, now: datetime,
               mailer: Mailer) -> list[Delivery]:
    try:
        stored = _with_people(hub, identity, stored_item(hub, identity.platform, identity.calendar, identity.uid,
                                                         identity.item_id))
    except NotFoundError:
        stored = None  # the organiser deleted the meeting: nothing is left to deliver
    except ConnectorError as exc:
        log_failures([exc.problem()], "owed deliveries")
        return []
    if stored is None or _over(stored, now):
        why = "the organiser's copy is gone" if stored is None else "the meeting is over"
        tried = [(c, Delivery(c.email or "", "failed", c.platform or None, c.calendar, detail=f"given up: {why}"))
                 for c in identity.copies if c.owed]
    else:
        tried = _deliver_owed(hub, identity, stored, mailer)
    settled = {(c.platform, c.calendar): d for c, d in tried}
    copies = []
    for c in identity.copies:
        d = settled.get((c.platform, c.calendar))
        if not c.owed:
            copies.append(c)
        elif d is not None and d.owed:
            copies.append(replace(c, attempts=c.attempts + 1, error=d.detail))
        elif c.kind == MAIL:
            continue  # sent, or given up: a mail leaves nothing to keep a record of
        elif d is None:
            copies.append(replace(c, owed=False))  # a cancellation of a copy its attendee deleted
        elif d.method == "calendar":
            copies.append(replace(c, item_id=d.item_id, owed=False, attempts=0, error=None))
        else:
            copies.append(replace(c, owed=False, attempts=c.attempts + 1, error=d.detail))
    identities.save(replace(identity, copies=tuple(copies)))
    return [d for _c, d in tried]


def _over(stored: CalendarItem, now: datetime) -> bool:
    first = stored.master or stored.components[0]
    if first.is_recurring_master or len(stored.components) > 1:
        return False  # a series: calmesh books single meetings, and a series is owed till delivered
    return first.span_utc()[1] <= now


def _deliver_owed(hub: Hub, identity: Identity, stored: CalendarItem,
                  mailer: Mailer) -> list[tuple[CopyRecord, Delivery]]:
    """Each owed copy of ``identity`` written (or mailed) as ``stored`` holds the meeting now,
    with how it went; none for a cancellation owed to a copy its attendee deleted."""
    # the record says what was sent last: a platform that keeps no SEQUENCE or STATUS (Exchange
    # shows a cancelled meeting as Free, nothing more) must not turn it into an older or live one
    cancelled = identity.status == EventStatus.CANCELLED.value or \
        (stored.master or stored.components[0]).status is EventStatus.CANCELLED
    told = _as_invited(_as_last_sent(stored, identity.sequence, cancelled), identity)
    first = told.master or told.components[0]
    if cancelled:
        notice = _Notice(told, "CANCEL", itip.cancel(told, sequence=first.sequence), "Cancelled", itip.CANCELLED,
                         replaces=True, creates=False)
    elif first.sequence == 0:
        notice = _Notice(told, "REQUEST", itip.request(told), "Invitation", itip.INVITED, replaces=True)
    else:
        notice = _Notice(told, "REQUEST", itip.request(told), "Moved", itip.MOVED, replaces=True)
    out: list[tuple[CopyRecord, Delivery]] = []
    for copy in identity.copies:
        if not copy.owed:
            continue
        who = copy.email or ""
        if copy.kind == MAIL:
            mailed = _mail(hub, notice, who, mailer)
            given_up = mailed.method == "failed" and not mailed.owed
            out.append((copy, replace(mailed, detail=f"given up: {mailed.detail}") if given_up else mailed))
            continue
        try:
            ref = _write_copy(hub, copy.platform, copy.calendar, notice, identity, [])
        except NotFoundError as exc:
            if not notice.creates:
                continue  # a cancellation of a copy its attendee deleted: nothing to withdraw
            out.append((copy, Delivery(who, "failed", copy.platform, copy.calendar, detail=f"given up: {exc}")))
            continue
        except ConnectorError as exc:
            again = _worth_again(exc)
            out.append((copy, Delivery(who, "failed", copy.platform, copy.calendar,
                                       detail=str(exc) if again else f"given up: {exc}", owed=again)))
            continue
        out.append((copy, Delivery(who, "calendar", copy.platform, copy.calendar, item_id=ref.id)))
    return out


# ------------------------------------------------------------------------------------ move, cancel
def _one_change_at_a_time(change: Callable[Concatenate[Hub, str, P], Booking]) -> Callable[Concatenate[Hub, str, P], Booking]:
    """Run a change of meeting ``uid`` holding it (:meth:`Hub.changing`): from reading the
    organiser's copy to recording what was delivered, no owed copy of it is written meanwhile."""
    @functools.wraps(change)
    def held(hub: Hub, uid: str, /, *args: P.args, **kwargs: P.kwargs) -> Booking:
        with hub.changing(uid) as holding:
            if not holding:
                raise ChangedMeanwhile(_ELSEWHERE.format(uid=uid))
            return change(hub, uid, *args, **kwargs)
    return held


_ELSEWHERE = ("{uid} is being changed by another calmesh process (a move, a reply, or a copy owed to a calendar "
              "that was down); nothing was changed or sent: try again")


@_one_change_at_a_time
def move_booking(hub: Hub, uid: str, organizer: str, new_start: datetime, new_end: datetime | None = None, *,
                 now: datetime, mailer: Mailer = itip.send) -> Booking:
    """Reschedule a meeting (RFC 5546 3.2.2): re-check the new slot as :func:`book` does, then
    write it with SEQUENCE+1 and every attendee's PARTSTAT back to NEEDS-ACTION (they answer
    again), and send the new REQUEST the ways booking sent the first. Without ``new_end`` the
    meeting keeps its length: moving is mostly "the same meeting, another time"."""
    person, identity, stored = _organised(hub, uid, organizer, "move")
    if len(stored.components) != 1 or stored.components[0].is_recurring_master:
        raise Unchangeable(f"{uid} is a recurring series: calmesh moves single meetings only")
    event = stored.components[0]
    zone = zoneinfo(event.tzid or hub.directory.zone_of(person.email))
    if new_end is None:
        begun, ended = event.span_utc(zone)
        new_end = new_start + (ended - begun)
    roles = {a.email: a.role for a in event.attendees if a.email != person.email}
    request = BookingRequest(
        person.email, tuple(e for e, r in roles.items() if r in (Role.REQUIRED, Role.CHAIR)), new_start, new_end,
        event.summary or "Meeting", tuple(e for e, r in roles.items() if r is Role.OPTIONAL))
    if new_start < now:
        raise SchedulingError("the new slot is in the past")
    warnings = recheck(hub, request, own_slot=Window(*event.span_utc(zone)))
    moved = replace(event, start=new_start.astimezone(zone), end=new_end.astimezone(zone),
                    sequence=_next_sequence(identity, stored),
                    last_modified=now, tzid=zone.key,
                    attendees=[a if a.email == person.email else replace(a, partstat=PartStat.NEEDS_ACTION, rsvp=True)
                               for a in event.attendees])
    item = CalendarItem(stored.uid, [moved], stored.ref)
    adapted: list[Notice] = []
    ref = _rewrite(hub, identity, stored, item, adapted)
    told = _as_invited(item, identity)
    notice = _Notice(told, "REQUEST", itip.request(told), "Moved", itip.MOVED, replaces=True)
    return _tell_attendees(hub, identity, ref, notice, mailer, warnings, adapted)


@_one_change_at_a_time
def cancel_booking(hub: Hub, uid: str, organizer: str, *, now: datetime, mailer: Mailer = itip.send,
                   reason: str | None = None) -> Booking:
    """Withdraw a meeting (RFC 5546 3.2.5): every copy calmesh can reach is marked cancelled with
    SEQUENCE+1, the others get an iMIP CANCEL carrying ``reason`` as COMMENT.

    Copies are kept, not deleted, as clients do with a CANCEL: the higher SEQUENCE then makes a
    late REPLY or an old REQUEST stale instead of reviving the meeting, and sync does not take the
    copy's disappearance for a deletion to spread (docs/scheduling.md)."""
    _, identity, stored = _organised(hub, uid, organizer, "cancel")
    sequence = _next_sequence(identity, stored)
    item = CalendarItem(stored.uid, [replace(_withdrawn(e, sequence), last_modified=now)
                                     for e in stored.components], stored.ref)
    adapted: list[Notice] = []
    ref = _rewrite(hub, identity, stored, item, adapted)
    note = itip.CANCELLED + (f"\nReason: {reason}" if reason else "")
    message = itip.cancel(_as_invited(stored, identity), comment=reason, sequence=sequence)
    notice = _Notice(_as_invited(item, identity), "CANCEL", message, "Cancelled", note, replaces=True, creates=False)
    return _tell_attendees(hub, identity, ref, notice, mailer, [], adapted)


def _organised(hub: Hub, uid: str, claimed: str, verb: str) -> tuple[PersonConfig, Identity, CalendarItem]:
    """The organiser, the meeting's identity and the organiser's stored copy of ``uid``, if
    ``claimed`` organises it (else :class:`NotOrganiser`, naming who does).

    The identity record decides when there is one (calmesh booked the meeting). Without one (a
    meeting made elsewhere, or booked before calmesh kept records) the claimed person's own copy
    decides through its ORGANIZER, unless calmesh wrote that copy (it carries the marker): a
    platform names its mailbox owner organiser of every copy, so a copy never grants authority.
    The meeting is then linked: recorded with that organiser, for every later change."""
    person = _person(hub, claimed, "organiser")
    identity = _identities(hub).get(uid)
    if identity is None:
        identity, stored = _link(hub, uid, person, verb)
    else:
        try:
            stored = stored_item(hub, identity.platform, identity.calendar, uid, identity.item_id)
        except NotFoundError:
            raise BookingNotFound(f"the organiser's copy of {uid} is gone from {identity.organizer}'s calendar "
                                  f"({identity.platform}:{identity.calendar})") from None
        if identity.organizer != person.email:
            raise NotOrganiser(_not_organiser(uid, person.email, identity.organizer, stored, verb))
        stored = _with_people(hub, identity, stored)
    first = stored.master or stored.components[0]
    if first.status is EventStatus.CANCELLED or identity.status == EventStatus.CANCELLED.value:
        raise Unchangeable(f"{uid} is already cancelled")
    return _person(hub, identity.organizer, "organiser"), identity, stored


def _link(hub: Hub, uid: str, person: PersonConfig, verb: str) -> tuple[Identity, CalendarItem]:
    """The identity of a meeting calmesh has no record of, from ``person``'s own copy."""
    calendar = home_calendar(hub, person)
    try:
        stored = stored_item(hub, person.platform, calendar, uid)
    except NotFoundError:
        raise BookingNotFound(f"no meeting with UID {uid} in the calendar of {person.email} "
                              f"({person.platform}:{calendar})") from None
    first = stored.master or stored.components[0]
    organizer = first.organizer.email if first.organizer else None
    if stored.marker is not None:
        raise NotOrganiser(f"the copy of {uid} in the calendar of {person.email} is one calmesh wrote "
                           f"({MARKER_PROPERTY}): a copy grants no authority, whatever ORGANIZER its platform "
                           f"gives it; only its organiser can {verb} it")
    if organizer != person.email:
        # who organises a private meeting is one of its details: never told
        who = "someone else" if first.private else organizer or "nobody (it has no ORGANIZER)"
        raise NotOrganiser(f"{uid} is organised by {who}, not {person.email}: only its organiser can {verb} it")
    assert stored.ref is not None
    identity = Identity(uid, person.email, person.platform, calendar, stored.ref.id, first.sequence,
                        first.status.value)
    _identities(hub).save(identity)
    return identity, stored


def _with_people(hub: Hub, identity: Identity, stored: CalendarItem) -> CalendarItem:
    """The organiser's copy with its ORGANIZER and ATTENDEEs, from the identity record when its
    platform keeps none (an in-house table), and with the answers the record holds when its
    platform keeps none (Exchange): a move must re-invite the attendees and a REPLY must find
    the attendee it answers for, whatever the organiser's platform can store."""
    capabilities = hub.connector(identity.platform).capabilities
    if not identity.people or (capabilities.people and capabilities.answers):
        return stored
    chair = next((a for a in identity.people if a.email == identity.organizer), Attendee(identity.organizer))
    answered = {a.email: a.partstat for a in identity.people}

    def completed(e: Event) -> Event:
        if not e.attendees:
            return replace(e, organizer=e.organizer or chair, attendees=list(identity.people))
        return replace(e, attendees=[replace(a, partstat=answered.get(a.email, a.partstat)) for a in e.attendees])

    return replace(stored, components=[completed(e) for e in stored.components])


def _identities(hub: Hub) -> IdentityRepository:
    """The identity record; without it nobody could be told apart from an organiser, so a store
    that cannot be opened refuses the booking or change (before anything is written)."""
    try:
        return hub.identities()
    except StoreError as exc:
        raise SchedulingError(f"the state store, where calmesh records who organises each meeting, cannot be "
                              f"used: {exc}") from None


def _not_organiser(uid: str, claimed: str, organizer: str, stored: CalendarItem, verb: str) -> str:
    first = stored.master or stored.components[0]
    role = "an attendee" if any(a.email == claimed for a in first.attendees) else "not the organiser"
    if first.private:  # who organises a private meeting is one of its details
        return f"{claimed} is {role} of {uid}; only its organiser can {verb} it"
    return f"{claimed} is {role} of {uid}; only {organizer} (its organiser) can {verb} it"


def _next_sequence(identity: Identity, stored: CalendarItem) -> int:
    """One above every SEQUENCE recorded or stored: a platform that reads SEQUENCE back lower
    (or not at all) must never make an update look older than the one before it."""
    return max(identity.sequence, *(e.sequence for e in stored.components)) + 1


def _rewrite(hub: Hub, identity: Identity, stored: CalendarItem, updated: CalendarItem,
             adapted: list[Notice]) -> ItemRef:
    """Replace the organiser's copy only if it is still the version read (If-Match its ETag)."""
    try:
        return _put(hub, identity.platform, identity.calendar, updated, stored.ref.etag if stored.ref else None,
                    adapted)
    except PreconditionFailed:
        raise ChangedMeanwhile(f"{stored.uid} changed in the calendar of {identity.organizer} since calmesh read it; "
                               "nothing was changed or sent: try again") from None


def _as_invited(item: CalendarItem, identity: Identity) -> CalendarItem:
    """The organiser's copy under the UID its attendees were invited with. Microsoft Graph gives
    the organiser's copy a UID of its own; a move or cancellation sent under that one would
    reach the attendees as another meeting, and their answers would find no record of it."""
    if item.uid == identity.uid:
        return item
    return CalendarItem(identity.uid, [replace(e, uid=identity.uid) for e in item.components], item.ref)


def _as_last_sent(stored: CalendarItem, sequence: int, cancelled: bool) -> CalendarItem:
    """``stored`` at no SEQUENCE below ``sequence`` (the last one sent), withdrawn if ``cancelled``."""
    def sent(event: Event) -> Event:
        at = max(event.sequence, sequence)
        return _withdrawn(event, at) if cancelled else replace(event, sequence=at)
    return CalendarItem(stored.uid, [sent(e) for e in stored.components], stored.ref)


def _withdrawn(event: Event, sequence: int) -> Event:
    """A cancelled copy: STATUS:CANCELLED and also TRANSP:TRANSPARENT, because not every platform
    reads STATUS when it answers free/busy (calmesh's Exchange writes set only the Free/Busy
    status, as Exchange itself shows a cancelled meeting as Free)."""
    return replace(event, status=EventStatus.CANCELLED, transparent=True, sequence=sequence)


# ------------------------------------------------------------------------------------ inbox
@dataclass(slots=True)
class Processed:
    method: str
    uid: str
    updated: list[str] = field(default_factory=list)
    """``platform:calendar`` of every copy changed."""
    changes: list[str] = field(default_factory=list)
    """What changed, for a person to read (``carla@... ACCEPTED``)."""


def read_message(data: bytes) -> itip.Message:
    """An iTIP message from an iMIP mail (RFC 6047) or a bare ``.ics``."""
    if data.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        return itip.parse(data)
    mail = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(mail, EmailMessage) or mail.get_content_type() == "text/plain" and not mail.is_multipart():
        raise itip.ITIPError("neither an iCalendar object nor an email with a text/calendar part")
    _method, calendar = itip.calendar_part(mail)
    return itip.parse(calendar)


def process_message(hub: Hub, data: bytes) -> Processed:
    """Apply an incoming REPLY or CANCEL to the organiser's copy (and, for CANCEL, to the copies
    calmesh wrote into attendees' calendars)."""
    message = read_message(data)
    if message.method not in ("REPLY", "CANCEL"):
        raise itip.ITIPError(f"calmesh processes REPLY and CANCEL messages, not {message.method}")
    with hub.changing(message.item.uid) as holding:  # no owed copy of it is written meanwhile (:func:`redeliver`)
        if not holding:
            raise itip.ITIPError(_ELSEWHERE.format(uid=message.item.uid))
        return _process(hub, message)


def _process(hub: Hub, message: itip.Message) -> Processed:
    first = message.item.components[0]
    if first.organizer is None:
        raise itip.ITIPError(f"{message.method} for {message.item.uid} has no ORGANIZER")
    identity = _recorded(hub, message.item.uid)
    if identity is not None and message.method == "CANCEL" and first.organizer.email != identity.organizer:
        raise itip.ITIPError(f"CANCEL for {message.item.uid} does not come from its organiser ({identity.organizer})")
    # the record knows the organiser even when the message names an attendee's mailbox (Exchange)
    address = identity.organizer if identity is not None else first.organizer.email
    organizer = hub.directory.find(address)
    if organizer is None:
        raise itip.ITIPError(f"the organiser {address} is not in the people directory")
    platform, calendar = ((identity.platform, identity.calendar) if identity is not None
                          else (organizer.platform, home_calendar(hub, organizer)))
    result = Processed(message.method, message.item.uid)
    stored = stored_item(hub, platform, calendar, message.item.uid, identity.item_id if identity else None)
    if identity is not None:
        stored = _with_people(hub, identity, stored)
    if stored.uid != message.item.uid:  # found by the recorded id: Graph gave the organiser's copy its own UID
        message = replace(message, item=CalendarItem(stored.uid, [replace(c, uid=stored.uid)
                                                                  for c in message.item.components]))
    if message.method == "REPLY":
        updated = itip.apply_reply(stored, message, sent=identity.sequence if identity is not None else None)
        if identity is None or hub.connector(platform).capabilities.answers:
            _save(hub, platform, calendar, stored, updated, result)
        else:  # the platform would drop the answer (and take the write for a change of the meeting)
            result.changes.append(f"{platform}:{calendar} keeps no attendees' answers: kept in calmesh's record")
        if identity is not None:  # the record keeps the answers, for platforms that cannot
            answered = updated.master or updated.components[0]
            _identities(hub).save(replace(identity, people=tuple(answered.attendees)))
        for answer in message.item.components:
            who = answer.attendees[0]
            result.changes.append(f"{who.email} {who.partstat.value}")
        return result
    stored_organizer = (stored.master or stored.components[0]).organizer
    if identity is None and (stored_organizer is None or stored_organizer.email != first.organizer.email):
        raise itip.ITIPError(f"CANCEL for {stored.uid} does not come from its organiser")
    _cancel(hub, platform, calendar, stored, message, result)
    for attendee in first.attendees:
        person = hub.directory.find(attendee.email)
        if person is None or person.email == organizer.email or delivery_mode(hub, person) != "calendar":
            continue
        try:
            their_calendar = home_calendar(hub, person)
            written = next((c.item_id for c in identity.copies
                            if (c.platform, c.calendar) == (person.platform, their_calendar)), None) if identity else None
            copy = stored_item(hub, person.platform, their_calendar, message.item.uid, written)
        except ConnectorError:
            continue  # never written there (mailed instead, or already removed)
        _cancel(hub, person.platform, their_calendar, copy, message, result)
    return result


def _recorded(hub: Hub, uid: str) -> Identity | None:
    """The meeting's identity record, or None (none kept, or no state store to keep it in: a
    message then speaks for itself, as it did before calmesh kept records)."""
    try:
        return hub.identities().get(uid)
    except StoreError:
        return None


def _cancel(hub: Hub, platform: str, calendar: str, stored: CalendarItem, message: itip.Message,
            result: Processed) -> None:
    """Mark cancelled rather than delete: the copy stays as a trace and blocks nothing."""
    updated = itip.apply_cancel(stored, message)
    if updated is None:
        sequence = max(e.sequence for e in message.item.components)
        updated = CalendarItem(stored.uid, [_withdrawn(e, max(e.sequence, sequence)) for e in stored.components],
                               stored.ref)
        result.changes.append(f"{platform}:{calendar} meeting cancelled")
    else:
        result.changes.append(f"{platform}:{calendar} occurrences cancelled")
    _save(hub, platform, calendar, stored, updated, result)


def _save(hub: Hub, platform: str, calendar: str, stored: CalendarItem, updated: CalendarItem,
          result: Processed) -> None:
    etag = stored.ref.etag if stored.ref else None
    hub.connector(platform).put(calendar, updated, if_match=etag)
    result.updated.append(f"{platform}:{calendar}")


# ------------------------------------------------------------------------------------ JSON
def search_json(found: TimeSearch, zone: tzinfo, details_for: Callable[[str], bool] | None) -> dict[str, Any]:
    """Suggestions as the doors show them, modelled on Graph's ``meetingTimeSuggestions``; each
    person's problems as the asker may read them (``details_for(email)``, or None for the local
    operator: see :func:`shown`)."""
    return {
        "suggestions": [{
            "start": s.start.astimezone(zone).isoformat(), "end": s.end.astimezone(zone).isoformat(),
            "confidence": s.confidence,
            "attendees": [{"email": a.email, "required": a.required, "availability": a.availability.value,
                           "outside_working_hours": a.outside_working_hours} for a in s.attendees],
        } for s in found.search.suggestions],
        "empty_reason": found.search.empty_reason,
        "people": [{"email": p.email, "name": p.name, "platform": p.platform,
                    "timezone": p.working_hours.timezone if p.working_hours else None,
                    "errors": shown(p.errors, details_for and details_for(p.email)),
                    "warnings": shown(p.warnings, details_for and details_for(p.email))}
                   for p in found.people],
    }


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {"email": d.email, "method": d.method, "platform": d.platform, "calendar": d.calendar, "detail": d.detail,
            "owed": d.owed}


def booking_json(booking: Booking) -> dict[str, Any]:
    return {"uid": booking.uid, "calendar": booking.ref.calendar, "id": booking.ref.id,
            "deliveries": [delivery_json(d) for d in booking.deliveries],
            "warnings": booking.warnings,
            "notices": [str(n) for n in booking.adapted],
            "adapted": [n.as_dict() for n in booking.adapted]}


def processed_json(processed: Processed) -> dict[str, Any]:
    return {"method": processed.method, "uid": processed.uid, "updated": processed.updated,
            "changes": processed.changes}
