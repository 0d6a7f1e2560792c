"""Conflicts and duplicates across one person's calendars on every platform. Pure.

A person whose time lives on Exchange, Zoho and an in-house system can be double-booked without any
single platform noticing, and the same meeting often lands in two of those calendars (invited on
both, forwarded, copied by hand). This module finds both, from events already read and expanded:

- :func:`find_duplicates`: copies of one meeting, matched by normalised UID (:func:`normalize_uid`)
  or fuzzily (close times, similar title, shared attendees), each match with a score and a reason.
- :func:`find_conflicts`: pairs of blocking events that overlap in time, by a sweep line
  (sort by start, keep the events still running), O(n log n + conflicts) instead of O(n²).
- :func:`analyse`: both at once, with the rule that copies of one meeting are reported as a
  duplicate and never as a conflict with each other.
- :func:`propose_resolution`: which copies of a duplicate group could go, and why. Applying it is a
  service's job; nothing here writes.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from difflib import SequenceMatcher

from calmesh.model import MARKER_PROPERTY, BusyType, Event, EventStatus, as_utc, normalize_email

# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, slots=True, eq=False)
class PlacedEvent:
    """An event (one occurrence, already expanded) and where it lives.

    ``ref`` is whatever lets a service act on the copy later (CalDAV href, EWS ItemId, Graph id,
    a web link); ``owner`` is the calendar owner's email when known, which is how the organizer's
    own copy is recognised (see :func:`propose_resolution`). Compared and hashed by identity: two
    copies that look alike are exactly what this module tells apart, and findings point back at
    the caller's own objects.

    ``identity`` is the meeting this event is a copy of, as the caller's records say (a sync
    mirror, a busy placeholder or a booked invitation shares its original's): events with the same
    identity are one meeting and never conflict with each other, whatever their UIDs and titles;
    events of two different identities are never fuzzy duplicates of each other.
    """

    event: Event
    platform: str
    calendar: str
    ref: str | None = None
    owner: str | None = None
    identity: str | None = None

    def __post_init__(self) -> None:
        if not self.platform:
            raise ValueError("a PlacedEvent needs the name of its platform")
        if self.owner is not None:
            object.__setattr__(self, "owner", normalize_email(self.owner))

    def describe(self) -> str:
        """``platform:calendar`` (plus the item reference) for messages a person reads."""
        where = f"{self.platform}:{self.calendar}"
        return f"{where} [{self.ref}]" if self.ref else where


# --------------------------------------------------------------------------------------------
# Normalisation

_OUTLOOK_ID = bytes.fromhex("040000008200E00074C5B7101A82E008")
_OUTLOOK_ID_B64 = "BAAAAIIA4AB0xbcQGoLgCA"  # base64 of the first 16 bytes, as ActiveSync sends it
_VCAL_UID = b"vCal-Uid"
_HEADER = 40  # ByteArrayID 16 + InstanceDate 4 + CreationTime 8 + Padding 8 + DataSize 4
_HEX = re.compile(r"[0-9A-Fa-f]+")
_SELF_SUFFICIENT = 16
"""A UID whose part before ``@`` is at least this long is unique by itself (a GUID or random token),
so the ``@domain`` a platform appended can be dropped without merging unrelated meetings."""


def normalize_uid(uid: str) -> str:
    """A comparison key under which the copies of one meeting on different platforms share a UID.

    Handles:

    - surrounding whitespace, whitespace left by line folding, and ``<...>`` brackets;
    - letter case (UIDs are compared case-insensitively: Exchange upper-cases hex, others do not);
    - Exchange GlobalObjectId-derived UIDs ([MS-OXCICAL] UID, [MS-ASEMAIL] 3.1.4.7), as hex (EWS
      UID, Graph ``iCalUId``) or base64 (ActiveSync ``GlobalObjId``): when the blob wraps a
      third-party UID (``vCal-Uid`` marker) that UID is used, so an Exchange copy matches the
      CalDAV original; otherwise the per-occurrence InstanceDate bytes are zeroed, so Graph's
      per-occurrence ``iCalUId`` matches the series UID (the occurrence is told by RECURRENCE-ID);
    - a trailing ``@domain`` some platforms append (``…@google.com``, a server's host name) when the
      part before it is long enough to be unique by itself (16+ characters).
    """
    text = "".join(uid.split())
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    blob = _global_object_id(text)
    if blob is not None:
        embedded = _embedded_uid(blob)
        if embedded is None:
            return (blob[:16] + b"\0\0\0\0" + blob[20:]).hex()
        text = "".join(embedded.split())
    text = text.casefold()
    local, at, _domain = text.rpartition("@")
    if at and len(local) >= _SELF_SUFFICIENT:
        text = local
    return text


def _global_object_id(text: str) -> bytes | None:
    """The binary GlobalObjectId behind a hex or base64 UID, or None when it is not one."""
    if len(text) >= 2 * _HEADER and len(text) % 2 == 0 and _HEX.fullmatch(text):
        blob = bytes.fromhex(text)
    elif text.startswith(_OUTLOOK_ID_B64):
        try:
            blob = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        return None
    return blob if len(blob) >= _HEADER and blob.startswith(_OUTLOOK_ID) else None


def _embedded_uid(blob: bytes) -> str | None:
    """The third-party UID an Outlook GlobalObjectId carries after ``vCal-Uid`` + version, if any."""
    size = int.from_bytes(blob[36:40], "little")
    data = blob[_HEADER:_HEADER + size]
    if not data.startswith(_VCAL_UID) or len(data) <= 12:
        return None
    value = data[12:].split(b"\0", 1)[0].decode("utf-8", errors="replace").strip()
    return value or None


_REPLY_PREFIX = re.compile(r"^(?:\s*(?:re|fw|fwd|tr|aw|wg|rv|sv|vs|antw|ref)\s*(?:\[\d+\])?\s*:)+")
_NOT_WORD = re.compile(r"[\W_]+")
_NUMBER = re.compile(r"\d+")


def normalize_title(title: str | None) -> str:
    """A title reduced to what people mean by "the same title": accents, case, reply/forward
    prefixes (``RE:``, ``TR:``, ``Fwd:``, ``AW:``...), punctuation and spacing removed."""
    if not title:
        return ""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    text = _REPLY_PREFIX.sub("", text)
    return " ".join(_NOT_WORD.sub(" ", text).split())


def title_similarity(a: str, b: str) -> float:
    """Similarity of two normalised titles in [0, 1]: the better of difflib's ratio (typos,
    small edits) and the token-set overlap (reordered words).

    Titles naming different numbers ("Sprint 41" and "Sprint 42", "Room 1 booking" and "Room 2
    booking", "Q3 review" and "Q4 review") are different events, not a typo of one another: one
    character apart, difflib's ratio alone would make them one meeting, and resolving that
    "duplicate" would delete one of two events its person made. Their words in common count."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    ta, tb = set(a.split()), set(b.split())
    tokens = len(ta & tb) / len(ta | tb)
    if tokens == 1.0 or _NUMBER.findall(a) != _NUMBER.findall(b):
        return tokens
    return max(tokens, SequenceMatcher(None, a, b).ratio())


# --------------------------------------------------------------------------------------------
# Resolution of events onto the time line (done once per analysis)


@dataclass(slots=True)
class _Item:
    """One event on the UTC time line. UID, title and people are worked out on first use:
    conflicts never need them, and fuzzy matching only for events close in time."""

    index: int
    placed: PlacedEvent
    start: datetime
    end: datetime
    blocking: bool
    default_tz: tzinfo
    owner: str | None
    _uid: str | None = None
    _title: str | None = None
    _people: frozenset[str] | None = None

    @property
    def uid(self) -> str:
        if self._uid is None:
            self._uid = normalize_uid(self.placed.event.uid)
        return self._uid

    @property
    def instance(self) -> datetime | None:
        recurrence_id = self.placed.event.recurrence_id
        return as_utc(recurrence_id, self.default_tz) if recurrence_id is not None else None

    @property
    def title(self) -> str:
        if self._title is None:
            self._title = normalize_title(self.placed.event.summary)
        return self._title

    @property
    def people(self) -> frozenset[str]:
        """Organizer and attendees, minus the calendar's owner: they are in every copy, so
        counting them would make any two of their meetings look alike."""
        if self._people is None:
            event = self.placed.event
            emails = {a.email for a in event.attendees}
            if event.organizer is not None:
                emails.add(event.organizer.email)
            emails.discard(self.placed.owner)
            emails.discard(self.owner)
            self._people = frozenset(emails)
        return self._people


def _resolve(placed: Sequence[PlacedEvent], owner: str | None, default_tz: tzinfo, *,
             blocking: bool = True) -> list[_Item]:
    """Place every event on the UTC time line once; ``blocking=False`` skips the busy-type
    evaluation when only duplicates are wanted."""
    owner = normalize_email(owner) if owner else None
    items = []
    for index, p in enumerate(placed):
        event = p.event
        start, end = event.span_utc(default_tz)
        blocks = blocking and end > start and event.effective_busy_type(owner) is not BusyType.FREE
        items.append(_Item(index, p, start, end, blocks, default_tz, owner))
    return items


# --------------------------------------------------------------------------------------------
# Duplicates


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    """Two copies judged to be one meeting, how sure we are (``score`` in [0, 1]) and why."""

    first: PlacedEvent
    second: PlacedEvent
    score: float
    reason: str
    same_uid: bool


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """All copies of one meeting (pairs joined transitively), in input order."""

    members: tuple[PlacedEvent, ...]
    pairs: tuple[DuplicatePair, ...]

    @property
    def score(self) -> float:
        """The weakest link: a group is only as certain as its least certain pair."""
        return min(p.score for p in self.pairs)

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(sorted({m.platform for m in self.members}))

    @property
    def reason(self) -> str:
        return "; ".join(f"{p.first.describe()} = {p.second.describe()}: {p.reason}" for p in self.pairs)


@dataclass(frozen=True, slots=True)
class FuzzyRules:
    """How alike two events without a shared UID must be to count as one meeting.

    Score = weighted mean of the evidence present: time closeness (always), title similarity (when
    both have a title) and attendee overlap (when both list people). Time alone never suffices.
    """

    tolerance: timedelta = timedelta(minutes=5)
    threshold: float = 0.8
    time_weight: float = 0.2
    title_weight: float = 0.55
    people_weight: float = 0.25

    def __post_init__(self) -> None:
        if self.tolerance < timedelta(0):
            raise ValueError("tolerance must not be negative")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")


def find_duplicates(
    placed: Sequence[PlacedEvent],
    *,
    owner: str | None = None,
    default_tz: tzinfo = UTC,
    rules: FuzzyRules = FuzzyRules(),
) -> list[DuplicateGroup]:
    """Copies of the same meeting among one person's events, grouped.

    Cancelled copies are ignored (they no longer occupy the calendar); transparent and declined
    copies are kept, since they are still clutter a person may want cleaned up. The owner (here or
    in :attr:`PlacedEvent.owner`) does not count as a shared attendee.
    """
    return _duplicates(_resolve(placed, owner, default_tz, blocking=False), rules)


def _duplicates(items: Sequence[_Item], rules: FuzzyRules) -> list[DuplicateGroup]:
    live = [it for it in items if it.placed.event.status is not EventStatus.CANCELLED]
    pairs = _uid_pairs(live) + _fuzzy_pairs(live, rules)
    return _group(items, pairs)


def _uid_pairs(items: Sequence[_Item]) -> list[tuple[_Item, _Item, DuplicatePair]]:
    by_key: dict[tuple[str, datetime | None], list[_Item]] = {}
    for it in items:
        if it.uid:
            by_key.setdefault((it.uid, it.instance), []).append(it)
    out = []
    for members in by_key.values():
        first = members[0]
        for other in members[1:]:
            drift = max(abs(other.start - first.start), abs(other.end - first.end))
            reason = f"same UID on {_where(first, other)}"
            if drift:
                reason += f", times differ by {drift} (one copy is stale)"
            out.append((first, other, DuplicatePair(first.placed, other.placed, 1.0, reason, True)))
    return out


def _fuzzy_pairs(items: Sequence[_Item], rules: FuzzyRules) -> list[tuple[_Item, _Item, DuplicatePair]]:
    """Compare only events starting within ``tolerance`` of each other (sorted window scan)."""
    ordered = sorted(items, key=lambda it: it.start)
    out = []
    for i, a in enumerate(ordered):
        for j in range(i + 1, len(ordered)):
            b = ordered[j]
            if b.start - a.start > rules.tolerance:
                break
            if a.uid and a.uid == b.uid and a.instance == b.instance:
                continue  # already matched by UID
            if a.placed.identity and b.placed.identity and a.placed.identity != b.placed.identity:
                continue  # known to be different meetings (two placeholders titled "Busy", say)
            if abs(b.end - a.end) > rules.tolerance:
                continue
            match = _fuzzy_score(a, b, rules)
            if match is not None:
                first, second = (a, b) if a.index < b.index else (b, a)
                out.append((first, second, DuplicatePair(first.placed, second.placed, match[0], match[1], False)))
    return out


def _fuzzy_score(a: _Item, b: _Item, rules: FuzzyRules) -> tuple[float, str] | None:
    drift = max(abs(a.start - b.start), abs(a.end - b.end))
    tolerance = rules.tolerance.total_seconds()
    time_score = 1.0 if not drift else 1.0 - 0.5 * drift.total_seconds() / tolerance
    total, weight = rules.time_weight * time_score, rules.time_weight
    evidence = ["same start and end" if not drift else f"times within {drift}"]
    if a.title and b.title:
        similarity = title_similarity(a.title, b.title)
        total += rules.title_weight * similarity
        weight += rules.title_weight
        evidence.append("same title" if similarity == 1.0 else f"similar title ({similarity:.2f})")
    if a.people and b.people:
        shared = len(a.people & b.people)
        total += rules.people_weight * shared / min(len(a.people), len(b.people))
        weight += rules.people_weight
        evidence.append(f"{shared} of {min(len(a.people), len(b.people))} attendees shared")
    if weight == rules.time_weight:
        return None
    score = total / weight
    if score < rules.threshold:
        return None
    return round(score, 3), f"{', '.join(evidence)} on {_where(a, b)}"


def _where(a: _Item, b: _Item) -> str:
    pa, pb = a.placed, b.placed
    if pa.platform != pb.platform:
        return f"{pa.platform} and {pb.platform}"
    if pa.calendar != pb.calendar:
        return f"two {pa.platform} calendars"
    return f"the same {pa.platform} calendar"


def _group(items: Sequence[_Item], pairs: Sequence[tuple[_Item, _Item, DuplicatePair]]) -> list[DuplicateGroup]:
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, _ in pairs:
        ra, rb = root(a.index), root(b.index)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for a, b, _ in pairs:
        for it in (a, b):
            bucket = members.setdefault(root(it.index), [])
            if it.index not in bucket:
                bucket.append(it.index)
    by_root: dict[int, list[DuplicatePair]] = {}
    for a, _, pair in pairs:
        by_root.setdefault(root(a.index), []).append(pair)
    return [
        DuplicateGroup(tuple(items[i].placed for i in sorted(idx)), tuple(by_root[r]))
        for r, idx in sorted(members.items())
    ]


# --------------------------------------------------------------------------------------------
# Conflicts


@dataclass(frozen=True, slots=True)
class Conflict:
    """Two blocking events of one person that overlap during ``[start, end)``."""

    first: PlacedEvent
    second: PlacedEvent
    start: datetime
    end: datetime

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(sorted({self.first.platform, self.second.platform}))

    @property
    def cross_platform(self) -> bool:
        """True when no single platform could have warned about it."""
        return self.first.platform != self.second.platform


def find_conflicts(
    placed: Sequence[PlacedEvent],
    *,
    owner: str | None = None,
    default_tz: tzinfo = UTC,
    duplicates: Iterable[DuplicateGroup] = (),
) -> list[Conflict]:
    """Overlapping blocking events of ``owner`` across all their calendars, by start time.

    Transparent, cancelled and declined events (``effective_busy_type(owner)`` is FREE) and
    zero-length events block nothing and are left out. All-day and floating times are placed in
    ``default_tz`` (the owner's zone). Copies listed in ``duplicates`` are one meeting: they are
    never reported against each other, and a meeting held in several copies conflicts with
    another meeting once, not once per copy.
    """
    return _conflicts(_resolve(placed, owner, default_tz), _group_of(placed, duplicates))


def _group_of(placed: Sequence[PlacedEvent], groups: Iterable[DuplicateGroup]) -> dict[int, int]:
    """Input index -> meeting number, for events that are one of several copies of a meeting: the
    members of a duplicate group, matched by object identity (the very objects
    :func:`find_duplicates` was given, so two equal-looking copies are never confused), joined with
    the events sharing a :attr:`PlacedEvent.identity`."""
    position = {id(p): i for i, p in enumerate(placed)}
    parent: dict[int, int] = {}

    def root(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for group in groups:
        for member in group.members:
            if id(member) not in position:
                raise ValueError(f"duplicate group member {member.describe()} is not among the events analysed")
            join(position[id(group.members[0])], position[id(member)])
    first: dict[str, int] = {}
    for i, p in enumerate(placed):
        if p.identity is not None:
            join(first.setdefault(p.identity, i), i)
    roots = {i: root(i) for i in parent}
    sizes = Counter(roots.values())
    return {i: r for i, r in roots.items() if sizes[r] > 1}


def _conflicts(items: Sequence[_Item], group_of: Mapping[int, int]) -> list[Conflict]:
    blocking = sorted((it for it in items if it.blocking), key=lambda it: (it.start, it.index))
    active: list[tuple[datetime, int, _Item]] = []  # min-heap on end: the events still running
    seen: set[tuple[int, int]] = set()
    out = []
    for it in blocking:
        while active and active[0][0] <= it.start:
            heapq.heappop(active)
        mine = group_of.get(it.index)
        for _, _, other in active:
            theirs = group_of.get(other.index)
            if mine is not None and mine == theirs:
                continue
            if mine is not None or theirs is not None:
                a, b = _meeting(other.index, theirs), _meeting(it.index, mine)
                key = (a, b) if a < b else (b, a)
                if key in seen:
                    continue
                seen.add(key)
            out.append(Conflict(other.placed, it.placed, it.start, min(it.end, other.end)))
        heapq.heappush(active, (it.end, it.index, it))
    return out


def _meeting(index: int, group: int | None) -> int:
    """One number per meeting: the group for copies of a duplicate, else the event itself."""
    return -1 - group if group is not None else index


# --------------------------------------------------------------------------------------------
# Both at once


@dataclass(frozen=True, slots=True)
class Analysis:
    conflicts: list[Conflict]
    duplicates: list[DuplicateGroup]


def analyse(
    placed: Sequence[PlacedEvent],
    *,
    owner: str | None = None,
    default_tz: tzinfo = UTC,
    rules: FuzzyRules = FuzzyRules(),
) -> Analysis:
    """Duplicates first, then conflicts between distinct meetings only: the same meeting copied
    into two calendars is reported once, as a duplicate, and never as a conflict with itself."""
    items = _resolve(placed, owner, default_tz)
    groups = _duplicates(items, rules)
    return Analysis(_conflicts(items, _group_of(placed, groups)), groups)


# --------------------------------------------------------------------------------------------
# Resolution proposals


@dataclass(frozen=True, slots=True)
class Decision:
    copy: PlacedEvent
    remove: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """What to do with each copy of one duplicated meeting. ``decisions`` follow the group's order."""

    group: DuplicateGroup
    keep: PlacedEvent
    decisions: tuple[Decision, ...]

    @property
    def removals(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.remove)


def propose_resolution(group: DuplicateGroup, *, home_platforms: Mapping[str, str] | None = None) -> Resolution:
    """Propose which copies of a duplicate group to remove, each with its reason.

    Never proposed for removal:

    - the organizer's copy: the one on the organizer's home platform (``home_platforms`` maps
      email -> platform), or, when no copy is there, in a calendar the organizer owns, since that
      is the copy replies and updates flow through (a copy the organizer made by hand in another
      of their calendars, beside the one on their home platform, is not it);
    - a copy carrying calmesh's marker (:data:`~calmesh.model.MARKER_PROPERTY`): a sync mirror,
      owned by its sync group, or an invitation copy booking wrote; removing it here would be
      undone or propagated.

    Of the rest, the copy kept is one calmesh did not make, then the one with the most attendees,
    then the highest SEQUENCE, then the latest LAST-MODIFIED; the others are proposed for removal.
    """
    homes = {normalize_email(k): v for k, v in (home_platforms or {}).items()}
    organizer = next((m.event.organizer.email for m in group.members if m.event.organizer), None)

    at_home = organizer is not None and any(homes.get(organizer) == m.platform for m in group.members)

    def protected(copy: PlacedEvent) -> str | None:
        if organizer is None:
            return None
        if copy.owner == organizer and (not at_home or homes.get(organizer) == copy.platform):
            return f"organizer's copy ({organizer} owns this calendar)"
        if homes.get(organizer) == copy.platform:
            return f"organizer's copy (on {organizer}'s home platform {copy.platform})"
        return None

    def rank(copy: PlacedEvent) -> tuple[bool, bool, int, int, datetime]:
        # a copy calmesh made never outranks a copy it did not: kept, the copy would leave its
        # original (most often the very item it mirrors) to be removed, and sync would then
        # delete the copy after it
        e = copy.event
        modified = as_utc(e.last_modified) if e.last_modified else datetime.min.replace(tzinfo=UTC)
        return (protected(copy) is not None, MARKER_PROPERTY not in e.extra, len(e.attendees), e.sequence, modified)

    keep = max(group.members, key=rank)
    decisions = []
    for copy in group.members:
        guard = protected(copy)
        if copy is keep:
            decisions.append(Decision(copy, False, guard or _why_best(copy, group.members)))
        elif guard:
            decisions.append(Decision(copy, False, guard + ": never removed"))
        elif MARKER_PROPERTY in copy.event.extra:
            decisions.append(Decision(copy, False, "calmesh's copy (sync or booking): managed by calmesh"))
        else:
            decisions.append(Decision(copy, True, f"duplicate of {keep.describe()}: {_compare(copy, keep)}"))
    return Resolution(group, keep, tuple(decisions))


def _why_best(copy: PlacedEvent, members: Sequence[PlacedEvent]) -> str:
    e = copy.event
    others = [m.event for m in members if m is not copy]
    if all(len(e.attendees) > len(o.attendees) for o in others):
        return f"most attendees ({len(e.attendees)})"
    if all(e.sequence > o.sequence for o in others):
        return f"most recent revision (SEQUENCE {e.sequence})"
    return "best copy (ties broken by last modification, then input order)"


def _compare(copy: PlacedEvent, keep: PlacedEvent) -> str:
    a, b = copy.event, keep.event
    if len(a.attendees) != len(b.attendees):
        return f"{len(a.attendees)} attendees against {len(b.attendees)}"
    if a.sequence != b.sequence:
        return f"SEQUENCE {a.sequence} against {b.sequence}"
    return "no better than the copy kept"
