"""The meetings calmesh booked, as their organisers' calendars hold them now: what the web page
offers to move or cancel.

Why read the organiser's calendar rather than the identity record alone: the record knows who
organises a meeting and where its original lives, not when it is (a move made on the platform
itself is only in the calendar). The record then says which of the calendar's events calmesh
booked and that this person, not an attendee, organises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError

from calmesh.connectors.base import ConnectorError
from calmesh.model import EventStatus, Window
from calmesh.services.hub import Hub
from calmesh.services.scheduling import home_calendar
from calmesh.store.db import StoreError
from calmesh.timezones import zoneinfo


@dataclass(frozen=True, slots=True)
class BookedMeeting:
    uid: str
    organizer: str
    summary: str | None
    start: datetime
    end: datetime
    attendees: tuple[str, ...]
    """Everyone invited but the organiser."""


def organised(hub: Hub, people: Sequence[str], window: Window) -> tuple[list[BookedMeeting], list[str]]:
    """Live single meetings calmesh booked for ``people`` as organisers, overlapping ``window``,
    earliest first; and what could not be read (one line per platform or store problem)."""
    try:
        identities = hub.identities()
        organisers = identities.organisers()
    except (StoreError, SQLAlchemyError) as exc:
        return [], [f"the state store, where calmesh records its bookings, cannot be read: {exc}"]
    found: list[BookedMeeting] = []
    problems: list[str] = []
    for email in (e for e in people if e in organisers):  # only calendars that can hold a booking
        person = hub.directory.get(email)
        try:
            events, _unreadable = hub.connector(person.platform).events(home_calendar(hub, person), window)
        except ConnectorError as exc:
            problems.append(f"{person.name or person.email}'s bookings cannot be listed: {exc}")
            continue
        zone = zoneinfo(hub.directory.zone_of(person.email))
        for event in events:
            identity = identities.get(event.uid)
            if (identity is None or identity.organizer != person.email or event.rrule or event.recurrence_id
                    or identity.status == EventStatus.CANCELLED.value or event.status is EventStatus.CANCELLED):
                continue
            start, end = event.span_utc(zone)
            found.append(BookedMeeting(event.uid, person.email, event.summary, start, end,
                                       tuple(a.email for a in event.attendees if a.email != person.email)))
    return sorted(found, key=lambda m: (m.start, m.uid)), problems
