"""The free/busy cache shared through the real Redis at 127.0.0.1:6379 (skipped when absent):
two caches stand for two ``calmesh serve`` processes; a change one of them (or a worker) sees
drops the person's answers in both at once. Each test uses addresses of its own, so parallel
runs and other users of the Redis never meet its keys."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
import redis

from calmesh.config import ConfigError, parse_config
from calmesh.model import BusyPeriod, BusyType, PersonFreeBusy, Problem, Window, WorkingHours
from calmesh.services.cache import CacheKey, FreeBusyCache, SharedStore, people_holding
from calmesh.services.hub import Hub
from calmesh.services.sync import SyncReport

REDIS_URL = "redis://127.0.0.1:6379/0"
WEEK = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")


class Platforms:
    """Stands for the fan-out: answers and counts who was asked."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.during: list[object] = []
        """Callbacks run while a fetch is in flight (a change seen meanwhile)."""

    def __call__(self, emails: list[str]) -> list[PersonFreeBusy]:
        self.asked.append(list(emails))
        for callback in self.during:
            callback()  # type: ignore[operator]
        return [PersonFreeBusy(
            e, WEEK, busy=[BusyPeriod(WEEK.start + timedelta(hours=9), WEEK.start + timedelta(hours=10),
                                      BusyType.BUSY_TENTATIVE, "exchange", "Budget", "Room 1")],
            working_hours=WorkingHours.simple("Europe/Paris", time(9), time(17, 30)),
            warnings=[Problem("exchange", "one item unreadable", "item-7")], name="Ann", platform="exchange")
            for e in emails]


def address() -> str:
    return f"ann-{uuid.uuid4().hex[:12]}@example.test"


@needs_redis
def test_a_second_process_reads_the_first_ones_answer_exactly() -> None:
    platforms = Platforms()
    one = FreeBusyCache(600, shared=SharedStore(REDIS_URL))
    two = FreeBusyCache(600, shared=SharedStore(REDIS_URL))
    key = CacheKey(address(), WEEK, False, True)
    (first,) = one.get_many([key], platforms)
    (second,) = two.get_many([key], platforms)
    assert platforms.asked == [[key.email]]
    assert not first.hit and second.hit
    assert second.answer == first.answer  # busy type, details, working hours and warnings survive
    assert second.fetched_at == first.fetched_at and two.remaining(second) > 590


@needs_redis
def test_a_change_seen_anywhere_drops_the_persons_answers_everywhere() -> None:
    """Process one sees a change (a booking, its watch loop); a worker sees another through the
    store alone: process two asks the platforms again each time. Other people keep theirs."""
    platforms = Platforms()
    one = FreeBusyCache(600, shared=SharedStore(REDIS_URL))
    two = FreeBusyCache(600, shared=SharedStore(REDIS_URL))
    ann, bob = CacheKey(address(), WEEK, False, False), CacheKey(address(), WEEK, False, False)
    one.get_many([ann, bob], platforms)
    one.forget([ann.email.upper()])
    assert [e.hit for e in two.get_many([ann, bob], platforms)] == [False, True]
    SharedStore(REDIS_URL).forget([ann.email])
    assert [e.hit for e in one.get_many([ann, bob], platforms)] == [False, True]
    assert platforms.asked == [[ann.email, bob.email], [ann.email], [ann.email]]


@needs_redis
def test_an_answer_fetched_across_a_change_is_not_served_after_it() -> None:
    """The change lands while the platforms are being asked: that answer may predate it, so the
    next request asks again instead of reading it."""
    platforms = Platforms()
    cache = FreeBusyCache(600, shared=SharedStore(REDIS_URL))
    key = CacheKey(address(), WEEK, True, False)
    platforms.during.append(lambda: SharedStore(REDIS_URL).forget([key.email]))
    cache.get_many([key], platforms)
    platforms.during.clear()
    assert [e.hit for e in cache.get_many([key], platforms)] == [False]
    assert [e.hit for e in cache.get_many([key], platforms)] == [True]


@needs_redis
def test_identical_concurrent_misses_ask_the_platforms_once() -> None:
    """Single flight stays per process with the shared store: eight threads, one fetch."""
    release = threading.Event()
    platforms = Platforms()
    platforms.during.append(lambda: release.wait(30))
    cache = FreeBusyCache(600, shared=SharedStore(REDIS_URL))
    key = CacheKey(address(), WEEK, False, False)
    threads = [threading.Thread(target=cache.get_many, args=([key], platforms)) for _ in range(8)]
    for thread in threads:
        thread.start()
    while len(platforms.asked) < 1:
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(30)
    assert platforms.asked == [[key.email]]


def test_an_unreachable_store_costs_caching_not_answers() -> None:
    """Nothing listens on the port: every request is answered from the platforms."""
    platforms = Platforms()
    cache = FreeBusyCache(600, shared=SharedStore("redis://127.0.0.1:1/0"))
    key = CacheKey(address(), WEEK, False, False)
    for _ in range(2):
        (entry,) = cache.get_many([key], platforms)
        assert entry.answer.email == key.email and not entry.hit
    cache.forget([key.email])  # logged, not raised: the change itself already happened
    assert len(platforms.asked) == 2


CONFIG = """
[hub]
timezone = "UTC"
{cache}
[platforms.files]
kind = "ics"
path = "cal"
[platforms.zoho]
kind = "caldav"
url = "https://calendar.example.test/caldav/"
[[people]]
email = "ann@example.test"
platform = "files"
calendars = ["ann.ics"]
[[people]]
email = "bob@example.test"
platform = "zoho"
[[people]]
email = "cat@example.test"
platform = "zoho"
mailbox = "cat.b@example.test"
also = [{{ platform = "files", calendars = ["cat-projects.ics"] }}]
"""


