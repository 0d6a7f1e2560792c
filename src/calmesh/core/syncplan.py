"""Two-way sync decisions: stored state + what each member reports -> the writes to make.

Pure: no I/O, no clock, no randomness, so every rule below is unit-tested alone and a plan can
be shown (``--dry-run``) before anything is written.

Vocabulary
    member        one calendar of a sync group (``platform/calendar``) with a direction.
    logical item  one event series kept in step across members; its id is the origin marker
                  ``platform/calendar/item-id`` of the item it started from, so a crashed run, a
                  re-run or a second calmesh derive the *same* id from the copies' markers.
    copy          the stored object standing for a logical item on one member.
    sender        a member whose edits propagate: in mirror mode every member not ``in``; in busy
                  mode only the item's origin (placeholders are calmesh's, edits to them are drift).
    receiver      a member calmesh writes to: every member not ``out`` (in busy mode, not the origin).

Rules
    * An item is recognised, in order, by its recorded location, by its calmesh marker, in
      mirror mode by its UID (the same event already on several members is paired, not copied
      again), or else it is new and its own location becomes its logical id. An item carrying our marker is never
      mistaken for a new user event (loop prevention by marker); a copy whose ETag is the one
      recorded after our write is unchanged and keeps the hash recorded for it on every later
      run, whatever the platform reads back (loop prevention by mapping + ETag); a changed ETag
      with the same content hash is not a change either (servers re-serialise).
    * Scheduling state (ORGANIZER, attendees' PARTSTAT/RSVP) is not content: it is not hashed
      (platforms impose their own on a copy: Exchange and Google name the mailbox owner organizer),
      and content taken from a copy of a meeting carries the original's organizer and answers
      (``with_scheduling``), so a copy never pushes its platform's organizer over the original's.
      When the original was not read this run, it is fetched first (:attr:`Plan.needs_items`).
    * With ``attendees="omit"`` (mirror mode) organizer and attendees are not content at all:
      copies are written without them (plain events, so no platform mails anyone), and content
      written back onto the original carries the original's organizer and attendees whole, so an
      edit made on a copy never strips the original's people (the original is fetched first when
      it was not read this run, as above).
    * A copy changed on a sender wins; two senders changed differently is a conflict settled by
      the group policy (``newest``: SEQUENCE then LAST-MODIFIED, ``keep-both``, or a platform
      name). A copy changed on a non-sender is restored.
    * A copy gone from a sender deletes the item everywhere and leaves a tombstone, so a stale
      copy turning up later is removed, never resurrected. A deletion racing an edit: the edit
      wins unless the policy names the deleting platform (an edit is information, a deletion of
      an older version is not).
    * Bulk-delete guard: an unreachable member, or one listing nothing while more than
      ``delete_floor`` copies are on record, is neither read from nor written to (until
      confirmed). Deletions are judged across runs: those a run would make on a member, plus
      those made there in recent runs (:attr:`DeleteHistory.recent`), may not exceed
      ``max_delete_share`` of its items (nor ever matter below ``delete_floor``). A full listing
      lacking more than ``delete_floor`` recorded items that the member's change feed never
      reported deleted (:attr:`Observation.vouched`) is suspect. In each case the member whose
      listing says the items are gone is *held* (:class:`Hold`): its missing items are neither
      deleted elsewhere nor restored on it, and the hold outlives the run
      (:attr:`Plan.holds`, :attr:`DeleteHistory.held`), whatever kind of listing comes next,
      until confirmed (``confirm_deletes``) or undone (the member holds those items again). A held
      member is listed in full (:attr:`Plan.needs_listing`) and its change token is not
      advanced.
    * Whatever cannot be decided safely now (missing content, held deletes) leaves the stored
      state as it was, marked dirty, and the next run reads its copies again (by id, or by
      listing the members where it names none: :func:`_read_again`) and decides again.

Engine contract (``calmesh.services.sync``): when :attr:`Plan.needs_listing` is not empty,
fetch full listings of those members (every item fetched, none reported as ``unchanged``); when
:attr:`Plan.needs_items` is not empty, fetch those items and add them to their members'
observations, those no longer there as deleted (or list those members in full); then plan again
before writing anything. Execute each :class:`Batch` in order; report each successful write
with :meth:`Batch.succeeded`; persist a batch's records only when all its writes succeeded,
otherwise stop the batch and mark its items dirty. Save change tokens after the batches, except
those of members in :attr:`Plan.holds`, and store :attr:`Plan.holds` in place of the old holds
(the next run's :attr:`DeleteHistory.held`). When a complete listing lacks recorded items, ask
the member's change feed from the stored token which of them it reports deleted
(:attr:`Observation.vouched`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Literal

from calmesh.core.projection import (
    AttendeeMode,
    SyncMode,
    content_hash,
    is_meeting,
    synced_content,
    with_identity,
    with_scheduling,
)
from calmesh.model import (
    MARKER_PROPERTY,
    CalendarItem,
    ChangeSet,
    ItemRef,
    as_utc,
    instant,
    rrule_problem,
)

Direction = Literal["both", "in", "out"]


# ------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True, slots=True)
class Member:
    """One calendar of a sync group."""

    platform: str
    calendar: str
    direction: Direction = "both"
    owner: str | None = None
    """Whose calendar this is (an address), when known: a meeting changes only through its
    organiser's calendars (see :func:`_attendees_members`)."""

    @property
    def key(self) -> str:
        return f"{self.platform}/{self.calendar}"

    def origin_id(self, item_id: str) -> str:
        """The logical id (and marker) of an item that starts on this member."""
        return f"{self.key}/{item_id}"


@dataclass(frozen=True, slots=True)
class CopyState:
    """What was last seen (or written) of a logical item on one member."""

    member: str
    item_id: str
    uid: str
    etag: str | None
    content_hash: str
    marker: str | None = None
    deleted: bool = False
    pending: bool = False
    """Recorded before the write that creates it (the engine's intent): the copy may or may not
    have landed. Listed, it is adopted; missing, it is taken as deleted only on evidence (the
    member's change feed reporting ``item_id`` deleted), else as never written."""
    evidence: str | None = None
    """For a pending copy: the member's change token from before the write, from which a change
    feed can tell "written, then deleted" apart from "never written"."""
    writing: str | None = None
    """The content hash of an update under way (recorded just before the write): a run killed
    once the server stored it, before calmesh recorded it, leaves the copy at this version, and
    that is calmesh's own write, not an edit made there (which would outrank a deletion)."""
    deleted_there: bool = False
    """A deleted copy that went from its member by someone else's doing (found gone there), not by
    calmesh's deletion: the very object coming back at that id is put back by the same hand (out
    of a trash bin, an undo), while one coming back where calmesh deleted it is a stale copy."""
    deleting: bool = False
    """calmesh is deleting this copy (recorded just before the DELETE): a run killed once the
    server deleted it, before calmesh recorded that, leaves the copy gone, and that is calmesh's
    deletion, not someone else's (:attr:`deleted_there`). The copy still counts as live: when
    the DELETE never landed, an edit made there still races the deletion."""


@dataclass(frozen=True, slots=True)
class ItemState:
    """The stored state of one logical item: its agreed content and its copy on each member."""

    logical_id: str
    origin: str
    """Member key the item started on."""
    content_hash: str
    """Hash of the version all receivers should hold (the last one propagated)."""
    copies: Mapping[str, CopyState] = field(default_factory=dict)
    deleted: bool = False
    """Tombstone: the item was deleted at a sender; remaining live copies are to be removed."""
    dirty: bool = False
    """A decision about this item is pending: re-list its members before trusting the state."""

    def live(self, member: str) -> CopyState | None:
        copy = self.copies.get(member)
        return copy if copy is not None and not copy.deleted else None


@dataclass(frozen=True, slots=True)
class Observation:
    """What one member reported this run.

    ``complete``: ``items`` is the whole calendar, so a recorded copy missing from it is gone.
    Otherwise ``items`` are the changed ones and ``deleted`` the explicit deletions.
    ``unreadable``: items that exist but could not be read; they count as present and unchanged.
    An engine whose listing had unreadable items it cannot name must pass ``complete=False``.
    ``unchanged``: items present at the version on record, not fetched (``ChangeSet.unchanged``).
    """

    member: str
    items: Sequence[CalendarItem] = ()
    deleted: Sequence[ItemRef] = ()
    complete: bool = False
    reachable: bool = True
    unreadable: Sequence[ItemRef] = ()
    unchanged: Sequence[ItemRef] = ()
    vouched: frozenset[str] | None = None
    """With a complete listing: the item ids the member's change feed reported deleted since the
    last stored token (the server's own word that they were deleted); None when no change feed
    could be asked. Recorded items missing from the listing and not vouched for are suspect."""

    @classmethod
    def from_changes(cls, member: str, changes: ChangeSet) -> Observation:
        return cls(member, list(changes.changed), list(changes.deleted), complete=changes.complete,
                   unreadable=[ref for ref, _ in changes.unreadable], unchanged=list(changes.unchanged))

    @classmethod
    def unreachable(cls, member: str) -> Observation:
        return cls(member, reachable=False)


