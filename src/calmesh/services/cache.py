"""A short-lived cache of per-person free/busy answers, with explicit freshness.

Why: Outlook's Scheduling Assistant, a CalDAV client and a web page all ask for the same people
over the same week within seconds of each other, and each miss is a fan-out to every platform.
A few seconds of staleness is what calendar clients already live with; the doors say how old an
answer is (``Age`` / ``X-Calmesh-Fetched-At``) so nobody mistakes it for live data.

Keys carry everything that changes the answer: the person, the window, whether working hours were
applied and whether the asker may see details. Two askers with different privacy grants therefore
never share an entry. Answers with errors are not kept: a platform that recovers is asked again on
the next request instead of being reported missing for a whole TTL.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from calmesh.model import PersonFreeBusy, Window


@dataclass(frozen=True, slots=True)
class CacheKey:
    email: str
    window: Window
    working_hours: bool
    details: bool


@dataclass(frozen=True, slots=True)
class Cached:
    answer: PersonFreeBusy
    fetched_at: datetime
    """Wall-clock time the platforms were asked (UTC)."""
    stored: float
    """Monotonic time of the same moment, for expiry."""
    hit: bool


@dataclass(slots=True)
class _Flight:
    """A fetch in progress that other callers wait for."""

    done: threading.Event = field(default_factory=threading.Event)
    entry: Cached | None = None


class FreeBusyCache:
    """Thread-safe TTL + LRU cache; ``ttl <= 0`` disables it (every lookup is a miss)."""

    def __init__(self, ttl: float, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._wall = wall
        self._entries: OrderedDict[CacheKey, Cached] = OrderedDict()
        self._inflight: dict[CacheKey, _Flight] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def age(self, entry: Cached) -> float:
        return max(0.0, self._clock() - entry.stored)

    def remaining(self, entry: Cached) -> float:
        """Seconds this entry stays fresh (0 for an answer that was not cached)."""
        if self.ttl <= 0 or entry.answer.errors:
            return 0.0
        return max(0.0, self.ttl - self.age(entry))

    def get_many(self, keys: Sequence[CacheKey],
                 fetch: Callable[[list[str]], list[PersonFreeBusy]]) -> list[Cached]:
        """Entries for ``keys`` in order; the misses are fetched together with one ``fetch(emails)``
        call (one fan-out), which must answer in the order asked. A key another caller is already
        fetching is waited for rather than fetched twice, so a burst of identical cold requests
        (a team opening the same meeting) costs the platforms one query."""
        now = self._clock()
        found: dict[CacheKey, Cached] = {}
        mine: list[CacheKey] = []
        waiting: list[tuple[CacheKey, _Flight]] = []
        with self._lock:
            for key in dict.fromkeys(keys):
                entry = self._entries.get(key)
                if entry is not None and now - entry.stored < self.ttl:
                    self._entries.move_to_end(key)
                    found[key] = Cached(entry.answer, entry.fetched_at, entry.stored, True)
                    continue
                if entry is not None:
                    del self._entries[key]
                flight = self._inflight.get(key)
                if flight is None:
                    self._inflight[key] = _Flight()
                    mine.append(key)
                else:
                    waiting.append((key, flight))
        if mine:
            found.update(self._fetch(mine, fetch))
        for key, flight in waiting:
            flight.done.wait()
            if flight.entry is None:  # the other caller's fetch failed: try ourselves
                found.update(self._fetch([key], fetch))
            else:
                entry = flight.entry
                found[key] = Cached(entry.answer, entry.fetched_at, entry.stored, True)
        return [found[k] for k in keys]

    def _fetch(self, keys: list[CacheKey],
               fetch: Callable[[list[str]], list[PersonFreeBusy]]) -> dict[CacheKey, Cached]:
        with self._lock:
            for key in keys:
                self._inflight.setdefault(key, _Flight())
        fetched_at, stored = self._wall(), self._clock()
        out: dict[CacheKey, Cached] = {}
        try:
            answers = fetch([k.email for k in keys])
            for key, answer in zip(keys, answers, strict=True):
                out[key] = Cached(answer, fetched_at, stored, False)
        finally:
            with self._lock:
                for key in keys:
                    entry = out.get(key)
                    if entry is not None and self.ttl > 0 and not entry.answer.errors:
                        self._entries[key] = entry
                        self._entries.move_to_end(key)
                    flight = self._inflight.pop(key, None)
                    if flight is not None:
                        flight.entry = entry
                        flight.done.set()
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return out

    def forget(self, emails: Sequence[str]) -> None:
        """Drop every cached answer about these people (after calmesh itself changed their
        calendars, e.g. a booking: their next query must not show the slot free)."""
        wanted = {e.lower() for e in emails}
        with self._lock:
            for key in [k for k in self._entries if k.email in wanted]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
