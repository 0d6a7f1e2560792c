"""The identity record: which items are one meeting, where its original lives, who organises it.

Booking writes a meeting's record (organiser, the organiser's item, SEQUENCE, status and every
copy calmesh wrote); moving and cancelling read it to decide who may change the meeting and
update it. Detection asks :meth:`IdentityRepository.places` which stored items stand for one
meeting, over these records and the sync groups' records alike, instead of parsing markers. A
meeting's identity is the same string sync uses for a logical item, ``platform/calendar/item-id``
of its original, so the two records name a meeting the same way.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from calmesh.core.syncplan import Member
from calmesh.model import Attendee, PartStat, Role
from calmesh.store.models import MeetingCopy, MeetingIdentity, SyncCopy, SyncItem
from calmesh.store.repository import Clock

INVITATION = "invitation"
"""The kind of copy booking writes into an attendee's calendar: it never grants authority."""
MAIL = "mail"
"""The kind of record of an iMIP mail owed to an attendee whose mail server did not take it (its
``platform`` is empty, its ``calendar`` the address): no copy calmesh can read or write."""


@dataclass(frozen=True, slots=True)
class CopyRecord:
    """One copy of a meeting calmesh wrote, and where it lives."""

    kind: str
    platform: str
    calendar: str
    item_id: str | None = None
    email: str | None = None
    marker: str | None = None
    owed: bool = False
    """The meeting as it is now could not be written here yet (the platform did not answer)."""
    attempts: int = 0
    error: str | None = None
    """Why the last write here failed."""


@dataclass(frozen=True, slots=True)
class Identity:
    """One booked meeting as recorded: its organiser, its original and its copies."""

    uid: str
    organizer: str
    platform: str
    calendar: str
    item_id: str
    sequence: int
    status: str
    copies: tuple[CopyRecord, ...] = ()
    people: tuple[Attendee, ...] = ()
    """The meeting's ATTENDEE entries as calmesh last wrote or applied them (the organiser's
    included): what a platform that keeps no attendees cannot give back."""

    @property
    def logical_id(self) -> str:
        """The meeting's identity (and its copies' marker): the organiser's item, named as sync
        names the origin of a logical item."""
        return Member(self.platform, self.calendar).origin_id(self.item_id)


def _people_json(people: tuple[Attendee, ...]) -> str | None:
    if not people:
        return None
    return json.dumps([{"email": a.email, "name": a.name, "partstat": a.partstat.value, "role": a.role.value,
                        "rsvp": a.rsvp} for a in people])


def _people(stored: str | None) -> tuple[Attendee, ...]:
    """The recorded entries (none for a meeting recorded before the record kept people)."""
    if not stored:
        return ()
    return tuple(Attendee(p["email"], p.get("name"), PartStat(p["partstat"]), Role(p["role"]), bool(p.get("rsvp")))
                 for p in json.loads(stored))


def _identity(row: MeetingIdentity) -> Identity:
    return Identity(row.uid, row.organizer, row.platform, row.calendar, row.item_id, row.sequence, row.status,
                    tuple(CopyRecord(c.kind, c.platform, c.calendar, c.item_id, c.email, c.marker, c.owed,
                                     c.attempts, c.error) for c in row.copies),
                    _people(row.people))


