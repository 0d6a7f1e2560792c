"""The free/busy cache: TTL with an injected clock, one fan-out for all misses, privacy-keyed
entries, and failed answers never kept."""

from __future__ import annotations

from datetime import UTC, datetime

from calmesh.model import PersonFreeBusy, Problem, Window
from calmesh.services.cache import CacheKey, FreeBusyCache

WINDOW = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_single_fanout_and_privacy_keys() -> None:
    clock = Clock()
    cache = FreeBusyCache(60, clock=clock)
    calls: list[list[str]] = []

    def fetch(emails: list[str]) -> list[PersonFreeBusy]:
        calls.append(emails)
        return [PersonFreeBusy(e, WINDOW) for e in emails]

    plain = [CacheKey("a@x", WINDOW, False, False), CacheKey("b@x", WINDOW, False, False)]
    first = cache.get_many(plain, fetch)
    assert calls == [["a@x", "b@x"]] and not any(e.hit for e in first)
    clock.now += 30
    again = cache.get_many(plain, fetch)
    assert len(calls) == 1 and all(e.hit for e in again)
    assert cache.age(again[0]) == 30 and cache.remaining(again[0]) == 30
    detailed = CacheKey("a@x", WINDOW, False, True)
    cache.get_many([detailed], fetch)
    assert calls[-1] == ["a@x"]  # a different privacy view is a different entry
    clock.now += 31
    cache.get_many(plain[:1], fetch)
    assert calls[-1] == ["a@x"]  # expired


def test_answers_with_errors_are_not_kept() -> None:
    cache = FreeBusyCache(60, clock=Clock())
    calls = 0

    def fetch(emails: list[str]) -> list[PersonFreeBusy]:
        nonlocal calls
        calls += 1
        return [PersonFreeBusy(e, WINDOW, errors=[Problem("slow", "timeout")]) for e in emails]

    key = [CacheKey("a@x", WINDOW, False, False)]
    (entry,) = cache.get_many(key, fetch)
    cache.get_many(key, fetch)
    assert calls == 2 and cache.remaining(entry) == 0 and len(cache) == 0


def test_disabled_and_bounded() -> None:
    off = FreeBusyCache(0, clock=Clock())
    off.get_many([CacheKey("a@x", WINDOW, False, False)], lambda es: [PersonFreeBusy(e, WINDOW) for e in es])
    assert len(off) == 0
    small = FreeBusyCache(60, clock=Clock(), max_entries=2)
    small.get_many([CacheKey(f"{n}@x", WINDOW, False, False) for n in range(5)],
                   lambda es: [PersonFreeBusy(e, WINDOW) for e in es])
    assert len(small) == 2


def test_concurrent_misses_share_one_fetch() -> None:
    import threading
    import time

    cache = FreeBusyCache(60)
    calls = 0

    def fetch(emails: list[str]) -> list[PersonFreeBusy]:
        nonlocal calls
        calls += 1
        time.sleep(0.3)
        return [PersonFreeBusy(e, WINDOW) for e in emails]

    key = [CacheKey("a@x", WINDOW, False, False)]
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_many(key, fetch)[0].hit)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == 1 and sorted(results) == [False, True, True, True, True]
