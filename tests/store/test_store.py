"""The state store on real databases: a SQLite file in a tmp dir, and PostgreSQL on
127.0.0.1:5432 (database ``test``; each test in its own schema so parallel runs never meet;
skipped with the reason when PostgreSQL is not running)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from calmesh.core.syncplan import CopyState, Hold, ItemState
from calmesh.model import MARKER_PROPERTY, CalendarItem, Event
from calmesh.store.db import (
    HEAD_REVISION,
    StoreError,
    current_revision,
    head_revision,
    is_up_to_date,
    make_engine,
    open_store,
    session_factory,
    stored_revisions,
    upgrade,
)
from calmesh.store.identities import HOLD_LEASE, Identity, IdentityRepository
from calmesh.store.models import Base
from calmesh.store.repository import SyncRepository

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _postgres_available() -> bool:
    try:
        with create_engine(PG_URL, connect_args={"connect_timeout": 2}).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except (OperationalError, ImportError):
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(f"sqlite:///{tmp_path / 'state.sqlite'}")
        yield eng
        eng.dispose()
        return
    if not _postgres_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432 (database test)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    eng = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield eng
    finally:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo(engine: Engine, clock: Clock) -> SyncRepository:
    upgrade(engine)
    return SyncRepository(session_factory(engine), clock)


def _record(lid: str = "a/cal/1.ics", **kw: object) -> ItemState:
    copies = {
        "a/cal": CopyState("a/cal", "1.ics", "u1", '"e1"', "h1"),
        "b/https://dav.example/cal/": CopyState("b/https://dav.example/cal/", "/cal/x.ics", "u1", None, "h1",
                                                marker=lid),
    }
    return ItemState(lid, "a/cal", "h1", copies, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- migrations
def test_upgrade_from_empty_matches_the_models_and_is_idempotent(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision() == HEAD_REVISION
    names = set(inspect(engine).get_table_names())
    assert {"sync_items", "sync_copies", "sync_tokens", "sync_runs", "quarantine", "audit_log",
            "meeting_identities", "meeting_copies", "sync_holds", "feed_tokens", "platform_checks"} <= names
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_up_to_date_check_agrees_with_alembic(engine: Engine) -> None:
    """open_store skips Alembic when the version table says HEAD_REVISION, so that constant must be
    the migrations folder's head and the plain-SQL check must read what Alembic wrote."""
    assert HEAD_REVISION == head_revision()
    assert stored_revisions(engine) == set() and not is_up_to_date(engine)
    upgrade(engine)
    assert stored_revisions(engine) == {current_revision(engine)} and is_up_to_date(engine)


def test_opening_an_up_to_date_store_does_not_import_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fast.sqlite'}"
    open_store(url)
    code = ("import sys; from calmesh.store.db import open_store; "
            f"open_store({url!r}); print(sorted(m for m in sys.modules if m.startswith('alembic')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 's.sqlite'}")
    with eng.connect() as conn:
        assert conn.execute(text("pragma journal_mode")).scalar() == "wal"
        assert conn.execute(text("pragma busy_timeout")).scalar() >= 1000
        assert conn.execute(text("pragma foreign_keys")).scalar() == 1