HOLD_LEASE = timedelta(minutes=5)
"""How long a hold on a meeting lasts if its process dies holding it: longer than any change of
one meeting takes (each platform call is bounded by its timeout and retry budget)."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class IdentityRepository:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock = _utc_now) -> None:
        self._sessions = sessions
        self._now = clock

    def save(self, identity: Identity) -> None:
        """Record ``identity`` (replacing what was recorded for its UID, copies included)."""
        now = self._now()
        with self._sessions() as session, session.begin():
            row = session.scalar(select(MeetingIdentity).where(MeetingIdentity.uid == identity.uid)
                                 .options(selectinload(MeetingIdentity.copies)))
            if row is None:
                row = MeetingIdentity(uid=identity.uid, created_at=now)
                session.add(row)
            row.organizer, row.platform, row.calendar = identity.organizer, identity.platform, identity.calendar
            row.item_id, row.sequence, row.status, row.updated_at = (identity.item_id, identity.sequence,
                                                                     identity.status, now)
            row.people = _people_json(identity.people)
            rows = {(c.platform, c.calendar): c for c in row.copies}
            for copy in identity.copies:
                target = rows.pop((copy.platform, copy.calendar), None)
                if target is None:
                    target = MeetingCopy(platform=copy.platform, calendar=copy.calendar)
                    row.copies.append(target)
                target.kind, target.email, target.item_id, target.marker = (copy.kind, copy.email, copy.item_id,
                                                                            copy.marker)
                target.owed, target.attempts, target.error = copy.owed, copy.attempts, copy.error
            for stale in rows.values():
                row.copies.remove(stale)

    @contextlib.contextmanager
    def hold(self, uid: str, *, wait: float) -> Iterator[bool]:
        """Hold meeting ``uid`` while the block runs, across processes: yields True once held (or
        when calmesh has no record of it: there is nothing to keep apart), False if another
        process still held it after ``wait`` seconds. Taken by one conditional UPDATE, so two
        processes never both hold it; a hold whose process died lapses after :data:`HOLD_LEASE`."""
        token = secrets.token_hex(16)
        deadline = time.monotonic() + wait
        while True:
            now = self._now()
            with self._sessions() as session, session.begin():
                taken = session.execute(
                    update(MeetingIdentity)
                    .where(MeetingIdentity.uid == uid,
                           or_(MeetingIdentity.held_until.is_(None), MeetingIdentity.held_until < now))
                    .values(held_by=token, held_until=now + HOLD_LEASE)).rowcount == 1  # type: ignore[attr-defined]
                recorded = taken or session.scalar(select(MeetingIdentity.id).where(MeetingIdentity.uid == uid))
            if taken or not recorded or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        try:
            yield taken or not recorded
        finally:
            if taken:
                with self._sessions() as session, session.begin():
                    session.execute(update(MeetingIdentity)
                                    .where(MeetingIdentity.uid == uid, MeetingIdentity.held_by == token)
                                    .values(held_by=None, held_until=None))

    def get(self, uid: str) -> Identity | None:
        with self._sessions() as session:
            row = session.scalar(select(MeetingIdentity).where(MeetingIdentity.uid == uid)
                                 .options(selectinload(MeetingIdentity.copies)))
            return None if row is None else _identity(row)

    def owed_count(self) -> int:
        """How many copies (and mails) are owed, over every meeting: for monitoring."""
        with self._sessions() as session:
            return int(session.scalar(select(func.count()).select_from(MeetingCopy).where(MeetingCopy.owed.is_(True)))
                       or 0)

    def owing(self) -> list[Identity]:
        """The meetings with a copy owed to some calendar (:attr:`CopyRecord.owed`), oldest first."""
        with self._sessions() as session:
            owing = select(MeetingCopy.meeting_id).where(MeetingCopy.owed.is_(True))
            return [_identity(row) for row in session.scalars(
                select(MeetingIdentity).where(MeetingIdentity.id.in_(owing)).order_by(MeetingIdentity.id)
                .options(selectinload(MeetingIdentity.copies)))]

    def organisers(self) -> set[str]:
        """Who organises at least one meeting on record that is not cancelled: the web page reads
        only their calendars to list the bookings it offers to move or cancel."""
        with self._sessions() as session:
            return set(session.scalars(select(MeetingIdentity.organizer).distinct()
                                       .where(MeetingIdentity.status != "CANCELLED")))

    def places(self) -> dict[tuple[str, str, str], str]:
        """``(platform, calendar, UID)`` -> identity, for every live item on record: each booked
        meeting's original and copies, and each sync group's originals, mirror copies and busy
        placeholders. Items with one identity are one meeting wherever they live; a sync group
        that named a booked meeting after another of its copies (it paired them by UID) is read
        as naming the booked meeting."""
        out: dict[tuple[str, str, str], str] = {}
        alias: dict[str, str] = {}
        with self._sessions() as session:
            for r in session.execute(
                select(SyncCopy.platform, SyncCopy.calendar, SyncCopy.uid, SyncItem.logical_id)
                .join(SyncItem, SyncItem.id == SyncCopy.item_id)
                .where(SyncCopy.deleted.is_(False), SyncItem.deleted.is_(False))
            ):
                out[(r.platform, r.calendar, r.uid)] = r.logical_id
            for m in session.scalars(select(MeetingIdentity).options(selectinload(MeetingIdentity.copies))):
                lid = Member(m.platform, m.calendar).origin_id(m.item_id)
                for place in [(m.platform, m.calendar, m.uid), *((c.platform, c.calendar, m.uid) for c in m.copies)]:
                    if (synced := out.get(place)) is not None and synced != lid:
                        alias[synced] = lid
                    out[place] = lid
        return {place: alias.get(lid, lid) for place, lid in out.items()}