def test_sync_members_map_to_the_people_whose_time_they_hold() -> None:
    config = parse_config(CONFIG.format(cache=""))
    assert people_holding(config, ["files/ann.ics"]) == ["ann@example.test"]
    assert people_holding(config, ["files/cat-projects.ics", "files/other.ics"]) == ["cat@example.test"]
    # discovered calendars: the id names the owner
    assert people_holding(config, ["zoho/https://calendar.example.test/caldav/bob%40example.test/events/"]) \
        == ["bob@example.test"]
    assert people_holding(config, ["zoho/https://calendar.example.test/caldav/cat.b@example.test/"]) \
        == ["cat@example.test"]
    assert people_holding(config, ["exchange/ann.ics"]) == []


def test_a_sync_run_tells_the_hub_which_peoples_answers_are_stale() -> None:
    """What a run read, was told was deleted, or wrote: all three make answers stale."""
    from calmesh.core.syncplan import Plan

    report = SyncReport("team", False, Plan())
    report.deletions_seen = {"files/ann.ics"}
    report.count("zoho/https://calendar.example.test/caldav/bob@example.test/", "created")
    assert report.changed_members == {"files/ann.ics", "zoho/https://calendar.example.test/caldav/bob@example.test/"}
    heard: list[list[str]] = []
    with Hub(parse_config(CONFIG.format(cache=""))) as hub:
        hub.on_change(heard.append)
        assert hub.calendars_changed(report.changed_members) == ["ann@example.test", "bob@example.test"]
    assert heard == [["ann@example.test", "bob@example.test"]]


def test_the_cache_setting_takes_a_redis_url_only(tmp_path: Path) -> None:
    assert parse_config(CONFIG.format(cache=f'cache = "{REDIS_URL}"')).hub.cache == REDIS_URL
    assert parse_config(CONFIG.format(cache="")).hub.cache is None
    with pytest.raises(ConfigError, match="hub.cache"):
        parse_config(CONFIG.format(cache='cache = "memcached://127.0.0.1"'), tmp_path / "calmesh.toml")


def test_the_servers_own_cache_drops_what_its_watch_loop_saw_change() -> None:
    """Without ``[hub] cache`` the server's in-process cache listens to its hub."""
    from calmesh.server.context import ServerContext

    platforms = Platforms()
    with Hub(parse_config(CONFIG.format(cache=""))) as hub:
        ctx = ServerContext(hub)
        ann, bob = CacheKey("ann@example.test", WEEK, False, False), CacheKey("bob@example.test", WEEK, False, False)
        ctx.cache.get_many([ann, bob], platforms)
        hub.calendars_changed(["files/ann.ics"])
        assert [e.hit for e in ctx.cache.get_many([ann, bob], platforms)] == [False, True]


def test_nearby_windows_share_one_fetch_and_each_gets_its_own_answer(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two askers a few hours apart on the same day: the platforms are asked once, for the whole
    UTC day, and each answer covers exactly the window its asker gave."""
    from calmesh.server.context import ServerContext
    from calmesh.services import availability

    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "ann.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a1\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART:20261123T090000Z\r\nDTEND:20261123T100000Z\r\n"
        "SUMMARY:Call\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    config = tmp_path / "calmesh.toml"
    config.write_text(CONFIG.format(cache=""))
    asked: list[Window] = []
    real = availability.freebusy

    def counting(hub: Hub, emails: list[str], window: Window, **kwargs: object) -> list[PersonFreeBusy]:
        asked.append(window)
        return real(hub, emails, window, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(availability, "freebusy", counting)
    day = datetime(2026, 11, 23, tzinfo=UTC)
    with Hub(parse_config(config.read_text(), config)) as hub:
        ctx = ServerContext(hub)
        morning = Window(day + timedelta(hours=8, minutes=7), day + timedelta(hours=12, minutes=7))
        later = Window(day + timedelta(hours=9, minutes=30), day + timedelta(hours=18))
        (first,) = ctx.freebusy(None, ["ann@example.test"], morning).people
        (second,) = ctx.freebusy(None, ["ann@example.test"], later).people
    assert asked == [Window(day, day + timedelta(days=1))]
    assert first.window == morning and second.window == later
    assert [(p.start.hour, p.start.minute, p.end.hour) for p in first.busy] == [(9, 0, 10)]
    assert [(p.start.hour, p.start.minute, p.end.hour) for p in second.busy] == [(9, 30, 10)]


def test_a_worker_without_listeners_drops_answers_through_the_store_and_survives_its_absence() -> None:
    """``calmesh worker`` and ``calmesh sync`` hold no cache of their own: with ``[hub] cache``
    they bump the generations in Redis; with Redis gone the run still ends normally."""
    platforms = Platforms()
    with Hub(parse_config(CONFIG.format(cache='cache = "redis://127.0.0.1:1/0"'))) as hub:
        assert hub.calendars_changed(["files/ann.ics"]) == ["ann@example.test"]  # logged, not raised
    if not _redis_up():
        return
    server = FreeBusyCache(600, shared=SharedStore(REDIS_URL))
    start = datetime(2031, 1, 6, tzinfo=UTC)  # ann@example.test is shared: a window of this run's own
    ann = CacheKey("ann@example.test", Window(start, start + timedelta(days=uuid.uuid4().int % 10_000 + 1)),
                   False, False)
    server.get_many([ann], platforms)
    with Hub(parse_config(CONFIG.format(cache=f'cache = "{REDIS_URL}"'))) as worker:
        worker.calendars_changed(["files/ann.ics"])
    assert [e.hit for e in server.get_many([ann], platforms)] == [False]
