"""What the sync engine (and ``calmesh status``) needs from the state store, in plain dataclasses.

The engine never sees ORM objects: it loads a group's state as ``ItemState`` values, hands the
pure planner those, and saves what came back. Saving a run's records, its change tokens and its
outcome is one transaction (:meth:`SyncRepository.commit_run`), so a run killed half-way leaves
either the old state and tokens or the new ones, never a mix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from calmesh.core.syncplan import CopyState, Hold, HoldKind, ItemState, Member
from calmesh.ical import item_to_ical, parse_items
from calmesh.model import CalendarItem
from calmesh.store.models import (
    AuditEntry,
    MeetingCopy,
    MeetingIdentity,
    QuarantineEntry,
    SyncCopy,
    SyncHold,
    SyncItem,
    SyncRun,
    SyncToken,
)

Clock = Callable[[], datetime]
_CHUNK = 500
"""Rows per IN (...) query: well under SQLite's and PostgreSQL's parameter limits."""
EXCERPT_LIMIT = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything calmesh stores is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _split_member(member: str) -> tuple[str, str]:
    """``platform/calendar`` -> its parts (platform names, being config keys, hold no ``/``)."""
    platform, _, calendar = member.partition("/")
    return platform, calendar


@dataclass(frozen=True, slots=True)
class TokenState:
    member: str
    token: str | None
    last_full_at: datetime | None
    runs_since_full: int


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    group: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    dry_run: bool
    counts: dict[str, int]
    errors: list[str]


@dataclass(frozen=True, slots=True)
class QuarantineInfo:
    group: str
    member: str
    item_ref: str | None
    uid: str | None
    reason: str
    excerpt: str | None
    first_seen: datetime
    last_seen: datetime
    times_seen: int


@dataclass(frozen=True, slots=True)
class HoldInfo:
    hold: Hold
    since: datetime
    """When the member was first held (a hold whose kind changes is the same hold)."""


@dataclass(frozen=True, slots=True)
class AuditInfo:
    id: int
    at: datetime
    group: str | None
    run_id: int | None
    action: str
    platform: str
    calendar: str
    item_ref: str | None
    uid: str | None
    reason: str | None
    etag_before: str | None
    etag_after: str | None
    has_previous: bool


class SyncRepository:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock = _utc_now) -> None:
        self._sessions = sessions
        self._now = clock

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # ------------------------------------------------------------------------ item state
    def load_group(self, group: str) -> dict[str, ItemState]:
        """Every logical item of ``group`` (tombstones included) keyed by logical id. Read as plain
        column rows, not ORM objects: every run loads the whole group, and for thousands of items
        building ORM objects took longer than the rest of a no-op run."""
        with self._sessions() as session:
            copies: dict[int, dict[str, CopyState]] = {}
            for c in session.execute(
                select(SyncCopy.item_id, SyncCopy.member, SyncCopy.remote_id, SyncCopy.uid, SyncCopy.etag,
                       SyncCopy.content_hash, SyncCopy.origin_marker, SyncCopy.deleted, SyncCopy.pending,
                       SyncCopy.evidence_token, SyncCopy.writing_hash, SyncCopy.deleted_there,
                       SyncCopy.deleting)
                .join(SyncItem, SyncItem.id == SyncCopy.item_id).where(SyncItem.group_name == group)
                .order_by(SyncCopy.id)
            ):
                copies.setdefault(c.item_id, {})[c.member] = CopyState(
                    c.member, c.remote_id, c.uid, c.etag, c.content_hash, marker=c.origin_marker, deleted=c.deleted,
                    pending=c.pending, evidence=c.evidence_token, writing=c.writing_hash,
                    deleted_there=c.deleted_there, deleting=c.deleting)
            rows = session.execute(
                select(SyncItem.id, SyncItem.logical_id, SyncItem.origin, SyncItem.content_hash, SyncItem.deleted,
                       SyncItem.dirty).where(SyncItem.group_name == group))
            return {r.logical_id: ItemState(r.logical_id, r.origin, r.content_hash, copies.get(r.id, {}),
                                            deleted=r.deleted, dirty=r.dirty) for r in rows}

    def save_records(self, group: str, records: Iterable[ItemState]) -> None:
        with self._tx() as session:
            self._save_records(session, group, list(records))

    def _save_records(self, session: Session, group: str, records: Sequence[ItemState]) -> None:
        now = self._now()
        existing: dict[str, SyncItem] = {}
        lids = [r.logical_id for r in records]
        for start in range(0, len(lids), _CHUNK):
            chunk = lids[start:start + _CHUNK]
            rows = session.scalars(
                select(SyncItem).where(SyncItem.group_name == group, SyncItem.logical_id.in_(chunk))
                .options(selectinload(SyncItem.copies))
            ).all()
            existing.update((row.logical_id, row) for row in rows)
        new: dict[str, ItemState] = {}
        for record in records:
            row = existing.get(record.logical_id)
            if row is None:
                new[record.logical_id] = record  # the last record of an id wins, as with rows
                continue
            row.origin, row.content_hash = record.origin, record.content_hash
            row.deleted, row.dirty, row.updated_at = record.deleted, record.dirty, now
            _sync_copies(row, record, now)
        if new:
            _insert_records(session, group, list(new.values()), now)

    def mark_dirty(self, group: str, logical_ids: Iterable[str]) -> None:
        """Flag items whose writes failed: the next run re-lists their members and decides again."""
        lids = list(logical_ids)
        with self._tx() as session:
            for start in range(0, len(lids), _CHUNK):
                rows = session.scalars(select(SyncItem).where(
                    SyncItem.group_name == group, SyncItem.logical_id.in_(lids[start:start + _CHUNK]))).all()
                for row in rows:
                    row.dirty = True

    def purge_tombstones(self, group: str, kept_for: timedelta) -> int:
        """Forget deleted items whose every copy is gone, once they were last changed longer than
        ``kept_for`` ago (until then a stale copy turning up is still recognised and removed);
        returns how many. Two plain DELETEs a chunk, not ORM objects: a mass deletion comes of age
        all at once (10,000 items took 1.4 s through the ORM's unit of work)."""
        older_than = self._now() - kept_for
        with self._tx() as session:
            live_copy = select(SyncCopy.id).where(SyncCopy.item_id == SyncItem.id, SyncCopy.deleted.is_(False))
            ids = session.scalars(select(SyncItem.id).where(
                SyncItem.group_name == group, SyncItem.deleted.is_(True), SyncItem.updated_at < older_than,
                ~live_copy.exists())).all()
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                session.execute(delete(SyncCopy).where(SyncCopy.item_id.in_(chunk)))
                session.execute(delete(SyncItem).where(SyncItem.id.in_(chunk)))
            return len(ids)

    # ---------------------------------------------------------------------------- tokens
    def tokens(self, group: str) -> dict[str, TokenState]:
        with self._sessions() as session:
            rows = session.scalars(select(SyncToken).where(SyncToken.group_name == group)).all()
            return {r.member: TokenState(r.member, r.token, _aware(r.last_full_at), r.runs_since_full) for r in rows}

    def save_tokens(self, group: str, tokens: Mapping[str, str | None], full: Iterable[str] = ()) -> None:
        with self._tx() as session:
            self._save_tokens(session, group, tokens, set(full))

    def _save_tokens(self, session: Session, group: str, tokens: Mapping[str, str | None], full: set[str]) -> None:
        now = self._now()
        for member, token in tokens.items():
            row = session.get(SyncToken, (group, member))
            if row is None:
                row = SyncToken(group_name=group, member=member, runs_since_full=0)
                session.add(row)
            row.token, row.updated_at = token, now
            if member in full:
                row.last_full_at, row.runs_since_full = now, 0
            else:
                row.runs_since_full = (row.runs_since_full or 0) + 1

    def forget_token(self, group: str, member: str) -> None:
        """Drop a member's token (it was refused): the next run lists that member in full."""
        with self._tx() as session:
            session.execute(delete(SyncToken).where(SyncToken.group_name == group, SyncToken.member == member))

    # ------------------------------------------------------------------------------ runs
    def start_run(self, group: str, *, dry_run: bool = False) -> int:
        with self._tx() as session:
            run = SyncRun(group_name=group, started_at=self._now(), status="running", dry_run=dry_run,
                          counts={}, errors=[])
            session.add(run)
            session.flush()
            return run.id

    def finish_run(self, run_id: int, status: str, counts: Mapping[str, int], errors: Sequence[str]) -> None:
        with self._tx() as session:
            self._finish_run(session, run_id, status, counts, errors)

    def _finish_run(self, session: Session, run_id: int, status: str, counts: Mapping[str, int],
                    errors: Sequence[str]) -> None:
        run = session.get(SyncRun, run_id)
        if run is None:
            raise KeyError(f"no sync run {run_id}")
        run.finished_at, run.status = self._now(), status
        run.counts, run.errors = dict(counts), list(errors)

    def commit_run(self, group: str, run_id: int, *, records: Iterable[ItemState],
                   tokens: Mapping[str, str | None], full: Iterable[str], status: str,
                   counts: Mapping[str, int], errors: Sequence[str],
                   holds: Mapping[str, Hold] | None = None, settled: str | None = None) -> None:
        """Save a run's item records, its new change tokens, the guard's holds (None: keep
        those on record) and its outcome atomically; ``settled``: the fingerprint of the group's
        configuration when the run left the group at rest (see :meth:`at_rest`)."""
        with self._tx() as session:
            self._save_records(session, group, list(records))
            self._save_tokens(session, group, tokens, set(full))
            if holds is not None:
                self._save_holds(session, group, holds)
            self._finish_run(session, run_id, status, counts, errors)
            if settled is not None:
                run = session.get(SyncRun, run_id)
                assert run is not None  # _finish_run found it
                run.settled = settled

    def at_rest(self, group: str, fingerprint: str) -> bool:
        """Whether ``group`` was left with nothing to do under the configuration ``fingerprint``:
        its last run (dry runs aside; a killed one counts, unsettled) settled it, no record is
        dirty and no deletion is held. Three indexed look-ups, whatever the group's size: a run
        whose change feeds are then all quiet need not load the group's state at all."""
        with self._sessions() as session:
            last = session.execute(
                select(SyncRun.settled).where(SyncRun.group_name == group, SyncRun.dry_run.is_(False))
                .order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(1)).scalar_one_or_none()
            if last != fingerprint:
                return False
            dirty = session.execute(select(SyncItem.id).where(
                SyncItem.group_name == group, SyncItem.dirty.is_(True)).limit(1)).first()
            held = session.execute(select(SyncHold.member).where(SyncHold.group_name == group).limit(1)).first()
            return dirty is None and held is None

    def invitations(self, members: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
        """UID -> the member keys (``platform/calendar``, of ``members``) that calmesh delivered
        the meeting's invitation to when it booked it: what tells a sync that an attendee
        deleted an invitation before their calendar's group recorded it (the planner's
        ``invited``). One query a run, over the booked meetings' copies only."""
        wanted = set(members)
        if not wanted:
            return {}
        found: dict[str, set[str]] = {}
        with self._sessions() as session:
            for uid, platform, calendar in session.execute(
                    select(MeetingIdentity.uid, MeetingCopy.platform, MeetingCopy.calendar)
                    .join(MeetingCopy, MeetingCopy.meeting_id == MeetingIdentity.id)
                    .where(MeetingCopy.platform.in_({p for p, _ in wanted}))):
                if (platform, calendar) in wanted:
                    found.setdefault(uid, set()).add(Member(platform, calendar).key)
        return {uid: frozenset(keys) for uid, keys in found.items()}

    # ----------------------------------------------------------------- bulk-delete guard
    def holds(self, group: str) -> dict[str, HoldInfo]:
        """The held decisions of ``group`` by member."""
        with self._sessions() as session:
            rows = session.scalars(select(SyncHold).where(SyncHold.group_name == group)
                                   .order_by(SyncHold.member)).all()
            return {r.member: HoldInfo(Hold(r.member, _hold_kind(r.kind), r.missing, r.size, r.reason),
                                       _aware(r.since) or self._now()) for r in rows}

    def save_holds(self, group: str, holds: Mapping[str, Hold]) -> None:
        with self._tx() as session:
            self._save_holds(session, group, holds)

    def _save_holds(self, session: Session, group: str, holds: Mapping[str, Hold]) -> None:
        """Make ``holds`` the group's holds; a member held before keeps its ``since``."""
        now = self._now()
        rows = {r.member: r for r in session.scalars(select(SyncHold).where(SyncHold.group_name == group))}
        for member, old in rows.items():
            if member not in holds:
                session.delete(old)
        for member, hold in holds.items():
            row = rows.get(member) or SyncHold(group_name=group, member=member, since=now)
            session.add(row)
            row.kind, row.missing, row.size, row.reason, row.updated_at = (
                hold.kind, hold.missing, hold.size, hold.reason, now)

    def recent_deletions(self, group: str, seconds: float) -> dict[str, int]:
        """Deletions ``group``'s runs made on each member in the last ``seconds`` (from the
        audit log): what the guard's budget has spent already. A run that applied confirmed
        deletions (counted ``confirmed``) starts the budget afresh: the operator has looked at
        what was deleted, and a confirmed clean-up must not hold the next ordinary deletions."""
        since = self._now() - timedelta(seconds=seconds)
        with self._sessions() as session:
            confirmed = [run.id for run in session.execute(
                select(SyncRun.id, SyncRun.counts).where(SyncRun.group_name == group, SyncRun.started_at >= since))
                if (run.counts or {}).get("confirmed")]
            query = (select(AuditEntry.platform, AuditEntry.calendar, func.count())
                     .where(AuditEntry.group_name == group, AuditEntry.action == "delete", AuditEntry.at >= since)
                     .group_by(AuditEntry.platform, AuditEntry.calendar))
            if confirmed:
                query = query.where(AuditEntry.run_id > max(confirmed))
            return {f"{platform}/{calendar}": n for platform, calendar, n in session.execute(query)}

    def runs(self, group: str | None = None, limit: int = 20) -> list[RunInfo]:
        """Most recent runs first."""
        with self._sessions() as session:
            query = select(SyncRun).order_by(SyncRun.started_at.desc(), SyncRun.id.desc()).limit(limit)
            if group is not None:
                query = query.where(SyncRun.group_name == group)
            return [RunInfo(r.id, r.group_name, _aware(r.started_at) or self._now(), _aware(r.finished_at),
                            r.status, r.dry_run, dict(r.counts or {}), list(r.errors or []))
                    for r in session.scalars(query)]

    # ------------------------------------------------------------------------ quarantine
    def quarantine(self, group: str, member: str, *, item_ref: str | None, uid: str | None,
                   reason: str, excerpt: str | None = None) -> None:
        """Record (or refresh) a bad upstream item; the first sighting is kept."""
        key = item_ref or (f"uid:{uid}" if uid else f"reason:{reason}")
        now = self._now()
        if excerpt is not None and len(excerpt) > EXCERPT_LIMIT:
            excerpt = excerpt[:EXCERPT_LIMIT] + "…"
        with self._tx() as session:
            row = session.scalar(select(QuarantineEntry).where(
                QuarantineEntry.group_name == group, QuarantineEntry.member == member,
                QuarantineEntry.item_key == key))
            if row is None:
                session.add(QuarantineEntry(group_name=group, member=member, item_key=key, item_ref=item_ref,
                                            uid=uid, reason=reason, excerpt=excerpt, first_seen=now,
                                            last_seen=now, times_seen=1))
                return
            row.reason, row.last_seen, row.times_seen = reason, now, row.times_seen + 1
            if excerpt is not None:
                row.excerpt = excerpt

    def quarantined(self, group: str | None = None) -> list[QuarantineInfo]:
        with self._sessions() as session:
            query = select(QuarantineEntry).order_by(QuarantineEntry.member, QuarantineEntry.item_key)
            if group is not None:
                query = query.where(QuarantineEntry.group_name == group)
            return [QuarantineInfo(r.group_name, r.member, r.item_ref, r.uid, r.reason, r.excerpt,
                                   _aware(r.first_seen) or self._now(), _aware(r.last_seen) or self._now(),
                                   r.times_seen) for r in session.scalars(query)]

    def release(self, group: str, member: str, keep: Iterable[str]) -> int:
        """Drop quarantine entries of ``member`` except the item keys in ``keep`` (those still
        bad this run): an item that now reads cleanly leaves quarantine by itself."""
        keep = set(keep)
        with self._tx() as session:
            rows = session.scalars(select(QuarantineEntry).where(
                QuarantineEntry.group_name == group, QuarantineEntry.member == member)).all()
            gone = [r for r in rows if r.item_key not in keep]
            for row in gone:
                session.delete(row)
            return len(gone)

    # ----------------------------------------------------------------------------- audit
    def audit(self, *, action: str, platform: str, calendar: str, group: str | None = None,
              run_id: int | None = None, item_ref: str | None = None, uid: str | None = None,
              reason: str | None = None, previous: CalendarItem | None = None,
              written: CalendarItem | None = None, etag_before: str | None = None,
              etag_after: str | None = None, records: Sequence[ItemState] = ()) -> int:
        """Log one write with the content it replaced (as iCalendar), so it can be undone;
        ``records`` (of ``group``) are saved in the same transaction: what the write changed in
        the sync state is then never known to the audit log and unknown to the state."""
        if action not in ("create", "update", "delete"):
            raise ValueError(f"unknown audit action {action!r}")
        with self._tx() as session:
            entry = AuditEntry(
                at=self._now(), group_name=group, run_id=run_id, action=action, platform=platform,
                calendar=calendar, item_ref=item_ref, uid=uid, reason=reason,
                previous=_ical(previous), written=_ical(written),
                etag_before=etag_before, etag_after=etag_after)
            session.add(entry)
            if records:
                if group is None:
                    raise ValueError("records to save with an audit entry need the group")
                self._save_records(session, group, records)
            session.flush()
            return entry.id

    def audit_log(self, group: str | None = None, limit: int = 100) -> list[AuditInfo]:
        """Most recent writes first."""
        with self._sessions() as session:
            query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
            if group is not None:
                query = query.where(AuditEntry.group_name == group)
            return [AuditInfo(r.id, _aware(r.at) or self._now(), r.group_name, r.run_id, r.action, r.platform,
                              r.calendar, r.item_ref, r.uid, r.reason, r.etag_before, r.etag_after,
                              r.previous is not None) for r in session.scalars(query)]

    def previous_content(self, audit_id: int) -> CalendarItem | None:
        """What an audited write replaced or deleted, parsed back: the way to undo it."""
        with self._sessions() as session:
            entry = session.get(AuditEntry, audit_id)
            if entry is None:
                raise KeyError(f"no audit entry {audit_id}")
            if entry.previous is None:
                return None
            items, problems = parse_items(entry.previous, entry.platform)
            if problems or len(items) != 1:
                raise ValueError(f"audit entry {audit_id}: stored content does not parse back: "
                                 + "; ".join(str(p) for p in problems))
            return items[0]

    def counts(self, group: str) -> dict[str, int]:
        """Live items, tombstones and dirty items of a group (for ``calmesh status``)."""
        with self._sessions() as session:
            def n(*where: Any) -> int:
                return session.scalar(select(func.count()).select_from(SyncItem).where(
                    SyncItem.group_name == group, *where)) or 0
            return {"items": n(SyncItem.deleted.is_(False)), "tombstones": n(SyncItem.deleted.is_(True)),
                    "dirty": n(SyncItem.dirty.is_(True))}


def _hold_kind(value: str) -> HoldKind:
    if value not in ("empty", "shrink", "budget"):
        raise ValueError(f"unknown hold kind {value!r} in the state store")
    return value  # type: ignore[return-value]


def _ical(item: CalendarItem | None) -> str | None:
    return None if item is None else item_to_ical(item).decode()


def _insert_records(session: Session, group: str, records: Sequence[ItemState], now: datetime) -> None:
    """Rows for items seen for the first time, as two multi-row INSERTs instead of ORM objects:
    a first sync records every item of a group at once (10,000 events: 30,000 rows), and the ORM's
    unit of work took seconds over it."""
    for start in range(0, len(records), _CHUNK):
        chunk = records[start:start + _CHUNK]
        ids = session.execute(
            insert(SyncItem).returning(SyncItem.id, sort_by_parameter_order=True),
            [{"group_name": group, "logical_id": r.logical_id, "origin": r.origin, "content_hash": r.content_hash,
              "deleted": r.deleted, "dirty": r.dirty, "updated_at": now} for r in chunk],
        ).scalars().all()
        copies = [{"item_id": item_id, "member": member, "platform": _split_member(member)[0],
                   "calendar": _split_member(member)[1], "remote_id": c.item_id, "uid": c.uid, "etag": c.etag,
                   "content_hash": c.content_hash, "origin_marker": c.marker, "deleted": c.deleted,
                   "pending": c.pending, "evidence_token": c.evidence, "writing_hash": c.writing,
                   "deleted_there": c.deleted_there, "deleting": c.deleting,
                   "updated_at": now}
                  for item_id, record in zip(ids, chunk, strict=True) for member, c in record.copies.items()]
        if copies:
            session.execute(insert(SyncCopy), copies)


def _sync_copies(row: SyncItem, record: ItemState, now: datetime) -> None:
    """Make ``row.copies`` match ``record.copies`` (update in place, add new, drop removed)."""
    by_member = {c.member: c for c in row.copies}
    for member, copy in record.copies.items():
        target = by_member.pop(member, None)
        if target is None:
            platform, calendar = _split_member(member)
            target = SyncCopy(member=member, platform=platform, calendar=calendar)
            row.copies.append(target)
        values = (copy.item_id, copy.uid, copy.etag, copy.content_hash, copy.marker, copy.deleted, copy.pending,
                  copy.evidence, copy.writing, copy.deleted_there, copy.deleting)
        if (target.remote_id, target.uid, target.etag, target.content_hash, target.origin_marker, target.deleted,
                target.pending, target.evidence_token, target.writing_hash,
                target.deleted_there, target.deleting) != values or target.updated_at is None:
            (target.remote_id, target.uid, target.etag, target.content_hash, target.origin_marker, target.deleted,
             target.pending, target.evidence_token, target.writing_hash, target.deleted_there,
             target.deleting) = values
            target.updated_at = now
    for stale in by_member.values():
        row.copies.remove(stale)