@dataclass(frozen=True, slots=True)
class PlanOptions:
    mode: SyncMode = "mirror"
    busy_title: str = "Busy"
    attendees: AttendeeMode = "omit"
    """Mirror mode: ``copy`` organizer and attendees to the copies, or ``omit`` them (the default
    of ``SyncGroupConfig.attendees``; see docs/sync.md)."""
    conflict: str = "newest"
    """``newest``, ``keep-both`` or the name of the platform that wins."""
    max_delete_share: float = 0.25
    delete_floor: int = 2
    """Up to this many deletions on one member never need confirmation, whatever the share
    (deleting the one event of a one-event calendar is a normal edit, not a wipe)."""
    confirm_deletes: bool = False
    """The operator confirmed: apply held deletions, and believe an empty listing."""
    restore_held: bool = False
    """The operator dismissed the holds: put the held items back on the members that lost them
    (copied from the others), instead of deleting their copies."""
    unsequenced: frozenset[str] = frozenset()
    """Members whose platform keeps no SEQUENCE (``Capabilities.sequence``): see :func:`newest`."""


HoldKind = Literal["empty", "shrink", "budget"]


@dataclass(frozen=True, slots=True)
class Hold:
    """A held decision: the deletions ``member``'s listings call for wait for confirmation.

    ``kind``: ``empty`` (it listed nothing), ``shrink`` (a full listing lacked items its change
    feed never reported deleted) or ``budget`` (the deletions would exceed ``max_delete_share``
    of a calendar over recent runs). ``missing`` of its ``size`` recorded items are gone from it."""

    member: str
    kind: HoldKind
    missing: int
    size: int
    reason: str


@dataclass(frozen=True, slots=True)
class DeleteHistory:
    """What the guard remembers between runs (kept in the state store)."""

    held: Mapping[str, Hold] = field(default_factory=dict)
    """Holds still in force, by member."""
    recent: Mapping[str, int] = field(default_factory=dict)
    """Deletions made on each member in recent runs (the guard's sliding window)."""


# ------------------------------------------------------------------------------------ outputs
@dataclass(frozen=True, slots=True)
class Create:
    logical_id: str
    target: str
    item: CalendarItem
    content_hash: str
    reason: str
    source: str | None = None
    """The member whose version is written."""


@dataclass(frozen=True, slots=True)
class Update:
    logical_id: str
    target: str
    ref: ItemRef
    """The copy to replace; ``ref.etag`` is the If-Match value."""
    item: CalendarItem
    content_hash: str
    reason: str
    source: str | None = None
    """The member whose version is written."""


@dataclass(frozen=True, slots=True)
class Delete:
    logical_id: str
    target: str
    ref: ItemRef
    """The copy to delete; ``ref.etag`` is the If-Match value."""
    reason: str
    source: str | None = None
    """The member whose listing says the item is gone (None: a duplicate, or a deletion decided
    in an earlier run); only such deletions count against the bulk-delete guard's budget."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two members changed the same item differently (or one deleted what another edited)."""

    logical_id: str
    members: tuple[str, ...]
    winner: str | None
    resolution: str


@dataclass(frozen=True, slots=True)
class Skip:
    """A write that was due but is not made this run, and why."""

    logical_id: str
    member: str
    reason: str


