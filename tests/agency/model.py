"""What should be true of the agency, kept beside it, and the invariants of issue 12 checked
against what the platforms really hold.

The model knows each *item* (a meeting booked through calmesh, ``M<n>``, or a person's own
event, ``P<n>``; every title starts with that key, which is how a copy is recognised on a
platform that mints its own UIDs) and, for each calendar (*place*), what a copy there must look
like (:class:`Expect`): its acceptable versions, and whether it must be there (``required``) or
may be there (a copy a sync group has yet to make or remove). A place a person deleted an item
from is ``gone``: it must never come back.

Sync groups make the model lax until they run: a change at one member (a booking delivered
there, a person's edit or deletion) makes the other members' copies "old or new, there or not";
a clean run of the group (every member read and written, no error, no kill) makes them strict
again (:meth:`Model.converge`). A person's edits on both sides between two runs are a conflict:
either may win, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from calmesh.core.overlaps import Conflict
from calmesh.model import (
    MARKER_PROPERTY,
    BusyType,
    CalendarItem,
    Event,
    PartStat,
    PersonFreeBusy,
    normalize_email,
)

from .world import BUSY_TITLE, GROUPS, Agency, Place

KEY = re.compile(r"^([MP]\d+)\b")


@dataclass(frozen=True)
class Version:
    """What a copy says, as far as the invariants care."""

    title: str | None
    """None: not compared (a busy block carries the group's busy title)."""
    start: datetime
    end: datetime
    live: bool
    """Blocks time (False: cancelled, or transparent)."""

    @classmethod
    def of(cls, event: Event) -> Version:
        start, end = event.span_utc(UTC)
        return cls(event.summary, start, end, event.effective_busy_type() is not BusyType.FREE)

    def in_mode(self, mode: str) -> Version:
        return replace(self, title=None) if mode == "busy" else self

    def matches(self, seen: Version) -> bool:
        return ((self.title is None or self.title == seen.title) and (self.start, self.end) == (seen.start, seen.end)
                and self.live == seen.live)

    def __str__(self) -> str:
        title = "(busy block)" if self.title is None else repr(self.title)
        return (f"{title} {self.start:%a %H:%M}-{self.end:%H:%M}Z" + ("" if self.live else " cancelled"))


@dataclass
class Expect:
    versions: set[Version]
    required: bool
    origin: str
    """``own`` (a person's event), ``delivered`` (written by book/move/cancel), ``sync`` (a sync
    group's copy) or ``hand`` (a person's own copy of a meeting: a duplicate resolution may remove)."""

    def __str__(self) -> str:
        return f"{'must' if self.required else 'may'} hold {' or '.join(sorted(map(str, self.versions)))}"


@dataclass
class Item:
    key: str
    kind: str
    """``meeting`` or ``personal``."""
    owner: str
    """The organiser, or the person whose event it is."""
    uid: str
    title: str
    start: datetime
    end: datetime
    live: bool = True
    attendees: tuple[str, ...] = ()
    places: dict[str, Expect] = field(default_factory=dict)
    gone: dict[str, str] = field(default_factory=dict)
    """Places it was deleted from, and by whom: it must not come back there."""
    declined: set[str] = field(default_factory=set)
    """Attendees' places whose copy its attendee deleted while the organiser has a calendar in
    the place's group: the deletion stays theirs, and no run of the group brings it back there
    (docs/sync.md), whatever the organiser does next but deliver it anew."""
    answers: dict[str, PartStat] = field(default_factory=dict)
    owed: set[str] = field(default_factory=set)
    """Attendees' places calmesh reported a delivery owed to (their calendar was down): written
    the next time owed deliveries are, once the platform answers."""
    sequence: int = 0
    """SEQUENCE of the organiser's copy after calmesh's last change."""
    invitation: CalendarItem | None = None
    """The meeting as calmesh last sent it (what an attendee's client answers)."""
    refs: set[tuple[str, str]] = field(default_factory=set)
    """(platform, id) of its copies seen: a sync copy's marker names its source this way."""
    truth: dict[str, set[Version | None]] = field(default_factory=dict)
    """Per sync group: what its members must converge to (None: deleted)."""
    edited: dict[str, set[str]] = field(default_factory=dict)
    """Per sync group: places changed since the group last converged."""

    def version(self, title: str | None = None) -> Version:
        return Version(title or self.title, self.start, self.end, self.live)


@dataclass
class Seen:
    """One copy on a platform, read by the test itself (not through calmesh's faults)."""

    place: Place
    item: CalendarItem
    event: Event
    key: str | None = None

    def __str__(self) -> str:
        e = self.event
        who = f" organizer={e.organizer.email}" if e.organizer else ""
        return (f"{Version.of(e)} uid={e.uid} seq={e.sequence}{who} marker={self.item.marker} "
                f"ref={self.item.ref.id if self.item.ref else None}")


def group_of(place: str) -> tuple[str, str, tuple[str, ...]] | None:
    for name, (mode, members) in GROUPS.items():
        if place in members:
            return name, mode, members
    return None


class Model:
    def __init__(self, agency: Agency) -> None:
        self.agency = agency
        self.items: dict[str, Item] = {}
        self._n = 0

    def new_key(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def live_meetings(self) -> list[Item]:
        return [i for i in self.items.values() if i.kind == "meeting" and i.live]

    # ------------------------------------------------------------------------------ changes
    def put(self, item: Item, place: str, version: Version, origin: str) -> None:
        """A copy at ``place`` now holds ``version`` (written by calmesh or by its person)."""
        item.places[place] = Expect({version}, True, origin)
        item.gone.pop(place, None)
        item.declined.discard(place)
        self._touch(item, place, version)

    def places_edited_by_attendee(self, item: Item, place: str, version: Version) -> None:
        """An attendee changed their copy at ``place``: it may hold that version from now on,
        or the organiser's again (a sync group holding the organiser's calendar sets it back);
        nothing else changes."""
        found = group_of(place)
        if found is not None and not any(m.split("@")[0] == item.owner for m in found[2]):
            # the organiser has no calendar in that group: its plain rules carry the edit
            self.put(item, place, version, item.places[place].origin)
            return
        item.places[place].versions.add(version)

    def remove(self, item: Item, place: str, why: str) -> None:
        """The copy at ``place`` was deleted (``why``): it must not come back."""
        item.places.pop(place, None)
        item.gone[place] = why
        self._touch(item, place, None)

    def _touch(self, item: Item, place: str, version: Version | None) -> None:
        found = group_of(place)
        if found is None:
            return
        if item.kind == "meeting" and version is None and place.split("@")[0] != item.owner \
                and any(m.split("@")[0] == item.owner for m in found[2]):
            item.declined.add(place)
            return  # an attendee deleting their copy, the organiser in the group: it stays theirs
        name, mode, members = found
        edited = item.edited.setdefault(name, set())
        if edited - {place}:  # changed at another member too since the last clean run: a conflict
            item.truth.setdefault(name, set()).add(version)
            if (here := item.places.get(place)) is not None:  # which version wins is the policy's
                here.versions |= {v.in_mode(mode) if here.origin == "sync" else v
                                  for v in item.truth[name] if v is not None}
        else:
            item.truth[name] = {version}
        edited.add(place)
        for other in members:
            if other == place:
                continue
            expect = item.places.get(other)
            if expect is None:
                if other in item.gone:
                    continue
                expect = item.places[other] = Expect(set(), False, "sync")
            if version is None:  # a deletion spreads: the other copies may go
                expect.required = False
            else:  # an edit spreads: the other copies are old or new (and stay if they must)
                expect.versions.add(version if expect.origin != "sync" else version.in_mode(mode))

    def converge(self, group: str) -> None:
        """Group ``group`` ran cleanly: its members hold what the model says they must."""
        mode, members = GROUPS[group]
        for item in self.items.values():
            truth = item.truth.get(group)
            if truth is None:
                continue
            versions = {v for v in truth if v is not None}
            for member in members:
                if member in item.declined:
                    continue
                expect = item.places.get(member)
                if not versions:
                    item.places.pop(member, None)
                    item.gone.setdefault(member, f"deleted in a member of sync group {group!r}, which then ran")
                elif None in truth:  # deleted at one member, edited at another: either may win
                    if expect is not None:
                        expect.versions |= {v.in_mode(mode) if expect.origin == "sync" else v for v in versions}
                    elif member in item.gone:  # where it was deleted: the edit, winning, brings it back
                        item.places[member] = Expect({v.in_mode(mode) for v in versions}, False, "sync")
                elif expect is None or expect.origin == "sync" or mode == "mirror":
                    origin = expect.origin if expect is not None else "sync"
                    wanted = {v.in_mode(mode) if origin == "sync" else v for v in versions}
                    item.places[member] = Expect(wanted, any(v.live for v in versions), origin)
                    item.gone.pop(member, None)
            item.edited[group] = set()

    def may_have_run(self, group: str) -> None:
        """Group ``group`` ran, maybe killed part way: where the group holds the event live (an
        edit that raced a deletion, or a meeting its organiser delivered anew into a member after
        the group had deleted it), the run may already have brought it back where it was deleted
        (see :meth:`converge`, which requires that after a clean run). Only widens what is
        allowed; what the run must have done is checked after a clean run."""
        mode, members = GROUPS[group]
        for item in self.items.values():
            truth = item.truth.get(group) or set()
            versions = {v for v in truth if v is not None}
            if not versions:
                continue
            for member in members:
                if member in item.gone and member not in item.places and member not in item.declined:
                    item.places[member] = Expect({v.in_mode(mode) for v in versions}, False, "sync")

    # ------------------------------------------------------------------------------ identity
    def identify(self, event: Event, marker: str | None) -> str | None:
        """Which item ``event`` is a copy of: its title's key, its UID, or its marker."""
        found = KEY.match(event.summary or "")
        if found and found.group(1) in self.items:
            return found.group(1)
        for item in self.items.values():
            if event.uid == item.uid:
                return item.key
        if marker:
            for item in self.items.values():
                if marker.endswith("/" + item.uid) or any(
                        marker.startswith(platform + "/") and marker.endswith("/" + ref)
                        for platform, ref in item.refs):
                    return item.key
        return None

    def observe(self) -> dict[str, list[Seen]]:
        """Every place's items, read straight from the platforms, each tied to its model item."""
        seen: dict[str, list[Seen]] = {}
        for key, place in self.agency.places.items():
            items, problems = self.agency.hub.raw(place.platform).items(place.calendar)
            assert not problems, f"{key}: unreadable items {problems}"
            seen[key] = [Seen(place, i, i.master or i.components[0]) for i in items]
        every = [s for copies in seen.values() for s in copies]
        for _pass in range(2):  # titles and UIDs first, so markers can name the copies found
            for s in every:
                s.key = s.key or self.identify(s.event, s.item.marker)
                if s.key is not None and s.item.ref is not None:
                    self.items[s.key].refs.add((s.place.platform, s.item.ref.id))
        for where, copies in seen.items():  # busy blocks, by what they block
            taken = {s.key for s in copies}
            blocks = [s for s in copies if s.key is None]
            # first by what each block says (its time and whether it blocks it), then by its time
            matched = _matching({n: sorted(self.blocked_by(where, s.event, exactly=True) - taken)
                                 for n, s in enumerate(blocks)})
            rest = _matching({n: sorted(self.blocked_by(where, s.event) - taken - set(matched.values()))
                              for n, s in enumerate(blocks) if n not in matched})
            for n, s in enumerate(blocks):
                s.key = matched.get(n) or rest.get(n)
        return seen

    def blocked_by(self, place: str, event: Event, *, exactly: bool = False) -> set[str]:
        """Items a busy block at ``place`` may stand for: busy blocks carry no title, UID or
        marker that leads back to their origin (privacy), only its time (and, ``exactly``,
        whether it blocks it: a cancelled meeting's block does not)."""
        if event.summary != BUSY_TITLE or group_of(place) is None:
            return set()
        seen = Version.of(event)
        return {item.key for item in self.items.values() if place in item.places
                and any(v.title is None and (v.start, v.end) == (seen.start, seen.end)
                        and (not exactly or v.live == seen.live) for v in item.places[place].versions)}

    # ------------------------------------------------------------------------------ invariants
    def copies(self, seen: dict[str, list[Seen]]) -> list[str]:
        """Exactly once where it belongs, nowhere else; no deletion undone; no edit lost; only
        the organiser named as organiser; every answer kept."""
        out = []
        for place, copies in seen.items():
            for s in copies:
                if s.key is None:
                    out.append(f"[exactly-once] {place} holds an item no rule made: {s}")
        for item in self.items.values():
            for place in self.agency.places:
                here = [s for s in seen[place] if s.key == item.key]
                expect = item.places.get(place)
                listing = "; ".join(map(str, here))
                if len(here) > 1:
                    out.append(f"[exactly-once] {item.key} is {len(here)} times in {place}: {listing}")
                if expect is None:
                    if here and place in item.gone:
                        out.append(f"[deleted-returns] {item.key} is back in {place} ({item.gone[place]}): {listing}")
                    elif here:
                        out.append(f"[exactly-once] {item.key} appeared in {place}, where it never belonged: {listing}")
                    continue
                if expect.required and not here:
                    out.append(f"[exactly-once] {item.key} is missing from {place} ({expect.origin} copy; {expect})")
                for s in here:
                    now = Version.of(s.event)
                    if any(v.matches(now) for v in expect.versions):
                        continue
                    kind = "deleted-returns" if now.live and not any(v.live for v in expect.versions) else "edit-lost"
                    out.append(f"[{kind}] {item.key} in {place} {expect.origin} copy: {expect}, but it is {s}")
            if item.kind == "meeting":
                out += self._ownership(item, seen)
        return out

    def _ownership(self, item: Item, seen: dict[str, list[Seen]]) -> list[str]:
        out = []
        organiser = self.agency.email[item.owner]
        for place, copies in seen.items():
            # Exchange (EWS and Graph) names the mailbox owner organiser of whatever is written into
            # the mailbox: that is the platform's doing, and such a copy grants nothing (calmesh asks
            # its identity record; intruders are a rule of their own, ``someone_else_changes_it``)
            owner = self.agency.email.get(place.partition("@")[0])
            for s in copies:
                named = s.event.organizer.email if s.event.organizer is not None else None
                if s.key == item.key and named not in (None, organiser) and named != owner:
                    out.append(f"[organiser-only] {item.key} in {place} names {named} as its "
                               f"organiser; {organiser} booked it: {s}")
        home = self.agency.home(item.owner)
        mine = [s for s in seen[home.key] if s.key == item.key]
        if self.agency.hub.connector(home.platform).capabilities.answers:
            kept, where = (mine[0].event if mine and mine[0].event.attendees else None), f"the organiser's copy in {home.key}"
        else:  # Exchange sets answers only from its own response messages: calmesh's record keeps them
            record = self.agency.hub.identities().get(item.uid)
            kept = Event(item.uid, item.start, item.end, attendees=list(record.people)) if record else None
            where = f"calmesh's record of the meeting (its organiser is on {home.platform})"
        if kept is not None:
            for who, answer in item.answers.items():
                has = kept.partstat_of(self.agency.email[who])
                if has is not answer:
                    out.append(f"[edit-lost] {who} answered {answer.value} to {item.key}; {where} says "
                               f"{has.value if has else 'nothing'}")
        return out

    def busy_shown_free(self, seen: dict[str, list[Seen]], answers: Iterable[PersonFreeBusy]) -> list[str]:
        """Every live copy in a person's calendars makes them not-free in calmesh's free/busy."""
        out = []
        for answer in answers:
            who = self.agency.person_of[normalize_email(answer.email)]
            email = self.agency.email[who]
            for place in self.agency.places_of(who):
                for s in seen[place.key]:
                    if s.event.effective_busy_type(email) is BusyType.FREE:
                        continue
                    start, end = s.event.span_utc(UTC)
                    for gap_start, gap_end in _free_gaps(answer, start, end):
                        out.append(f"[busy-shown-free] {who} is shown free {gap_start:%a %H:%M}-{gap_end:%H:%M}Z "
                                   f"although {s.key or 'an item'} in {place.key} makes them busy: {s}")
        return out

    def _keys(self, platform: str, calendar: str, event: Event) -> set[str]:
        """Items a copy detection placed at ``platform:calendar`` may be."""
        key = self.identify(event, event.extra.get(MARKER_PROPERTY))
        if key is not None:
            return {key}
        place = next((k for k, p in self.agency.places.items() if (p.platform, p.calendar) == (platform, calendar)), "")
        return self.blocked_by(place, event)

    def copy_conflicts(self, who: str, conflicts: Iterable[Conflict]) -> list[str]:
        out = []
        for c in conflicts:
            first = self._keys(c.first.platform, c.first.calendar, c.first.event)
            second = self._keys(c.second.platform, c.second.calendar, c.second.event)
            if first & second:
                first = second = first & second
                out.append(f"[copy-is-conflict] {who}: {'/'.join(sorted(first))} in {c.first.platform}:{c.first.calendar} "
                           f"({c.first.event.summary!r}) and in {c.second.platform}:{c.second.calendar} "
                           f"({c.second.event.summary!r}) are reported as a conflict; they are one item")
        return out


def _free_gaps(answer: PersonFreeBusy, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Stretches of [start, end) no non-free period of ``answer`` covers."""
    gaps, cursor = [], start
    for period in sorted(answer.busy, key=lambda p: p.start):
        if period.type is BusyType.FREE or period.end <= cursor:
            continue
        if period.start >= end:
            break
        if period.start > cursor:
            gaps.append((cursor, period.start))
        cursor = max(cursor, period.end)
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def _matching(candidates: dict[int, list[str]]) -> dict[int, str]:
    """Busy blocks -> the items they stand for, as many blocks matched as can be (Kuhn's
    augmenting paths): two blocks at one place may both fit one item (a meeting moved onto the
    time of another), and taking the first fit for the first block would leave the second
    unexplained though each block has an item of its own."""
    owner: dict[str, int] = {}

    def place(block: int, tried: set[str]) -> bool:
        for key in candidates[block]:
            if key in tried:
                continue
            tried.add(key)
            if key not in owner or place(owner[key], tried):
                owner[key] = block
                return True
        return False

    for block in candidates:
        place(block, set())
    return {block: key for key, block in owner.items()}
