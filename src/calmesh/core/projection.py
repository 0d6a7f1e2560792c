"""What a sync group copies of an item, and how to tell two copies carry the same content.

Pure: no I/O. Three jobs, kept together because they must agree:

* :func:`busy_block` turns an item into the private "Busy" placeholder a ``mode = "busy"`` group
  writes: the times, recurrence (RRULE/RDATE/EXDATE and every override) and status survive, while
  title, description, location, organizer and attendees never leave the source.
* :func:`content_hash` fingerprints the *synced* fields of an item. It ignores what platforms
  rewrite on their own (UID, SEQUENCE, LAST-MODIFIED, DTSTAMP, the authoring zone, X- properties
  such as the calmesh marker, VALARMs: copies carry them, but reminders are each calendar's own,
  and platforms replace them with their owner's defaults) and normalises what they spell differently (instants to UTC, RRULE
  part order, CRLF in text), so the echo of calmesh's own write hashes like what it wrote.
  Scheduling state is not hashed either: the ORGANIZER and each attendee's PARTSTAT/RSVP belong
  to each calendar's scheduling agent, and the platforms impose their own on a copy (Exchange
  and Google name the mailbox owner organizer of whatever calmesh writes there and reset the
  answers), so hashing them would read every copy of a meeting organised by someone else as an
  edit. Who attends (address and role) is synced content and hashed.
* :func:`with_scheduling` puts a reference's scheduling state back on content written over a
  copy, so that a copy's platform-imposed organizer is never pushed over the original's.

A mirror group's ``attendees`` setting says whether people travel at all. ``"copy"``: organizer
and attendees are copied (who attends is content, as above). ``"omit"``: copies carry no ORGANIZER
and no ATTENDEE, so a copy of a meeting is a plain event on its target and no platform mails
anyone for it (Microsoft Graph cannot be told not to); who attends is then not synced content,
so a copy without people hashes like its original with them, and content written back onto the
original takes the original's organizer and attendees whole (``with_scheduling(..., "omit")``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Literal

from calmesh.model import (
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    Temporal,
    in_writable_form,
)

SyncMode = Literal["mirror", "busy"]
AttendeeMode = Literal["copy", "omit"]

HASH_VERSION = "2"
"""Bumped whenever the hashed field set changes, so stored hashes are never compared across
versions (a bump reads as one round of "changed everywhere", resolved by content equality)."""


def _when(value: Temporal | None) -> str | None:
    """A comparable spelling: aware times in UTC, floating times and dates as written."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not a date or date-time: {value!r}")


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    return value or None


def _rrule(rule: str) -> str:
    """RRULE parts in a fixed order: ``FREQ=WEEKLY;BYDAY=MO`` == ``BYDAY=MO;FREQ=WEEKLY``."""
    parts = [p.strip().upper() for p in rule.removeprefix("RRULE:").split(";") if p.strip()]
    return ";".join(sorted(parts))


def _dates(values: Iterable[Temporal]) -> list[str]:
    return sorted({s for s in (_when(v) for v in values) if s is not None})


def _component(event: Event) -> dict[str, object]:
    return {
        "recurrence_id": _when(event.recurrence_id),
        "start": _when(event.start),
        "end": _when(event.effective_end()),
        "summary": _text(event.summary),
        "description": _text(event.description),
        "location": _text(event.location),
        "rrule": sorted(_rrule(r) for r in event.rrule),
        "rdate": _dates(event.rdate),
        "exdate": _dates(event.exdate),
        "transparent": event.transparent,
        "status": event.status.value,
        "class": event.classification.value,
        "busy_type": None if event.busy_type is None else int(event.busy_type),
        "attendees": sorted((a.email, a.role.value) for a in event.attendees),
        # only when set, so that the hash of every other component is what it was (no version bump)
        **({"range": "THISANDFUTURE"} if event.this_and_future else {}),
    }


