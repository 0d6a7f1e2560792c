"""The agency state machine of issue 12 (the rules and the invariant checks it runs after every
step); test_agency.py runs it, test_agency_regressions.py replays what it found, step by step."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from calmesh.connectors.base import ConnectorError
from calmesh.core.syncplan import Create, Delete
from calmesh.model import CalendarItem, Event, PartStat, Window
from calmesh.services import availability, detection, itip, scheduling
from calmesh.services.scheduling import (
    BookingNotFound,
    BookingRequest,
    SchedulingError,
    SlotTaken,
    Unchangeable,
)

from .faults import Killed
from .model import Item, Model, Seen, Version, group_of
from .world import (
    GROUPS,
    HOME,
    NOW,
    WEEK_END,
    WEEK_START,
    Agency,
    AgencyHub,
    Peers,
    slot,
)

T = TypeVar("T")
WINDOW = Window(WEEK_START, WEEK_END)
MAX_ITEMS = 6
"""Items (meetings and own events) one example makes at most: enough to collide, few enough to
keep each step's checks (every calendar read, free/busy and conflicts for everyone) quick."""
TRACE = os.environ.get("AGENCY_TRACE")
"""A file each sync run's planned writes (type, target, reason, item id) and each check's copies
are appended to, with the steps themselves on stdout (hypothesis's debug verbosity; pytest -s).
Two processes replaying one example write the same file (ids.py, the seeded replay) but for the
CalDAV servers' ports; where they differ, the first differing line says where the paths parted."""
IGNORED = {name.strip() for name in os.environ.get("AGENCY_IGNORE", "").split(",") if name.strip()}
"""Invariants not to fail on (``AGENCY_IGNORE=organiser-only,copy-is-conflict``): to see what
else breaks while a known failure is being fixed. Never set in CI."""
TOPICS = ("budget", "pitch", "review", "retro", "planning", "lunch", "1:1", "demo")

PEOPLE = st.sampled_from(sorted(HOME))
DAYS, HOURS, LENGTHS = st.integers(0, 4), st.integers(9, 16), st.sampled_from([30, 60])
PICK = st.integers(0, 30)
CALDAV = ("radicale", "xandikos")
"""The agency's CalDAV platforms, where a trash bin puts an object back at its id."""
"""Which of the candidates a rule acts on (modulo their number: shrinks towards the first)."""


def choose(candidates: Sequence[T], pick: int) -> T:
    return candidates[pick % len(candidates)]


