"""Benchmark: conflict and duplicate detection (calmesh.core.overlaps), pure computation.

Generates ~100,000 realistic events for ~500 people across three platforms (Exchange, Zoho,
in-house), with ~2% of meetings copied onto a second platform (same UID, Exchange-wrapped UID, or
a re-typed invitation that only fuzzy matching catches), then times, per person:

- conflict detection (sweep line) and duplicate detection (UID keys + near-time fuzzy scan);
- the same work done the naive way (every pair compared) on a subset, to show the ratio, and
  checks that both ways find the same pairs.

Run: ``.venv/bin/python bench/overlaps.py`` (``--quick`` for a smaller run, ``--seed N``).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from calmesh.core.overlaps import (
    PlacedEvent,
    analyse,
    find_conflicts,
    find_duplicates,
)
from calmesh.model import Attendee, Event, EventStatus, PartStat

PLATFORMS = ("exchange", "zoho", "inhouse")
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo")
TITLES = ("Weekly sync", "1:1", "Budget review", "Réunion d'équipe", "Customer call", "Design review",
          "Sprint planning", "Hiring panel", "Lunch", "Project kickoff", "Retro", "Board prep")


def _exchange_uid(inner: str) -> str:
    """An Outlook GlobalObjectId (hex) wrapping a third-party UID, as EWS reports it."""
    data = b"vCal-Uid\x01\x00\x00\x00" + inner.encode() + b"\x00"
    header = bytes.fromhex("040000008200E00074C5B7101A82E008") + bytes(20) + len(data).to_bytes(4, "little")
    return (header + data).hex().upper()


def generate(people: int, per_person: int, dup_rate: float, seed: int) -> dict[str, list[PlacedEvent]]:
    """Events per person: working-day meetings in the person's zone, some tentative, declined,
    transparent or cancelled, some all-day; ``dup_rate`` of them copied onto another platform."""
    rng = random.Random(seed)
    emails = [f"user{i}@example.org" for i in range(people)]
    home = {e: PLATFORMS[i % 3] for i, e in enumerate(emails)}
    zone = {e: ZoneInfo(ZONES[i % 3]) for i, e in enumerate(emails)}
    first_day = date(2026, 9, 7)
    days = [first_day + timedelta(days=d) for d in range(per_person // 3) if (first_day + timedelta(days=d)).weekday() < 5]
    out: dict[str, list[PlacedEvent]] = {}
    for email in emails:
        tz, mine = zone[email], []
        while len(mine) < per_person:
            day = rng.choice(days)
            platform = home[email] if rng.random() < 0.7 else rng.choice(PLATFORMS)
            calendar = f"{platform}:{email}/calendar"
            if rng.random() < 0.02:
                event = Event(uid=str(uuid.UUID(int=rng.getrandbits(128))), start=day, end=day + timedelta(days=1),
                              summary="Offsite", transparent=rng.random() < 0.5)
            else:
                start = datetime.combine(day, clock(rng.randrange(8, 18), rng.choice((0, 30))), tzinfo=tz)
                others = rng.sample(emails, rng.randrange(0, 6))
                organizer = rng.choice([email, *others])
                partstat = rng.choices(list(PartStat), weights=(5, 80, 5, 8, 2))[0]
                event = Event(
                    uid=str(uuid.UUID(int=rng.getrandbits(128))), start=start,
                    end=start + timedelta(minutes=rng.choice((30, 30, 60, 60, 90))),
                    summary=rng.choice(TITLES), organizer=Attendee(organizer),
                    attendees=[Attendee(email, partstat=partstat)] + [Attendee(o, partstat=PartStat.ACCEPTED) for o in others],
                    status=EventStatus.CANCELLED if rng.random() < 0.02 else EventStatus.CONFIRMED,
                    transparent=rng.random() < 0.03, sequence=rng.randrange(0, 3))
            mine.append(PlacedEvent(event, platform, calendar, ref=f"item-{len(mine)}", owner=email))
            if rng.random() < dup_rate:
                mine.append(_copy(rng, mine[-1], email))
        out[email] = mine[:per_person]
    return out


def _copy(rng: random.Random, original: PlacedEvent, email: str) -> PlacedEvent:
    """The same meeting on another platform, the way it really arrives there."""
    platform = rng.choice([p for p in PLATFORMS if p != original.platform])
    e = original.event
    how = rng.random()
    if how < 0.4:
        copy = e.with_changes(attendees=list(e.attendees))
    elif how < 0.7:
        copy = e.with_changes(uid=_exchange_uid(e.uid))
    else:  # re-sent by hand: new UID, prefixed title, one attendee fewer
        copy = e.with_changes(uid=str(uuid.UUID(int=rng.getrandbits(128))), summary=f"TR: {e.summary}",
                              attendees=e.attendees[:-1] if len(e.attendees) > 2 else list(e.attendees))
    return PlacedEvent(copy, platform, f"{platform}:{email}/calendar", ref="copy", owner=email)


# ---- the naive ways, for comparison ------------------------------------------------------------

def naive_conflicts(placed: Sequence[PlacedEvent], owner: str | None) -> set[tuple[int, int]]:
    """Every pair compared: what one writes without thinking of a sweep line."""
    spans = []
    for p in placed:
        s, e = p.event.span_utc(UTC)
        blocking = e > s and p.event.effective_busy_type(owner).value > 0
        spans.append((s, e, blocking))
    out = set()
    for i in range(len(spans)):
        si, ei, bi = spans[i]
        if not bi:
            continue
        for j in range(i + 1, len(spans)):
            sj, ej, bj = spans[j]
            if bj and si < ej and sj < ei:
                out.add((i, j))
    return out


def naive_duplicates(placed: Sequence[PlacedEvent], tolerance: timedelta = timedelta(minutes=5)) -> set[tuple[int, int]]:
    """Every pair compared; a pair close in time is scored by the real matcher."""
    spans = [p.event.span_utc(UTC) for p in placed]
    out = set()
    for i in range(len(placed)):
        for j in range(i + 1, len(placed)):
            close = abs(spans[i][0] - spans[j][0]) <= tolerance and abs(spans[i][1] - spans[j][1]) <= tolerance
            if close and find_duplicates([placed[i], placed[j]]):
                out.add((i, j))
    return out


def _pairs(placed: Sequence[PlacedEvent], found: Sequence[tuple[PlacedEvent, PlacedEvent]]) -> set[tuple[int, int]]:
    index = {id(p): i for i, p in enumerate(placed)}
    return {tuple(sorted((index[id(a)], index[id(b)]))) for a, b in found}  # type: ignore[misc]


def _components(pairs: set[tuple[int, int]]) -> set[frozenset[int]]:
    """Groups joined transitively: the fast way reports a group's pairs as a star, the naive
    way every pair, so groups are what both must agree on."""
    groups: dict[int, set[int]] = {}
    for a, b in pairs:
        merged = groups.get(a, {a}) | groups.get(b, {b})
        for member in merged:
            groups[member] = merged
    return {frozenset(g) for g in groups.values()}


def _timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events, 1,000-event naive subset")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    people, per_person, subset = (100, 100, 1000) if args.quick else (500, 200, 5000)

    t_gen, data = _timed(lambda: generate(people, per_person, 0.02, args.seed))
    assert isinstance(data, dict)
    total = sum(len(v) for v in data.values())
    print(f"generated {total:,} events for {people} people on {len(PLATFORMS)} platforms in {t_gen:.2f} s")
    # The generated data is long-lived input, not the algorithm's garbage: keep the cyclic GC from
    # rescanning it on every collection so the timings measure the analysis itself.
    gc.collect()
    gc.freeze()

    print(f"each person's calendars analysed on their own ({total:,} events in all):")
    t_conf, conflicts = _timed(lambda: [find_conflicts(v, owner=k) for k, v in data.items()])
    t_dup, groups = _timed(lambda: [find_duplicates(v) for v in data.values()])
    t_both, _ = _timed(lambda: [analyse(v, owner=k) for k, v in data.items()])
    n_conf = sum(len(c) for c in conflicts)  # type: ignore[union-attr]
    n_dup = sum(len(g) for g in groups)  # type: ignore[union-attr]
    print(f"conflicts:  {n_conf:>8,} pairs        in {t_conf * 1000:8.1f} ms")
    print(f"duplicates: {n_dup:>8,} groups       in {t_dup * 1000:8.1f} ms")
    planted = sum(1 for v in data.values() for p in v if p.ref == "copy" and p.event.status is not EventStatus.CANCELLED)
    caught = sum(1 for gs in groups for g in gs for m in g.members if m.ref == "copy")  # type: ignore[union-attr]
    print(f"            {caught:,} of {planted:,} planted live cross-platform copies caught")
    print(f"analyse (both, duplicates kept out of conflicts)  in {t_both * 1000:8.1f} ms")

    # A pool of `subset` events analysed as one calendar set, both ways.
    pool: list[PlacedEvent] = []
    for events in data.values():
        pool.extend(events)
        if len(pool) >= subset:
            break
    pool = pool[:subset]
    t_sweep, fast = _timed(lambda: find_conflicts(pool))
    t_naive, slow = _timed(lambda: naive_conflicts(pool, None))
    same = _pairs(pool, [(c.first, c.second) for c in fast]) == slow  # type: ignore[union-attr]
    print(f"\nconflicts on {len(pool):,} events: sweep {t_sweep * 1000:.1f} ms, naive O(n²) {t_naive * 1000:.1f} ms"
          f" -> {t_naive / t_sweep:.0f}x faster; same pairs: {same}")
    t_fast, fast_dups = _timed(lambda: find_duplicates(pool))
    t_slow, slow_dups = _timed(lambda: naive_duplicates(pool))
    fast_groups = _components(_pairs(pool, [(p.first, p.second) for g in fast_dups for p in g.pairs]))  # type: ignore[union-attr]
    same_groups = fast_groups == _components(slow_dups)  # type: ignore[arg-type]
    print(f"duplicates on {len(pool):,} events: near-time scan {t_fast * 1000:.1f} ms, naive O(n²) {t_slow * 1000:.1f} ms"
          f" -> {t_slow / t_fast:.0f}x faster; same groups: {same_groups}")
    if not same or not same_groups:
        raise SystemExit("the fast and naive ways disagree")


if __name__ == "__main__":
    main()
