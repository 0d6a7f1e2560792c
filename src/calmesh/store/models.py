"""The tables of the calmesh state store (SQLAlchemy 2 declarative).

Only :mod:`calmesh.store.repository` touches these classes; everything above it works with the
plain dataclasses of :mod:`calmesh.core.syncplan`. The schema itself is created by the Alembic
migrations in ``store/migrations`` (tests check that the two never drift apart).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Explicit constraint names so that migrations can alter them on every database."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SyncItem(Base):
    """One logical item of a sync group (see ``calmesh.core.syncplan.ItemState``)."""

    __tablename__ = "sync_items"
    __table_args__ = (UniqueConstraint("group_name", "logical_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200))
    logical_id: Mapped[str] = mapped_column(Text)
    """The origin marker ``platform/calendar/item-id`` (or a keep-both fork of one)."""
    origin: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    """Tombstone: kept so that a stale copy turning up later is removed, not resurrected."""
    dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    copies: Mapped[list[SyncCopy]] = relationship(
        back_populates="item", cascade="all, delete-orphan", passive_deletes=True)


class SyncCopy(Base):
    """Where a logical item lives on one member, and what was last seen or written there."""

    __tablename__ = "sync_copies"
    __table_args__ = (
        UniqueConstraint("item_id", "member"),
        Index("ix_sync_copies_member_remote", "member", "remote_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("sync_items.id", ondelete="CASCADE"))
    member: Mapped[str] = mapped_column(Text)
    """``platform/calendar``, the member key."""
    platform: Mapped[str] = mapped_column(String(200))
    calendar: Mapped[str] = mapped_column(Text)
    remote_id: Mapped[str] = mapped_column(Text)
    """CalDAV href, EWS ItemId, Graph id... on that platform."""
    uid: Mapped[str] = mapped_column(Text)
    recurrence_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    """For platforms that store an override as its own object; NULL for whole items."""
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    origin_marker: Mapped[str | None] = mapped_column(Text, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Recorded before the write that creates the copy; cleared once the write is confirmed."""
    evidence_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    """For a pending copy: the member's change token from before the write (see
    ``calmesh.core.syncplan.CopyState.evidence``)."""
    writing_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The content hash of an update under way (see ``calmesh.core.syncplan.CopyState.writing``)."""
    deleted_there: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A deleted copy found gone from its member, not deleted by calmesh (see
    ``calmesh.core.syncplan.CopyState.deleted_there``)."""
    deleting: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """calmesh's deletion of the copy under way (see ``calmesh.core.syncplan.CopyState.deleting``)."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    item: Mapped[SyncItem] = relationship(back_populates="copies")


class SyncToken(Base):
    """A member's change token and when it was last compared in full."""

    __tablename__ = "sync_tokens"

    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    member: Mapped[str] = mapped_column(Text, primary_key=True)
    token: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_full_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    runs_since_full: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (Index("ix_sync_runs_group_started", "group_name", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="running")
    """``running`` (or killed), ``ok``, ``partial`` (some writes failed), ``failed``."""
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)
    settled: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The fingerprint of the group's configuration when this run left the group at rest (every
    change read, every write made, nothing skipped, held or quarantined); None otherwise. A next
    run under the same configuration whose change feeds are all quiet has nothing to decide."""


class QuarantineEntry(Base):
    """An upstream item calmesh could not sync, with the reason, until it reads cleanly again."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("group_name", "member", "item_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200))
    member: Mapped[str] = mapped_column(Text)
    item_key: Mapped[str] = mapped_column(Text)
    """The item id, else ``uid:UID``: never NULL so the unique constraint holds everywhere."""
    item_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    uid: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    times_seen: Mapped[int] = mapped_column(Integer, default=1)


