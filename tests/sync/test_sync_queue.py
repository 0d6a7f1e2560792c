"""Sync group runs through Dramatiq on the real Redis at 127.0.0.1:6379 (skipped when absent):
the watch loop enqueues, an in-process worker runs the group against two ICS folders. Each test
uses its own Redis namespace, so parallel runs never see each other's queues."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from calmesh.config import Config, parse_config
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import CalendarItem, Event
from calmesh.services import queue
from calmesh.services.hub import Hub
from calmesh.services.scheduler import SyncScheduler, hub_engine
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

REDIS_URL = "redis://127.0.0.1:6379/0"
EMPTY = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")


@dataclass
class Setup:
    config: Config
    broker: RedisBroker
    namespace: str
    left: ICSConnector
    right: ICSConnector
    repo: SyncRepository


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    for name in ("left", "right"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "c.ics").write_bytes(EMPTY)
    cfg = parse_config(f"""
[hub]
state = "sqlite:///{tmp_path / 'state.sqlite'}"
queue = "{REDIS_URL}"
[platforms.left]
kind = "ics"
path = "{tmp_path / 'left'}"
[platforms.right]
kind = "ics"
path = "{tmp_path / 'right'}"
[sync.groups.g]
calendars = [{{platform = "left", calendar = "c.ics"}}, {{platform = "right", calendar = "c.ics"}}]
""", tmp_path / "calmesh.toml")
    namespace = f"calmesh-test-{uuid.uuid4().hex[:8]}"
    broker = queue.broker(REDIS_URL, namespace)
    left = ICSConnector("left", ICSSettings(kind="ics", path=str(tmp_path / "left")))
    right = ICSConnector("right", ICSSettings(kind="ics", path=str(tmp_path / "right")))
    try:
        yield Setup(cfg, broker, namespace, left, right, SyncRepository(open_store(cfg.state_url())))
    finally:
        broker.flush_all()
        broker.close()


def meeting(uid: str) -> CalendarItem:
    start = datetime(2026, 12, 1, 9, tzinfo=UTC)
    return CalendarItem(uid, [Event(uid, start, start + timedelta(hours=1), summary="Planning")])


def run_worker_until_idle(s: Setup, hub: Hub) -> None:
    queue.declare_worker_actor(s.broker, s.config, lambda: hub_engine(hub), namespace=s.namespace)
    worker = queue.worker(s.broker)
    worker.start()
    try:
        s.broker.join(queue.QUEUE_NAME, timeout=20_000)
        worker.join()
    finally:
        worker.stop()


def test_watch_loop_enqueues_and_a_worker_runs_the_group(setup: Setup) -> None:
    setup.left.put("c.ics", meeting("m1@test"))
    SyncScheduler(setup.config.sync.groups, queue.enqueuer(setup.broker)).tick()
    assert setup.repo.runs("g") == []  # enqueued, not run
    with Hub(setup.config) as hub:
        run_worker_until_idle(setup, hub)
    [run] = setup.repo.runs("g")
    assert (run.status, run.counts.get("created")) == ("ok", 1)
    assert [i.uid for i in setup.right.items("c.ics")[0]] == ["m1@test"]


def test_a_group_already_running_elsewhere_is_skipped(setup: Setup) -> None:
    backend = RedisBackend(client=setup.broker.client)
    mutex = ConcurrentRateLimiter(backend, f"{setup.namespace}:sync-run:g", limit=1)
    queue.enqueuer(setup.broker)("g", setup.config.sync.groups["g"])
    with mutex.acquire(), Hub(setup.config) as hub:
        run_worker_until_idle(setup, hub)
    assert setup.repo.runs("g") == []


def test_server_loop_enqueues_only_when_a_queue_is_configured(setup: Setup,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "broker", lambda _url: setup.broker)
    with Hub(setup.config) as hub:
        queue.loop_runner(hub)("g", setup.config.sync.groups["g"])
    assert setup.repo.runs("g") == []  # enqueued, not run here
    assert setup.broker.client.llen(f"{setup.namespace}:{queue.QUEUE_NAME}") == 1
    local = setup.config.model_copy(update={"hub": setup.config.hub.model_copy(update={"queue": None})})
    with Hub(local) as hub:
        queue.loop_runner(hub)("g", local.sync.groups["g"])
    assert [r.status for r in setup.repo.runs("g")] == ["ok"]  # no queue: run in-process
