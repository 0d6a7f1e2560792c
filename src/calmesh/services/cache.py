"""A short-lived cache of per-person free/busy answers, with explicit freshness.

Why: Outlook's Scheduling Assistant, a CalDAV client and a web page all ask for the same people
over the same week within seconds of each other, and each miss is a fan-out to every platform.
A few seconds of staleness is what calendar clients already live with; the doors say how old an
answer is (``Age`` / ``X-Calmesh-Fetched-At``) so nobody mistakes it for live data.

Keys carry everything that changes the answer: the person, the window, whether working hours were
applied and whether the asker may see details. Two askers with different privacy grants therefore
never share an entry. Answers with errors are not kept: a platform that recovers is asked again on
the next request instead of being reported missing for a whole TTL.

Several ``calmesh serve`` processes (or hosts) share answers through Redis when ``[hub] cache``
names one (:class:`SharedStore`); without it each process keeps its own. A change calmesh sees
(a booking, a sync run or change feed that read or wrote a calendar) drops the entries of the
people holding that calendar at once, in every process sharing the store: each person has a
generation number in Redis that is part of their entries' keys, and seeing a change bumps it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from calmesh.core.freebusy import clip
from calmesh.model import (
    BusyPeriod,
    BusyType,
    PersonFreeBusy,
    Problem,
    Window,
    WorkingHours,
    WorkingPeriod,
)

if TYPE_CHECKING:
    from calmesh.config import Config

log = logging.getLogger(__name__)


BLOCK = timedelta(days=1)
"""Windows are fetched and cached as whole UTC days (:func:`block_cover`)."""


def block_cover(window: Window) -> Window:
    """The whole UTC days around ``window``: what is fetched and cached for it.

    Why: askers rarely ask the same window twice to the minute (a page opened at 10:07, a client
    asking "from now", an Outlook grid starting at local midnight); rounded out to days, their
    requests share one fetch (single flight) and one cache entry, and each answer is narrowed to
    the window asked (:func:`narrowed`). A day more on each side costs a platform next to nothing.
    """
    midnight = datetime(window.start.year, window.start.month, window.start.day, tzinfo=UTC)
    days = -((midnight - window.end) // BLOCK)  # ceiling division: whole days up to the end
    return Window(midnight, midnight + days * BLOCK)


def narrowed(answer: PersonFreeBusy, window: Window) -> PersonFreeBusy:
    """``answer`` (fetched for a cover of ``window``) as if ``window`` had been asked."""
    if answer.window == window:
        return answer
    return replace(answer, window=window, busy=clip(answer.busy, window))


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


# ------------------------------------------------------------------------------- the shared store
def _encode(answer: PersonFreeBusy, fetched_at: datetime) -> bytes:
    """JSON, not pickle: whoever can write to a shared Redis must not run code in calmesh."""
    def when(value: datetime) -> str:
        return value.isoformat()

    hours = answer.working_hours
    return json.dumps({
        "fetched_at": when(fetched_at), "email": answer.email, "name": answer.name, "platform": answer.platform,
        "window": [when(answer.window.start), when(answer.window.end)],
        "busy": [[when(p.start), when(p.end), int(p.type), p.source, p.summary, p.location] for p in answer.busy],
        "warnings": [[w.platform, w.message, w.item] for w in answer.warnings],
        "working_hours": None if hours is None else {
            "timezone": hours.timezone,
            "periods": [[sorted(p.days), p.start.isoformat(), p.end.isoformat()] for p in hours.periods]},
    }, separators=(",", ":")).encode()


def _decode(data: bytes) -> tuple[PersonFreeBusy, datetime]:
    raw: dict[str, Any] = json.loads(data)
    at = datetime.fromisoformat
    hours = raw["working_hours"]
    answer = PersonFreeBusy(
        raw["email"], Window(at(raw["window"][0]), at(raw["window"][1])),
        busy=[BusyPeriod(at(s), at(e), BusyType(t), src, summary, loc) for s, e, t, src, summary, loc in raw["busy"]],
        working_hours=None if hours is None else WorkingHours(hours["timezone"], tuple(
            WorkingPeriod(frozenset(days), clock_time.fromisoformat(s), clock_time.fromisoformat(e))
            for days, s, e in hours["periods"])),
        warnings=[Problem(platform, message, item) for platform, message, item in raw["warnings"]],
        name=raw["name"], platform=raw["platform"])
    return answer, at(raw["fetched_at"])


class SharedStore:
    """Cached answers in Redis (``[hub] cache = "redis://..."``), shared by every process using
    the same URL. Keys: ``calmesh:fb:<email>:<generation>:<window and flags>``, expiring with the
    TTL; ``calmesh:fb-gen:<email>`` is the person's generation, bumped when their calendar changes
    so that their older entries are never read again (they expire on their own)."""

    PREFIX = "calmesh:fb"

    def __init__(self, url: str, *, client: Any = None) -> None:
        if client is None:
            try:
                import redis
            except ImportError as exc:
                raise RuntimeError("[hub] cache names Redis: install calmesh with the 'queue' extra "
                                   "(pip install 'calmesh[queue]')") from exc
            client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._redis = client

    def _generation_keys(self, emails: Sequence[str]) -> list[str]:
        return [f"{self.PREFIX}-gen:{email}" for email in emails]

    def names(self, keys: Sequence[CacheKey]) -> list[str]:
        """The Redis keys of ``keys`` at their people's current generations. A fetch takes them
        *before* asking the platforms: a change seen while it runs bumps the generation, and the
        answer, possibly from before the change, lands under a key nobody reads any more."""
        emails = list(dict.fromkeys(k.email for k in keys))
        generations = dict(zip(emails, self._redis.mget(self._generation_keys(emails)), strict=True))
        return [f"{self.PREFIX}:{k.email}:{(generations[k.email] or b'0').decode()}:"
                f"{k.window.start.isoformat()}/{k.window.end.isoformat()}:{int(k.working_hours)}{int(k.details)}"
                for k in keys]

    def get_many(self, keys: Sequence[CacheKey]) -> dict[CacheKey, tuple[PersonFreeBusy, datetime]]:
        if not keys:
            return {}
        found = self._redis.mget(self.names(keys))
        return {key: _decode(data) for key, data in zip(keys, found, strict=True) if data is not None}

    def put_many(self, entries: Sequence[tuple[str, PersonFreeBusy, datetime]], ttl: float) -> None:
        """Store answers under the names :meth:`names` gave before they were fetched."""
        if not entries:
            return
        pipe = self._redis.pipeline(transaction=False)
        for name, answer, fetched_at in entries:
            pipe.set(name, _encode(answer, fetched_at), px=max(1, int(ttl * 1000)))
        pipe.execute()

    def forget(self, emails: Iterable[str]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for name in self._generation_keys(sorted({e.lower() for e in emails})):
            pipe.incr(name)
        pipe.execute()


def people_holding(config: Config, members: Iterable[str]) -> list[str]:
    """The directory emails whose time lives in any of ``members`` (sync member keys,
    ``platform/calendar``): named among a person's calendars, or the person's own mailbox, or,
    for a person whose calendars are discovered, a calendar whose id names their address."""
    wanted: dict[str, set[str]] = {}
    for member in members:
        platform, _, calendar = member.partition("/")
        wanted.setdefault(platform, set()).add(calendar)
    out: list[str] = []
    for person in config.people:
        for source in person.sources:
            calendars = wanted.get(source.platform)
            if not calendars:
                continue
            owner = (source.mailbox or person.email).lower()
            if (set(source.calendars) & calendars or owner in {c.lower() for c in calendars}
                    or (not source.calendars and any(owner in unquote(c).lower() for c in calendars))):
                out.append(person.email)
                break
    return out


class FreeBusyCache:
    """Thread-safe TTL + LRU cache; ``ttl <= 0`` disables it (every lookup is a miss).

    With a ``shared`` store the entries live there only (another process may invalidate them at
    any time, so no copy is kept here); the single flight of concurrent identical fetches stays
    per process. A store that fails is logged and treated as a miss: the platforms still answer."""

    def __init__(self, ttl: float, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 shared: SharedStore | None = None) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.shared = shared
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
        if mine and self.shared is not None and self.ttl > 0:
            for key, entry in self._shared_hits(mine).items():
                found[key] = entry
                mine.remove(key)
                with self._lock:
                    flight = self._inflight.pop(key, None)
                if flight is not None:
                    flight.entry = entry
                    flight.done.set()
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

    def peek(self, keys: Sequence[CacheKey]) -> list[Cached] | None:
        """The entries for ``keys`` if every one is fresh here, else None; never blocks on a fetch
        or the network, so a door can answer a warm request without leaving its event loop."""
        if self.shared is not None or self.ttl <= 0:
            return None
        now = self._clock()
        out: list[Cached] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None or now - entry.stored >= self.ttl:
                    return None
                out.append(Cached(entry.answer, entry.fetched_at, entry.stored, True))
            for key in keys:
                self._entries.move_to_end(key)
        return out

    def _shared_hits(self, keys: list[CacheKey]) -> dict[CacheKey, Cached]:
        assert self.shared is not None
        try:
            hits = self.shared.get_many(keys)
        except Exception as exc:  # noqa: BLE001 - an unreachable cache must not fail an answer
            log.warning("shared free/busy cache unreadable, asking the platforms: %s", exc)
            return {}
        now, wall = self._clock(), self._wall()
        # the monotonic moment of another process's fetch, from its wall-clock time
        return {key: Cached(answer, fetched_at, now - max(0.0, (wall - fetched_at).total_seconds()), True)
                for key, (answer, fetched_at) in hits.items()}

    def _fetch(self, keys: list[CacheKey],
               fetch: Callable[[list[str]], list[PersonFreeBusy]]) -> dict[CacheKey, Cached]:
        with self._lock:
            for key in keys:
                self._inflight.setdefault(key, _Flight())
        names: dict[CacheKey, str] = {}
        if self.shared is not None and self.ttl > 0:
            try:
                names = dict(zip(keys, self.shared.names(keys), strict=True))
            except Exception as exc:  # noqa: BLE001 - an unreachable cache must not fail an answer
                log.warning("shared free/busy cache unreachable: %s", exc)
        fetched_at, stored = self._wall(), self._clock()
        out: dict[CacheKey, Cached] = {}
        try:
            answers = fetch([k.email for k in keys])
            for key, answer in zip(keys, answers, strict=True):
                out[key] = Cached(answer, fetched_at, stored, False)
        finally:
            keep = [(k, e) for k, e in out.items() if self.ttl > 0 and not e.answer.errors]
            if self.shared is not None and names and keep:
                try:
                    self.shared.put_many([(names[k], e.answer, e.fetched_at) for k, e in keep], self.ttl)
                except Exception as exc:  # noqa: BLE001 - the answer stands without its copy there
                    log.warning("shared free/busy cache not writable: %s", exc)
            with self._lock:
                for key, kept in keep if self.shared is None else ():
                    self._entries[key] = kept
                    self._entries.move_to_end(key)
                for key in keys:
                    entry = out.get(key)
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
        if self.shared is not None and wanted:
            try:
                self.shared.forget(wanted)
            except Exception:  # the change itself stands; say loudly that answers may be stale
                log.exception("shared free/busy cache: could not drop the entries of %s (stale for up to "
                              "%gs)", sorted(wanted), self.ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