class AuditEntry(Base):
    """One write calmesh made, with the content it replaced, so that any change is reversible."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_group_at", "group_name", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    group_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The sync group, or NULL for writes made by other features (duplicate resolution)."""
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("sync_runs.id", ondelete="SET NULL"), nullable=True)
    action: Mapped[str] = mapped_column(String(20))
    platform: Mapped[str] = mapped_column(String(200))
    calendar: Mapped[str] = mapped_column(Text)
    item_ref: Mapped[str | None] = mapped_column(Text, nullable=True)
    uid: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    previous: Mapped[str | None] = mapped_column(Text, nullable=True)
    """iCalendar text of what was there before (NULL for a create)."""
    written: Mapped[str | None] = mapped_column(Text, nullable=True)
    """iCalendar text of what calmesh wrote (NULL for a delete)."""
    etag_before: Mapped[str | None] = mapped_column(Text, nullable=True)
    etag_after: Mapped[str | None] = mapped_column(Text, nullable=True)


class SyncHold(Base):
    """A held decision of the bulk-delete guard (``calmesh.core.syncplan.Hold``): kept until the
    operator confirms it or the member holds the items again, so that no later listing, full or
    incremental, can walk around it."""

    __tablename__ = "sync_holds"

    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    member: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    missing: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MeetingIdentity(Base):
    """One meeting calmesh booked (or linked): who organises it, where its original lives and
    every copy calmesh wrote of it. The one answer to "who may change this meeting" and "which
    items are this meeting" that booking, moving, cancelling, sync and detection all ask."""

    __tablename__ = "meeting_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(Text, unique=True)
    organizer: Mapped[str] = mapped_column(String(320))
    """The person who booked the meeting: the only one (with their grantees) who may change it."""
    platform: Mapped[str] = mapped_column(String(200))
    calendar: Mapped[str] = mapped_column(Text)
    item_id: Mapped[str] = mapped_column(Text)
    """The organiser's item id (CalDAV href, EWS ItemId...) as its connector returned it."""
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20))
    people: Mapped[str | None] = mapped_column(Text, nullable=True)
    """The meeting's ATTENDEE entries (the organiser's included) as JSON: role, answer, RSVP. The
    record keeps them because some platforms (an in-house table) keep none, and without them a
    move re-invites nobody and a REPLY finds no attendee to update."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    held_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """The process changing the meeting now (a random token per hold): see
    ``IdentityRepository.hold``."""
    held_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """When that hold lapses, should its process have died holding it."""

    copies: Mapped[list[MeetingCopy]] = relationship(
        back_populates="meeting", cascade="all, delete-orphan", passive_deletes=True)


class MeetingCopy(Base):
    """A copy of a meeting calmesh wrote into someone else's calendar (an invitation copy)."""

    __tablename__ = "meeting_copies"
    __table_args__ = (
        UniqueConstraint("meeting_id", "platform", "calendar"),
        Index("ix_meeting_copies_place", "platform", "calendar"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting_identities.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    """``invitation`` (written by booking); never grants authority over the meeting."""
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    platform: Mapped[str] = mapped_column(String(200))
    calendar: Mapped[str] = mapped_column(Text)
    item_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    marker: Mapped[str | None] = mapped_column(Text, nullable=True)
    owed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The meeting as it is now was not written here (the platform did not answer): calmesh
    writes it once the platform answers (``calmesh.services.scheduling.redeliver``)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Failed writes of the owed version so far."""
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Why the last write failed, as the platform's connector said it."""

    meeting: Mapped[MeetingIdentity] = relationship(back_populates="copies")


class FeedToken(Base):
    """A secret free/busy and feed URL (``calmesh feeds issue``): the token itself is never
    stored, only its SHA-256 digest (the token is 192 random bits, so a fast hash suffices and a
    lookup is one indexed query whatever the token)."""

    __tablename__ = "feed_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    person: Mapped[str] = mapped_column(String(320))
    """The directory email whose free/busy the URL shows, or ``*`` for everyone (a subscriber
    such as an organisation's Outlook search path)."""
    label: Mapped[str | None] = mapped_column(Text, nullable=True)
    """Who the URL was given to, to tell URLs apart when revoking."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlatformCheck(Base):
    """A platform's failure as the server last saw it (kept while it lasts, cleared when the
    platform answers again): the technical cause that answers leave out, for ``calmesh status``."""

    __tablename__ = "platform_checks"

    platform: Mapped[str] = mapped_column(String(200), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    error: Mapped[str] = mapped_column(Text)