class AgencyMachine(RuleBasedStateMachine):
    """See the module docstring. ``peers`` and ``root`` are set by the test before it runs."""

    peers: ClassVar[Peers]
    root: ClassVar[Path]
    examples: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        type(self).examples += 1
        self.agency = Agency(self.peers, self.root / f"example-{type(self).examples}")
        self.model = Model(self.agency)
        self.undoable: list[tuple[int, str, str, Version]] = []
        """Duplicate resolutions applied: (audit id, item key, place, the copy removed)."""
        self.trash: list[tuple[Item, str, CalendarItem]] = []
        """Own events their person deleted on a CalDAV calendar, as they were: a trash bin."""
        self.unseen: set[tuple[str, str]] = set()
        """(item key, place) of those deletions that no run of the place's sync group has read yet."""

    def teardown(self) -> None:
        self.agency.close()

    # ------------------------------------------------------------------------------ helpers
    @property
    def hub(self) -> AgencyHub:
        return self.agency.hub

    def email(self, who: str) -> str:
        return self.agency.email[who]

    def is_down(self, platform: str) -> bool:
        return platform in self.agency.faults.down

    def _delivered(self, item: Item, booking: scheduling.Booking) -> None:
        """Copies calmesh reports written now hold the meeting as it is; the others are as they were."""
        version = item.version()
        for delivery in booking.deliveries:
            place = self.agency.home(self.agency.person_of[delivery.email]).key
            if delivery.method in ("organizer", "calendar"):
                self.model.put(item, place, version, "delivered")
                item.owed.discard(place)
            elif delivery.owed:
                item.owed.add(place)

    def _find(self, item: Item, place: str) -> Seen | None:
        found = [s for s in self.model.observe()[place] if s.key == item.key]
        return found[0] if len(found) == 1 else None

    def report(self, problems: list[str]) -> None:
        """Fail with every problem found, but those of the invariants named in AGENCY_IGNORE."""
        shown = [p for p in problems if p.partition("]")[0].lstrip("[") not in IGNORED]
        assert not shown, "\n".join(shown)

    # ------------------------------------------------------------------------------ booking
    @precondition(lambda self: len(self.model.items) < MAX_ITEMS)
    @rule(organiser=PEOPLE, others=st.lists(PEOPLE, min_size=1, max_size=3, unique=True), day=DAYS, hour=HOURS,
          minutes=LENGTHS, topic=st.sampled_from(TOPICS))
    def book(self, organiser: str, others: list[str], day: int, hour: int, minutes: int, topic: str) -> None:
        attendees = tuple(o for o in others if o != organiser)
        if not attendees:
            return
        key = self.model.new_key("M")
        start, end = slot(day, hour, minutes)
        request = BookingRequest(self.email(organiser), tuple(self.email(a) for a in attendees), start, end,
                                 f"{key} {topic}")
        try:
            booking = scheduling.book(self.hub, request, now=NOW)
        except SlotTaken:
            return
        except ConnectorError:
            if self.is_down(HOME[organiser]):
                return
            raise
        master = booking.item.components[0]
        item = Item(key, "meeting", organiser, booking.uid, f"{key} {topic}", start.astimezone(UTC),
                    end.astimezone(UTC), attendees=attendees, sequence=master.sequence, invitation=booking.item)
        self.model.items[key] = item
        self._delivered(item, booking)

    @precondition(lambda self: self.model.live_meetings())
    @rule(pick=PICK, day=DAYS, hour=HOURS, minutes=LENGTHS)
    def move(self, pick: int, day: int, hour: int, minutes: int) -> None:
        item = choose(self.model.live_meetings(), pick)
        start, end = slot(day, hour, minutes)
        try:
            booking = scheduling.move_booking(self.hub, item.uid, self.email(item.owner), start, end, now=NOW)
        except SlotTaken:
            return
        except ConnectorError:
            if self.is_down(HOME[item.owner]):
                return
            raise
        except SchedulingError as exc:
            self.report([f"[organiser-only] {item.owner}, who booked {item.key}, may not move it: {exc}"])
            return
        sequence = booking.item.components[0].sequence
        if sequence <= item.sequence:
            self.report([f"[edit-lost] moving {item.key} left its SEQUENCE at {sequence} (was {item.sequence}): "
                         "attendees' clients take the move for an old version"])
        item.sequence, item.start, item.end = sequence, start.astimezone(UTC), end.astimezone(UTC)
        item.title = booking.item.components[0].summary or item.title
        item.answers.clear()  # a move asks everyone again (RFC 5546 3.2.2)
        item.invitation = booking.item
        self._delivered(item, booking)

    @precondition(lambda self: self.model.live_meetings())
    @rule(pick=PICK)
    def cancel(self, pick: int) -> None:
        item = choose(self.model.live_meetings(), pick)
        try:
            booking = scheduling.cancel_booking(self.hub, item.uid, self.email(item.owner), now=NOW)
        except ConnectorError:
            if self.is_down(HOME[item.owner]):
                return
            raise
        except SchedulingError as exc:
            self.report([f"[organiser-only] {item.owner}, who booked {item.key}, may not cancel it: {exc}"])
            return
        sequence = booking.item.components[0].sequence
        if sequence <= item.sequence:
            self.report([f"[edit-lost] cancelling {item.key} left its SEQUENCE at {sequence}"])
        item.sequence, item.live = sequence, False
        self._delivered(item, booking)

    @precondition(lambda self: self.model.live_meetings())
    @rule(pick=PICK, intruder=PEOPLE, cancel=st.booleans(), day=DAYS, hour=HOURS)
    def someone_else_changes_it(self, pick: int, intruder: str, cancel: bool, day: int, hour: int) -> None:
        """An attendee (or anyone) who did not book the meeting tries to move or cancel it."""
        item = choose(self.model.live_meetings(), pick)
        if intruder == item.owner:
            return
        start, end = slot(day, hour, 30)
        try:
            if cancel:
                booking = scheduling.cancel_booking(self.hub, item.uid, self.email(intruder), now=NOW)
            else:
                booking = scheduling.move_booking(self.hub, item.uid, self.email(intruder), start, end, now=NOW)
        except (Unchangeable, BookingNotFound, ConnectorError):
            return  # refused (or their platform is down: nothing was read, nothing written)
        except SchedulingError as exc:
            self.report([f"[organiser-only] {intruder} was taken for the organiser of {item.key} ({item.owner} "
                         f"booked it); only the slot stopped the move: {exc}"])
            return
        role = "an attendee" if intruder in item.attendees else "not even invited"
        self.report([f"[organiser-only] {intruder} ({role}) {'cancelled' if cancel else 'moved'} {item.key}, "
                     f"which {item.owner} booked"])
        if cancel:  # the check is ignored (AGENCY_IGNORE): the model follows what happened
            item.live = False
        else:
            item.start, item.end = start.astimezone(UTC), end.astimezone(UTC)
            item.answers.clear()
        self._delivered(item, booking)

    @precondition(lambda self: any(a for i in self.model.live_meetings() for a in i.attendees))
    @rule(pick=PICK, answer=st.sampled_from([PartStat.ACCEPTED, PartStat.DECLINED, PartStat.TENTATIVE]))
    def attendee_answers(self, pick: int, answer: PartStat) -> None:
        """The attendee's client sends an iTIP REPLY to the invitation calmesh sent; calmesh's
        inbox applies it to the organiser's copy."""
        item, who = choose([(i, a) for i in self.model.live_meetings() for a in i.attendees], pick)
        assert item.invitation is not None
        message = itip.reply(item.invitation, self.email(who), answer)
        try:
            scheduling.process_message(self.hub, message)
        except ConnectorError as exc:
            if not self.is_down(HOME[item.owner]):
                self.report([f"[edit-lost] {who}'s {answer.value} to {item.key} (booked by {item.owner} on "
                             f"{HOME[item.owner]}) cannot be applied: {exc}"])
            return
        except itip.ITIPError as exc:
            self.report([f"[edit-lost] {who}'s {answer.value} to {item.key} (booked by {item.owner} on "
                         f"{HOME[item.owner]}) cannot be applied: {exc}"])
            return
        item.answers[who] = answer

    # ------------------------------------------------------------------------------ people on their platforms
    @precondition(lambda self: len(self.model.items) < MAX_ITEMS)
    @rule(who=PEOPLE, where=st.integers(0, 2), day=DAYS, hour=HOURS, minutes=LENGTHS, topic=st.sampled_from(TOPICS))
    def own_event(self, who: str, where: int, day: int, hour: int, minutes: int, topic: str) -> None:
        """A person adds an event to one of their calendars with their own client."""
        place = choose(self.agency.places_of(who), where)
        if self.is_down(place.platform):
            return
        key = self.model.new_key("P")
        start, end = slot(day, hour, minutes)
        uid = f"{key.lower()}-{self.email(who).replace('@', '-at-')}"
        title = f"{key} {topic}"
        self.agency.hub.raw(place.platform).put(place.calendar, CalendarItem(uid, [Event(uid, start, end, title)]))
        item = Item(key, "personal", who, uid, title, start.astimezone(UTC), end.astimezone(UTC))
        self.model.items[key] = item
        self.model.put(item, place.key, item.version(), "own")

    def _editable(self) -> list[tuple[Item, str]]:
        """(item, place) a person may edit or delete there: their own event (its copies in a
        mirror group too) or, for a meeting, the organiser's copy."""
        out = []
        for item in self.model.items.values():
            for place, expect in item.places.items():
                owner = place.split("@")[0] == item.owner
                group = group_of(place)
                if item.kind == "personal" and owner and (expect.origin == "own" or group and group[1] == "mirror"):
                    out.append((item, place))
                elif item.kind == "meeting" and item.live and place == self.agency.home(item.owner).key:
                    out.append((item, place))
        return out

    @precondition(lambda self: self._editable())
    @rule(pick=PICK, topic=st.sampled_from(TOPICS))
    def edit_directly(self, pick: int, topic: str) -> None:
        """Renaming an event with one's own client: read it, change it, write it back with If-Match."""
        item, place = choose(self._editable(), pick)
        target = self.agency.places[place]
        seen = self._find(item, place)
        if seen is None or self.is_down(target.platform):
            return
        title = f"{item.key} {topic} (renamed)" if not item.title.endswith("(renamed)") else f"{item.key} {topic}"
        # as clients do (Thunderbird, Apple Calendar): SEQUENCE raised, LAST-MODIFIED now
        components = [replace(c, summary=title, sequence=c.sequence + 1, last_modified=datetime.now(UTC))
                      for c in seen.item.components]
        assert seen.item.ref is not None
        self.agency.hub.raw(target.platform).put(target.calendar, CalendarItem(seen.item.uid, components,
                                                                                seen.item.ref), seen.item.ref.etag)
        item.title = title
        self.model.put(item, place, item.version(), item.places[place].origin)

    def _invitations(self) -> list[tuple[Item, str]]:
        """(meeting, place): an attendee's copy of a live meeting in their own calendar."""
        return [(item, self.agency.home(a).key) for item in self.model.live_meetings() for a in item.attendees
                if self.agency.home(a).key in item.places]

    @precondition(lambda self: self._invitations())
    @rule(pick=PICK, topic=st.sampled_from(TOPICS))
    def attendee_edits_copy(self, pick: int, topic: str) -> None:
        """An attendee renames their copy of a meeting in their own client. It is theirs alone:
        it never reaches the organiser's item (``organiser-only``); a sync group holding their
        calendar may set it back."""
        item, place = choose(self._invitations(), pick)
        target = self.agency.places[place]
        seen = self._find(item, place)
        if seen is None or self.is_down(target.platform) or seen.item.ref is None:
            return
        title = f"{item.key} {topic} (attendee's)"
        components = [replace(c, summary=title, sequence=c.sequence + 1) for c in seen.item.components]
        self.agency.hub.raw(target.platform).put(target.calendar, CalendarItem(seen.item.uid, components,
                                                                                seen.item.ref), seen.item.ref.etag)
        # what the copy held, renamed: a move that never reached it (its calendar was down) is not in it
        self.model.places_edited_by_attendee(item, place, replace(Version.of(seen.event), title=title))

    def _deletable(self) -> list[tuple[Item, str]]:
        """Own events where their owner has them, and invitations in an attendee's calendar."""
        out = [(i, p) for i, p in self._editable() if i.kind == "personal"]
        for item in self.model.live_meetings():
            out += [(item, self.agency.home(a).key) for a in item.attendees
                    if self.agency.home(a).key in item.places]
        return out

    @precondition(lambda self: self._deletable())
    @rule(pick=PICK)
    def delete_directly(self, pick: int) -> None:
        item, place = choose(self._deletable(), pick)
        target = self.agency.places[place]
        seen = self._find(item, place)
        if seen is None or self.is_down(target.platform):
            return
        assert seen.item.ref is not None
        self.agency.hub.raw(target.platform).delete(target.calendar, seen.item.ref, seen.item.ref.etag)
        self.model.remove(item, place, f"deleted by {target.person} on {target.platform}")
        if item.kind == "personal" and target.platform in CALDAV:
            self.trash.append((item, place, seen.item))
            self.unseen.add((item.key, place))

    @precondition(lambda self: self.trash)
    @rule(pick=PICK)
    def restore_from_trash(self, pick: int) -> None:
        """A person takes an event they deleted back out of the trash (Nextcloud's trash bin):
        the very object at the very id. Their own doing, so the event is live again, and a
        sync group copies it anew to where the deletion had reached (docs/sync.md)."""
        item, place, stored = choose(self.trash, pick)
        target = self.agency.places[place]
        assert stored.ref is not None
        if (self.is_down(target.platform) or place in item.places
                or any(s.item.ref is not None and s.item.ref.id == stored.ref.id for s in self.model.observe()[place])):
            return
        group = group_of(place)
        if (item.key, place) in self.unseen and group is not None and any(
                other != place and other in item.gone for other in group[2]):
            # no run saw it gone, and it went from another calendar of its group meanwhile: the
            # object back as it was is no change to sync, so that deletion wins (docs/sync.md,
            # "Conflicts"); the person's own two acts race, which the model does not try to order
            return
        self.trash.remove((item, place, stored))
        self.agency.hub.raw(target.platform).put(target.calendar, stored)
        version = Version.of(stored.master or stored.components[0])
        item.title = version.title or item.title
        self.model.put(item, place, version, "own")

    @precondition(lambda self: self._copyable())
    @rule(pick=PICK)
    def copy_by_hand(self, pick: int) -> None:
        """Alice copies a meeting into her project calendar herself (same UID, her own title):
        a duplicate for detection to find, never a conflict."""
        item = choose(self._copyable(), pick)
        place = self.agency.places["alice@projects"]
        if self.is_down(place.platform):
            return
        title = f"{item.key} (Alice's copy)"
        self.agency.hub.raw(place.platform).put(place.calendar, CalendarItem(item.uid, [
            Event(item.uid, item.start, item.end, title)]))
        self.model.put(item, place.key, Version(title, item.start, item.end, True), "hand")

    def _copyable(self) -> list[Item]:
        return [i for i in self.model.live_meetings() if "alice@radicale" in i.places
                and "alice@projects" not in i.places and "alice@projects" not in i.gone]

    # ------------------------------------------------------------------------------ sync
    @rule(group=st.sampled_from(sorted(GROUPS)), full=st.booleans(), confirm=st.booleans())
    def sync(self, group: str, full: bool, confirm: bool) -> None:
        before = self.model.observe()
        report = self.agency.engine.run(group, self.agency.group(group), full=full, confirm_deletes=confirm)
        self.unseen -= {(k, p) for k, p in self.unseen
                        if p in GROUPS[group][1] and not self.is_down(self.agency.places[p].platform)}
        self._trace(f"sync {group} full={full} confirm={confirm}", report.plan.writes)
        self.report(self._judge_deletions(report.plan.writes, before, group))
        members = [self.agency.places[p].platform for p in GROUPS[group][1]]
        clean = not (report.errors or report.counts["failed"] or report.notices
                     or any(self.is_down(p) for p in members))
        if clean:
            self.model.converge(group)
        else:  # it ran all the same: an edit may have won over a deletion it raced
            self.model.may_have_run(group)

    @rule(group=st.sampled_from(sorted(GROUPS)), at=st.integers(1, 4), after_write=st.booleans())
    def sync_killed(self, group: str, at: int, after_write: bool) -> None:
        """A run killed at its ``at``-th write (or finished, if it makes fewer)."""
        before = self.model.observe()
        faults = self.agency.faults
        faults.arm(at, after_write)
        try:
            self.agency.engine.run(group, self.agency.group(group))
        except Killed:
            pass
        finally:
            faults.disarm()
        self.model.may_have_run(group)
        dry = self.agency.engine.run(group, self.agency.group(group), dry_run=True)
        self._trace(f"killed {group} at={at} after_write={after_write}, then a dry run", dry.plan.writes)
        self.report(self._judge_deletions(dry.plan.writes, before, group))

    def _trace(self, step: str, writes: list) -> None:  # type: ignore[type-arg]
        if TRACE:
            with open(TRACE, "a") as out:
                out.write(f"example {self.agency.number}: {step}\n")
                out.writelines(f"  {type(w).__name__} {w.target} {getattr(w, 'reason', '')!r} "
                               f"{w.ref.id if getattr(w, 'ref', None) else ''}\n" for w in writes)

    def _judge_deletions(self, writes: list, before: dict[str, list[Seen]], group: str) -> list[str]:  # type: ignore[type-arg]
        """Every deletion a sync plans names its reason, and is due: the item was deleted (or
        cancelled) in the group, the copy is one too many, or the same plan writes a new copy of
        the item there (its source was replaced: an invitation deleted by its owner, then
        delivered anew as a new object, gets a new busy block in place of the old one)."""
        out = []
        by_member = {f"{p.platform}/{p.calendar}": k for k, p in self.agency.places.items()}
        replaced = {(by_member[w.target], key) for w in writes if isinstance(w, Create)
                    for key in self._keys_of(by_member[w.target], w.item)}
        for write in writes:
            if not isinstance(write, Delete):
                continue
            place = by_member[write.target]
            if not write.reason.strip():
                out.append(f"[deletion-reason] sync group {group!r} plans to delete {write.ref.id} in {place} "
                           "without saying why")
            seen = [s for s in before[place] if s.item.ref is not None and s.item.ref.id == write.ref.id]
            if not seen or seen[0].key is None:
                continue
            item = self.model.items[seen[0].key]
            truth = item.truth.get(group)
            twice = sum(s.key == item.key for s in before[place]) > 1 or (place, item.key) in replaced
            due = twice or truth is not None and (None in truth or not any(v is not None and v.live for v in truth))
            if not due:
                out.append(f"[deletion-reason] sync group {group!r} plans to delete {item.key} from {place} "
                           f"({item.places[place].origin if place in item.places else 'unexpected'} copy) "
                           f"although it is live: {write.reason!r}; the copy: {seen[0]}")
        return out

    def _keys_of(self, place: str, item: CalendarItem) -> set[str]:
        """The model items a copy about to be written at ``place`` may stand for."""
        event = item.master or item.components[0]
        key = self.model.identify(event, item.marker)
        return {key} if key is not None else self.model.blocked_by(place, event)

    # ------------------------------------------------------------------------------ outages
    @precondition(lambda self: not self.agency.faults.down)
    @rule(platform=st.sampled_from(sorted(set(HOME.values()))))
    def platform_goes_down(self, platform: str) -> None:
        self.agency.faults.down.add(platform)

    @precondition(lambda self: self.agency.faults.down)
    @rule()
    def platform_comes_back(self) -> None:
        self.agency.faults.down.clear()

    @rule()
    def owed_deliveries_written(self) -> None:
        """What ``calmesh serve`` does every minute: the copies a booking, move or cancellation
        could not write (their calendar was down) are written now where the platform answers,
        each holding the meeting as its organiser's copy holds it."""
        for tried in scheduling.redeliver(self.hub, now=NOW):
            delivery = tried.delivery
            item = next(i for i in self.model.items.values() if i.kind == "meeting" and i.uid == tried.uid)
            place = self.agency.home(self.agency.person_of[delivery.email]).key
            if delivery.method == "failed" and not delivery.owed:  # given up: only for a reason that holds
                item.owed.discard(place)
                if not (item.end <= NOW or self.agency.home(item.owner).key not in item.places):
                    self.report([f"[edit-lost] the copy of {item.key} owed to {place} was given up: {delivery.detail}"])
            if delivery.method != "calendar":
                continue
            if place not in item.owed:
                self.report([f"[exactly-once] the copy of {item.key} at {place} was written again, owed nothing"])
            item.owed.discard(place)
            seen = self._find(item, place)
            organiser = item.places.get(self.agency.home(item.owner).key)
            held = Version.of(seen.event) if seen is not None else None
            if held is None or not (organiser.versions if organiser else {item.version()}) & {held}:
                self.report([f"[edit-lost] the copy of {item.key} owed to {place} was reported written, but it holds "
                             f"{held}, not the organiser's {organiser.versions if organiser else item.version()}"])
                return
            self.model.put(item, place, held, "delivered")
        for i in self.model.items.values():  # a cancellation owed to a copy its attendee deleted: nothing to withdraw
            i.owed -= {p for p in i.owed if not i.live and p not in i.places}
        missed = [f"{i.key}@{p}" for i in self.model.items.values() for p in sorted(i.owed)
                  if not self.is_down(self.agency.places[p].platform) and not self.is_down(HOME[i.owner])
                  and i.end > NOW]
        if missed:
            self.report([f"[edit-lost] owed copies not written once their platform answered: {', '.join(missed)}"])

    # ------------------------------------------------------------------------------ duplicates
    @rule(who=PEOPLE)
    def resolve_duplicates(self, who: str) -> None:
        analyses = detection.analyse_people(self.hub, [self.email(who)], WINDOW)
        plan = detection.plan_resolution(self.hub, analyses, WINDOW)
        seen = self.model.observe()
        by_calendar = {(p.platform, p.calendar): k for k, p in self.agency.places.items()}
        targets: list[tuple[str, Seen]] = []
        for removal in plan.removals:
            place = by_calendar[(removal.platform, removal.calendar)]
            found = [s for s in seen[place] if s.event.uid == removal.uid]
            if not removal.reason.strip():
                self.report([f"[deletion-reason] resolution removes {removal.uid} from {place} without a reason"])
            if not found or found[0].key is None:
                continue
            item = self.model.items[found[0].key]
            expect = item.places.get(place)
            if expect is not None and expect.origin != "hand":
                self.report([f"[deletion-reason] duplicate resolution for {who} would delete {item.key} from "
                             f"{place}, a {expect.origin} copy that must stay ({removal.reason!r}); the copy: "
                             f"{found[0]}"])
            targets.append((place, found[0]))
        applied = detection.apply_resolution(self.hub, plan, self.agency.repo)
        done = {(a.removal.platform, a.removal.calendar, a.removal.uid): a for a in applied if a.error is None}
        for place, copy in targets:
            target = self.agency.places[place]
            result = done.get((target.platform, target.calendar, copy.event.uid))
            if result is not None and result.log_id is not None and copy.key is not None:
                self.model.remove(self.model.items[copy.key], place, "removed by duplicate resolution")
                self.undoable.append((result.log_id, copy.key, place, Version.of(copy.event)))

    @precondition(lambda self: self.undoable)
    @rule()
    def undo_resolution(self) -> None:
        log_id, key, place, version = self.undoable[-1]
        if self.is_down(self.agency.places[place].platform):
            return
        self.undoable.pop()
        detection.undo(self.hub, self.agency.repo, log_id)
        self.model.put(self.model.items[key], place, version, "hand")

    # ------------------------------------------------------------------------------ invariants
    @invariant()
    def agency_holds(self) -> None:
        seen = self.model.observe()
        if TRACE:
            with open(TRACE, "a") as out:
                out.write(f"example {self.agency.number}: holds? down={sorted(self.agency.faults.down)} "
                          f"undoable={len(self.undoable)}\n")
                out.writelines(f"  {place}: {s}\n" for place in sorted(seen) for s in seen[place])
        problems = self.model.copies(seen)
        emails = [self.email(p) for p in sorted(HOME)]
        answers = availability.freebusy(self.hub, emails, WINDOW)
        problems += self.model.busy_shown_free(seen, answers)
        for analysis in detection.analyse_people(self.hub, emails, WINDOW):
            problems += self.model.copy_conflicts(self.agency.person_of[analysis.email], analysis.conflicts)
        self.report(problems)