@dataclass(frozen=True, slots=True)
class Quarantine:
    """An upstream item calmesh cannot sync; the rest of the calendar still syncs."""

    member: str
    item_id: str | None
    uid: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A feature of an item its target platform cannot hold as it is (``feature``, named the
    iCalendar way: ``RRULE``, ``RANGE=THISANDFUTURE``, ``VALARM``...): the copy was written
    another faithful way, said in ``detail``, or, when ``written`` is False, not written at all.
    Carried in the run summary and the audit log: a copy is never silently different. Names the
    item by UID, never by title (a private event's title stays private)."""

    member: str
    logical_id: str
    uid: str
    feature: str
    detail: str
    written: bool = True

    def __str__(self) -> str:
        done = "" if self.written else "not written: "
        return f"{self.member}: UID {self.uid}: {done}{self.feature}: {self.detail}"

    def as_dict(self) -> dict[str, str | bool]:
        """As the JSON doors give it (``adapted`` of a sync run or a booking)."""
        return {"member": self.member, "item": self.logical_id, "uid": self.uid, "feature": self.feature,
                "detail": self.detail, "written": self.written}


UNCONFIRMED = ("written again: a run that was interrupted may have written it, and nothing on the "
               "server says whether it was deleted since")
"""Reason of a :class:`Create` that replaces a pending copy found missing without evidence."""

Write = Create | Update | Delete
Action = Create | Update | Delete | Conflict | Skip


@dataclass(slots=True)
class Batch:
    """Everything about one logical item (and any keep-both copies forked from it), in execution
    order. Its records are the state to persist once all its writes succeeded."""

    logical_id: str
    actions: list[Action] = field(default_factory=list)
    records: dict[str, ItemState] = field(default_factory=dict)

    @property
    def writes(self) -> list[Write]:
        return [a for a in self.actions if isinstance(a, Create | Update | Delete)]

    def succeeded(self, action: Write, ref: ItemRef | None = None) -> None:
        """Fold a successful write into :attr:`records` (``ref``: what a put answered)."""
        record = self.records.get(action.logical_id)
        if record is None:
            return  # removal of a copy nobody recorded: nothing to remember
        if isinstance(action, Delete):
            self.records[action.logical_id] = record_deleted(record, action)
        else:
            if ref is None:
                raise ValueError("a successful put answers with the item's reference")
            self.records[action.logical_id] = record_written(record, action, ref)

    def after_failure(self, state: Mapping[str, ItemState]) -> list[ItemState]:
        """What to persist when a write of this batch failed: the stored state unchanged but
        dirty, so the next run reads the item again and decides again from the same starting
        point (a half-done conflict resolution is redone, never lost); for an item new this run
        an empty dirty placeholder, so that it is not forgotten once change tokens move on."""
        old = state.get(self.logical_id)
        if old is not None:
            return [replace(old, dirty=True)]
        new = self.records.get(self.logical_id)
        return [] if new is None else [ItemState(self.logical_id, new.origin, "", {}, dirty=True)]


@dataclass(slots=True)
class Plan:
    batches: list[Batch] = field(default_factory=list)
    quarantine: list[Quarantine] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    needs_listing: set[str] = field(default_factory=set)
    """Members to list in full before this plan may be executed (see module docstring)."""
    needs_items: dict[str, set[str]] = field(default_factory=dict)
    """Items (by member) whose content this plan needs and the observations lack: stored at
    their recorded version but not read this run, or the copies of a dirty record (see
    :func:`_read_again`). Fetch them (those gone count as deleted) and plan again."""
    holds: dict[str, Hold] = field(default_factory=dict)
    """Every hold in force after this run, by member: to be stored in place of the old ones."""

    @property
    def incomplete(self) -> bool:
        """The plan asks for more before it may be executed."""
        return bool(self.needs_listing or self.needs_items)

    def need_item(self, member: str, item_id: str) -> None:
        self.needs_items.setdefault(member, set()).add(item_id)

    @property
    def actions(self) -> list[Action]:
        return [a for b in self.batches for a in b.actions]

    @property
    def writes(self) -> list[Write]:
        return [w for b in self.batches for w in b.writes]


# ------------------------------------------------------------------------- folding in results
def record_written(state: ItemState, action: Create | Update, ref: ItemRef) -> ItemState:
    """``state`` after ``action`` succeeded and the target answered with ``ref``."""
    copy = CopyState(action.target, ref.id, action.item.uid, ref.etag, action.content_hash,
                     marker=action.item.marker)
    return replace(state, copies={**state.copies, action.target: copy})


def record_deleted(state: ItemState, action: Delete) -> ItemState:
    """``state`` after ``action`` succeeded (deleting a duplicate leaves the recorded copy)."""
    copy = state.copies.get(action.target)
    if copy is None or copy.item_id != action.ref.id:
        return state
    return replace(state, copies={**state.copies, action.target: replace(copy, deleted=True, deleting=False)})


# ------------------------------------------------------------------------------- the planner
@dataclass(frozen=True, slots=True)
class _Seen:
    member: str
    item: CalendarItem
    item_id: str
    etag: str | None
    hash: str


@dataclass(slots=True)
class _Context:
    members: dict[str, Member]
    usable: set[str]
    complete: set[str]
    listed: dict[str, set[str]]
    """Item ids present (readable or not) in each member's observation."""
    unfetched: dict[str, set[str]]
    """Item ids listed at their recorded version but not fetched: present, content unknown."""
    gone_ids: dict[str, set[str]]
    options: PlanOptions
    opaque: dict[str, str] = field(default_factory=dict)
    """Digest -> logical id or member key, for reading placeholder markers (see :func:`_marker`)."""
    holds: dict[str, Hold] = field(default_factory=dict)
    held_missing: dict[str, set[str]] = field(default_factory=dict)
    """Item ids gone from a held member: for now neither gone nor present (see :class:`Hold`)."""
    restore: dict[str, set[str]] = field(default_factory=dict)
    """Item ids gone from a held member that are to be put back on it (``restore_held``)."""
    invited: Mapping[str, Collection[str]] = field(default_factory=dict)
    """UID -> members calmesh delivered the meeting's invitation to (see :func:`plan`)."""
    reused: set[tuple[str, str]] = field(default_factory=set)
    """(member, item id) of deleted copies of more than one item: an object come back at such an
    id is not known to be what was deleted there last (see :func:`_put_back`)."""

    def sends(self, member: str, origin: str) -> bool:
        if self.members[member].direction == "in":
            return False
        return self.options.mode == "mirror" or member == origin

    def receives(self, member: str, origin: str) -> bool:
        if self.members[member].direction == "out":
            return False
        return self.options.mode == "mirror" or member != origin

    def is_gone(self, member: str, item_id: str) -> bool:
        if member not in self.usable or self.is_held(member, item_id):
            return False
        if item_id in self.gone_ids[member]:
            return True
        return member in self.complete and item_id not in self.listed[member]

    def is_held(self, member: str, item_id: str) -> bool:
        return item_id in self.held_missing.get(member, ())


def plan(
    members: Sequence[Member],
    state: Mapping[str, ItemState],
    observations: Mapping[str, Observation],
    options: PlanOptions = PlanOptions(),
    history: DeleteHistory = DeleteHistory(),
    invited: Mapping[str, Collection[str]] | None = None,
) -> Plan:
    """Decide what to write so that every member of the group holds the same items.

    ``state`` maps logical id to stored state; ``observations`` maps member key to what that
    member reported (a member without one counts as unreachable); ``history`` is what the
    bulk-delete guard kept from earlier runs; ``invited`` maps a meeting's UID to the members
    calmesh delivered its invitation to when it booked it (see :func:`_dropped_invitation`).
    """
    by_key = {m.key: m for m in members}
    if len(by_key) != len(members):
        raise ValueError("a sync group lists the same calendar twice")
    over: dict[str, Hold] = {}
    while True:  # each pass may hold more members (one per member at most)
        result, ctx = _plan_once(by_key, state, observations, options, history, over, invited or {})
        more = {k: h for k, h in _over_budget(ctx, state, result, history).items() if k not in over}
        if not more:
            break
        over |= more
    result.holds = dict(sorted(ctx.holds.items()))
    for hold in result.holds.values():
        result.notices.append(f"{hold.member}: {hold.reason}; held until confirmed")
    return result


def _plan_once(members: dict[str, Member], state: Mapping[str, ItemState], observations: Mapping[str, Observation],
               options: PlanOptions, history: DeleteHistory, over: Mapping[str, Hold],
               invited: Mapping[str, Collection[str]]) -> tuple[Plan, _Context]:
    result = Plan()
    ctx = _context(members, state, observations, options, result, invited)
    _judge_listings(ctx, state, observations, history, over, result)
    state = _without_restored(ctx, state)
    seen = _recognise(ctx, state, observations, result)
    lids = sorted(set(state) | set(seen))
    for lid in lids:
        batch = _decide(ctx, lid, state.get(lid), seen.get(lid, {}), state, seen, result)
        written = {w.logical_id for w in batch.writes}
        batch.records = {k: v for k, v in batch.records.items() if k in written or state.get(k) != v}
        if batch.actions or batch.records:
            result.batches.append(batch)
    _show_held(ctx, state, result)
    return result, ctx


def _context(members: dict[str, Member], state: Mapping[str, ItemState],
             observations: Mapping[str, Observation], options: PlanOptions, result: Plan,
             invited: Mapping[str, Collection[str]]) -> _Context:
    ctx = _Context(members, set(), set(), defaultdict(set), defaultdict(set), defaultdict(set), options,
                   invited=invited)
    for key in members:
        obs = observations.get(key)
        if obs is None or not obs.reachable:
            result.notices.append(f"{key}: unreachable; nothing read from or written to it this run")
            continue
        ctx.usable.add(key)
        if obs.complete:
            ctx.complete.add(key)
        unreadable = {r.id for r in obs.unreadable}
        ctx.unfetched[key] = {r.id for r in obs.unchanged}
        ctx.listed[key] = {i.ref.id for i in obs.items if i.ref is not None} | unreadable | ctx.unfetched[key]
        ctx.gone_ids[key] = {r.id for r in obs.deleted} - unreadable - ctx.unfetched[key]
    return ctx


# ------------------------------------------------------------------------- bulk-delete guard
def _on_record(state: Mapping[str, ItemState]) -> dict[str, set[str]]:
    """Item ids of the live copies on record, by member (pending ones may never have been written)."""
    out: dict[str, set[str]] = defaultdict(set)
    for record in state.values():
        for key, copy in record.copies.items():
            if not copy.deleted and not copy.pending:
                out[key].add(copy.item_id)
    return out


def _judge_listings(ctx: _Context, state: Mapping[str, ItemState], observations: Mapping[str, Observation],
                    history: DeleteHistory, over: Mapping[str, Hold], result: Plan) -> None:
    """Hold the members whose listings cannot be believed without confirmation (see
    :class:`Hold`): before anything is decided, so that no decision rests on them."""
    floor = ctx.options.delete_floor
    on_record = _on_record(state)
    for key in ctx.members:
        prior = over.get(key) or history.held.get(key)
        size = len(on_record[key])
        if key not in ctx.usable:
            if prior is not None:
                ctx.holds[key] = prior  # nothing read, nothing applied: not even a confirmation
            continue
        if ctx.options.confirm_deletes:
            continue
        obs = observations[key]
        if obs.complete and not ctx.listed[key] and size > floor and not (prior and ctx.options.restore_held):
            ctx.usable.discard(key)
            ctx.complete.discard(key)
            ctx.holds[key] = Hold(key, "empty", size, size,
                                  f"listed no items while {size} are on record; treated as unreachable "
                                  "so that an empty source never wipes its copies")
            continue
        missing = {i for i in on_record[key] if ctx.is_gone(key, i)}
        if prior is None and obs.complete and obs.vouched is not None:
            unexplained = missing - obs.vouched
            if len(unexplained) > floor:
                prior = Hold(key, "shrink", len(missing), size,
                             f"a full listing lacks {len(unexplained)} of the {size} items on record that "
                             "its change feed never reported deleted")
        if prior is None:
            continue
        if not obs.complete:
            result.needs_listing.add(key)  # a held member is judged on a full listing
        if not missing and key not in over:
            continue  # undone: the member holds those items again
        if ctx.options.restore_held and history.held.get(key) is not None:
            ctx.restore[key] = _restorable(ctx, state, key, missing)
            missing -= ctx.restore[key]
            if not missing:
                continue
        reason = prior.reason if prior.kind != "empty" else \
            f"lacks {len(missing)} of the {size} items on record after listing none"
        ctx.holds[key] = replace(prior, missing=len(missing), size=size, reason=reason)
        ctx.held_missing[key] = missing


def _restorable(ctx: _Context, state: Mapping[str, ItemState], member: str, missing: set[str]) -> set[str]:
    """The items gone from ``member`` that can be put back there from the other members: not
    those whose original it held in busy mode (the others hold only placeholders)."""
    origins = {c.item_id: r.origin for r in state.values() if (c := r.live(member)) is not None}
    return {i for i in missing if ctx.receives(member, origins.get(i, member))}


def _without_restored(ctx: _Context, state: Mapping[str, ItemState]) -> Mapping[str, ItemState]:
    """``state`` with the copies to restore recorded as deleted, so that they are written again."""
    if not any(ctx.restore.values()):
        return state
    out = dict(state)
    for lid, record in state.items():
        gone = {k: replace(c, deleted=True) for k, c in record.copies.items()
                if not c.deleted and c.item_id in ctx.restore.get(k, ())}
        if gone:
            out[lid] = replace(record, copies={**record.copies, **gone})
    return out


def _over_budget(ctx: _Context, state: Mapping[str, ItemState], result: Plan,
                 history: DeleteHistory) -> dict[str, Hold]:
    """Holds for the members whose listings would delete more than the allowed share of some
    member's items, counting the deletions made there in recent runs (a calendar eroded a
    little each run is a wipe too)."""
    opts = ctx.options
    if opts.confirm_deletes:
        return {}
    fresh: dict[str, int] = defaultdict(int)
    sources: dict[str, set[str]] = defaultdict(set)
    for write in result.writes:
        if isinstance(write, Delete) and write.source is not None:
            fresh[write.target] += 1
            sources[write.target].add(write.source)
    on_record = _on_record(state)
    out: dict[str, Hold] = {}
    for target, n in sorted(fresh.items()):
        recent = history.recent.get(target, 0)
        total, size = n + recent, len(on_record[target]) + recent
        if total <= opts.delete_floor or total <= opts.max_delete_share * max(size, 1):
            continue
        earlier = f" (with {recent} deleted in recent runs)" if recent else ""
        for source in sorted(sources[target]):
            out[source] = Hold(source, "budget", 0, 0,
                               f"its listing would delete {n} of the {size} items of {target}{earlier}, "
                               f"more than {opts.max_delete_share:.0%}")
    return out


def _show_held(ctx: _Context, state: Mapping[str, ItemState], result: Plan) -> None:
    """A skip per held item, so that every held deletion is listed with its reason."""
    if not ctx.held_missing:
        return
    by_lid = {b.logical_id: b for b in result.batches}
    for lid, record in sorted(state.items()):
        for key, ids in sorted(ctx.held_missing.items()):
            copy = record.live(key)
            if copy is None or copy.item_id not in ids:
                continue
            batch = by_lid.get(lid)
            if batch is None:
                batch = by_lid[lid] = Batch(lid)
                result.batches.append(batch)
            batch.actions.append(Skip(lid, key, f"gone from {key}; deletion held by the bulk-delete guard"))


def _invalid(item: CalendarItem) -> str | None:
    """Why ``item`` cannot be synced, or None."""
    if item.ref is None:
        return "the connector gave no item reference"
    if not item.components:
        return "no VEVENT in the item"
    if any(e.uid != item.uid for e in item.components):
        return "components with different UIDs in one item"
    if sum(1 for e in item.components if e.recurrence_id is None) > 1:
        return "more than one master VEVENT"
    rids = [instant(e.recurrence_id) for e in item.components if e.recurrence_id is not None]
    if len(set(rids)) != len(rids):
        return "the same RECURRENCE-ID twice"
    for event in item.components:
        for rule in event.rrule:
            if (why := rrule_problem(rule)) is not None:  # the reader's test: it expanded one instance
                return f"RRULE {rule!r} cannot be read ({why}): no copy could repeat like the original"
        if event.end is not None:
            try:
                if as_utc(event.end) < as_utc(event.start):
                    return f"ends before it starts ({event.start} .. {event.end})"
            except TypeError:
                return "start and end mix dates and date-times"
    return None


BUSY_MARKER = "calmesh-busy:"


def _marker(ctx: _Context, lid: str) -> str:
    """The marker a copy of ``lid`` carries: the logical id itself, or in busy mode an opaque
    ``calmesh-busy:<digest of the origin member>:<digest of the logical id>``. A placeholder is
    there to hide the event: its marker must not tell whoever reads that calendar where the busy
    time comes from (the logical id holds the origin calendar's URL and the event's name there).
    The digests still say which logical item and which member it stands for (see
    :func:`_group_marker`)."""
    if ctx.options.mode != "busy":
        return lid
    origin = max((k for k in ctx.members if lid.startswith(k + "/")), key=len, default="")
    return f"{BUSY_MARKER}{_short_id(origin)}:{_short_id(lid)}"


def _read_opaque_markers(ctx: _Context, state: Mapping[str, ItemState], observations: Mapping[str, Observation]) -> None:
    """Fill ``ctx.opaque`` when some observed item carries a placeholder marker: the digests of
    every member key and of every logical id the group can know (on record, or an observed
    item's own origin id)."""
    if not any((i.marker or "").startswith(BUSY_MARKER) for key in ctx.usable for i in observations[key].items):
        return
    names = set(ctx.members) | set(state)
    for key in ctx.usable:
        names.update(ctx.members[key].origin_id(i.ref.id) for i in observations[key].items if i.ref is not None)
    ctx.opaque = {_short_id(name): name for name in names}


def _group_marker(ctx: _Context, marker: str | None, named: Mapping[tuple[str, str], str]) -> str | None:
    """The logical id a marker names if it is an item of one of this group's members (else a
    foreign copy). A placeholder marker whose item the group cannot name any more (its origin
    deleted, the record lost) stands for an item of that origin member that is gone there.

    A marker ``member/item-id`` (or, as booking wrote it before identities were recorded,
    ``member/UID``) names the logical id recorded or observed for that item on that member
    (``named``), which may differ from the marker itself: an item paired by UID carries the id of
    the first member's copy. A marker naming a calendar outside the group is a foreign copy."""
    if marker is None:
        return None
    if marker.startswith(BUSY_MARKER):
        origin_digest, _, lid_digest = marker.removeprefix(BUSY_MARKER).partition(":")
        if (lid := ctx.opaque.get(lid_digest)) is not None and lid not in ctx.members:
            return lid
        origin = ctx.opaque.get(origin_digest)
        return f"{origin}/{marker}" if origin in ctx.members else None
    member = max((key for key in ctx.members if marker.startswith(key + "/")), key=len, default=None)
    if member is None:
        return None
    return named.get((member, marker[len(member) + 1:]), marker)


def _named(ctx: _Context, state: Mapping[str, ItemState], observations: Mapping[str, Observation],
           located: Mapping[tuple[str, str], str]) -> dict[tuple[str, str], str]:
    """(member, item id or UID) -> logical id of that item: what a marker's tail may name. Item
    ids come first; a UID names an item only where no item id is the same text."""
    ids: dict[tuple[str, str], str] = {}
    uids: dict[tuple[str, str], str] = {}
    for lid, rec in state.items():
        for key, copy in rec.copies.items():
            if not copy.deleted:
                ids[(key, copy.item_id)] = lid
                uids.setdefault((key, copy.uid), lid)
    for key in ctx.usable:
        for item in observations[key].items:
            if item.ref is not None:
                lid = located.get((key, item.ref.id)) or ctx.members[key].origin_id(item.ref.id)
                ids.setdefault((key, item.ref.id), lid)
                uids.setdefault((key, item.uid), lid)
    return {**uids, **ids}


def marker_origin(marker: str, members: Iterable[str]) -> str | None:
    """The member key (among ``members``) whose item a copy marked ``marker`` stands for, if any:
    a placeholder's marker names it by digest, any other marker by prefix. Detection uses it to
    tell a copy from a meeting where the identity record is missing."""
    if marker.startswith(BUSY_MARKER):
        digest = marker.removeprefix(BUSY_MARKER).partition(":")[0]
        return next((m for m in members if _short_id(m) == digest), None)
    return max((m for m in members if marker.startswith(m + "/")), key=len, default=None)


def joins(member: Member, item_id: str, uid: str, marker: str | None, members: Iterable[str]) -> set[str]:
    """Names by which :func:`_recognise` may attach an item of ``member`` to another item of
    the group when nothing is on record: its own origin id (and, for placeholders, its
    digest), its UID (paired by UID, or named by an older marker's ``member/UID``), and what
    its marker names. Two items the planner may decide together share a name, so a first
    comparison can be planned in parts (``calmesh.core.partition``) that each hold every
    item a decision of theirs looks at. More names than needed only make parts bigger."""
    own = member.origin_id(item_id)
    names = {f"id:{own}", f"digest:{_short_id(own)}", f"uid:{uid}"}
    if marker is None:
        return names
    if marker.startswith(BUSY_MARKER):
        names.add(f"digest:{marker.removeprefix(BUSY_MARKER).partition(':')[2]}")
        return names
    origin = max((key for key in members if marker.startswith(key + "/")), key=len, default=None)
    if origin is not None:
        named = marker.partition("#")[0]  # a keep-both fork's copies go with the item forked
        names |= {f"id:{marker}", f"id:{named}", f"uid:{marker[len(origin) + 1:]}"}
    return names


def _origin_of(ctx: _Context, lid: str) -> str:
    return max((k for k in ctx.members if lid.startswith(k + "/")), key=len)


def _recognise(ctx: _Context, state: Mapping[str, ItemState], observations: Mapping[str, Observation],
               result: Plan) -> dict[str, dict[str, list[_Seen]]]:
    """Attach every observed item to its logical id (location, then marker, then UID, then new)."""
    # an id may be on record twice: a deleted copy's, and the live one of an event started at
    # the same id later (see below); the live one names the item
    located = {(key, copy.item_id): lid for deleted in (True, False) for lid, rec in state.items()
               for key, copy in rec.copies.items() if copy.deleted is deleted}
    tombstones: dict[tuple[str, str], dict[tuple[str, str], str]] = defaultdict(dict)
    """(member, item id) -> (UID, content hash) -> logical id, of the deleted copies on record."""
    for deleted_lid, rec in state.items():
        for key, copy in rec.copies.items():
            if copy.deleted:
                tombstones[(key, copy.item_id)][(copy.uid, copy.content_hash)] = deleted_lid
    ctx.reused = {at for at, deleted in tombstones.items() if len(deleted) > 1}
    _read_opaque_markers(ctx, state, observations)
    named: dict[tuple[str, str], str] | None = None  # built on the first marker not located
    seen: dict[str, dict[str, list[_Seen]]] = defaultdict(lambda: defaultdict(list))
    unclaimed: list[_Seen] = []
    # Hashes by the identity of the events hashed: members holding the same stored text share
    # the events read from it (``calmesh.ical.parse_object``), so a first comparison of two filled
    # calendars hashes each event once. Every item stays referenced by ``observations`` for the
    # whole call, so no id is reused meanwhile.
    hashes: dict[tuple[int, ...], str] = {}
    for key in ctx.members:
        if key not in ctx.usable:
            continue
        for item in observations[key].items:
            reason = _invalid(item)
            hashed = None
            if reason is None:
                try:
                    hashed = _hash_once(ctx, item, hashes)
                except (TypeError, ValueError) as exc:
                    reason = f"unreadable value: {exc}"
            if reason is not None or hashed is None or item.ref is None:
                result.quarantine.append(Quarantine(key, item.ref.id if item.ref else None, item.uid,
                                                    reason or "unhashable"))
                continue
            lid = located.get((key, item.ref.id))
            if lid is not None and state[lid].copies[key].deleted:
                # the id of a deleted copy: that copy come back as it was (an offline client
                # pushing it again), else another item now: the id given again (SQLite hands out
                # the highest rowid plus one, so deleting a table's last row frees its id), or
                # other content of its UID (CalDAV names a new object by its UID: an organiser's
                # new revision delivered again where the copy was deleted, a copy edited offline)
                lid = tombstones[(key, item.ref.id)].get((item.uid, hashed))
            if lid is None and item.marker is not None:
                if named is None:
                    named = _named(ctx, state, observations, located)
                lid = _group_marker(ctx, item.marker, named)
            if lid is None:
                unclaimed.append(_Seen(key, item, item.ref.id, item.ref.etag, hashed))
            else:
                seen[lid][key].append(_Seen(key, item, item.ref.id, item.ref.etag, hashed))
    for lid, found in _pair_by_uid(ctx, state, unclaimed).items():
        for s in found:
            seen[lid][s.member].append(s)
    for by_member in seen.values():
        for items in by_member.values():
            # of two items of one meeting on a calendar, the one kept is its own (an invitation)
            # rather than calmesh's copy (marked): see :func:`_statuses`' extras
            items.sort(key=lambda s: (s.item.marker is not None, s.item_id))
    return seen


def _hash_once(ctx: _Context, item: CalendarItem, hashes: dict[tuple[int, ...], str]) -> str:
    opts = ctx.options
    content = synced_content(item, opts.mode, opts.busy_title, opts.attendees)
    if content is not item:  # made for this call: its events are nobody else's
        return content_hash(content)
    key = tuple(id(e) for e in item.components)
    if (found := hashes.get(key)) is None:
        found = hashes[key] = content_hash(content)
    return found


def _pair_by_uid(ctx: _Context, state: Mapping[str, ItemState], unclaimed: list[_Seen]) -> dict[str, list[_Seen]]:
    """Logical ids for items neither recorded nor marked: in mirror mode, the same UID on several
    members is one event (an invitation delivered to two of a person's calendars, calendars
    filled from the same export before the first sync), not one new event per member. Copying
    each to the others would fail on CalDAV (``no-uid-conflict``) and duplicate it elsewhere.

    An unclaimed item first joins a recorded item with its UID that has no live copy on its
    member, or only a pending one (a killed run's intent: the item is the meeting that copy was
    to hold, an invitation delivered there meanwhile, and writing the copy would put the meeting
    twice on the calendar), or one gone this run (the meeting delivered again after that copy
    was deleted: an organiser's move re-sends it as a new object); a record left dirty by a
    killed run is still that meeting. The rest are grouped by UID, one item per member, under
    the id of the first sending member's item in group order (as if it had been the original and
    the others its copies).
    In busy mode placeholders get their own UIDs, so items are never paired by UID."""
    out: dict[str, list[_Seen]] = defaultdict(list)
    if ctx.options.mode != "mirror":
        for s in unclaimed:
            out[_new_lid(ctx, state, s)].append(s)
        return out
    recorded: dict[str, str] = {}
    for lid, rec in state.items():
        if not rec.deleted:
            for copy in rec.copies.values():
                if not copy.deleted:
                    recorded.setdefault(copy.uid, lid)
    by_uid: dict[str, dict[str, _Seen]] = defaultdict(dict)
    for s in sorted(unclaimed, key=lambda s: (s.member, s.item_id)):
        joins = recorded.get(s.item.uid)
        if (joins is not None and ((held := state[joins].live(s.member)) is None or held.pending
                                   or ctx.is_gone(s.member, held.item_id))
                and s.member not in {o.member for o in out[joins]}):
            out[joins].append(s)
        elif s.member in by_uid[s.item.uid]:
            out[_new_lid(ctx, state, s)].append(s)  # a second one on the same calendar
        else:
            by_uid[s.item.uid][s.member] = s
    order = {key: (m.direction == "in", n) for n, (key, m) in enumerate(ctx.members.items())}
    for group in by_uid.values():
        out[_new_lid(ctx, state, min(group.values(), key=lambda s: order[s.member]))].extend(group.values())
    return out


def _new_lid(ctx: _Context, state: Mapping[str, ItemState], first: _Seen) -> str:
    """The logical id of an event that starts with ``first``: its origin id, unless that names a
    deleted event (a new object at the id of a deleted one: see :func:`_recognise`), whose
    tombstone must go on deleting what comes back of it; then that id and the content's digest."""
    lid = ctx.members[first.member].origin_id(first.item_id)
    rec = state.get(lid)
    return lid if rec is None or not rec.deleted else f"{lid}#{_short_id(first.hash)[:12]}"


@dataclass(slots=True)
class _Status:
    """One member's copy of one logical item this run."""

    prev: CopyState | None
    current: _Seen | None = None
    gone: bool = False
    extras: list[_Seen] = field(default_factory=list)
    unconfirmed: CopyState | None = None
    """A pending copy (see :attr:`CopyState.pending`) that is not there and that nothing says was
    deleted: as far as anyone can tell it was never written, so there is no copy (``prev`` None)."""

    @property
    def live_hash(self) -> str | None:
        if self.current is not None:
            if self.prev is not None and self._recorded_version:
                # the very version recorded (say, just written): it holds what was agreed, even
                # when the platform reads it back with extras (Exchange adds the mailbox owner as
                # ORGANIZER); hashing the read-back would "restore" it on every run, forever
                return self.prev.content_hash
            return self.current.hash
        if self.prev is not None and not self.prev.deleted and not self.gone:
            return self.prev.content_hash
        return None

    @property
    def changed(self) -> bool:
        cur, prev = self.current, self.prev
        if cur is None:
            return False
        if prev is None or prev.deleted:
            return True
        return not self._recorded_version and cur.hash not in (prev.content_hash, prev.writing)

    @property
    def _recorded_version(self) -> bool:
        cur, prev = self.current, self.prev
        return (cur is not None and prev is not None and not prev.deleted and cur.etag is not None
                and cur.etag == prev.etag)


def _statuses(ctx: _Context, rec: ItemState | None, seen: Mapping[str, list[_Seen]]) -> dict[str, _Status]:
    out: dict[str, _Status] = {}
    for key in ctx.members:
        prev = rec.copies.get(key) if rec else None
        items = list(seen.get(key, []))
        status = _Status(prev)
        if (prev is not None and prev.pending and key in ctx.usable and prev.item_id not in ctx.gone_ids[key]
                and not any(s.item_id == prev.item_id for s in items)):
            if items and items[0].item.marker is not None:
                # the copy landed at an id the server chose (it is known by its marker): the
                # killed run's own write, not an edit, so it is compared with what was written.
                # Not where the member holds the meeting of its own (an invitation, sorted
                # first by _recognise): that is kept, and the copy is one too many.
                prev = status.prev = replace(prev, item_id=items[0].item_id, etag=None, pending=False)
            else:
                status.unconfirmed, prev = prev, None
                status.prev = None
        if prev is not None and not prev.deleted:
            match = next((s for s in items if s.item_id == prev.item_id), None)
            if match is not None:
                items.remove(match)
                status.current = match
            elif ctx.is_gone(key, prev.item_id) or ctx.is_held(key, prev.item_id):
                # the recorded copy is gone: a marked copy elsewhere on the member replaces it
                status.gone = not items and not ctx.is_held(key, prev.item_id)
                status.current = items.pop(0) if items else None
        elif items:
            status.current = items.pop(0)
        status.extras = items
        out[key] = status
    return out


def newest(candidates: Sequence[tuple[CalendarItem, bool]]) -> tuple[int, bool]:
    """Index of the newest of differing versions of one event, each with whether its platform
    keeps SEQUENCE: the higher SEQUENCE, then the later LAST-MODIFIED (RFC 5545 3.8.7.4: the
    organizer raises SEQUENCE on each significant change), the first of equals.

    For a plain event, SEQUENCE is compared only when every version's platform keeps it: an edit
    made on Exchange reads as SEQUENCE 0 however recent, and would lose to any older edit a
    CalDAV client numbered; then LAST-MODIFIED (the server's own time of change on Exchange)
    decides, SEQUENCE breaking ties. A meeting keeps SEQUENCE first whatever the platforms: it is
    the organiser's revision (RFC 5546 2.1.4), and a change calmesh made to every copy at once (a
    move, a cancellation) must not be won by whichever copy a server stamped last. Returns the
    index and whether SEQUENCE was compared first."""
    floor = datetime.min.replace(tzinfo=UTC)
    by_sequence = all(keeps for _item, keeps in candidates) or any(is_meeting(item) for item, _keeps in candidates)

    def key(n: int) -> tuple[int, datetime, int]:
        item = candidates[n][0]
        sequence = max(e.sequence for e in item.components)
        modified = max((as_utc(e.last_modified) for e in item.components if e.last_modified), default=floor)
        return (sequence, modified, 0) if by_sequence else (0, modified, sequence)

    return max(range(len(candidates)), key=key), by_sequence  # max keeps the first of equals


def _winner(ctx: _Context, candidates: list[_Seen]) -> tuple[_Seen, str]:
    """The version that wins a conflict between ``candidates`` (in group order) and why."""
    policy = ctx.options.conflict
    if policy not in ("newest", "keep-both"):
        named = [c for c in candidates if ctx.members[c.member].platform == policy]
        if named:
            return named[0], f"{policy} wins by policy"
    unsequenced = ctx.options.unsequenced
    best, by_sequence = newest([(c.item, c.member not in unsequenced) for c in candidates])
    if not by_sequence:
        platform = next(c.member for c in candidates if c.member in unsequenced).split("/")[0]
        return candidates[best], f"newest by LAST-MODIFIED ({platform} keeps no SEQUENCE)"
    return candidates[best], "newest (SEQUENCE, then LAST-MODIFIED)"


def _target_item(ctx: _Context, lid: str, source: _Seen, target: str, uid: str, item_id: str | None,
                 scheduling: CalendarItem | None) -> CalendarItem:
    """The content to write on ``target``: marked with the logical id, except when the write
    replaces the original item itself; with the scheduling state of ``scheduling`` if given
    (where people are omitted, only on the original: copies carry none)."""
    opts = ctx.options
    content = synced_content(source.item, opts.mode, opts.busy_title, opts.attendees)
    is_original = item_id is not None and ctx.members[target].origin_id(item_id) == lid
    if scheduling is not None and (is_original or opts.attendees == "copy"):
        content = with_scheduling(content, scheduling, opts.attendees)
    return with_identity(content, uid, None if is_original else _marker(ctx, lid), MARKER_PROPERTY)


def _scheduling_reference(ctx: _Context, origin: str, statuses: dict[str, _Status], source: _Seen,
                          target: str, result: Plan) -> tuple[bool, CalendarItem | None]:
    """Whose scheduling state the write of ``source`` on ``target`` carries:
    ``(True, original)`` when ``source`` is a copy of a meeting, since a copy's organizer and
    answers are what its platform imposed (Exchange and Google name the mailbox owner organizer)
    and must never be pushed over the original's; with attendees omitted, whenever ``target``
    holds the original, since content from any member carries no people and the original's
    must survive (whether the original is a meeting is known only from the original);
    ``(True, None)`` when the content travels as it is (``source`` is the original or no meeting,
    or the original is out of reach or gone); ``(False, None)`` when the original is present but
    was not read this run: it is added to :attr:`Plan.needs_items` and the item decided again
    once it is read."""
    st = statuses.get(origin)
    if st is None:
        return True, None
    if ctx.options.mode == "mirror" and ctx.options.attendees == "omit":
        if target != origin:
            return True, None
    elif source.member == origin or not is_meeting(source.item):
        return True, None
    if st.current is not None:
        return True, st.current.item
    return not _ask_original(ctx, origin, st, result), None


def _ask_original(ctx: _Context, origin: str, st: _Status, result: Plan) -> bool:
    """Whether the original is present on ``origin`` but was not read this run (listed at its
    recorded version, or its member not listed in full): it is then asked for (see
    :attr:`Plan.needs_items`) and the item is decided again once it is read."""
    prev = st.prev
    if (prev is not None and not prev.deleted and not st.gone and origin in ctx.usable
            and (origin not in ctx.complete or prev.item_id in ctx.unfetched[origin])):
        result.need_item(origin, prev.item_id)
        return True
    return False


def _create_uid(ctx: _Context, lid: str, source: _Seen) -> str:
    """UID for a new copy: the source's in mirror mode (so invitations still match); in busy
    mode a derived one, since the placeholder may share a calendar with the real meeting."""
    if ctx.options.mode == "busy":
        return "calmesh-busy-" + _short_id(lid)
    return source.item.uid


def _short_id(text: str) -> str:
    """A short stable id derived from ``text`` (placeholder UIDs, keep-both forks)."""
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _observed_record(ctx: _Context, lid: str, rec: ItemState | None, origin: str,
                     statuses: dict[str, _Status], content_hash: str, deleted: bool) -> ItemState:
    copies: dict[str, CopyState] = dict(rec.copies) if rec else {}
    for key, st in statuses.items():
        if st.current is not None:
            cur = st.current
            # the recorded version keeps its recorded hash (see _Status.live_hash)
            copies[key] = CopyState(key, cur.item_id, cur.item.uid, cur.etag, st.live_hash or cur.hash, cur.item.marker)
        elif st.gone and st.prev is not None:
            copies[key] = replace(st.prev, deleted=True, deleted_there=not st.prev.deleting, deleting=False)
        elif st.unconfirmed is not None:
            del copies[key]
    dirty = any(key not in ctx.usable for key in copies if not copies[key].deleted)
    return ItemState(lid, origin, content_hash, copies, deleted=deleted,
                     dirty=dirty and rec is not None and rec.dirty)


def _decide(ctx: _Context, lid: str, rec: ItemState | None, seen: Mapping[str, list[_Seen]],
            state: Mapping[str, ItemState], all_seen: Mapping[str, Mapping[str, list[_Seen]]],
            result: Plan) -> Batch:
    origin = rec.origin if rec else _origin_of(ctx, lid)
    statuses = _statuses(ctx, rec, seen)
    batch = Batch(lid)
    if rec is not None and rec.dirty:
        _read_again(ctx, rec, result)

    for key, st in statuses.items():
        if st.extras and ctx.receives(key, origin):
            for extra in st.extras:
                batch.actions.append(Delete(lid, key, ItemRef(ctx.members[key].calendar, extra.item_id, extra.etag),
                                            "duplicate copy of an item already on this calendar"))

    senders = [k for k in ctx.members if ctx.sends(k, origin)]
    changed = [statuses[k].current for k in senders if statuses[k].changed]
    changed_seen = [c for c in changed if c is not None]
    gone = [k for k in senders if statuses[k].gone and not _deleted_by_calmesh(statuses[k])]
    declined: set[str] = set()
    set_back: set[str] = set()
    if _asks_organiser(ctx, origin, statuses, changed_seen, gone):
        attendees = _attendees_members(ctx, origin, statuses, result)
        if attendees is None:
            if origin not in ctx.usable and rec is not None:
                # who organises it is unknown this run: an attendee's deletion would spread as a
                # cancellation (and reach the original once it is back), an attendee's edit would
                # win; the record stays as it was, dirty, and the next run lists again and decides
                batch.actions.append(Skip(lid, origin, "the meeting's original cannot be read now, so its organiser "
                                                       "is unknown; decided when it can"))
                batch.records[lid] = replace(rec, dirty=True)
            return batch  # else the original is read first, then this item is planned again
        declined, set_back = _organiser_only(ctx, attendees, statuses, changed_seen, gone, result)
        gone = [k for k in gone if k not in declined]
        changed_seen = [c for c in changed_seen if c.member not in set_back]

    # (an origin no longer in the group leaves its copies to the remaining members)
    never_seen_origin = origin in ctx.members and (rec is None or origin not in rec.copies)
    if never_seen_origin and statuses[origin].current is None and \
            _unrecorded_copies(ctx, lid, rec, origin, statuses, batch, result):
        return batch
    if rec is None and not changed_seen:
        return batch  # an item of a receive-only member: it stays home

    delete = bool(rec and rec.deleted)
    if delete and _put_back(ctx, rec, changed_seen):
        # the deletion's own member holds the object again, as it was: whoever deleted it there
        # took it back (a trash bin, an undo), so the item lives again and is copied anew
        delete = False
    elif delete and (unreached := _edited_before_reached(rec, changed_seen)):
        # a deletion decided while these members could not be read, their copy edited before
        # they were read again: the edit races the deletion as if both had been seen in one run
        assert rec is not None
        deleted_at = [k for k, copy in rec.copies.items() if copy.deleted] or gone
        delete = _deletion_wins(ctx, lid, deleted_at, unreached, batch)
    elif gone and not delete:
        delete = _deletion_wins(ctx, lid, gone, changed_seen, batch)
    if delete:
        assert rec is not None
        batch.records[lid] = _observed_record(ctx, lid, rec, origin, statuses, rec.content_hash, True)
        for key, st in statuses.items():
            copy = st.current or (st.prev if st.live_hash is not None else None)
            if copy is None or not ctx.receives(key, origin):
                continue
            if key not in ctx.usable:
                batch.actions.append(Skip(lid, key, "member unreachable; deletion retried next run"))
                continue
            ref = ItemRef(ctx.members[key].calendar, copy.item_id, copy.etag)
            batch.actions.append(Delete(lid, key, ref, "deleted at " + gone[0] if gone else "deleted at a sender",
                                        gone[0] if gone else None))
        return batch

    source: _Seen | None
    if changed_seen:
        source = changed_seen[0]
        if len({c.hash for c in changed_seen}) > 1:
            source = _settle(ctx, lid, changed_seen, state, all_seen, batch)
        content_hash = source.hash
    else:
        assert rec is not None
        content_hash = rec.content_hash
        source = next((st.current for st in statuses.values()
                       if st.current is not None and st.current.hash == content_hash), None)
    batch.records[lid] = _observed_record(ctx, lid, rec, origin, statuses, content_hash, False)

    for key, st in statuses.items():
        if not ctx.receives(key, origin) or st.live_hash == content_hash:
            continue
        if key not in ctx.usable:
            batch.actions.append(Skip(lid, key, "member unreachable; retried next run"))
            continue
        if st.current is None and st.prev is not None and ctx.is_held(key, st.prev.item_id):
            continue  # gone there, deletion held: neither restored nor deleted (see _show_held)
        if key in declined:
            continue  # an attendee deleted their copy: not brought back, not spread
        if _dropped_invitation(ctx, key, st, source, result):
            continue
        if source is None:
            holder = _holder(ctx, statuses, content_hash, origin)
            if holder is None:
                batch.actions.append(Skip(lid, key, "no reachable member holds the current version"))
            else:
                result.need_item(holder, statuses[holder].prev.item_id)  # type: ignore[union-attr]
            continue
        ready, reference = _scheduling_reference(ctx, origin, statuses, source, key, result)
        if not ready:
            continue  # the original is fetched first, then this is planned again
        current = st.current or (st.prev if st.live_hash is not None else None)
        if current is None:
            uid = _create_uid(ctx, lid, source)
            item = _target_item(ctx, lid, source, key, uid, None, reference)
            reason = "restored" if st.prev is not None else UNCONFIRMED if st.unconfirmed else "new"
            batch.actions.append(Create(lid, key, item, content_hash, reason, source.member))
        else:
            uid = current.item.uid if isinstance(current, _Seen) else current.uid
            item = _target_item(ctx, lid, source, key, uid, current.item_id, reference)
            ref = ItemRef(ctx.members[key].calendar, current.item_id, current.etag)
            item.ref = ref
            reason = ("set back: only the organiser changes a meeting" if key in set_back
                      else "changed at " + source.member if changed_seen else "restored")
            batch.actions.append(Update(lid, key, ref, item, content_hash, reason, source.member))
    return batch


def _read_again(ctx: _Context, rec: ItemState, result: Plan) -> None:
    """Ask for what a dirty record needs read before it is decided again. The run that left it
    dirty moved its change tokens on, so what those feeds said of the item will not be said
    again: on every member not listed in full this run, the copy on record is read again by its
    id (its absence then is its deletion, as a change feed would report it). So while one member
    is down for hours, each run costs the other members what changed, plus the items caught
    half-written when it went down, not a full listing of every member on every run. A member
    where the record names no copy of its own (none, or a pending one, whose landing only a full
    listing can tell: see :attr:`CopyState.pending`) is listed in full, if it is to hold one:
    that run writes it there, and the next reads it by its id."""
    for key in sorted(ctx.usable - ctx.complete):
        copy = rec.copies.get(key)
        if copy is None and key != rec.origin and not ctx.receives(key, rec.origin):
            continue  # nothing of this item is there, nor ever written there
        if copy is None or copy.pending:
            result.needs_listing.add(key)
        elif copy.item_id not in ctx.listed[key] and copy.item_id not in ctx.gone_ids[key]:
            result.need_item(key, copy.item_id)


def _dropped_invitation(ctx: _Context, key: str, st: _Status, source: _Seen | None, result: Plan) -> bool:
    """Whether ``key``'s calendar is one calmesh delivered this meeting's invitation to, which
    its owner deleted before the group ever recorded a copy there (nothing on record, nothing
    listed): that deletion is theirs, as it would be had the group seen the invitation first,
    so no copy (or busy block) of the meeting is written there. Without the booking's record
    a calendar that never held the meeting cannot be told from one whose owner removed it."""
    if source is None or st.current is not None or st.prev is not None:
        return False
    uid = source.item.uid
    if key not in ctx.invited.get(uid, ()):
        return False
    result.notices.append(f"{key}: the invitation to meeting {uid} that calmesh delivered there was deleted by "
                          "its owner before this group recorded it; not brought back")
    return True


def _asks_organiser(ctx: _Context, origin: str, statuses: dict[str, _Status], changed: list[_Seen],
                    gone: list[str]) -> bool:
    """Whether deciding this item needs to know its organiser: a calendar owned by someone
    other than the original's owner changed or deleted its copy, or lost it earlier (known
    owners only; a group of one person's calendars never asks)."""
    home = ctx.members[origin].owner if origin in ctx.members else None
    if home is None:
        return False
    touched = {c.member for c in changed} | set(gone) | {
        k for k, st in statuses.items() if st.prev is not None and st.prev.deleted and st.current is None}
    return any(ctx.members[k].owner not in (None, home) for k in touched if k != origin)


def _organiser_only(ctx: _Context, attendees: set[str], statuses: dict[str, _Status], changed: list[_Seen],
                    gone: list[str], result: Plan) -> tuple[set[str], set[str]]:
    """Of the ``attendees``' members: those whose copy stays deleted (deleted by its owner, now
    or earlier: neither spread nor brought back) and those whose edit is set back, each told
    in the run's notices."""
    set_back = {c.member for c in changed if c.member in attendees}
    for edit in changed:
        if edit.member in set_back:
            result.notices.append(f"{edit.member}: {ctx.members[edit.member].owner} changed their copy of "
                                  f"meeting {edit.item.uid}; set back, since only its organiser changes a meeting")
    declined = set()
    for key in attendees:
        prev = statuses[key].prev
        if prev is None or statuses[key].current is not None:
            continue
        if key in gone:
            result.notices.append(f"{key}: {ctx.members[key].owner} deleted their copy of meeting {prev.uid}; "
                                  "it stays for the others, since only its organiser cancels a meeting")
            declined.add(key)
        elif prev.deleted:
            declined.add(key)
    return declined, set_back


def _attendees_members(ctx: _Context, origin: str, statuses: dict[str, _Status], result: Plan) -> set[str] | None:
    """Members owned by someone other than the organiser of a meeting whose organiser owns a
    member of the group (else none): their edits of the meeting are set back and their
    deletions stay their own, since an attendee's copy never grants authority over a meeting
    (issue 12). The organiser is the original's ORGANIZER; ``None`` when the original is present
    but was not read this run: it is asked for (see :attr:`Plan.needs_items`), or its member
    cannot be read now."""
    st = statuses.get(origin)
    if st is None:
        return set()
    if st.current is None:
        if _ask_original(ctx, origin, st, result):
            return None
        present = st.prev is not None and not st.prev.deleted and not st.gone
        return None if present and origin not in ctx.usable else set()
    organiser = next((e.organizer.email for e in st.current.item.components if e.organizer is not None), None)
    owners = {k: m.owner for k, m in ctx.members.items()}
    if organiser is None or organiser not in owners.values():
        return set()
    return {k for k, owner in owners.items() if owner is not None and owner != organiser}


def _unrecorded_copies(ctx: _Context, lid: str, rec: ItemState | None, origin: str,
                       statuses: dict[str, _Status], batch: Batch, result: Plan) -> bool:
    """Marked copies of an item whose original calmesh never recorded and did not see this run:
    left by a run killed between writing them and recording them. If the original is gone they
    are removed (never resurrected from the copy); if it may merely be unlisted, list it first;
    if it cannot be read now, remember the copies (dirty) and decide when it can.
    Returns True when the copies were dealt with here."""
    live = {k: st.current or st.prev for k, st in statuses.items() if st.live_hash is not None}
    if not live and rec is None:
        return False
    item_id = lid[len(origin) + 1:]
    if ctx.members[origin].origin_id(item_id) != lid or "#" in item_id:
        return False  # a keep-both fork: its copies are its only holders
    if origin in ctx.usable and origin not in ctx.complete:
        result.needs_listing.add(origin)
        return True
    if origin not in ctx.usable or item_id in ctx.listed[origin] or origin in ctx.holds:
        if not live:
            return True
        first = next(iter(live))
        batch.actions.append(Skip(lid, first, "copy whose original cannot be read now; left alone"))
        observed = _observed_record(ctx, lid, rec, origin, statuses, statuses[first].live_hash or "", False)
        batch.records[lid] = replace(observed, dirty=True)
        return True
    if rec is not None:
        batch.records[lid] = _observed_record(ctx, lid, rec, origin, statuses, rec.content_hash, True)
    for key, copy in live.items():
        if copy is not None and ctx.receives(key, origin) and key in ctx.usable:
            ref = ItemRef(ctx.members[key].calendar, copy.item_id, copy.etag)
            batch.actions.append(Delete(lid, key, ref, "copy of an item deleted at its origin", origin))
    return True


def _holder(ctx: _Context, statuses: dict[str, _Status], content_hash: str, origin: str) -> str | None:
    """A reachable member whose copy is on record as the current version but was not read this
    run (not in its change feed, or listed without being fetched), origin first: fetching that
    copy yields the content."""
    for key in sorted(statuses, key=lambda k: k != origin):
        st = statuses[key]
        unread = key not in ctx.complete or (st.prev is not None and st.prev.item_id in ctx.unfetched[key])
        if st.current is None and st.live_hash == content_hash and key in ctx.usable and unread:
            return key
    return None


def _edited_before_reached(rec: ItemState | None, changed: list[_Seen]) -> list[_Seen]:
    """The changed copies a recorded deletion has not reached yet: the very objects on record,
    not deleted there (their member was unreachable when the deletion was decided). A copy the
    deletion did reach and that comes back (an offline client pushing it again) is not one."""
    if rec is None:
        return []
    return [c for c in changed if (held := rec.copies.get(c.member)) is not None
            and not held.deleted and held.item_id == c.item_id]


def _put_back(ctx: _Context, rec: ItemState | None, changed: list[_Seen]) -> list[_Seen]:
    """The changed copies that are a deleted copy come back where it was deleted by someone other
    than calmesh (:attr:`CopyState.deleted_there`): the same object at the same id (recognised
    against the tombstone by UID and content, see :func:`_recognise`), an id no other item held
    since (:attr:`_Context.reused`: an older version turning up where a newer one was deleted
    after it is a stale copy, not the last thing deleted there taken back)."""
    if rec is None:
        return []
    return [c for c in changed if (held := rec.copies.get(c.member)) is not None
            and held.deleted and held.deleted_there and held.item_id == c.item_id
            and (c.member, c.item_id) not in ctx.reused]


def _deletion_wins(ctx: _Context, lid: str, gone: list[str], edited: list[_Seen], batch: Batch) -> bool:
    if not edited:
        return True
    policy = ctx.options.conflict
    editors = [e.member for e in edited]
    edit_by_winner = any(ctx.members[k].platform == policy for k in editors)
    delete_by_winner = any(ctx.members[k].platform == policy for k in gone)
    wins = delete_by_winner and not edit_by_winner
    resolution = (f"deleted: {policy} wins by policy" if wins
                  else "kept the edit: an edit outranks a deletion of the version it changed")
    batch.actions.append(Conflict(lid, tuple(gone + editors), None if wins else editors[0], resolution))
    return wins


def _settle(ctx: _Context, lid: str, candidates: list[_Seen], state: Mapping[str, ItemState],
            all_seen: Mapping[str, Mapping[str, list[_Seen]]], batch: Batch) -> _Seen:
    """Resolve differing edits; under ``keep-both`` each losing version becomes its own item."""
    winner, why = _winner(ctx, candidates)
    losers = [c for c in candidates if c.hash != winner.hash]
    resolution = why
    if ctx.options.conflict == "keep-both":
        resolution = "kept both: the other version became a separate event"
        forked: set[str] = set()
        for loser in losers:
            if loser.hash in forked:
                continue
            forked.add(loser.hash)
            _fork(ctx, lid, loser, state, all_seen, batch)
    batch.actions.append(Conflict(lid, tuple(c.member for c in candidates), winner.member, resolution))
    return winner


def _fork(ctx: _Context, lid: str, loser: _Seen, state: Mapping[str, ItemState],
          all_seen: Mapping[str, Mapping[str, list[_Seen]]], batch: Batch) -> None:
    """Create the losing version as a new event (own UID) on every receiver, ahead of the
    update that overwrites it, so that a failed fork stops the batch before anything is lost."""
    fork_id = f"{lid}#{_short_id(loser.hash)[:12]}"
    if fork_id in state or fork_id in all_seen:
        return
    uid = f"{loser.item.uid}-{_short_id(fork_id)[:8]}"
    batch.records[fork_id] = ItemState(fork_id, loser.member, loser.hash, {})
    content = synced_content(loser.item, ctx.options.mode, ctx.options.busy_title, ctx.options.attendees)
    for key in ctx.members:
        if ctx.receives(key, loser.member) and key in ctx.usable:
            item = with_identity(content, uid, fork_id, MARKER_PROPERTY)
            batch.actions.append(Create(fork_id, key, item, loser.hash, "kept both versions of a conflict",
                                        loser.member))


def _deleted_by_calmesh(st: _Status) -> bool:
    """A copy gone because calmesh deleted it, in a run killed before recording that: it names
    no deletion of its own. The deletion it carried out is still seen where it was made, and
    decided again; if it was undone there meanwhile (put back out of a trash bin), the item
    lives and the copy is written anew, rather than the undo being deleted on the strength of
    calmesh's own write."""
    return st.prev is not None and st.prev.deleting