def test_open_store_migrates_or_refuses(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.sqlite'}"
    with pytest.raises(StoreError, match="needs migrating"):
        open_store(url, migrate=False)
    SyncRepository(open_store(url)).save_records("g", [_record()])
    assert SyncRepository(open_store(url, migrate=False)).load_group("g") == {"a/cal/1.ics": _record()}
    with pytest.raises(StoreError, match="not a database URL"):
        make_engine("nonsense")


# ---------------------------------------------------------------------------- item state
def test_records_round_trip_update_and_drop_copies(repo: SyncRepository) -> None:
    first, other = _record(), _record("a/cal/2.ics", deleted=True)
    repo.save_records("g", [first, other])
    repo.save_records("h", [_record()])
    assert repo.load_group("g") == {first.logical_id: first, other.logical_id: other}
    changed = ItemState(first.logical_id, "a/cal", "h2",
                        {"a/cal": CopyState("a/cal", "1.ics", "u1", '"e2"', "h2", deleted=True)}, dirty=True)
    repo.save_records("g", [changed])
    assert repo.load_group("g")[first.logical_id] == changed
    assert repo.load_group("h") == {first.logical_id: _record()}
    assert repo.counts("g") == {"items": 1, "tombstones": 1, "dirty": 1}


def test_many_records_in_one_save(repo: SyncRepository) -> None:
    """New items go in as bulk INSERTs, known ones are updated, in one save; an item named twice
    in one save is saved as last named."""
    records = [_record(f"a/cal/{n}.ics") for n in range(600)]
    repo.save_records("g", records)
    renamed = ItemState("a/cal/0.ics", "a/cal", "h9", {"a/cal": CopyState("a/cal", "0.ics", "u0", '"e9"', "h9")})
    later = [_record(f"a/cal/{n}.ics", dirty=True) for n in range(550, 700)]
    repo.save_records("g", [*records[:550], renamed, *later, later[-1]])
    state = repo.load_group("g")
    assert len(state) == 700
    assert state["a/cal/0.ics"] == renamed and state["a/cal/699.ics"] == later[-1]
    assert state["a/cal/560.ics"] == later[10] and state["a/cal/1.ics"] == records[1]


def test_mark_dirty_and_purge_tombstones(repo: SyncRepository, clock: Clock, engine: Engine) -> None:
    live = _record("a/cal/live.ics")
    dead = ItemState("a/cal/dead.ics", "a/cal", "h", {"a/cal": CopyState("a/cal", "d", "u", None, "h", deleted=True)},
                     deleted=True)
    half = ItemState("a/cal/half.ics", "a/cal", "h", {"a/cal": CopyState("a/cal", "d2", "u", None, "h")}, deleted=True)
    repo.save_records("g", [live, dead, half])
    repo.mark_dirty("g", [live.logical_id, "a/cal/unknown"])
    assert repo.load_group("g")[live.logical_id].dirty
    clock.now = T0 + timedelta(days=100)
    assert repo.purge_tombstones("g", kept_for=timedelta(days=101)) == 0
    assert repo.purge_tombstones("g", kept_for=timedelta(days=99)) == 1
    assert set(repo.load_group("g")) == {live.logical_id, half.logical_id}
    with engine.connect() as connection:  # the forgotten item's copies went with it
        assert connection.execute(text("SELECT count(*) FROM sync_copies WHERE remote_id = 'd'")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM sync_copies WHERE remote_id = 'd2'")).scalar() == 1


# ------------------------------------------------------------------------- tokens, runs
def test_tokens_and_full_reconciliation_bookkeeping(repo: SyncRepository, clock: Clock) -> None:
    repo.save_tokens("g", {"a/cal": "t1", "b/cal": None}, full=["a/cal", "b/cal"])
    clock.now = T0 + timedelta(minutes=1)
    repo.save_tokens("g", {"a/cal": "t2"})
    tokens = repo.tokens("g")
    assert (tokens["a/cal"].token, tokens["a/cal"].runs_since_full, tokens["a/cal"].last_full_at) == ("t2", 1, T0)
    assert tokens["b/cal"].token is None and tokens["b/cal"].runs_since_full == 0
    repo.forget_token("g", "a/cal")
    assert set(repo.tokens("g")) == {"b/cal"}
    assert repo.tokens("other") == {}


def test_commit_run_is_one_transaction(repo: SyncRepository, clock: Clock) -> None:
    run = repo.start_run("g")
    assert repo.runs("g")[0].status == "running"
    clock.now = T0 + timedelta(seconds=5)
    repo.commit_run("g", run, records=[_record()], tokens={"a/cal": "t9"}, full=[], status="ok",
                    counts={"created": 1}, errors=[])
    (info,) = repo.runs("g")
    assert (info.status, info.counts, info.finished_at, info.started_at) == ("ok", {"created": 1}, clock.now, T0)
    assert repo.tokens("g")["a/cal"].token == "t9" and repo.load_group("g")
    # a failure inside the transaction leaves nothing behind
    run2 = repo.start_run("g")
    with pytest.raises(KeyError):
        repo.commit_run("g", run2 + 99, records=[_record("a/cal/2.ics")], tokens={"a/cal": "t10"}, full=[],
                        status="ok", counts={}, errors=[])
    assert repo.tokens("g")["a/cal"].token == "t9" and set(repo.load_group("g")) == {"a/cal/1.ics"}
    repo.finish_run(run2, "partial", {"failed": 1}, ["b/cal: ETag mismatch"])
    assert repo.runs("g", limit=1)[0].errors == ["b/cal: ETag mismatch"]


# ------------------------------------------------------------------- quarantine, audit
def test_quarantine_keeps_first_sighting_and_releases_fixed_items(repo: SyncRepository, clock: Clock) -> None:
    repo.quarantine("g", "a/cal", item_ref="bad.ics", uid="u", reason="ends before it starts", excerpt="x" * 5000)
    clock.now = T0 + timedelta(hours=1)
    repo.quarantine("g", "a/cal", item_ref="bad.ics", uid="u", reason="ends before it starts")
    repo.quarantine("g", "a/cal", item_ref=None, uid="u2", reason="no VEVENT")
    entries = repo.quarantined("g")
    assert [(e.item_ref, e.uid, e.times_seen) for e in entries] == [("bad.ics", "u", 2), (None, "u2", 1)]
    assert entries[0].first_seen == T0 and entries[0].last_seen == clock.now
    assert entries[0].excerpt is not None and len(entries[0].excerpt) <= 2001
    assert repo.release("g", "a/cal", keep=["bad.ics"]) == 1
    assert [e.item_ref for e in repo.quarantined()] == ["bad.ics"]


def test_audit_keeps_previous_content_so_a_delete_can_be_undone(repo: SyncRepository) -> None:
    original = CalendarItem("u1", [Event("u1", T0, T0 + timedelta(hours=1), summary="Board meeting",
                                         extra={MARKER_PROPERTY: "a/cal/1.ics"})])
    run = repo.start_run("g")
    created = repo.audit(action="create", platform="b", calendar="cal", group="g", run_id=run,
                         item_ref="x.ics", uid="u1", written=original, etag_after='"1"')
    deleted = repo.audit(action="delete", platform="b", calendar="cal", group="g", run_id=run,
                         item_ref="x.ics", uid="u1", reason="deleted at a sender", previous=original,
                         etag_before='"1"')
    log = repo.audit_log("g")
    assert [(e.id, e.action, e.has_previous) for e in log] == [(deleted, "delete", True), (created, "create", False)]
    assert repo.previous_content(created) is None
    restored = repo.previous_content(deleted)
    assert restored is not None and restored.components[0].summary == "Board meeting"
    assert restored.marker == "a/cal/1.ics"
    with pytest.raises(ValueError, match="unknown audit action"):
        repo.audit(action="drop", platform="b", calendar="cal")
    with pytest.raises(KeyError):
        repo.previous_content(10_000)


# ----------------------------------------------------------------- the bulk-delete guard
def test_holds_are_replaced_as_a_whole_and_keep_their_first_time(repo: SyncRepository, clock: Clock) -> None:
    empty = Hold("a/cal", "empty", 40, 40, "listed no items while 40 are on record")
    repo.save_holds("g", {"a/cal": empty, "b/cal": replace(empty, member="b/cal", kind="shrink")})
    first = clock.now
    clock.now += timedelta(hours=1)
    later = replace(empty, kind="budget", missing=38, reason="lacks 38 of the 40 items")
    run = repo.start_run("g")
    repo.commit_run("g", run, records=[], tokens={}, full=[], status="ok", counts={}, errors=[],
                    holds={"a/cal": later})
    [(member, info)] = repo.holds("g").items()
    assert member == "a/cal" and info.hold == later and info.since == first
    assert repo.holds("other") == {}
    run = repo.start_run("g")
    repo.commit_run("g", run, records=[], tokens={}, full=[], status="ok", counts={}, errors=[])  # kept
    assert list(repo.holds("g")) == ["a/cal"]


def test_recent_deletions_count_a_window_and_start_afresh_after_a_confirmation(repo: SyncRepository,
                                                                             clock: Clock) -> None:
    def deleted(n: int, calendar: str = "cal", counts: dict[str, int] | None = None) -> None:
        run = repo.start_run("g")
        for k in range(n):
            repo.audit(action="delete", platform="a", calendar=calendar, group="g", run_id=run, item_ref=f"{k}.ics")
        repo.finish_run(run, "ok", counts or {"deleted": n}, [])

    deleted(3)
    clock.now += timedelta(hours=20)
    deleted(2)
    deleted(1, calendar="other")
    assert repo.recent_deletions("g", 86400) == {"a/cal": 5, "a/other": 1}
    clock.now += timedelta(hours=5)  # the first run left the window
    assert repo.recent_deletions("g", 86400) == {"a/cal": 2, "a/other": 1}
    deleted(4, counts={"deleted": 4, "confirmed": 1})
    assert repo.recent_deletions("g", 86400) == {}
    deleted(1)
    assert repo.recent_deletions("g", 86400) == {"a/cal": 1} and repo.recent_deletions("h", 86400) == {}


def test_a_meeting_is_held_by_one_process_at_a_time_and_a_dead_ones_hold_lapses(engine: Engine,
                                                                                clock: Clock) -> None:
    """Two processes (two repositories over one store, SQLite and PostgreSQL) hold a meeting in
    turn: the second is refused while the first holds it, and gets it once released; a hold left
    by a process that died (never released) lapses after HOLD_LEASE. A meeting with no record is
    nothing to keep apart."""
    upgrade(engine)
    first, second = (IdentityRepository(session_factory(engine), clock) for _ in range(2))
    booked = Identity("m1@agency.example", "alice@agency.example", "zoho", "alice", "/alice/m1.ics", 0, "CONFIRMED")
    first.save(booked)
    with first.hold(booked.uid, wait=0) as held:
        assert held
        with second.hold(booked.uid, wait=0.2) as other:
            assert not other
    with second.hold(booked.uid, wait=0) as other:
        assert other

    dying = first.hold(booked.uid, wait=0)
    assert dying.__enter__()  # and its process dies: never released
    with second.hold(booked.uid, wait=0) as other:
        assert not other
    clock.now += HOLD_LEASE + timedelta(seconds=1)
    with second.hold(booked.uid, wait=0) as other:
        assert other
    assert first.get(booked.uid) == booked  # holding changes nothing of the record
    with second.hold("unknown@agency.example", wait=0) as other:
        assert other
