"""One sync run of a group: observe every member, plan (pure), write, record.

The order of a run is what makes it safe to kill at any instant (SIGKILL included):

1. Observe each member through its change feed (``Connector.changes``) from the stored token,
   or in full (first run, refused token, every ``reconcile_every``-th run, or ``--full``);
   members on different platforms are read side by side.
   A member that cannot be read is *unreachable*: nothing is inferred from it or written to it.
2. Plan with :func:`calmesh.core.syncplan.plan`; list in full the members it asks for and plan
   again. ``--dry-run`` stops here.
3. Execute the plan batch by batch (one logical item each), with If-Match on every replace and
   delete, auditing every write with the content it replaced. A batch whose writes all succeeded
   has its records saved (in groups, as the run goes); a batch with a failure stops and its items
   are marked dirty, so the next run reads them again and decides them again.
4. Save the remaining records, the new change tokens and the run's outcome in one transaction.

A run killed before step 4 keeps the old tokens, so the next run sees the same changes again;
the writes already made are recognised by their marker and content hash (or by the saved
records), never made twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextvars import copy_context
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from calmesh.config import SyncGroupConfig
from calmesh.connectors.base import (
    CannotHold,
    Connector,
    ConnectorError,
    InvalidTokenError,
    NotFoundError,
    RetryBudget,
    check_budget,
    read_ahead,
    retry_budget,
    with_retries,
)
from calmesh.core.partition import Joiner
from calmesh.core.syncplan import (
    Batch,
    Conflict,
    CopyState,
    Create,
    Delete,
    DeleteHistory,
    ItemState,
    Member,
    Notice,
    Observation,
    Plan,
    PlanOptions,
    Skip,
    Update,
    Write,
    joins,
    plan,
    record_deleted,
    record_written,
)
from calmesh.model import CalendarItem, ChangeSet, ItemRef, Problem, ProblemCode
from calmesh.services.spool import Spool, member_of
from calmesh.store.repository import SyncRepository, TokenState

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_FAILURES = 3
"""Transient failures (timeouts, 5xx) a run accepts from one platform, counted across every retry
loop (the engine's and the connector's own): then the run gives up on that platform and reports
its members unreachable. A hanging server thus costs a run about ``RETRY_FAILURES`` timeouts."""
MAX_PASSES = 3
"""Planning passes per run: the first, plus re-plans after the full listings it asked for."""
PART_SIZE = 500
"""Items planned and written at a time in a first comparison, where every member's platform
lists its items one by one (:meth:`Connector.listing`; see :meth:`SyncEngine._first_in_parts`)."""
PLACEHOLDER = "calmesh-pending:"
"""Prefix of the id a pending copy is recorded under when the server chooses its id (Exchange,
Graph, Google): never an id a server lists, so the copy, once landed, is known by its marker."""


def placeholder_id(marker: str) -> str:
    """The id a pending copy carrying ``marker`` is recorded under until its write answers."""
    return PLACEHOLDER + marker


SAVE_EVERY = 50
"""Batches whose records are saved together while a run goes on (bounds work lost to a kill).
A batch that created a copy (or adopted an unrecorded one by its marker) is saved at once: were
the run killed before, and that copy deleted by its user before the next run, nothing would say
it had ever existed and the next run would create it again (a resurrected deletion). Updates and deletions need no such haste: the old
record still names the copy, so its disappearance reads as the deletion it is."""


@dataclass(slots=True)
class _Seen:
    """A member's observation plus what the engine must remember about how it was made."""

    observation: Observation
    token: str | None = None
    token_valid: bool = False
    """The observation came from the change feed and ``token`` is the one to store."""
    full: bool = False
    """The member was compared in full."""
    unreadable: list[tuple[ItemRef, Problem]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """Problems of a listing without change feed (quarantined by UID)."""
    error: str | None = None
    """Why the member could not be read."""

    @property
    def quiet(self) -> bool:
        """Read through a change feed that reported nothing at all."""
        obs = self.observation
        return (self.error is None and self.token_valid and not self.full and obs.reachable
                and not (obs.items or obs.deleted or obs.unreadable or obs.unchanged or self.unreadable
                         or self.problems))


@dataclass(frozen=True, slots=True)
class Progress:
    """What a run tells an onlooker (``calmesh sync``'s progress bar) as it goes.

    ``stage`` is ``fetched`` (``member`` was read: ``done`` items), ``planned`` (``total`` writes
    are due) or ``applied`` (``done`` of ``total`` writes made; ``member`` the last target)."""

    stage: str
    member: str | None = None
    done: int = 0
    total: int = 0


ProgressCallback = Callable[[Progress], None]


@dataclass(slots=True)
class SyncReport:
    group: str
    dry_run: bool
    plan: Plan
    run_id: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    by_member: dict[str, Counter[str]] = field(default_factory=dict)
    """Writes made (``created``/``updated``/``deleted``/``failed``) per target member."""
    errors: list[str] = field(default_factory=list)
    full: set[str] = field(default_factory=set)
    """Members compared in full this run."""
    unreadable: list[tuple[str, ItemRef, Problem]] = field(default_factory=list)
    """Items members reported as present but unreadable: quarantined, never taken as deleted."""
    read: dict[tuple[str, str], CalendarItem] = field(default_factory=dict)
    """Every item read this run by (member, item id): the "before" of audited writes."""
    state: Mapping[str, ItemState] = field(default_factory=dict)
    """The stored state the run started from (what a planned action's copy was)."""
    adapted: list[Notice] = field(default_factory=list)
    """Copies written another faithful way (or not at all) because their target cannot hold a
    feature of the item (see :meth:`calmesh.connectors.base.Connector.fit`)."""
    deletions_seen: set[str] = field(default_factory=set)
    """Members whose change feed reported deletions this run."""
    read_from: set[str] = field(default_factory=set)
    """Members items were read from this run, where :attr:`read` does not keep them (a first
    comparison made in parts)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    """Writes may run on several threads (``SyncEngine(write_workers=...)``): counting is guarded."""

    @property
    def changed_members(self) -> set[str]:
        """Members (``platform/calendar``) this run saw changed or changed itself: items read
        from a change feed or listing, deletions reported, writes made. Free/busy answers about
        their people are stale from now on."""
        return {member for member, _ in self.read} | self.read_from | self.deletions_seen | set(self.by_member)

    @property
    def status(self) -> str:
        if self.dry_run:
            return "dry-run"
        return "partial" if self.errors or self.counts["failed"] else "ok"

    @property
    def notices(self) -> list[str]:
        return self.plan.notices + [str(n) for n in self.adapted]

    def adapt(self, notices: Iterable[Notice]) -> None:
        """Record what a target could not hold of an item written (or not) this run."""
        found = list(notices)
        if found:
            with self._lock:
                self.adapted.extend(found)
                self.counts["adapted" if all(n.written for n in found) else "not_held"] += 1

    def count(self, member: str, what: str) -> None:
        """Count one write outcome, in total and for its target member."""
        with self._lock:
            self.counts[what] += 1
            self.by_member.setdefault(member, Counter())[what] += 1


def member_options(group: SyncGroupConfig, *, confirm_deletes: bool = False,
                   restore_held: bool = False) -> tuple[list[Member], PlanOptions]:
    members = [Member(m.platform, m.calendar, m.direction, m.owner) for m in group.calendars]
    options = PlanOptions(mode=group.mode, busy_title=group.busy_title, attendees=group.attendees,
                          conflict=group.conflict, max_delete_share=group.max_delete_share,
                          confirm_deletes=confirm_deletes, restore_held=restore_held)
    return members, options


def _known_versions(state: Mapping[str, ItemState], member: str) -> dict[str, str]:
    """Item id -> recorded ETag of ``member``'s live copies whose record is settled (not dirty):
    items a listing may report as unchanged without fetching them."""
    known: dict[str, str] = {}
    for record in state.values():
        copy = record.live(member)
        if copy is not None and copy.etag and not record.dirty:
            known[copy.item_id] = copy.etag
    return known


def _recorded_ids(state: Mapping[str, ItemState], member: str) -> set[str]:
    """Item ids of ``member``'s live copies on record."""
    return {copy.item_id for record in state.values() if (copy := record.live(member)) is not None}


def _names_new_copy(batch: Batch, state: Mapping[str, ItemState]) -> bool:
    """Whether the batch's records name a copy the stored state does not (one just created, or
    an unrecorded copy adopted by its marker): such records are saved at once (see SAVE_EVERY)."""
    for lid, record in batch.records.items():
        old = state.get(lid)
        for key, copy in record.copies.items():
            before = old.copies.get(key) if old is not None else None
            if before is None or before.item_id != copy.item_id:
                return True
    return False


def _plannable_alone(part: Plan) -> bool:
    """Whether a part's plan of a first comparison stands on its own: it asks for nothing more,
    holds nothing, and deletes nothing on another member's account (the bulk-delete guard
    weighs such deletions against whole calendars, which a part does not see)."""
    return not (part.incomplete or part.holds
                or any(isinstance(w, Delete) and w.source is not None for w in part.writes))


def _why(conn: Connector, ref: ItemRef, problems: Sequence[Problem]) -> Problem:
    """Why an item listed was not returned when asked for: the platform's own word where it gave
    one, else that it was not returned (deleted meanwhile, or withheld)."""
    about = [p for p in problems if p.about(ref.id)]
    return about[0] if about else Problem(conn.name, "listed but not returned when asked for", ref.id,
                                          code=ProblemCode.NO_DATA, private=True)


def group_fingerprint(group: SyncGroupConfig) -> str:
    """A digest of a group's whole configuration: a run leaves the group at rest under it, and a
    changed configuration (a member's direction, the mode...) is planned over in full again."""
    return hashlib.sha256(group.model_dump_json().encode("utf-8")).hexdigest()


def _leaves_nothing(report: SyncReport) -> bool:
    """Whether a run left nothing for a later one to do: every member read, every write made,
    nothing skipped, held, in conflict, quarantined or unreadable, no copy left out. The next
    run, if no change feed reports anything, then has nothing to decide."""
    return (report.status == "ok" and not report.plan.holds and not report.unreadable
            and not any(isinstance(a, Conflict | Skip) for a in report.plan.actions)
            and not any(report.counts[k] for k in ("quarantined", "not_held", "failed")))


class SyncEngine:
    """Runs sync groups against connectors (``connector(platform)``) and a state repository.

    ``write_workers`` above 1 writes that many batches (independent logical items) at once, each
    on its own thread: a large copy is then bound by the servers, not by one round trip after
    another. The connectors must then be safe to share between threads (the CalDAV one is);
    1 (the default) writes strictly in plan order."""

    def __init__(self, repo: SyncRepository, connector: Callable[[str], Connector],
                 *, retry_sleep: Callable[[float], None] | None = None, write_workers: int = 1,
                 retry_failures: int = RETRY_FAILURES, part_size: int | None = PART_SIZE) -> None:
        self.repo = repo
        self._connector = connector
        self._part_size = None if part_size is None else max(1, part_size)
        """None: a first comparison is always made whole."""
        self._retry_kwargs: dict[str, Any] = {} if retry_sleep is None else {"sleep": retry_sleep}
        self._write_workers = max(1, write_workers)
        self._retry_failures = retry_failures

    # -------------------------------------------------------------------------- observe
    def _observe(self, member: Member, token: str | None, full: bool,
                 known: Mapping[str, str] | None = None, recorded: Collection[str] = ()) -> _Seen:
        """What ``member`` holds: its change feed from ``token``, or in full when ``full`` (or no
        token). ``known`` (item id -> recorded ETag) lets the connector skip fetching items
        still at the version on record; None fetches everything. ``recorded``: the ids of the
        member's live copies on record, to ask the change feed about those a full listing lacks. Only reads: what must be
        recorded of it is in the answer (see :meth:`_take`), so members can be read on threads."""
        conn = self._connector(member.platform)
        cal = member.calendar

        def read(since: str | None, known: Mapping[str, str] | None = known) -> ChangeSet:
            if known:
                return self._call(lambda: conn.changes_skipping(cal, since, known), conn.name)
            return self._call(lambda: conn.changes(cal, since), conn.name)

        try:
            if conn.capabilities.changes:
                if not full and token is not None:
                    try:
                        changes = read(token)
                        return _Seen(Observation.from_changes(member.key, changes), changes.token, True,
                                     full=changes.complete, unreadable=list(changes.unreadable))
                    except InvalidTokenError as exc:
                        log.info("%s: %s; comparing in full", member.key, exc)
                changes = read(None)
                observation = replace(Observation.from_changes(member.key, changes), complete=True,
                                      vouched=self._vouched(member, token, changes, recorded, read))
                return _Seen(observation, changes.token, True, full=True, unreadable=list(changes.unreadable))
            items, problems = self._call(lambda: conn.items(cal), conn.name)
            complete = not problems  # an unreadable item must not read as deleted
            return _Seen(Observation(member.key, items, complete=complete), full=complete, problems=problems)
        except ConnectorError as exc:
            return _Seen(Observation.unreachable(member.key), error=exc.message)

    @staticmethod
    def _vouched(member: Member, token: str | None, listing: ChangeSet, recorded: Collection[str],
                 read: Callable[[str | None, Mapping[str, str] | None], ChangeSet]) -> frozenset[str] | None:
        """When a full listing lacks items on record: the ids the change feed, asked from the
        stored ``token``, reports deleted (what the server itself says was deleted); None when
        there is no token or the server refuses it. Items listed are not fetched again."""
        listed = {i.ref.id for i in listing.changed if i.ref} | {r.id for r in listing.unchanged} \
            | {r.id for r, _ in listing.unreadable}
        if token is None or all(i in listed for i in recorded):
            return None
        etags = {i.ref.id: i.ref.etag for i in listing.changed if i.ref and i.ref.etag}
        etags.update((r.id, r.etag) for r in listing.unchanged if r.etag)
        try:
            feed = read(token, etags)
        except InvalidTokenError:
            log.info("%s: the change feed cannot vouch for a shrunken listing (token refused)", member.key)
            return None
        return frozenset(r.id for r in feed.deleted)

    def _take(self, member: Member, seen: _Seen, report: SyncReport) -> _Seen:
        """Record in ``report`` (and the quarantine) what reading ``member`` found; returns ``seen``."""
        if seen.full:
            report.full.add(member.key)
        report.unreadable += [(member.key, ref, p) for ref, p in seen.unreadable]
        for problem in seen.problems:
            self.repo.quarantine(report.group, member.key, item_ref=None, uid=problem.item, reason=problem.plain_message)
            report.counts["quarantined"] += 1
        if seen.error is not None:
            report.errors.append(f"{member.key}: {seen.error}")
        return seen

    def _observe_all(self, members: Sequence[Member], state: Mapping[str, ItemState],
                     tokens: Mapping[str, TokenState], group: SyncGroupConfig, full: bool,
                     report: SyncReport, notify: ProgressCallback,
                     early: Mapping[str, _Seen | None] | None = None) -> dict[str, _Seen]:
        """Every member read, those on different platforms side by side: a first comparison waits
        mostly on the servers (listing and downloading every object), and each platform answers for
        itself. Members on one platform are read one after another, on one thread: connectors need
        not be safe for concurrent reads. ``early``: members' change feeds read already this run
        (see :meth:`_feeds`), taken as they are."""
        early = early or {}

        def read(ms: list[Member]) -> list[_Seen]:
            return [found if (found := early.get(m.key)) is not None else
                    self._observe(m, *self._token_for(m, tokens, group, full), known=_known_versions(state, m.key),
                                  recorded=_recorded_ids(state, m.key)) for m in ms]

        answers = self._by_platform(members, read, lambda m, s: notify(Progress("fetched", m.key,
                                                                                len(s.observation.items))))
        return {m.key: self._take(m, answers[m.key], report) for m in members}  # recorded in group order

    def _by_platform(self, members: Sequence[Member], read: Callable[[list[Member]], list[T]],
                     heard: Callable[[Member, T], None] = lambda _m, _s: None) -> dict[str, T]:
        """``read`` of each platform's members (in group order), the platforms side by side;
        ``heard`` is told of each answer as its platform's come in (on this thread)."""
        by_platform: dict[str, list[Member]] = {}
        for m in members:
            by_platform.setdefault(m.platform, []).append(m)
            self._connector(m.platform)  # built here, not raced for on the reader threads
        answers: dict[str, T] = {}

        def done(ms: list[Member], found: list[T]) -> None:
            for m, s in zip(ms, found, strict=True):
                answers[m.key] = s
                heard(m, s)

        if len(by_platform) == 1:
            for ms in by_platform.values():
                done(ms, read(ms))
        else:
            with ThreadPoolExecutor(max_workers=len(by_platform), thread_name_prefix="calmesh-read") as pool:
                futures = {pool.submit(copy_context().run, read, ms): ms for ms in by_platform.values()}
                for future in as_completed(futures):  # the progress bar hears of each as it comes
                    done(futures[future], future.result())
        return answers

    def _feeds(self, members: Sequence[Member], tokens: Mapping[str, TokenState]) -> dict[str, _Seen | None]:
        """Whether each member changed since its stored token, as cheaply as its platform can
        say: :meth:`Connector.unchanged_since` where the platform has such a check (a change
        there leaves the member to be read as usual, None: with the stored state at hand, items
        at their recorded version are not fetched), else the change feed from the token, nothing
        else (no item skipped as known, no full listing when the token is refused: None too)."""
        def read(ms: list[Member]) -> list[_Seen | None]:
            out: list[_Seen | None] = []
            for m in ms:
                conn = self._connector(m.platform)
                token = tokens[m.key].token
                assert token is not None  # see _may_skip_state
                try:
                    unchanged = self._call(partial(conn.unchanged_since, m.calendar, token), conn.name)
                    if unchanged is not None:
                        out.append(_Seen(Observation(m.key), token, True) if unchanged else None)
                        continue
                    changes = self._call(partial(conn.changes, m.calendar, token), conn.name)
                except InvalidTokenError:
                    out.append(None)
                except ConnectorError as exc:
                    out.append(_Seen(Observation.unreachable(m.key), error=exc.message))
                else:
                    out.append(_Seen(Observation.from_changes(m.key, changes), changes.token, True,
                                     full=changes.complete, unreadable=list(changes.unreadable)))
            return out
        return self._by_platform(members, read)

    def _with_items(self, member: Member, seen: _Seen, ids: list[str], report: SyncReport) -> _Seen:
        """``seen`` with the items at ``ids`` read and added (the planner needs their content, or
        their current version: see :attr:`Plan.needs_items`). Those the platform no longer holds
        (:meth:`Connector.fetch` leaves them out) are added as deleted, as a change feed would
        report them. A read that fails, an item that cannot be read or an answer naming other
        items falls back to a full listing of the member."""
        conn = self._connector(member.platform)
        try:
            found, problems = self._call(partial(conn.fetch, member.calendar, ids), conn.name)
        except ConnectorError as exc:
            log.info("%s: could not read %d item(s) (%s); listing in full", member.key, len(ids), exc.message)
            return self._take(member, self._observe(member, None, True), report)
        wanted = set(ids)
        present = {i.ref.id for i in found if i.ref is not None}
        if problems or len(present) != len(found) or not present <= wanted:
            # an unreadable item, or an answer naming items other than those asked for (an id
            # spelt otherwise): what is missing from it is not known to be gone
            return self._take(member, self._observe(member, None, True), report)
        obs = seen.observation
        gone = [ItemRef(member.calendar, i) for i in ids if i not in present]
        items = [i for i in obs.items if i.ref is None or i.ref.id not in wanted] + found
        unchanged = [r for r in obs.unchanged if r.id not in wanted]
        return replace(seen, observation=replace(obs, items=items, unchanged=unchanged,
                                                 deleted=[*obs.deleted, *gone]))

    def _call(self, fn: Callable[[], T], platform: str) -> T:
        """``fn`` with retries, charged to the run's retry budget for ``platform`` (see
        :data:`RETRY_FAILURES`); refused at once when that budget is spent."""
        check_budget(platform)
        return with_retries(fn, **self._retry_kwargs)

    # ------------------------------------------------------------------------------ run
    def run(self, name: str, group: SyncGroupConfig, *, dry_run: bool = False,
            confirm_deletes: bool = False, full: bool = False, restore_held: bool = False,
            progress: ProgressCallback | None = None) -> SyncReport:
        """One run of group ``name``; ``progress`` (optional) hears of reads and writes as they go.
        Every platform's transient failures are charged to one retry budget for the whole run."""
        with retry_budget(RetryBudget(self._retry_failures)):
            return self._run(name, group, dry_run=dry_run, confirm_deletes=confirm_deletes, full=full,
                             restore_held=restore_held, notify=progress or (lambda _p: None))

    def _run(self, name: str, group: SyncGroupConfig, *, dry_run: bool, confirm_deletes: bool, full: bool,
             restore_held: bool, notify: ProgressCallback) -> SyncReport:
        members, options = member_options(group, confirm_deletes=confirm_deletes, restore_held=restore_held)
        options = replace(options, unsequenced=frozenset(
            m.key for m in members if not self._connector(m.platform).capabilities.sequence))
        tokens = self.repo.tokens(name)
        fingerprint = group_fingerprint(group)
        early: dict[str, _Seen | None] = {}
        if not (dry_run or confirm_deletes or restore_held) and self._may_skip_state(members, tokens, group, full) \
                and self.repo.at_rest(name, fingerprint):
            early = self._feeds(members, tokens)
            if all(found is not None and found.quiet for found in early.values()):
                return self._quiet_run(name, members, early, fingerprint, notify)
        state = self.repo.load_group(name)
        history = DeleteHistory({k: h.hold for k, h in self.repo.holds(name).items()},
                                self.repo.recent_deletions(name, group.delete_window))
        report = SyncReport(name, dry_run, Plan(), state=state)
        if confirm_deletes and not dry_run:  # the guard's budget starts afresh after this run
            report.counts["confirmed"] = 1
        report.run_id = self.repo.start_run(name, dry_run=dry_run)
        invited = self.repo.invitations((m.platform, m.calendar) for m in members)
        if not (state or tokens or dry_run or confirm_deletes or restore_held or history.held or history.recent) \
                and self._part_size is not None:
            if self._first_in_parts(name, members, options, report, notify, invited, fingerprint, self._part_size):
                return report
            # what the parts wrote is on record: the comparison goes on whole, from there
            state = report.state = self.repo.load_group(name)
        seen = self._observe_all(members, state, tokens, group, full, report, notify, early)
        by_key = {m.key: m for m in members}
        for key in seen:
            seen[key] = self._with_evidence(by_key[key], seen[key], state)
        settled = False
        for _ in range(MAX_PASSES):
            report.plan = plan(members, state, {k: s.observation for k, s in seen.items()}, options, history,
                               invited)
            if not report.plan.incomplete:
                settled = True
                break
            for key in sorted(report.plan.needs_listing):
                stored = tokens.get(key)
                listing = self._observe(by_key[key], stored.token if stored else None, True,
                                        recorded=_recorded_ids(state, key))
                seen[key] = self._with_evidence(by_key[key], self._take(by_key[key], listing, report), state)
            for key, ids in sorted(report.plan.needs_items.items()):
                if key not in report.plan.needs_listing:
                    seen[key] = self._with_items(by_key[key], seen[key], sorted(ids), report)
        else:
            report.errors.append("planning did not settle; nothing written this run")
            report.plan = Plan(notices=report.plan.notices)
        report.read = {(k, i.ref.id): i for k, s in seen.items() for i in s.observation.items if i.ref}
        report.deletions_seen = {k for k, s in seen.items() if s.observation.deleted}
        self._record_quarantine(report, seen)
        report.counts.update(type(a).__name__.lower() for a in report.plan.actions
                             if isinstance(a, Conflict | Skip))
        if dry_run:
            report.counts.update(f"planned_{type(w).__name__.lower()}" for w in report.plan.writes)
            self._preview(report, by_key)
            self.repo.finish_run(report.run_id, report.status, report.counts, report.errors)
            return report
        self._read_before_overwrite(report, by_key)
        notify(Progress("planned", total=len(report.plan.writes)))
        # A copy created after a token was taken and deleted before the next feed is, for the
        # server, no change at all (RFC 6578 sync-collection, EWS sync state and Graph delta all
        # report net changes): from that token its deletion would go unseen. So a member about to
        # receive creations is listed in full next run, killed or not (its token is dropped first).
        created_on = {w.target for w in report.plan.writes if isinstance(w, Create)}
        for key in sorted(created_on):
            self.repo.forget_token(name, key)
        intents = self._intents(report.plan, state, by_key, seen)
        pending = self._execute(name, report, state, by_key, notify, intents)
        # a held member's token stays where it was: the evidence of its deletions is not skipped
        new_tokens = {k: s.token for k, s in seen.items()
                      if s.token_valid and k not in created_on and k not in report.plan.holds}
        at_rest = settled and not created_on and _leaves_nothing(report)
        self.repo.commit_run(name, report.run_id, records=pending, tokens=new_tokens,
                             full=report.full, holds=report.plan.holds if settled else None,
                             status=report.status, counts=report.counts, errors=report.errors,
                             settled=fingerprint if at_rest else None)
        if settled:
            forgotten = self.repo.purge_tombstones(name, timedelta(seconds=group.keep_deletions))
            if forgotten:
                log.info("sync group %s: forgot %d deletion(s) older than keep_deletions", name, forgotten)
        return report

    def _may_skip_state(self, members: Sequence[Member], tokens: Mapping[str, TokenState],
                        group: SyncGroupConfig, full: bool) -> bool:
        """Whether every member is due to be read through its change feed (a stored token, no
        full comparison due): only then can quiet feeds say that nothing changed anywhere."""
        return all(self._connector(m.platform).capabilities.changes
                   and (t := self._token_for(m, tokens, group, full))[0] is not None and not t[1] for m in members)

    def _quiet_run(self, name: str, members: Sequence[Member], seen: Mapping[str, _Seen | None],
                   fingerprint: str, notify: ProgressCallback) -> SyncReport:
        """A run in which no change feed reported anything and the last run left the group at
        rest (:meth:`SyncRepository.at_rest`): there is nothing to decide, so the group's stored
        state is neither loaded nor planned over (a no-op costs what changed: nothing, whatever
        the calendars hold). The run is recorded, the feeds' new tokens saved, the group still
        at rest."""
        report = SyncReport(name, False, Plan())
        report.run_id = self.repo.start_run(name)
        for m in members:
            notify(Progress("fetched", m.key, 0))
        notify(Progress("planned", total=0))
        tokens = {k: s.token for k, s in seen.items() if s is not None}
        self.repo.commit_run(name, report.run_id, records=[], tokens=tokens, full=(), status=report.status,
                             counts=report.counts, errors=report.errors, settled=fingerprint)
        return report

    # --------------------------------------------------------------- first comparison in parts
    def _first_in_parts(self, name: str, members: Sequence[Member], options: PlanOptions, report: SyncReport,
                        notify: ProgressCallback, invited: Mapping[str, Collection[str]], fingerprint: str,
                        size: int) -> bool:
        """A group's first comparison (nothing on record, no token) made a part at a time, so that
        its memory does not grow with the calendars: every member's items go to a spool on disk
        as its listing arrives (:meth:`Connector.listing`, :class:`Spool`), then are planned and
        written ``size`` at a time, each part holding every item the planner may join to another
        (:mod:`calmesh.core.partition`). Nothing is on record, so no part's decisions rest on
        another's. A first comparison of one part is the whole one, and its report says all of it;
        one of several keeps in its report the conflicts and skips, not the writes (counted).

        Returns False, with nothing recorded or only whole parts recorded, when the comparison
        must be made whole: a member whose platform cannot list so, or that cannot be read now, or
        a part whose plan needs what parts cannot give (more reads, a deletion on another member's
        account, which the bulk-delete guard weighs against whole calendars). The whole
        comparison that follows is then a run after a killed one: what the parts wrote is on record
        and recognised."""
        if any(getattr(self._connector(m.platform).listing, "__func__", None) is Connector.listing for m in members):
            return False  # a platform that cannot list so: whole, without listing the others twice
        by_key = {m.key: m for m in members}
        keys = list(by_key)
        with Spool(len(members)) as spool:
            read = self._spool_members(members, spool, notify, size)
            if read is None:
                return False
            joiner, unreadable, tokens = read
            report.unreadable += [(k, ref, problem) for k, found in unreadable.items() for ref, problem in found]
            seen = {k: _Seen(Observation(k, complete=True), token, True, full=True) for k, token in tokens.items()}
            kept = Plan()
            created_on: set[str] = set()
            applied = 0
            parts = joiner.parts(size)
            del joiner
            for part in parts:
                items: dict[str, list[CalendarItem]] = {k: [] for k in by_key}
                for key, item in zip(part, spool.read(part), strict=True):
                    items[keys[member_of(key)]].append(item)
                observations = {k: Observation(k, items[k], complete=True,
                                               unreadable=[ref for ref, _p in unreadable[k]]) for k in by_key}
                report.plan = plan(members, {}, observations, options, DeleteHistory(), invited)
                if not _plannable_alone(report.plan):
                    log.info("sync group %s: a part of the first comparison needs the whole; comparing whole", name)
                    report.plan = kept
                    return False
                report.read = {(k, i.ref.id): i for k, found in items.items() for i in found if i.ref}
                created_on |= {w.target for w in report.plan.writes if isinstance(w, Create)}
                total = applied + len(report.plan.writes)
                notify(Progress("planned", total=total))

                def told(event: Progress, before: int = applied, total: int = total) -> None:
                    notify(replace(event, done=before + event.done, total=total))

                pending = self._execute(name, report, {}, by_key, told, self._intents(report.plan, {}, by_key, seen))
                self.repo.save_records(name, pending)
                applied = total
                kept.batches += [Batch(b.logical_id, [a for a in b.actions if isinstance(a, Conflict | Skip)])
                                 for b in report.plan.batches if any(isinstance(a, Conflict | Skip) for a in b.actions)]
                kept.quarantine += report.plan.quarantine
                kept.notices += [n for n in report.plan.notices if n not in kept.notices]
        if len(parts) > 1:
            report.plan, report.read = kept, {}
        report.full, report.read_from = set(by_key), set(by_key)
        self._record_quarantine(report, seen)
        report.counts.update(type(a).__name__.lower() for a in kept.actions)
        at_rest = not created_on and _leaves_nothing(report)
        assert report.run_id is not None  # started by the caller
        self.repo.commit_run(name, report.run_id, records=[], full=report.full, holds={},
                             tokens={k: token for k, token in tokens.items() if k not in created_on},
                             status=report.status, counts=report.counts, errors=report.errors,
                             settled=fingerprint if at_rest else None)
        return True

    def _spool_members(self, members: Sequence[Member], spool: Spool, notify: ProgressCallback, size: int,
                       ) -> tuple[Joiner, dict[str, list[tuple[ItemRef, Problem]]], dict[str, str]] | None:
        """Every member's items read into ``spool`` as its listing arrives, the platforms side by
        side, with the names the planner may join each by (:func:`joins`) in a :class:`Joiner`;
        what a listing did not bring is fetched by id, ``size`` at a time. Returns the joiner,
        per member the items listed but not read (with why: quarantined, never taken as absent),
        and the members' change tokens; None when a member's platform cannot list so or a member
        could not be read (nothing was written: the whole comparison says which and why).

        A listing is not asked again after a failure part way (its items are in the spool
        already): the whole comparison that follows has the usual retries."""
        numbers = {m.key: n for n, m in enumerate(members)}
        keys = list(numbers)
        joiner = Joiner()
        lock = threading.Lock()
        counts = dict.fromkeys(numbers, 0)

        def read(ms: list[Member]) -> list[tuple[list[tuple[ItemRef, Problem]], str] | None]:
            out: list[tuple[list[tuple[ItemRef, Problem]], str] | None] = []
            for m in ms:
                conn = self._connector(m.platform)

                def take(item: CalendarItem, m: Member = m) -> None:
                    if item.ref is None:
                        return
                    key = spool.add(numbers[m.key], item)
                    names = joins(m, item.ref.id, item.uid, item.marker, keys)
                    with lock:
                        joiner.add(key, names)
                    counts[m.key] += 1

                try:
                    check_budget(conn.name)
                    listed = conn.listing(m.calendar, take)
                    if listed is None:
                        out.append(None)
                        continue
                    left, token = listed
                    unread: list[tuple[ItemRef, Problem]] = []
                    chunks = [left[start:start + size] for start in range(0, len(left), size)]
                    fetch = partial(self._fetch_refs, conn, m.calendar)
                    for asked, (found, problems) in read_ahead(fetch, chunks):
                        for item in found:
                            take(item)
                        got = {i.ref.id for i in found if i.ref is not None}
                        unread += [(ref, _why(conn, ref, problems)) for ref in asked if ref.id not in got]
                except ConnectorError as exc:
                    log.info("%s: could not be read in parts (%s); comparing whole", m.key, exc.message)
                    out.append(None)
                    continue
                out.append((unread, token))
            return out

        found = self._by_platform(members, read, lambda m, _u: notify(Progress("fetched", m.key, counts[m.key])))
        answers = {k: u for k, u in found.items() if u is not None}
        if len(answers) != len(found):
            return None
        return joiner, {k: u for k, (u, _t) in answers.items()}, {k: t for k, (_u, t) in answers.items()}

    def _fetch_refs(self, conn: Connector, calendar: str, refs: Sequence[ItemRef],
                    ) -> tuple[list[CalendarItem], list[Problem]]:
        return self._call(partial(conn.fetch, calendar, [r.id for r in refs]), conn.name)

    def _token_for(self, member: Member, tokens: Mapping[str, TokenState], group: SyncGroupConfig,
                   full: bool) -> tuple[str | None, bool]:
        stored = tokens.get(member.key)
        if stored is None or stored.token is None:
            return None, True
        due = stored.runs_since_full + 1 >= max(group.reconcile_every, 1)
        return stored.token, full or due

    def _record_quarantine(self, report: SyncReport, seen: Mapping[str, _Seen]) -> None:
        still_bad: dict[str, set[str]] = {k: set() for k in seen}
        unique = {(key, ref.id): (key, ref, problem) for key, ref, problem in report.unreadable}
        for key, ref, problem in unique.values():
            self.repo.quarantine(report.group, key, item_ref=ref.id, uid=problem.item, reason=problem.plain_message)
            still_bad[key].add(ref.id)
            report.counts["quarantined"] += 1
        for q in report.plan.quarantine:
            self.repo.quarantine(report.group, q.member, item_ref=q.item_id, uid=q.uid, reason=q.reason)
            still_bad[q.member].add(q.item_id or f"uid:{q.uid}")
            report.counts["quarantined"] += 1
        for key, bad in still_bad.items():
            if seen[key].observation.complete:
                self.repo.release(report.group, key, bad)

    # -------------------------------------------------------------------------- execute
    def _with_evidence(self, member: Member, seen: _Seen, state: Mapping[str, ItemState]) -> _Seen:
        """``seen`` with the pending copies it lacks (see ``CopyState.pending``) reported deleted
        where the member's change feed, asked from the token recorded with them, says they were:
        a server that keeps deletion history (Radicale, SabreDAV/Nextcloud) then tells "written,
        then deleted by its user" from "never written". Without that evidence the planner takes
        such a copy as never written, and writes it again. Only a complete listing can say a
        copy is missing, so anything else is returned as it is.

        A copy at an id the server chose has a placeholder id instead (:func:`placeholder_id`)
        and the time of the write as evidence: a listed item with its marker is that copy
        landed; else the connector is asked whether the platform kept it as deleted since that
        time (:meth:`Connector.deleted_since`)."""
        obs = seen.observation
        if not obs.complete or not obs.reachable:
            return seen
        present = ({i.ref.id for i in obs.items if i.ref} | {r.id for r in obs.unchanged}
                   | {r.id for r in obs.unreadable} | {r.id for r in obs.deleted})
        wanted: dict[str, set[str]] = {}
        placeholders: list[CopyState] = []
        for record in state.values():
            copy = record.copies.get(member.key)
            if copy is None or not copy.pending or not copy.evidence or copy.item_id in present:
                continue
            if copy.item_id.startswith(PLACEHOLDER):
                placeholders.append(copy)
            else:
                wanted.setdefault(copy.evidence, set()).add(copy.item_id)
        listed_markers = {i.marker for i in obs.items if i.marker} if placeholders else set()
        placed = [c for c in placeholders if c.marker not in listed_markers]  # a listed marker: it landed
        if not wanted and not placed:
            return seen
        conn = self._connector(member.platform)
        gone = self._placed_gone(conn, member, placed)
        known = {i.ref.id: i.ref.etag for i in obs.items if i.ref and i.ref.etag}
        known.update((r.id, r.etag) for r in obs.unchanged if r.etag)
        for token, ids in sorted(wanted.items()):
            try:
                changes = self._call(partial(conn.changes_skipping, member.calendar, token, known), conn.name)
            except ConnectorError as exc:  # a token the server forgot: no evidence either way
                log.info("%s: no deletion history for %d unconfirmed copies (%s)", member.key, len(ids), exc.message)
                continue
            gone += [r for r in changes.deleted if r.id in ids]
        if not gone:
            return seen
        return replace(seen, observation=replace(obs, deleted=[*obs.deleted, *gone]))

    def _placed_gone(self, conn: Connector, member: Member, placed: list[CopyState]) -> list[ItemRef]:
        """The placeholders of ``placed`` (pending copies at server-chosen ids, not listed) whose
        copies the platform shows as deleted since their write."""
        by_time: dict[str, dict[str, str]] = {}
        for copy in placed:
            if copy.marker is not None:
                by_time.setdefault(copy.evidence or "", {})[copy.uid] = copy.marker
        gone: list[ItemRef] = []
        for since, copies in sorted(by_time.items()):
            try:
                uids = self._call(partial(conn.deleted_since, member.calendar, copies,
                                          datetime.fromisoformat(since)), conn.name)
            except (ConnectorError, ValueError) as exc:
                log.info("%s: no deletion evidence for %d unconfirmed copies (%s)", member.key, len(copies), exc)
                continue
            gone += [ItemRef(member.calendar, c.item_id) for c in placed if c.uid in uids]
        return gone

    def _intents(self, plan: Plan, state: Mapping[str, ItemState], members: Mapping[str, Member],
                 seen: Mapping[str, _Seen]) -> dict[str, ItemState]:
        """What to record just before a create, per logical item that gets new copies at ids the
        client chooses: the stored state, dirty (so a killed run's item is decided again from
        where it was), with each new copy *pending* at its planned id, with the target's change
        token from before the write. A kill between the server storing a copy and calmesh
        recording it then leaves the copy's name and the token that can prove its deletion.
        Saved write by write (:meth:`_write`), so a kill leaves pending only the copies whose
        writes were under way, not every copy the run had still to make."""
        intents: dict[str, ItemState] = {}
        for batch in plan.batches:
            for write in batch.writes:
                if not isinstance(write, Create):
                    continue
                member = members[write.target]
                item_id = self._connector(member.platform).planned_id(member.calendar, write.item)
                target = seen[write.target]
                evidence = target.token if target.token_valid else None
                if item_id is None and write.item.marker is not None:
                    # the server chooses the id: a placeholder, and the time as evidence
                    item_id, evidence = placeholder_id(write.item.marker), datetime.now(UTC).isoformat()
                lid = write.logical_id
                # an item new this run has no stored state: what this run saw of it stands in
                # (without it, the original would read as changed next run and outweigh the
                # deletion of a copy that the evidence proves)
                old = intents.get(lid) or state.get(lid) or batch.records.get(lid)
                if item_id is None or old is None:
                    continue
                base = replace(old, dirty=True)
                copy = CopyState(write.target, item_id, write.item.uid, None, write.content_hash,
                                 marker=write.item.marker, pending=True, evidence=evidence)
                intents[lid] = replace(base, copies={**base.copies, write.target: copy})
        return intents

    def _execute(self, name: str, report: SyncReport, state: Mapping[str, ItemState],
                 members: Mapping[str, Member], notify: ProgressCallback,
                 intents: dict[str, ItemState]) -> list[ItemState]:
        """Run every batch; returns the records not yet saved (saved with the tokens).

        Batches with nothing to write (items paired or adopted, records refreshed) hold final
        records from the start: they are saved first, in one transaction, not one by one as
        the writes go (a first sync pairing 10,000 events by UID made 10,000 transactions)."""
        idle = [r for b in report.plan.batches if not b.writes for r in b.records.values()]
        if idle:
            self.repo.save_records(name, idle)
        pending: list[ItemState] = []
        total, done = len(report.plan.writes), 0
        batches = [b for b in report.plan.batches if b.writes]
        for n, (batch, ok, saved) in enumerate(self._run_batches(name, report, batches, members, intents), 1):
            if ok and not saved:
                pending.extend(batch.records.values())
            elif not ok:  # the intent (with what landed) stands; else the stored state, dirty
                failed = {r.logical_id: r for r in batch.after_failure(state)}
                failed.update((w.logical_id, intents[w.logical_id]) for w in batch.writes if w.logical_id in intents)
                pending.extend(failed.values())
            done += len(batch.writes)
            notify(Progress("applied", batch.writes[-1].target, done, total))
            if n % SAVE_EVERY == 0 or (not saved and _names_new_copy(batch, state)):
                self.repo.save_records(name, pending)
                pending = []
        return pending

    def _run_batches(self, name: str, report: SyncReport, batches: list[Batch], members: Mapping[str, Member],
                     intents: dict[str, ItemState]) -> Iterator[tuple[Batch, bool, bool]]:
        """Each of ``batches``, in plan order, with whether all its writes succeeded and
        whether its records are saved already. With several workers, at most two batches per
        worker are in flight ahead of the one awaited, and those not started are cancelled if
        the run stops."""
        if self._write_workers == 1:
            for batch in batches:
                yield batch, self._run_batch(name, report, batch, members, intents), False
            return
        window: deque[tuple[Batch, Future[tuple[bool, bool]]]] = deque()
        with ThreadPoolExecutor(self._write_workers, thread_name_prefix="calmesh-write") as pool:
            try:
                for batch in batches:
                    window.append((batch, pool.submit(copy_context().run, self._run_and_save, name, report,
                                                      batch, members, intents)))
                    if len(window) > 2 * self._write_workers:
                        first, future = window.popleft()
                        yield first, *future.result()
                while window:
                    first, future = window.popleft()
                    yield first, *future.result()
            finally:
                for _batch, future in window:
                    future.cancel()

    def _run_and_save(self, name: str, report: SyncReport, batch: Batch, members: Mapping[str, Member],
                      intents: dict[str, ItemState]) -> tuple[bool, bool]:
        """A batch on a worker thread: (all writes succeeded, records saved). One that created a
        copy has its records saved right away, on that thread (see ``SAVE_EVERY``), not when its
        turn in plan order comes: batches finished ahead of that turn are then never at risk of
        being forgotten by a kill."""
        ok = self._run_batch(name, report, batch, members, intents)
        if ok and any(isinstance(w, Create) for w in batch.writes):
            self.repo.save_records(name, batch.records.values())
            return True, True
        return ok, False

    def _run_batch(self, name: str, report: SyncReport, batch: Batch, members: Mapping[str, Member],
                   intents: dict[str, ItemState]) -> bool:
        for action in batch.writes:
            member = members[action.target]
            conn = self._connector(member.platform)
            try:
                self._write(name, report, batch, action, member, conn, intents)
            except ConnectorError as exc:
                report.count(action.target, "failed")
                report.errors.append(f"{action.target}: {type(action).__name__.lower()} "
                                     f"{action.logical_id}: {exc.message}")
                return False
        return True

    def _write(self, name: str, report: SyncReport, batch: Batch, action: Write, member: Member,
               conn: Connector, intents: dict[str, ItemState]) -> None:
        audit: dict[str, Any] = {"group": name, "run_id": report.run_id, "platform": member.platform,
                 "calendar": member.calendar, "reason": action.reason}
        if isinstance(action, Delete):
            if self._under_way(report.state, batch, action, intents, deleting=True):
                self.repo.save_records(name, [intents[action.logical_id]])  # before the DELETE
            try:
                self._call(lambda: conn.delete(member.calendar, action.ref, action.ref.etag), conn.name)
            except NotFoundError:
                pass  # already gone: the outcome we wanted
            batch.succeeded(action)
            if action.logical_id in intents:  # what landed, should a later write of the batch fail
                intents[action.logical_id] = record_deleted(intents[action.logical_id], action)
            self.repo.audit(action="delete", item_ref=action.ref.id, etag_before=action.ref.etag,
                            previous=self._known_content(report, action), **audit)
            report.count(action.target, "deleted")
            return
        if_match = action.ref.etag if isinstance(action, Update) else None
        item, notices = self._fit(report, action, conn)
        if notices:
            audit["reason"] = "; ".join([action.reason, *(f"{n.feature}: {n.detail}" for n in notices)])
        if isinstance(action, Update):
            self._under_way(report.state, batch, action, intents, writing=action.content_hash)
        if action.logical_id in intents:
            self.repo.save_records(name, [intents[action.logical_id]])  # before the write: see _intents
        ref = self._call(lambda: conn.put(member.calendar, item, if_match), conn.name)
        batch.succeeded(action, ref)
        landed: list[ItemState] = []
        if action.logical_id in intents:
            # the intent now says the copy is there, in the transaction that audits it
            intents[action.logical_id] = intent = record_written(intents[action.logical_id], action, ref)
            landed.append(intent)
        self.repo.audit(action="create" if isinstance(action, Create) else "update", uid=item.uid,
                        item_ref=ref.id, written=item, etag_before=if_match, etag_after=ref.etag,
                        previous=self._known_content(report, action) if isinstance(action, Update) else None,
                        records=landed, **audit)
        report.count(action.target, "created" if isinstance(action, Create) else "updated")

    @staticmethod
    def _under_way(state: Mapping[str, ItemState], batch: Batch, action: Update | Delete,
                   intents: dict[str, ItemState], **change: Any) -> bool:
        """Add to ``intents`` what to record just before ``action`` overwrites or deletes a
        recorded copy: the item as stored (or as this run's intents have it), dirty, with
        ``change`` made to that copy, the update's new content hash (:attr:`CopyState.writing`)
        or the deletion (:attr:`CopyState.deleting`) under way. A kill between the server's
        answer and calmesh recording it then leaves what the server holds known as calmesh's own
        doing. Read as an edit made there, the updated version would outrank a deletion of the
        item made meanwhile and bring it back where it was deleted; taken for its person's
        deletion, the copy's absence would let the same object pushed back there by an offline
        client count as taken back out of the trash, and come back everywhere. Whether it added
        one (a duplicate on the calendar is no recorded copy)."""
        lid = action.logical_id
        old = intents.get(lid) or state.get(lid) or batch.records.get(lid)
        copy = old.copies.get(action.target) if old is not None else None
        if old is None or copy is None:
            return False
        if isinstance(action, Delete) and (copy.deleted or copy.item_id != action.ref.id):
            return False
        intents[lid] = replace(old, dirty=True, copies={**old.copies, action.target: replace(copy, **change)})
        return True

    @staticmethod
    def _fit(report: SyncReport, action: Create | Update, conn: Connector) -> tuple[CalendarItem, list[Notice]]:
        """The item as ``conn`` writes it and what that form changes, recorded in ``report``;
        an item ``conn`` cannot hold at all is recorded, then its write fails with the reason."""
        try:
            item, adaptations = conn.fit(action.item)
        except CannotHold as exc:
            report.adapt([Notice(action.target, action.logical_id, action.item.uid, exc.feature, exc.message,
                                 written=False)])
            raise
        notices = [Notice(action.target, action.logical_id, action.item.uid, a.feature, a.detail)
                   for a in adaptations]
        report.adapt(notices)
        return item, notices

    def _preview(self, report: SyncReport, members: Mapping[str, Member]) -> None:
        """A dry run's notices: how each planned copy would be written (nothing is)."""
        for write in report.plan.writes:
            if isinstance(write, Create | Update):
                try:
                    self._fit(report, write, self._connector(members[write.target].platform))
                except ConnectorError:
                    continue  # recorded as a notice

    def _read_before_overwrite(self, report: SyncReport, members: Mapping[str, Member]) -> None:
        """Fetch what updates and deletions will replace when this run did not read it (a change
        feed that did not mention it, or a listing that skipped it as unchanged), so that every
        audit entry holds the content it replaced. One fetch per member."""
        missing: dict[str, list[str]] = {}
        for write in report.plan.writes:
            if isinstance(write, Update | Delete) and (write.target, write.ref.id) not in report.read:
                missing.setdefault(write.target, []).append(write.ref.id)
        for key, ids in missing.items():
            member = members[key]
            conn = self._connector(member.platform)
            try:
                found, _problems = self._call(partial(conn.fetch, member.calendar, ids), conn.name)
            except ConnectorError as exc:  # the writes will meet the same trouble and say so
                log.warning("%s: could not read %d item(s) before replacing them: %s", key, len(ids), exc.message)
                continue
            report.read.update(((key, i.ref.id), i) for i in found if i.ref is not None)

    def _known_content(self, report: SyncReport, action: Update | Delete) -> CalendarItem | None:
        """What the target held before this write: read by this run, or fetched for the purpose
        by :meth:`_read_before_overwrite`."""
        return report.read.get((action.target, action.ref.id))
