"""The watch loop (calmesh.services.scheduler) on a hand-driven clock, and inside ``serve``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from calmesh.config import SyncGroupConfig, SyncMember, parse_config, parse_duration
from calmesh.services.scheduler import SyncScheduler


def group(interval: float) -> SyncGroupConfig:
    return SyncGroupConfig(calendars=[SyncMember(platform="a", calendar="x"),
                                      SyncMember(platform="b", calendar="y")], interval=interval)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("5m", 300), ("1h", 3600), ("90d", 90 * 86400), ("90", 90),
                                               (30, 30)])
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5 weeks", "-1s", "0", "m5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_each_group_runs_on_its_own_interval_counted_from_the_end_of_its_run() -> None:
    clock, ran = Clock(), []

    def run(name: str, _group: SyncGroupConfig) -> None:
        ran.append((clock.now, name))
        clock.now += 5  # a run takes 5 s

    sched = SyncScheduler({"fast": group(60), "slow": group(300)}, run, clock=clock)
    assert sched.tick() == 55  # fast ran at 0..5, slow at 5..10: fast due at 65
    assert ran == [(0, "fast"), (5, "slow")]
    clock.now = 65
    assert sched.tick() == 60  # fast again at 130; slow waits until 310
    assert ran[-1] == (65, "fast")
    clock.now = 310
    sched.tick()
    assert [n for _t, n in ran] == ["fast", "slow", "fast", "fast", "slow"]


def test_a_failing_group_is_logged_and_retried_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    clock, ran = Clock(), []

    def run(name: str, _group: SyncGroupConfig) -> None:
        ran.append(name)
        if name == "bad":
            raise RuntimeError("platform exploded")

    sched = SyncScheduler({"bad": group(60), "good": group(60)}, run, clock=clock)
    sched.tick()
    clock.now = 60
    sched.tick()
    assert ran == ["bad", "good", "bad", "good"]
    assert "sync group bad failed" in caplog.text and "platform exploded" in caplog.text


def test_chores_run_on_their_own_interval_and_a_failing_one_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """The owed deliveries are a chore of the loop: done beside the groups, every minute, even
    when no group is configured, and a failure of it is logged and tried again."""
    clock, done = Clock(), []

    def deliver() -> None:
        done.append(clock.now)
        if len(done) == 1:
            raise RuntimeError("state store locked")

    sched = SyncScheduler({}, lambda _n, _g: None, clock=clock, chores={"owed deliveries": (60.0, deliver)})
    assert sched.tick() == 60
    clock.now = 30
    assert sched.tick() == 30 and done == [0]
    clock.now = 60
    sched.tick()
    assert done == [0, 60] and "owed deliveries failed" in caplog.text and "state store locked" in caplog.text


def test_interval_override_and_injected_wait_stop_the_loop() -> None:
    clock, waits = Clock(), []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        clock.now += seconds
        return len(waits) == 3

    runs: list[str] = []
    SyncScheduler({"g": group(600)}, lambda n, _g: runs.append(n), clock=clock, wait=wait,
                  interval=10).run_forever()
    assert waits == [10, 10, 10] and runs == ["g"] * 3


def test_background_thread_stops_promptly_while_sleeping() -> None:
    started = threading.Event()
    sched = SyncScheduler({"g": group(3600)}, lambda _n, _g: started.set())
    sched.start()
    assert started.wait(5)
    sched.stop(timeout=5)  # interrupts the hour-long wait
    assert sched._thread is None


def test_serve_runs_the_watch_loop_and_stops_it(tmp_path: Path) -> None:
    """``serve()`` starts the loop beside uvicorn and stops it on shutdown (here: SIGTERM-free,
    by asking uvicorn to exit from the sync run itself once both groups ran)."""
    import uvicorn

    from calmesh.server import app as server_app

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    empty = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nEND:VCALENDAR\r\n"
    (tmp_path / "a" / "c.ics").write_bytes(empty)
    (tmp_path / "b" / "c.ics").write_bytes(empty)
    cfg = parse_config(f"""
[hub]
state = "sqlite:///{tmp_path / 'state.sqlite'}"
[platforms.a]
kind = "ics"
path = "{tmp_path / 'a'}"
[platforms.b]
kind = "ics"
path = "{tmp_path / 'b'}"
[sync.groups.g]
calendars = [{{platform = "a", calendar = "c.ics"}}, {{platform = "b", calendar = "c.ics"}}]
""", tmp_path / "calmesh.toml")
    servers: list[uvicorn.Server] = []
    real_run = uvicorn.Server.run

    def run_then_stop(self: uvicorn.Server, sockets: object = None) -> None:
        servers.append(self)
        threading.Timer(0.5, lambda: setattr(self, "should_exit", True)).start()
        real_run(self, sockets=sockets)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(uvicorn.Server, "run", run_then_stop)
        server_app.serve(cfg, "127.0.0.1", 0)
    from calmesh.store.db import open_store
    from calmesh.store.repository import SyncRepository

    runs = SyncRepository(open_store(cfg.state_url())).runs("g")
    assert servers and runs and runs[0].status == "ok"
    assert not any(t.name == "calmesh-sync" for t in threading.enumerate())


def test_serve_writes_owed_copies_even_without_sync_groups(tmp_path: Path) -> None:
    """The loop inside ``serve()`` writes the meeting copies owed to calendars that were down, so
    it runs when no sync group is configured too; the server stops once the chore has run."""
    import uvicorn

    from calmesh.server import app as server_app
    from calmesh.services import scheduling

    cfg = parse_config(f"""
[hub]
state = "sqlite:///{tmp_path / 'state.sqlite'}"
""", tmp_path / "calmesh.toml")
    asked = threading.Event()

    def run_then_stop(self: uvicorn.Server, sockets: object = None) -> None:
        threading.Thread(target=lambda: (asked.wait(60), setattr(self, "should_exit", True))).start()
        real_run(self, sockets=sockets)  # type: ignore[arg-type]

    def redeliver(hub: object, *, now: object) -> list[object]:
        asked.set()
        return []

    real_run = uvicorn.Server.run
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(uvicorn.Server, "run", run_then_stop)
        mp.setattr(scheduling, "redeliver", redeliver)
        server_app.serve(cfg, "127.0.0.1", 0)
    assert asked.is_set()
    assert not any(t.name == "calmesh-sync" for t in threading.enumerate())
