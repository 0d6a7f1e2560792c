"""The sync engine end to end: in-memory platforms (a working store with ETags and change
tokens, see memory_connector.py) and the real state store on a SQLite file in a tmp dir."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.connectors.base import PreconditionFailed
from calmesh.model import CalendarItem, ChangeSet, Event, ItemRef
from calmesh.services.sync import SyncEngine
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository

from .memory_connector import MemoryConnector

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


class Killed(BaseException):
    """Stands in for SIGKILL: nothing after the raise point runs, no handler catches it."""


def item(uid: str, hour: int = 9, summary: str = "Standup", seq: int = 0) -> CalendarItem:
    start = T0 + timedelta(hours=hour - 9)
    return CalendarItem(uid, [Event(uid, start, start + timedelta(minutes=30), summary=summary, sequence=seq)])


def group(*names: str, **kw: object) -> SyncGroupConfig:
    return SyncGroupConfig(calendars=[SyncMember(platform=n, calendar="cal") for n in names], **kw)  # type: ignore[arg-type]


@pytest.fixture
def repo(tmp_path: Path) -> SyncRepository:
    return SyncRepository(open_store(f"sqlite:///{tmp_path / 'state.sqlite'}"))


@pytest.fixture
def platforms() -> dict[str, MemoryConnector]:
    return {n: MemoryConnector(n) for n in ("a", "b", "c")}


@pytest.fixture
def engine(repo: SyncRepository, platforms: dict[str, MemoryConnector]) -> SyncEngine:
    return SyncEngine(repo, platforms.__getitem__, retry_sleep=lambda _s: None)


def test_two_way_sync_records_state_tokens_runs_and_audit(engine: SyncEngine, repo: SyncRepository,
                                                          platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b")
    platforms["a"].user_put(item("u1"))
    platforms["b"].user_put(item("u2", hour=11))
    first = engine.run("g", g)
    assert (first.status, first.counts["created"]) == ("ok", 2)
    assert first.full == {"a/cal", "b/cal"}
    second = engine.run("g", g)
    # both received creations, so both are listed in full once (see SyncEngine.run), then not
    assert second.plan.writes == [] and second.full == {"a/cal", "b/cal"}
    assert engine.run("g", g).full == set()
    assert {i.uid for i in platforms["a"].all()} == {i.uid for i in platforms["b"].all()} == {"u1", "u2"}
    assert set(repo.tokens("g")) == {"a/cal", "b/cal"}
    assert [r.status for r in repo.runs("g")] == ["ok", "ok", "ok"]
    assert sorted(e.action for e in repo.audit_log("g")) == ["create", "create"]
    assert repo.counts("g") == {"items": 2, "tombstones": 0, "dirty": 0}


def test_dry_run_writes_nothing(engine: SyncEngine, repo: SyncRepository,
                                platforms: dict[str, MemoryConnector]) -> None:
    platforms["a"].user_put(item("u1"))
    report = engine.run("g", group("a", "b"), dry_run=True)
    assert report.counts["planned_create"] == 1 and report.status == "dry-run"
    assert platforms["b"].all() == [] and repo.load_group("g") == {} and repo.tokens("g") == {}


def test_killed_run_is_completed_by_the_next_without_duplicates(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b", "c")
    for n in range(6):
        platforms["a"].user_put(item(f"u{n}", hour=n))
    real_put = platforms["c"].put
    calls = 0

    def dying_put(calendar: str, it: CalendarItem, if_match: str | None = None) -> ItemRef:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Killed
        return real_put(calendar, it, if_match)

    platforms["c"].put = dying_put  # type: ignore[method-assign]
    with pytest.raises(Killed):
        engine.run("g", g)
    assert repo.runs("g")[0].status == "running"  # the killed run never finished
    platforms["c"].put = real_put  # type: ignore[method-assign]
    engine.run("g", g)
    assert engine.run("g", g).plan.writes == []
    for p in platforms.values():
        assert sorted(i.uid for i in p.all()) == [f"u{n}" for n in range(6)]


def test_an_update_a_killed_run_landed_is_not_an_edit_that_outlives_a_deletion(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector]) -> None:
    """The soak's resurrected deletion (agency regression
    ``test_item4_a_deletion_after_a_killed_update_is_not_undone``): a's edit reaches b, and the
    run is killed as b stores it, before its record is saved; then a's user deletes the event.
    b's copy holds what calmesh wrote there, not an edit of b's user, so the deletion spreads to
    b and c; before, the copy's unrecorded new version read as an edit that outranks the
    deletion, and the event came back to a."""
    g = group("a", "b", "c")
    platforms["a"].user_put(item("u1"))
    engine.run("g", g)
    engine.run("g", g)
    platforms["a"].user_put(item("u1", summary="Standup (moved room)", seq=1))
    real_put = platforms["b"].put

    def dying_put(calendar: str, it: CalendarItem, if_match: str | None = None) -> ItemRef:
        real_put(calendar, it, if_match)
        raise Killed  # stored on b, never recorded

    platforms["b"].put = dying_put  # type: ignore[method-assign]
    with pytest.raises(Killed):
        engine.run("g", g)
    platforms["b"].put = real_put  # type: ignore[method-assign]
    assert [i.components[0].summary for i in platforms["b"].all()] == ["Standup (moved room)"]
    platforms["a"].user_delete("u1")
    report = engine.run("g", g)
    assert not [a for a in report.plan.actions if type(a).__name__ == "Conflict"]
    assert engine.run("g", g).plan.writes == []
    assert [p.all() for p in platforms.values()] == [[], [], []]


def test_refused_token_and_periodic_reconciliation_compare_in_full(
        engine: SyncEngine, platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b", reconcile_every=3)
    platforms["a"].user_put(item("u1"))
    platforms["a"].user_put(item("u2", hour=10))
    engine.run("g", g)
    platforms["a"].user_delete("u1")
    platforms["a"].compact()
    report = engine.run("g", g)
    assert "a/cal" in report.full and [i.uid for i in platforms["b"].all()] == ["u2"]
    # every member is compared in full every 3rd run, whatever the tokens say (b was listed in
    # full on the run above too, as it had received a creation on the first)
    assert engine.run("g", g).full == set()
    assert engine.run("g", g).full == set()
    assert engine.run("g", g).full == {"a/cal", "b/cal"}


def test_unreachable_member_is_reported_and_never_causes_deletes(
        engine: SyncEngine, platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b")
    platforms["a"].user_put(item("u1"))
    engine.run("g", g)
    platforms["a"].reachable = False
    report = engine.run("g", g, full=True)
    assert report.status == "partial" and any("a/cal" in e for e in report.errors)
    assert report.plan.writes == [] and [i.uid for i in platforms["b"].all()] == ["u1"]


def test_a_member_down_for_many_runs_costs_the_others_what_changed(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector]) -> None:
    """b goes down as calmesh writes to it (ids are chosen by the server, as Exchange's are): an
    update and a creation are left half-done, their records dirty, before c got them. While b
    stays down, each run reads a's and c's change feeds and those two items by their ids, never
    a or c in full, but c twice: the new event's copy was to land there, and a listing tells
    whether it did (it is written then), and a calendar that received a copy is listed in full
    on the next run (see SyncEngine.run). The new event deleted on a meanwhile is found gone.
    Once b is back, b and c hold the latest version, and not the deleted event."""
    g = group("a", "b", "c")
    for n in range(10):
        platforms["a"].user_put(item(f"u{n}", hour=8 + n))
    engine.run("g", g)
    engine.run("g", g)
    assert engine.run("g", g).full == set()
    platforms["a"].user_put(item("u1", summary="v2", seq=1))
    platforms["a"].user_put(item("new", hour=20))
    b, write = platforms["b"], platforms["b"].put

    def goes_down(*args: object, **kwargs: object) -> ItemRef:
        b.reachable = False
        return write(*args, **kwargs)  # type: ignore[arg-type]
    b.put = goes_down  # type: ignore[method-assign]
    failed = engine.run("g", g)
    assert failed.counts["failed"] == 2 and repo.counts("g")["dirty"] == 2
    for n in range(4):
        if n == 2:
            platforms["a"].user_put(item("u1", summary="v3", seq=2))
            platforms["a"].user_delete("new")
        during = engine.run("g", g)
        assert during.status == "partial" and during.full == ({"c/cal"} if n < 2 else set())
        if n >= 2:
            assert len(during.read) <= 4, sorted(during.read)  # u1 and new, on a and c
    b.put, b.reachable = write, True  # type: ignore[method-assign]
    engine.run("g", g)
    assert engine.run("g", g).plan.writes == []
    for other in (b, platforms["c"]):
        assert {i.uid: i.components[0].summary for i in other.all()} == {i.uid: i.components[0].summary
                                                                          for i in platforms["a"].all()}
    assert "new" not in {i.uid for i in b.all()} and repo.counts("g")["dirty"] == 0


def test_lost_update_is_refused_then_redone(engine: SyncEngine, repo: SyncRepository,
                                            platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b")
    platforms["a"].user_put(item("u1"))
    engine.run("g", g)
    platforms["a"].user_put(item("u1", summary="v2", seq=1))
    platforms["b"].fail_next = PreconditionFailed
    report = engine.run("g", g)
    assert report.status == "partial" and report.counts["failed"] == 1
    assert repo.counts("g")["dirty"] == 1
    engine.run("g", g)
    assert platforms["b"].all()[0].components[0].summary == "v2"
    assert repo.counts("g")["dirty"] == 0


def test_bad_item_is_quarantined_then_released_when_fixed(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b")
    bad = item("bad")
    bad.components[0].end = T0 - timedelta(hours=2)
    platforms["a"].user_put(bad)
    platforms["a"].user_put(item("ok", hour=10))
    engine.run("g", g)
    assert [(q.uid, q.member) for q in repo.quarantined("g")] == [("bad", "a/cal")]
    assert [i.uid for i in platforms["b"].all()] == ["ok"]
    platforms["a"].user_put(item("bad"))
    engine.run("g", g, full=True)
    assert repo.quarantined("g") == []
    assert sorted(i.uid for i in platforms["b"].all()) == ["bad", "ok"]


def test_a_propagated_deletion_is_audited_with_the_content_to_restore(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b")
    platforms["a"].user_put(item("u1", summary="Quarterly review"))
    engine.run("g", g)
    platforms["a"].user_delete("u1")
    engine.run("g", g, full=True)
    assert platforms["b"].all() == []
    entry = next(e for e in repo.audit_log("g") if e.action == "delete")
    restored = repo.previous_content(entry.id)
    assert restored is not None and restored.components[0].summary == "Quarterly review"


def test_bulk_delete_needs_confirmation(engine: SyncEngine, platforms: dict[str, MemoryConnector]) -> None:
    g = group("a", "b")
    for n in range(8):
        platforms["a"].user_put(item(f"u{n}", hour=n))
    engine.run("g", g)
    for n in range(5):
        platforms["a"].user_delete(f"u{n}")
    held = engine.run("g", g)
    assert held.counts["deleted"] == 0 and any("held until confirmed" in n for n in held.notices)
    done = engine.run("g", g, confirm_deletes=True)
    assert done.counts["deleted"] == 5 and len(platforms["b"].all()) == 3


@pytest.mark.parametrize("kill_after", [1, 4, 6])
def test_sigkill_at_any_write_is_completed_by_the_next_run(tmp_path: Path, kill_after: int) -> None:
    """A real SIGKILL of a syncing process (platforms write through to files, state in SQLite):
    the next run finishes the job with no duplicate and no loss."""
    names = ("a", "b", "c")
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    paths = {n: tmp_path / f"{n}.pickle" for n in names}
    seeds = {n: MemoryConnector(n, persist_to=paths[n]) for n in names}
    seeds["a"].user_put(item("a1"))
    seeds["a"].user_put(item("a2", hour=10))
    seeds["b"].user_put(item("b1", hour=11))
    for conn in seeds.values():
        conn._persist()
    child = subprocess.run(
        [sys.executable, "-m", "sync.kill_child", url, str(tmp_path), str(kill_after), *names],
        cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    platforms = {n: MemoryConnector.load(n, paths[n]) for n in names}
    engine = SyncEngine(SyncRepository(open_store(url)), platforms.__getitem__, retry_sleep=lambda _s: None)
    g = SyncGroupConfig(calendars=[SyncMember(platform=n, calendar="cal") for n in names])
    engine.run("g", g)
    assert engine.run("g", g).plan.writes == []
    for conn in platforms.values():
        assert sorted(i.uid for i in conn.all()) == ["a1", "a2", "b1"]


@pytest.mark.parametrize("full", [False, True])
def test_unreadable_item_is_quarantined_never_deleted(engine: SyncEngine, repo: SyncRepository,
                                                      platforms: dict[str, MemoryConnector], full: bool) -> None:
    g = group("a", "b")
    platforms["a"].user_put(item("u1"))
    platforms["a"].user_put(item("u2", hour=10))
    engine.run("g", g)
    platforms["a"].corrupt("u1")
    report = engine.run("g", g, full=full)
    assert report.plan.writes == [] and report.counts["quarantined"] == 1
    assert [(q.member, q.reason) for q in repo.quarantined("g")] == [("a/cal", "unparseable object")]
    assert sorted(i.uid for i in platforms["b"].all()) == ["u1", "u2"]
    platforms["a"].user_put(item("u1", summary="fixed", seq=1))
    engine.run("g", g, full=True)
    assert repo.quarantined("g") == []
    assert {i.components[0].summary for i in platforms["b"].all()} == {"fixed", "Standup"}


def test_members_on_different_platforms_are_read_side_by_side(repo: SyncRepository) -> None:
    """A run reads the members of different platforms at the same time (a first comparison waits
    mostly on servers), and those of one platform one after another on one thread. Each read
    here waits for another platform's read to have started: read one by one, it would time out."""
    started = {"a": threading.Event(), "b": threading.Event()}
    threads: dict[str, set[str]] = {"a": set(), "b": set()}

    class Slow(MemoryConnector):
        def changes(self, calendar: str, token: str | None) -> ChangeSet:
            threads[self.name].add(threading.current_thread().name)
            started[self.name].set()
            other = started["b" if self.name == "a" else "a"]
            if not other.wait(5):
                raise AssertionError("the other platform was not being read meanwhile")
            return super().changes(calendar, token)

    platforms = {"a": Slow("a", ("cal", "cal2")), "b": Slow("b")}
    platforms["a"].user_put(item("u1"))
    platforms["a"].user_put(item("u2", hour=11), calendar="cal2")
    g = SyncGroupConfig(calendars=[SyncMember(platform="a", calendar="cal"), SyncMember(platform="b", calendar="cal"),
                                   SyncMember(platform="a", calendar="cal2")])
    report = SyncEngine(repo, platforms.__getitem__, retry_sleep=lambda _s: None).run("g", g)
    assert report.status == "ok" and report.counts["created"] == 4
    assert len(threads["a"]) == 1 and threads["a"] != threads["b"]


def _counting_loads(repo: SyncRepository, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The groups whose stored state ``repo`` loads from now on, one entry per load."""
    loads: list[str] = []
    load = repo.load_group

    def counted(name: str) -> dict[str, object]:
        loads.append(name)
        return load(name)  # type: ignore[return-value]
    monkeypatch.setattr(repo, "load_group", counted)
    return loads


def _until_quiet(engine: SyncEngine, g: SyncGroupConfig, loads: list[str]) -> None:
    """Run until a run no longer loads the group's state (a few runs: a member that received
    copies is listed in full once first), failing if that never comes."""
    for _ in range(4):
        before = len(loads)
        engine.run("g", g)
        if len(loads) == before:
            return
    pytest.fail("no run skipped the stored state")


def test_quiet_feeds_after_a_settled_run_skip_the_stored_state(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A no-op costs what changed: once a run has left the group at rest, a run whose change
    feeds report nothing neither loads nor plans over the stored state; it is still recorded and
    the tokens still count towards the periodic full comparison. A change anywhere brings the
    whole run back."""
    g = group("a", "b")
    for n in range(3):
        platforms["a"].user_put(item(f"u{n}", hour=9 + n))
    loads = _counting_loads(repo, monkeypatch)
    _until_quiet(engine, g, loads)
    runs, loaded = len(repo.runs("g")), len(loads)
    quiet = engine.run("g", g)
    assert (quiet.status, quiet.plan.writes, quiet.full, quiet.changed_members) == ("ok", [], set(), set())
    assert len(loads) == loaded and len(repo.runs("g")) == runs + 1
    platforms["b"].user_put(item("u1", hour=10, summary="Moved", seq=1))
    report = engine.run("g", g)
    assert len(loads) == loaded + 1 and report.counts["updated"] == 1
    assert {i.components[0].summary for i in platforms["a"].all() if i.uid == "u1"} == {"Moved"}
    reconcile = group("a", "b", reconcile_every=2)  # every 2nd run compares in full, quiet or not
    assert [engine.run("g", reconcile).full for _ in range(4)].count({"a/cal", "b/cal"}) == 2


def test_a_write_left_for_later_is_made_though_every_feed_is_quiet(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that skipped a write (its target unreachable) does not leave the group at rest: the
    next run plans over the stored state though no feed reports anything, and makes the write."""
    g = group("a", "b")
    platforms["a"].user_put(item("u1"))
    loads = _counting_loads(repo, monkeypatch)
    _until_quiet(engine, g, loads)
    platforms["a"].user_put(item("u1", summary="Renamed", seq=1))
    platforms["b"].reachable = False
    assert engine.run("g", g).status == "partial"
    platforms["b"].reachable = True
    report = engine.run("g", g)  # a's feed is past the change, b's is empty: both quiet
    assert report.counts["updated"] == 1
    assert [i.components[0].summary for i in platforms["b"].all()] == ["Renamed"]


def test_a_changed_direction_is_planned_over_though_every_feed_is_quiet(
        engine: SyncEngine, repo: SyncRepository, platforms: dict[str, MemoryConnector],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The group's configuration is part of being at rest: a member that starts receiving gets
    the items it lacks at once, not at the next full comparison."""
    platforms["a"].user_put(item("u1"))
    one_way = SyncGroupConfig(calendars=[SyncMember(platform="a", calendar="cal"),
                                         SyncMember(platform="b", calendar="cal", direction="out")])
    loads = _counting_loads(repo, monkeypatch)
    _until_quiet(engine, one_way, loads)
    assert platforms["b"].all() == []
    report = engine.run("g", group("a", "b"))
    assert report.counts["created"] == 1 and [i.uid for i in platforms["b"].all()] == ["u1"]