def content_hash(item: CalendarItem) -> str:
    """A stable fingerprint of the synced fields of ``item`` (hex SHA-256).

    Each component is taken in the form iCalendar writes it (:func:`calmesh.model.in_writable_form`):
    a series starting at the second of two equal wall times and its copy, read back, are the same
    content. Raises ``TypeError``/``ValueError`` on values that are not calendar data, which the
    planner turns into a quarantine entry rather than a crash.
    """
    components = sorted((_component(in_writable_form(e)) for e in item.components),
                        key=lambda c: (c["recurrence_id"] is not None, str(c["recurrence_id"])))
    payload = json.dumps([HASH_VERSION, components], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def is_meeting(item: CalendarItem) -> bool:
    """Does ``item`` carry scheduling state (an organizer or attendees) anywhere?"""
    return any(e.organizer is not None or e.attendees for e in item.components)


def with_scheduling(item: CalendarItem, reference: CalendarItem,
                    attendees: AttendeeMode = "copy") -> CalendarItem:
    """``item`` with the scheduling state of ``reference``, component by component (a component
    ``reference`` lacks takes its master's): its ORGANIZER, and with ``"copy"`` the PARTSTAT and
    RSVP of every attendee both name (attendees only ``item`` names keep theirs), with ``"omit"``
    its whole attendee list.

    Why: a copy's organizer and answers are what its platform imposed (see :func:`content_hash`),
    so content taken from a copy must not carry them over the original's; and where attendees
    are omitted from copies, a copy's (absent) people say nothing about the original's."""
    ref_master = reference.master or reference.components[0]
    by_rid = {_when(e.recurrence_id): e for e in reference.components}
    components = []
    for event in item.components:
        ref = by_rid.get(_when(event.recurrence_id), ref_master)
        if attendees == "omit":
            people = list(ref.attendees)
        else:
            answers = {a.email: a for a in ref.attendees}
            people = [replace(a, partstat=answers[a.email].partstat, rsvp=answers[a.email].rsvp)
                      if a.email in answers else a for a in event.attendees]
        components.append(replace(event, organizer=ref.organizer, attendees=people))
    return CalendarItem(uid=item.uid, components=components, ref=item.ref)


def without_people(item: CalendarItem) -> CalendarItem:
    """``item`` with no ORGANIZER and no ATTENDEE in any component: a plain event, which no
    platform treats as a meeting (so none sends invitations for it). An item without people is
    returned as it is (items are not changed in place)."""
    if not is_meeting(item):
        return item
    components = [replace(e, organizer=None, attendees=[]) for e in item.components]
    return CalendarItem(uid=item.uid, components=components, ref=item.ref)


def busy_block(item: CalendarItem, title: str = "Busy") -> CalendarItem:
    """The private placeholder standing in for ``item`` in a busy-mode group.

    Every component (master and overrides) keeps its times, recurrence, exceptions (with their
    ``RANGE=THISANDFUTURE``), status, transparency and explicit busy type, so the placeholder blocks exactly the time the original
    does, moved and cancelled occurrences included. Nothing descriptive survives, and CLASS is
    PRIVATE so that platforms which show details to delegates still hide it. No VALARM either: its
    text often repeats the title. Idempotent:
    ``busy_block(busy_block(x))`` hashes like ``busy_block(x)``.

    A component that blocks no time (cancelled, or marked free) becomes both cancelled *and*
    transparent: a platform that can hold only one of the two (an in-house table has a status
    column but no show-as; Exchange shows a cancelled meeting as free) then still reads its
    block as blocking nothing, instead of the busy block it was before the cancellation.
    """
    components = [
        Event(
            uid=e.uid,
            start=e.start,
            end=e.end,
            summary=title,
            recurrence_id=e.recurrence_id,
            rrule=list(e.rrule),
            rdate=list(e.rdate),
            exdate=list(e.exdate),
            transparent=e.transparent or _blocks_nothing(e),
            status=EventStatus.CANCELLED if _blocks_nothing(e) else e.status,
            classification=Classification.PRIVATE,
            sequence=e.sequence,
            last_modified=e.last_modified,
            busy_type=e.busy_type,
            tzid=e.tzid,
            this_and_future=e.this_and_future,
        )
        for e in item.components
    ]
    return CalendarItem(uid=item.uid, components=components, ref=item.ref)


def _blocks_nothing(event: Event) -> bool:
    return event.status is EventStatus.CANCELLED or event.transparent or event.busy_type is BusyType.FREE


def synced_content(item: CalendarItem, mode: SyncMode, busy_title: str = "Busy",
                   attendees: AttendeeMode = "copy") -> CalendarItem:
    """What of ``item`` a group of this mode carries: its busy block (which never carries
    people, whatever ``attendees`` says), or the item itself, without its people if omitted."""
    if mode == "busy":
        return busy_block(item, busy_title)
    return without_people(item) if attendees == "omit" else item


def synced_hash(item: CalendarItem, mode: SyncMode, busy_title: str = "Busy",
                attendees: AttendeeMode = "copy") -> str:
    """:func:`content_hash` of :func:`synced_content`: what the planner compares across members."""
    return content_hash(synced_content(item, mode, busy_title, attendees))


def with_identity(item: CalendarItem, uid: str, marker: str | None, marker_name: str) -> CalendarItem:
    """A copy of ``item`` re-stamped for a target: its UID there and the origin marker
    (``None`` strips it, for writes back onto the original item itself)."""
    components = []
    for event in item.components:
        extra = {k: v for k, v in event.extra.items() if k != marker_name}
        if marker is not None:
            extra[marker_name] = marker
        components.append(replace(event, uid=uid, extra=extra))
    return CalendarItem(uid=uid, components=components, ref=None)
