"""The sync decision core, alone: hand-made observations and in-memory platforms (a working
store with ETags and change tokens, see memory_connector.py), no server and no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from calmesh.connectors.base import InvalidDataError, PreconditionFailed
from calmesh.core.projection import busy_block, content_hash, synced_hash, with_scheduling
from calmesh.core.syncplan import (
    Conflict,
    CopyState,
    Delete,
    ItemState,
    Member,
    Observation,
    PlanOptions,
    Skip,
    plan,
)
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    ItemRef,
    PartStat,
    Role,
    as_utc,
)
from calmesh.services.sync import PLACEHOLDER

from .harness import World, members, summaries, uids, world
from .memory_connector import MemoryConnector

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def item(uid: str, hour: int = 9, summary: str = "Standup", *, seq: int = 0, **kw: object) -> CalendarItem:
    start = T0 + timedelta(hours=hour - 9)
    event = Event(uid=uid, start=start, end=start + timedelta(minutes=30), summary=summary,
                  sequence=seq, **kw)  # type: ignore[arg-type]
    return CalendarItem(uid, [event])


def converge(w: World) -> None:
    w.run()
    assert w.run().writes == []


# ------------------------------------------------------------------------------ projection
def test_hash_ignores_what_platforms_rewrite() -> None:
    a = item("u1")
    b = item("u2")
    b.components[0].start = T0.astimezone(ZoneInfo("Europe/Paris"))
    b.components[0].end = (T0 + timedelta(minutes=30)).astimezone(ZoneInfo("Europe/Paris"))
    b.components[0].extra[MARKER_PROPERTY] = "x/y/z"
    b.components[0].sequence = 7
    b.components[0].last_modified = T0
    assert content_hash(a) == content_hash(b)
    a.components[0].rrule = ["FREQ=WEEKLY;BYDAY=MO"]
    b.components[0].rrule = ["BYDAY=MO;FREQ=WEEKLY"]
    assert content_hash(a) == content_hash(b)
    b.components[0].summary = "Other"
    assert content_hash(a) != content_hash(b)


def test_busy_block_keeps_time_and_recurrence_drops_details() -> None:
    master = Event(uid="r", start=T0, end=T0 + timedelta(hours=1), summary="Salary talk",
                   description="secret", location="Room 1", rrule=["FREQ=DAILY;COUNT=5"],
                   exdate=[T0 + timedelta(days=2)], organizer=Attendee("boss@x.org"),
                   attendees=[Attendee("me@x.org")], status=EventStatus.TENTATIVE)
    moved = Event(uid="r", start=T0 + timedelta(days=1, hours=3), end=T0 + timedelta(days=1, hours=4),
                  recurrence_id=T0 + timedelta(days=1), summary="Salary talk (moved)")
    block = busy_block(CalendarItem("r", [master, moved]), "Occupied")
    m, o = block.components
    assert (m.summary, m.description, m.location, m.organizer, m.attendees) == ("Occupied", None, None, None, [])
    assert m.classification is Classification.PRIVATE and o.classification is Classification.PRIVATE
    assert (m.start, m.end, m.rrule, m.exdate, m.status) == (master.start, master.end, master.rrule,
                                                              master.exdate, EventStatus.TENTATIVE)
    assert (o.recurrence_id, o.start, o.summary) == (moved.recurrence_id, moved.start, "Occupied")
    assert content_hash(busy_block(block, "Occupied")) == content_hash(block)


def test_a_busy_block_of_what_blocks_nothing_is_cancelled_and_free() -> None:
    """Cancelled, transparent or explicitly free: the block says both, so a platform that keeps
    only a status (an in-house table) or only free/busy (Exchange) still reads it as free."""
    for free in (Event("c", T0, T0 + timedelta(hours=1), status=EventStatus.CANCELLED),
                 Event("t", T0, T0 + timedelta(hours=1), transparent=True),
                 Event("f", T0, T0 + timedelta(hours=1), busy_type=BusyType.FREE)):
        block = busy_block(CalendarItem(free.uid, [free])).components[0]
        assert (block.status, block.transparent) == (EventStatus.CANCELLED, True)
        assert block.effective_busy_type() is BusyType.FREE
    busy = busy_block(CalendarItem("b", [Event("b", T0, T0 + timedelta(hours=1))])).components[0]
    assert (busy.status, busy.transparent) == (EventStatus.CONFIRMED, False)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
       st.integers(0, 48), st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
       st.text(max_size=20))
def test_hash_property_zone_invariant_and_busy_idempotent(start: datetime, hours: int, zone: str, title: str) -> None:
    start = start.replace(tzinfo=UTC)
    a = CalendarItem("u", [Event("u", start, start + timedelta(hours=hours), summary=title)])
    b = CalendarItem("v", [Event("v", start.astimezone(ZoneInfo(zone)),
                                 (start + timedelta(hours=hours)).astimezone(ZoneInfo(zone)), summary=title)])
    assert content_hash(a) == content_hash(b)
    assert synced_hash(busy_block(a), "busy") == synced_hash(a, "busy")


# ---------------------------------------------------------------------------- mirror basics
def test_new_item_is_copied_with_marker_and_never_echoed() -> None:
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    first = w.run()
    assert [type(x).__name__ for x in first.writes] == ["Create"]
    (copy,) = w.platforms["b"].all()
    assert copy.uid == "u1" and copy.marker == "a/cal/" + w.platforms["a"].all()[0].ref.id  # type: ignore[union-attr]
    assert w.run().writes == []


def test_edit_on_either_side_propagates_and_origin_stays_unmarked() -> None:
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.platforms["b"].user_put(item("u1", summary="Moved", hour=11, seq=1))
    result = w.run()
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Update", "a/cal")]
    (origin,) = w.platforms["a"].all()
    assert origin.components[0].summary == "Moved" and origin.marker is None
    assert w.run().writes == []


def test_deletion_propagates_and_a_stale_copy_is_not_resurrected() -> None:
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    stale = w.platforms["b"].all()[0]
    w.platforms["a"].user_delete("u1")
    result = w.run()
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Delete", "b/cal")]
    assert w.platforms["b"].all() == []
    # an offline client pushes the old copy (with its marker) back
    stale.ref = None
    w.platforms["b"].user_put(stale)
    assert [type(x).__name__ for x in w.run().writes] == ["Delete"]
    assert w.platforms["a"].all() == [] and w.platforms["b"].all() == []


@pytest.mark.parametrize("where", ["a", "b"])
def test_an_event_restored_from_the_trash_where_it_was_deleted_comes_back(where: str) -> None:
    """A user deletes an event (on its original's calendar a, or on the copy's b), the deletion
    reaches the other calendar, then the user takes it back out of the trash (the same object at
    the same id, as Nextcloud's trash bin does): that is the user's own doing, so the event is
    live again and copied anew, as a stale copy pushed back where calmesh deleted it (the test
    above) is not. Before, the record could not tell the user's deletion from calmesh's, and the
    restored event was deleted a second time. Deleted again, it goes again everywhere."""
    other = "b" if where == "a" else "a"
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    (trashed,) = w.platforms[where].all()
    w.platforms[where].user_delete("u1")
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", f"{other}/cal")]
    w.platforms[where].user_restore(trashed)
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Create", f"{other}/cal")]
    assert uids(w.platforms["a"]) == uids(w.platforms["b"]) == ["u1"]
    assert w.run().writes == []
    w.platforms[where].user_delete("u1")
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", f"{other}/cal")]
    assert w.platforms["a"].all() == w.platforms["b"].all() == []


def test_a_deletion_and_its_undoing_between_two_runs_are_no_change_and_lose_to_a_deletion_elsewhere() -> None:
    """Deleted on a and taken back out of a's trash before any run saw it gone: a's object is
    the version on record (a new ETag, the same content), no edit. The same event deleted on b
    meanwhile is a deletion of the current version, and wins, as it would had a's user done
    nothing."""
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    (trashed,) = w.platforms["a"].all()
    w.platforms["a"].user_delete("u1")
    w.platforms["b"].user_delete("u1")
    w.platforms["a"].user_restore(trashed)
    result = w.run()
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Delete", "a/cal")]
    assert not any(isinstance(a, Conflict) for a in result.actions)
    assert w.platforms["a"].all() == w.platforms["b"].all() == []


def test_an_event_restored_from_the_trash_gets_its_busy_block_back() -> None:
    """In a busy-time group the same holds: the origin's event taken back out of the trash is
    live again, and its busy block is written again where the deletion had removed it."""
    w = world("a", "b", options=PlanOptions(mode="busy"))
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    (trashed,) = w.platforms["a"].all()
    w.platforms["a"].user_delete("u1")
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", "b/cal")]
    w.platforms["a"].user_restore(trashed)
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Create", "b/cal")]
    (block,) = w.platforms["b"].all()
    assert block.components[0].start == T0 and block.marker is not None
    assert w.run().writes == []


def test_a_copy_calmesh_deleted_stays_deleted_after_the_event_was_restored_and_deleted_again() -> None:
    """The copy calmesh deleted on b (the deletion was a's user's) pushed back there by an offline
    client, after the event was taken out of a's trash and deleted again: a stale copy, deleted
    again (it is calmesh's copy, known by its marker), not a restore. (A bulk-delete guard above
    the three deletions of this one-event calendar: with the default, the third is held.)"""
    w = world("a", "b", options=PlanOptions(delete_floor=5))
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    (trashed,) = w.platforms["a"].all()
    (stale,) = w.platforms["b"].all()
    w.platforms["a"].user_delete("u1")
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", "b/cal")]
    w.platforms["a"].user_restore(trashed)
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Create", "b/cal")]
    w.platforms["a"].user_delete("u1")
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", "b/cal")]
    stale.ref = None
    w.platforms["b"].user_put(stale)
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", "b/cal")]
    assert w.platforms["a"].all() == w.platforms["b"].all() == []


def _deletion_held_for_b_then_edited_there(policy: str) -> World:
    """a deletes while b is down: the run records the deletion and leaves b's copy for later;
    b's user edits that copy before b answers again."""
    w = world("a", "b", options=PlanOptions(conflict=policy))
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.platforms["b"].reachable = False
    w.platforms["a"].user_delete("u1")
    result = w.run()
    assert result.writes == []
    assert [a.reason for a in result.actions if isinstance(a, Skip)] == ["member unreachable; deletion retried next run"]
    (copy,) = w.platforms["b"].all()
    w.platforms["b"].user_put(replace(copy, components=[replace(copy.components[0], summary="Edited", sequence=1)]))
    w.platforms["b"].reachable = True
    return w


def test_an_edit_made_where_a_deletion_had_not_reached_races_it_and_wins() -> None:
    """The planner's side of the agency regression
    ``test_item4_an_edit_made_where_a_deletion_could_not_be_read_is_not_lost``: the recorded
    deletion never saw b's edit, so the two race as if seen in one run; the edit outranks a
    deletion of the version it changed, and comes back to a."""
    w = _deletion_held_for_b_then_edited_there("newest")
    result = w.run()
    (conflict,) = [a for a in result.actions if isinstance(a, Conflict)]
    assert conflict.winner == "b/cal" and "kept the edit" in conflict.resolution
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Create", "a/cal")]
    assert summaries(w.platforms["a"]) == summaries(w.platforms["b"]) == ["Edited"]
    assert w.run().writes == []


def test_a_deletion_by_the_winning_platform_beats_an_edit_it_had_not_reached() -> None:
    """``conflict = "a"``: a's deletion wins the same race, and b's edited copy goes."""
    w = _deletion_held_for_b_then_edited_there("a")
    result = w.run()
    (conflict,) = [a for a in result.actions if isinstance(a, Conflict)]
    assert conflict.winner is None
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Delete", "b/cal")]
    assert w.platforms["a"].all() == w.platforms["b"].all() == []


def test_three_members_edit_reaches_all() -> None:
    w = world("a", "b", "c")
    w.platforms["b"].user_put(item("u1"))
    converge(w)
    assert all(uids(p) == ["u1"] for p in w.platforms.values())
    w.platforms["c"].user_put(item("u1", summary="Retro", seq=1))
    assert sorted(x.target for x in w.run().writes) == ["a/cal", "b/cal"]
    assert {p.all()[0].components[0].summary for p in w.platforms.values()} == {"Retro"}


# ------------------------------------------------------------------------------- conflicts
def _conflicting(policy: str) -> World:
    w = world("a", "b", options=PlanOptions(conflict=policy))
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.platforms["a"].user_put(item("u1", summary="from a", seq=2))
    w.platforms["b"].user_put(item("u1", summary="from b", seq=1))
    return w


def test_conflict_newest_sequence_wins() -> None:
    w = _conflicting("newest")
    result = w.run()
    (conflict,) = [a for a in result.actions if isinstance(a, Conflict)]
    assert conflict.winner == "a/cal"
    assert {p.all()[0].components[0].summary for p in w.platforms.values()} == {"from a"}
    assert w.run().writes == []


def test_conflict_newest_is_the_later_edit_where_a_platform_keeps_no_sequence() -> None:
    """Member b keeps no SEQUENCE (Exchange, an in-house table): its edit reads as SEQUENCE 0
    however recent. An older edit on a, numbered by its CalDAV client, won by SEQUENCE and the
    later edit was lost (found by the agency soak); LAST-MODIFIED now decides."""
    w = world("a", "b", options=PlanOptions(conflict="newest", unsequenced=frozenset({"b/cal"})))
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.platforms["a"].user_put(item("u1", summary="older on a", seq=1, last_modified=T0 + timedelta(minutes=1)))
    w.platforms["b"].user_put(item("u1", summary="later on b", seq=0, last_modified=T0 + timedelta(minutes=2)))
    (conflict,) = [a for a in w.run().actions if isinstance(a, Conflict)]
    assert conflict.winner == "b/cal" and "LAST-MODIFIED" in conflict.resolution
    assert {p.all()[0].components[0].summary for p in w.platforms.values()} == {"later on b"}


def test_conflict_named_platform_wins() -> None:
    w = _conflicting("b")
    w.run()
    assert {p.all()[0].components[0].summary for p in w.platforms.values()} == {"from b"}


def test_conflict_keep_both_loses_nothing() -> None:
    w = _conflicting("keep-both")
    w.run()
    for p in w.platforms.values():
        assert sorted(i.components[0].summary for i in p.all()) == ["from a", "from b"]  # type: ignore[type-var]
    assert w.run().writes == []


@pytest.mark.parametrize(("policy", "survives"), [("newest", True), ("keep-both", True), ("a", False), ("b", True)])
def test_deletion_racing_an_edit_follows_policy(policy: str, survives: bool) -> None:
    w = world("a", "b", options=PlanOptions(conflict=policy))
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.platforms["a"].user_delete("u1")
    w.platforms["b"].user_put(item("u1", summary="edited", seq=1))
    result = w.run()
    assert any(isinstance(a, Conflict) for a in result.actions)
    expected = ["u1"] if survives else []
    assert uids(w.platforms["a"]) == expected and uids(w.platforms["b"]) == expected
    assert w.run().writes == []


# ------------------------------------------------------------------------- guards, directions
def test_unreachable_or_empty_source_never_deletes() -> None:
    w = world("a", "b")
    for n in range(5):
        w.platforms["a"].user_put(item(f"u{n}", hour=9 + n))
    converge(w)
    w.platforms["a"].reachable = False
    result = w.run()
    assert result.writes == [] and any("unreachable" in n for n in result.notices)
    w.platforms["a"].reachable = True
    for n in range(5):
        w.platforms["a"].user_delete(f"u{n}")
    result = w.run()
    assert result.writes == [] and any("listed no items" in n for n in result.notices)
    assert len(w.platforms["b"].all()) == 5


def test_bulk_delete_guard_holds_until_confirmed() -> None:
    w = world("a", "b")
    for n in range(10):
        w.platforms["a"].user_put(item(f"u{n}", hour=n))
    converge(w)
    for n in range(4):
        w.platforms["a"].user_delete(f"u{n}")
    result = w.run()
    assert not any(isinstance(x, Delete) for x in result.writes)
    assert any("held until confirmed" in n for n in result.notices)
    assert len(w.platforms["b"].all()) == 10
    w.full = False  # even with change tokens the held deletions are not forgotten
    assert w.run().writes == []
    w.options = PlanOptions(confirm_deletes=True)
    assert len([x for x in w.run().writes if isinstance(x, Delete)]) == 4
    assert len(w.platforms["b"].all()) == 6


def test_directions() -> None:
    w = world("src:out", "dst:in", "peer")
    w.platforms["src"].user_put(item("s1"))
    w.platforms["dst"].user_put(item("d1"))
    w.platforms["peer"].user_put(item("p1"))
    converge(w)
    assert uids(w.platforms["src"]) == ["s1"]  # out: never written
    assert uids(w.platforms["dst"]) == ["d1", "p1", "s1"]
    assert uids(w.platforms["peer"]) == ["p1", "s1"]  # in: its own items stay home
    # an edit on the receive-only member is drift: restored from the senders
    w.platforms["dst"].user_put(item("s1", summary="scribble", seq=5))
    result = w.run()
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Update", "dst/cal")]
    assert {i.components[0].summary for i in w.platforms["dst"].all() if i.uid == "s1"} == {"Standup"}


@pytest.mark.parametrize("attendees", ["copy", "omit"])
def test_busy_mode_copies_only_time(attendees: str) -> None:
    """Placeholders never carry people, whatever the group's ``attendees`` setting."""
    w = world("a", "b", options=PlanOptions(mode="busy", busy_title="Busy", attendees=attendees))  # type: ignore[arg-type]
    w.platforms["a"].user_put(item("u1", summary="Doctor", location="Clinic",
                                   attendees=[Attendee("x@y.org")]))
    converge(w)
    (block,) = w.platforms["b"].all()
    e = block.components[0]
    assert (e.summary, e.location, e.attendees, e.classification) == ("Busy", None, [], Classification.PRIVATE)
    assert block.uid != "u1" and block.marker is not None
    w.platforms["a"].user_put(item("u1", summary="Dentist"))  # details only: nothing to copy
    assert w.run().writes == []
    w.platforms["a"].user_put(item("u1", hour=14, summary="Dentist"))
    assert [type(x).__name__ for x in w.run().writes] == ["Update"]
    assert w.platforms["b"].all()[0].components[0].start == T0 + timedelta(hours=5)
    # the placeholder is calmesh's: a user edit to it is put back, and it never flows back
    w.platforms["b"].user_put(CalendarItem(block.uid, [Event(block.uid, T0, summary="mine")]))
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Update", "b/cal")]
    assert w.platforms["a"].all()[0].components[0].summary == "Dentist"


def test_placeholder_markers_do_not_say_where_the_busy_time_comes_from() -> None:
    """A placeholder's marker names its origin only by digest (the logical id holds the origin
    calendar's URL and the event's name there), and still does its job: after the records are
    lost it is adopted, not copied again, and once its origin is gone too it is removed."""
    w = world("a", "b", options=PlanOptions(mode="busy"))
    w.platforms["a"].user_put(item("doctor@clinic.example", summary="Doctor"))
    w.platforms["a"].user_put(item("u2", hour=11))
    converge(w)
    block = next(i for i in w.platforms["b"].all() if i.components[0].start == T0)
    assert block.marker is not None and block.marker.startswith("calmesh-busy:")
    assert "a/cal" not in block.marker and "doctor" not in block.marker
    w.state.clear()  # a lost state store: the markers alone must tell the copies
    assert w.run().writes == [] and len(w.platforms["b"].all()) == 2
    w.state.clear()
    w.platforms["a"].user_delete("doctor@clinic.example")
    result = w.run()
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Delete", "b/cal")]
    assert [i.components[0].start for i in w.platforms["b"].all()] == [T0 + timedelta(hours=2)]


def test_an_id_given_again_to_another_item_is_not_the_deleted_one_back() -> None:
    """A table gives a deleted last row's id to the next row (SQLite's rowids): the busy block of
    a new event written there is not the deleted event's block come back, to be deleted again
    "as deleted at a sender" (the agency test found the flip-flop)."""
    w = world("a", "b", options=PlanOptions(mode="busy"))
    w.platforms["b"].row_ids = True
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    first = [i.ref.id for i in w.platforms["b"].all() if i.ref]
    w.platforms["a"].user_delete("u1")
    converge(w)
    w.platforms["a"].user_put(item("u2", hour=11))
    converge(w)
    assert [i.ref.id for i in w.platforms["b"].all() if i.ref] == first  # the same id, given again
    for records in (w.state, dict(reversed(w.state.items()))):  # whichever record the store reads first
        w.state = dict(records)
        assert w.run().writes == []


def test_placeholders_marked_by_an_earlier_version_are_still_recognised() -> None:
    """Placeholders written before markers became opaque carry the logical id itself."""
    w = world("a", "b", options=PlanOptions(mode="busy"))
    original = w.platforms["a"].user_put(item("u1"))
    lid = f"a/cal/{original.id}"
    old = busy_block(item("u1"))
    old = CalendarItem("calmesh-busy-old", [replace(e, uid="calmesh-busy-old", extra={MARKER_PROPERTY: lid})
                                            for e in old.components])
    w.platforms["b"].user_put(old)
    w.run()
    assert uids(w.platforms["b"]) == ["calmesh-busy-old"]
    converge(w)


def test_recurring_master_overrides_and_exdates_travel_together() -> None:
    w = world("a", "b")
    master = Event("r", T0, T0 + timedelta(hours=1), summary="Weekly", rrule=["FREQ=WEEKLY"],
                   exdate=[T0 + timedelta(weeks=2)])
    moved = Event("r", T0 + timedelta(weeks=1, hours=2), T0 + timedelta(weeks=1, hours=3),
                  recurrence_id=T0 + timedelta(weeks=1), summary="Weekly (moved)")
    w.platforms["a"].user_put(CalendarItem("r", [master, moved]))
    converge(w)
    (copy,) = w.platforms["b"].all()
    assert content_hash(copy) == content_hash(w.platforms["a"].all()[0])
    assert len(copy.overrides) == 1 and copy.master is not None and copy.master.exdate == master.exdate


# ----------------------------------------------------------------- first contact, by UID
def test_same_event_already_on_both_calendars_is_paired_not_copied() -> None:
    """An invitation delivered to both calendars of a person before the first sync: one event."""
    w = world("a", "b", "c")
    w.platforms["a"].user_put(item("invite"))
    w.platforms["b"].user_put(item("invite"))
    first = w.run()
    assert [(type(x).__name__, x.target) for x in first.writes] == [("Create", "c/cal")]
    assert [uids(p) for p in w.platforms.values()] == [["invite"]] * 3
    assert w.run().writes == []
    assert len(w.state) == 1
    w.platforms["b"].user_put(item("invite", summary="Moved", hour=11, seq=1))
    assert sorted(x.target for x in w.run().writes) == ["a/cal", "c/cal"]
    assert {p.all()[0].components[0].summary for p in w.platforms.values()} == {"Moved"}


def test_an_invitation_delivered_again_where_its_copy_was_deleted_is_the_same_event() -> None:
    """Found by the agency soak: an invitation in both calendars of a mirror group (one event);
    b's copy is deleted (the group's own run, killed before it recorded that), and the organiser's
    move delivers it again to both calendars, on b as a new object with the same UID. The new
    object is the meeting b's deleted copy held, not a second event: it takes that copy's place.
    It was an event of its own, copied to a, while the moved original was restored to b: each
    calendar held the meeting twice."""
    w = world("a", "b")
    w.platforms["a"].user_put(item("invite"))
    w.platforms["b"].user_put(item("invite"))
    converge(w)
    w.platforms["b"].user_delete("invite")
    w.platforms["a"].user_put(item("invite", summary="Moved", hour=11, seq=1))
    w.platforms["b"].user_put(item("invite", summary="Moved", hour=11, seq=1))
    w.run()
    assert [summaries(p) for p in w.platforms.values()] == [["Moved"], ["Moved"]]
    assert len(w.state) == 1
    assert w.run().writes == []


def test_a_new_revision_at_a_deleted_copys_id_is_an_event_again_and_a_stale_one_is_not() -> None:
    """The agency regression ``test_item2_an_invitation_delivered_again_after_its_deletion_is_not_deleted``
    on the planner: the invitation on a and b is one event; deleted on a, the deletion reaches b.
    The organiser's move delivers it again to both, on a at the id of the deleted copy (CalDAV
    names an object by its UID; here a's ids are given again as SQLite's rowids are). Other
    content at that id is not the deleted copy come back: the two form an event again, nothing is
    deleted. The old content pushed back there afterwards is still the deleted copy."""
    w = world("a", "b")
    w.platforms["a"].row_ids = True
    w.platforms["a"].user_put(item("invite"))
    w.platforms["b"].user_put(item("invite"))
    converge(w)
    (deleted,) = w.platforms["a"].all()
    w.platforms["a"].user_delete("invite")
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", "b/cal")]
    moved = item("invite", summary="Moved", hour=11, seq=1)
    assert w.platforms["a"].user_put(moved).id == deleted.ref.id  # type: ignore[union-attr]
    w.platforms["b"].user_put(moved)
    result = w.run()
    assert not [x for x in result.writes if isinstance(x, Delete)]
    assert [summaries(p) for p in w.platforms.values()] == [["Moved"], ["Moved"]]
    assert w.run().writes == []
    w.platforms["a"].user_delete("invite")
    w.platforms["b"].user_delete("invite")
    w.run()
    deleted.ref = None
    w.platforms["a"].user_put(deleted)  # a client pushes the first deleted copy back, as it was
    assert [(type(x).__name__, x.target) for x in w.run().writes] == [("Delete", "a/cal")]
    assert w.platforms["a"].all() == w.platforms["b"].all() == []


@pytest.mark.parametrize(("policy", "kept"), [("newest", {"from b"}), ("a", {"from a"}),
                                               ("keep-both", {"from a", "from b"})])
def test_same_uid_with_different_content_at_first_contact_is_a_conflict(policy: str, kept: set[str]) -> None:
    w = world("a", "b", options=PlanOptions(conflict=policy))
    w.platforms["a"].user_put(item("u1", summary="from a"))
    w.platforms["b"].user_put(item("u1", summary="from b", seq=1))
    result = w.run()
    assert [type(a).__name__ for a in result.actions if isinstance(a, Conflict)] == ["Conflict"]
    for p in w.platforms.values():
        assert {i.components[0].summary for i in p.all()} == kept
        assert len(p.all()) == len(kept)
    assert w.run().writes == []


def test_member_added_later_with_the_event_already_there_adopts_it() -> None:
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.members.append(Member("c", "cal"))
    from .memory_connector import MemoryConnector

    w.platforms["c"] = MemoryConnector("c")
    w.platforms["c"].user_put(item("u1"))
    assert w.run().writes == []
    (record,) = w.state.values()
    assert sorted(record.copies) == ["a/cal", "b/cal", "c/cal"]
    w.platforms["c"].user_delete("u1")
    assert sorted((type(x).__name__, x.target) for x in w.run().writes) == [("Delete", "a/cal"), ("Delete", "b/cal")]


def test_receive_only_member_does_not_become_the_origin_of_a_paired_event() -> None:
    w = world("dst:in", "src")
    w.platforms["dst"].user_put(item("u1", summary="stale"))
    w.platforms["src"].user_put(item("u1", summary="fresh"))
    w.run()
    (record,) = w.state.values()
    assert record.origin == "src/cal"
    assert summaries(w.platforms["dst"]) == ["fresh"]


def test_busy_mode_never_pairs_by_uid() -> None:
    w = world("a", "b", options=PlanOptions(mode="busy"))
    w.platforms["a"].user_put(item("u1", summary="a's"))
    w.platforms["b"].user_put(item("u1", hour=14, summary="b's"))
    converge(w)
    assert len(w.platforms["a"].all()) == 2 and len(w.platforms["b"].all()) == 2


# ------------------------------------------------------------------- loops, crashes, bad data
def test_second_calmesh_with_empty_state_adopts_copies() -> None:
    w = world("a", "b")
    for n in range(3):
        w.platforms["a"].user_put(item(f"a{n}", hour=n))
        w.platforms["b"].user_put(item(f"b{n}", hour=n + 5))
    converge(w)
    fresh = World(w.members, w.platforms, w.options)
    assert fresh.run().writes == []
    assert len(w.platforms["a"].all()) == 6 and len(w.platforms["b"].all()) == 6


@pytest.mark.parametrize("full", [True, False])
def test_killed_after_any_write_the_next_run_completes_without_duplicates(full: bool) -> None:
    def scenario() -> World:
        w = world("a", "b", "c", full=full)
        w.platforms["a"].user_put(item("keep"))
        w.platforms["a"].user_put(item("gone", hour=10))
        w.platforms["b"].user_put(item("edit", hour=11))
        converge(w)
        w.platforms["a"].user_put(item("new", hour=12))
        w.platforms["b"].user_delete("gone")
        w.platforms["c"].user_put(item("edit", hour=11, summary="edited", seq=1))
        w.platforms["b"].user_put(item("new-b", hour=13))
        return w

    total = len(scenario().run().writes)
    assert total >= 8
    expected = None
    for k in range(total + 1):
        w = scenario()
        w.run(stop_after_writes=k)
        w.run()
        assert w.run().writes == []
        snapshot = {name: sorted((i.uid, i.components[0].summary) for i in p.all())  # type: ignore[misc]
                    for name, p in w.platforms.items()}
        expected = expected or snapshot
        assert snapshot == expected, k
    assert expected is not None and all(len(v) == 4 for v in expected.values())


def test_bad_item_is_quarantined_and_the_rest_syncs() -> None:
    w = world("a", "b")
    w.platforms["a"].user_put(item("ok"))
    bad = item("bad")
    bad.components[0].end = T0 - timedelta(hours=1)
    w.platforms["a"].user_put(bad)
    result = w.run()
    assert [(q.uid, "ends before" in q.reason) for q in result.quarantine] == [("bad", True)]
    assert uids(w.platforms["b"]) == ["ok"]


def test_failed_write_is_retried_by_the_next_run() -> None:
    w = world("a", "b", full=False)
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.platforms["a"].user_put(item("u1", summary="v2", seq=1))
    w.platforms["b"].fail_next = PreconditionFailed
    w.run()
    assert w.platforms["b"].all()[0].components[0].summary == "Standup"
    w.run()
    assert w.platforms["b"].all()[0].components[0].summary == "v2"
    assert w.run().writes == []


def test_expired_token_falls_back_to_full_listing() -> None:
    w = world("a", "b", full=False)
    w.platforms["a"].user_put(item("u1"))
    w.platforms["a"].user_put(item("u2", hour=10))
    converge(w)
    w.platforms["a"].user_delete("u1")
    w.platforms["a"].compact()
    w.run()
    assert uids(w.platforms["b"]) == ["u2"]


def test_duplicate_marked_copy_is_removed() -> None:
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    twin = w.platforms["b"].all()[0]
    twin.ref, twin.uid = None, "u1-twin"
    for e in twin.components:
        e.uid = "u1-twin"
    w.platforms["b"].user_put(twin)
    result = w.run()
    assert [(type(x).__name__, "duplicate" in x.reason) for x in result.writes] == [("Delete", True)]
    assert uids(w.platforms["b"]) == ["u1"]


def test_pure_plan_needs_the_content_to_repair_a_member_added_later() -> None:
    w = world("a", "b", full=False)
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    w.members.append(Member("c", "cal"))
    from .memory_connector import MemoryConnector

    w.platforms["c"] = MemoryConnector("c")
    obs = {m.key: w.observe(m, False) for m in w.members}
    first = plan(w.members, w.state, obs, w.options)
    (origin_copy,) = w.platforms["a"].all()
    assert first.needs_items == {"a/cal": {origin_copy.ref.id}} and not first.needs_listing  # type: ignore[union-attr]
    w.run()
    assert uids(w.platforms["c"]) == ["u1"]


def test_items_listed_unchanged_without_content_count_as_present_and_are_fetched_when_needed() -> None:
    """A listing that skipped items at their recorded ETag (``Observation.unchanged``): they are
    neither deleted nor changed; a plan that needs the content of one asks for that item."""
    w = world("a", "b")
    w.platforms["a"].user_put(item("u1"))
    converge(w)
    refs = {p: [i.ref for i in w.platforms[p].all()] for p in ("a", "b")}
    obs = {f"{p}/cal": Observation(f"{p}/cal", [], complete=True, unchanged=refs[p]) for p in ("a", "b")}
    quiet = plan(w.members, w.state, obs, w.options)
    assert quiet.writes == [] and quiet.notices == [] and not quiet.incomplete
    w.members.append(Member("c", "cal"))
    obs["c/cal"] = Observation("c/cal", [], complete=True)
    assert plan(w.members, w.state, obs, w.options).needs_items == {"a/cal": {refs["a"][0].id}}  # type: ignore[union-attr]


def _dirty_everywhere(uid: str = "u1") -> tuple[list[Member], ItemState]:
    """Members a, b, c and one item on all three whose record a failed write left dirty."""
    ms = [Member(k, "cal") for k in "abc"]
    h = content_hash(item(uid))
    copies = {f"{k}/cal": CopyState(f"{k}/cal", f"{k}-1", uid, '"1"', h) for k in "abc"}
    return ms, ItemState("a/cal/a-1", "a/cal", h, copies, dirty=True)


def test_a_dirty_record_is_read_again_by_its_copies_ids_not_by_listing_every_member() -> None:
    """A run's failed write leaves the record as it was, dirty, and the run's change tokens move
    on: what the feeds said of the item is not said again. The next run reads each copy on
    record again by its id, on the members read through their feeds (b is down), instead of
    listing them in full; once read, the item is decided as usual."""
    ms, rec = _dirty_everywhere()
    state = {rec.logical_id: rec}
    feeds = {"a/cal": Observation("a/cal"), "b/cal": Observation.unreachable("b/cal"), "c/cal": Observation("c/cal")}
    first = plan(ms, state, feeds)
    assert first.needs_items == {"a/cal": {"a-1"}, "c/cal": {"c-1"}} and not first.needs_listing
    edited = _with_ref(item("u1", summary="v2", seq=1), "cal", "a-1", '"2"')  # the edit the failed run saw
    feeds["a/cal"] = Observation("a/cal", [edited])
    feeds["c/cal"] = Observation("c/cal", [_with_ref(item("u1"), "cal", "c-1")])
    second = plan(ms, state, feeds)
    assert not second.incomplete
    assert [(type(w).__name__, w.target) for w in second.writes] == [("Update", "c/cal")]
    assert any(isinstance(a, Skip) and a.member == "b/cal" for a in second.actions)
    (record,) = [r for b in second.batches for r in b.records.values()]
    assert record.dirty  # still: b's copy waits for b
    # a copy gone when read again by its id is gone, as a feed would have said
    feeds["c/cal"] = Observation("c/cal", deleted=[ItemRef("cal", "c-1")])
    assert not plan(ms, state, feeds).incomplete


def test_a_dirty_record_naming_no_copy_of_its_own_on_a_member_has_it_listed_in_full() -> None:
    """Where the record names no copy on a member, or only a pending one (its write may have
    landed, at its planned id or at one the server chose: only a full listing tells, see
    ``CopyState.pending``), reading by id cannot settle it: that member is listed in full."""
    ms, rec = _dirty_everywhere()
    feeds = {m.key: Observation(m.key) for m in ms}
    pending = replace(rec.copies["c/cal"], pending=True, etag=None, item_id=PLACEHOLDER + "a/cal/a-1")
    for copies in ({**rec.copies, "c/cal": pending}, {k: v for k, v in rec.copies.items() if k != "c/cal"}):
        asked = plan(ms, {rec.logical_id: replace(rec, copies=copies)}, feeds)
        assert asked.needs_listing == {"c/cal"} and asked.needs_items == {"a/cal": {"a-1"}, "b/cal": {"b-1"}}
    # c never receives this item: nothing to read there; the origin is read whatever it receives
    ms[2] = Member("c", "cal", "out")
    asked = plan(ms, {rec.logical_id: replace(rec, copies={k: v for k, v in rec.copies.items() if k != "c/cal"})},
                 feeds)
    assert not asked.needs_listing and asked.needs_items == {"a/cal": {"a-1"}, "b/cal": {"b-1"}}
    placeholder = ItemState(rec.logical_id, "a/cal", "", {}, dirty=True)  # a new item's failed batch
    assert plan(ms, {rec.logical_id: placeholder}, feeds).needs_listing == {"a/cal", "b/cal"}


def test_unknown_member_observation_counts_as_unreachable() -> None:
    ms = [Member("a", "cal"), Member("b", "cal")]
    obs = {"a/cal": Observation("a/cal", [_with_ref(item("u1"), "a", "x")], complete=True)}
    result = plan(ms, {}, obs)
    assert [type(a) for a in result.actions] == [Skip]
    assert any("b/cal: unreachable" in n for n in result.notices)


@pytest.mark.parametrize("mode", ["mirror", "busy"])
def test_a_member_leaving_the_group_deletes_nothing(mode: str) -> None:
    w = world("a", "b", "c", options=PlanOptions(mode=mode))  # type: ignore[arg-type]
    w.platforms["a"].user_put(item("u1"))
    w.platforms["c"].user_put(item("u2", hour=10))
    converge(w)
    w.members.pop(0)  # a leaves
    assert w.run().writes == []
    assert len(w.platforms["b"].all()) == 2 and len(w.platforms["c"].all()) == 2


def test_same_calendar_twice_is_rejected() -> None:
    with pytest.raises(ValueError, match="twice"):
        plan([Member("a", "cal"), Member("a", "cal")], {}, {})


def _with_ref(it: CalendarItem, cal: str, item_id: str, etag: str = '"1"') -> CalendarItem:
    it.ref = ItemRef(cal, item_id, etag)
    return it


# ------------------------------------------------------------------------------ properties
OPS = st.lists(
    st.tuples(st.sampled_from(["put", "edit", "delete", "run", "crash", "fail", "down", "up"]),
              st.integers(0, 2), st.integers(0, 3)),
    max_size=25,
)
SPECS = st.sampled_from([("a", "b"), ("a", "b:in"), ("a:out", "b", "c"), ("a", "b", "c:in")])
MODES = st.sampled_from(["mirror", "busy"])
POLICIES = st.sampled_from(["newest", "keep-both", "a", "b"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS, MODES, POLICIES, st.booleans(), OPS)
def test_property_random_edits_converge_and_respect_guards(
    specs: tuple[str, ...], mode: str, policy: str, full: bool, ops: list[tuple[str, int, int]],
) -> None:
    w = world(*specs, options=PlanOptions(mode=mode, conflict=policy, confirm_deletes=True), full=full)  # type: ignore[arg-type]
    names = [m.platform for m in w.members]
    outs = {m.key for m in w.members if m.direction == "out"}
    version = 0
    for op, who, which in ops:
        conn = w.platforms[names[who % len(names)]]
        if op == "run":
            down = {m.key for m in w.members if not w.platforms[m.platform].reachable}
            result = w.run()
            for action in result.writes:
                assert action.target not in outs, "wrote to an out-only member"
                assert action.target not in down, "wrote to an unreachable member"
        elif op == "crash":
            w.run(stop_after_writes=which)
        elif op == "fail":
            conn.fail_next = PreconditionFailed if which % 2 else InvalidDataError
        elif op == "down":
            conn.reachable = False
        elif op == "up":
            conn.reachable = True
        elif op == "delete":
            mine = [i.uid for i in conn.all()]
            if mine:
                conn.user_delete(mine[which % len(mine)])
        elif op == "edit":
            mine = conn.all()
            if mine:
                version += 1
                old = mine[which % len(mine)]
                new = item(old.uid, hour=which + 9, summary=f"v{version}", seq=version)
                new.components[0].extra = dict(old.components[0].extra)
                conn.user_put(new)
        else:
            version += 1
            conn.user_put(item(f"{conn.name}-{which}-{version}", hour=which + 9, summary=f"v{version}"))
    for conn in w.platforms.values():
        conn.reachable, conn.fail_next = True, None
    w.run()
    w.run()
    assert w.run().writes == [], "a converged group planned more writes"
    _assert_converged(w)


def _assert_converged(w: World) -> None:
    """Every live logical item sits once, with the agreed content, on every member receiving it,
    and no marked copy exists that the state does not know (no duplicates)."""
    tracked = {(k, c.item_id) for rec in w.state.values() for k, c in rec.copies.items() if not c.deleted}
    for m in w.members:
        for found in w.platforms[m.platform].all():
            assert found.marker is None or (m.key, found.ref.id) in tracked, f"untracked copy on {m.key}"  # type: ignore[union-attr]
    for rec in w.state.values():
        if rec.deleted:
            assert all(rec.live(m.key) is None for m in w.members if m.direction != "out")
            continue
        for m in w.members:
            receives = m.direction != "out" and (w.options.mode == "mirror" or m.key != rec.origin)
            if not receives:
                continue
            copy = rec.live(m.key)
            assert copy is not None, f"{rec.logical_id} missing on {m.key}"
            (actual,) = [i for i in w.platforms[m.platform].all() if i.ref.id == copy.item_id]  # type: ignore[union-attr]
            assert synced_hash(actual, w.options.mode) == rec.content_hash


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.sampled_from(["unreachable", "empty"]), MODES)
def test_property_lost_source_never_yields_deletes(n: int, how: str, mode: str) -> None:
    """An empty listing counts as lost only above ``delete_floor`` items: emptying a calendar
    of one or two events is believable, and those deletions do propagate."""
    assume(how == "unreachable" or n > PlanOptions().delete_floor)
    w = world("a", "b", options=PlanOptions(mode=mode))  # type: ignore[arg-type]
    for k in range(n):
        w.platforms["a"].user_put(item(f"u{k}", hour=k))
    converge(w)
    ms = w.members
    obs = {"b/cal": w.observe(ms[1], True),
           "a/cal": Observation.unreachable("a/cal") if how == "unreachable" else Observation("a/cal", [], complete=True)}
    result = plan(ms, w.state, obs, w.options)
    assert result.writes == []


# ------------------------------------------------------------- meetings organised by others
BOSS, ME, PEER = "boss@x.org", "me@x.org", "peer@x.org"


def bosses_meeting(uid: str = "m1", hour: int = 9) -> CalendarItem:
    return item(uid, hour, "Pricing", organizer=Attendee(BOSS, "Boss", PartStat.ACCEPTED, Role.CHAIR),
                attendees=[Attendee(ME, partstat=PartStat.ACCEPTED),
                           Attendee(PEER, partstat=PartStat.TENTATIVE, role=Role.OPTIONAL)])


class OwnerOrganises(MemoryConnector):
    """A platform that reads back every meeting as organised by the calendar's owner, with every
    answer reset (what Exchange and Google do to a meeting calmesh writes there) and, with
    ``rewrites_location``, one synced field spelled its own way (a re-serialising server)."""

    def __init__(self, name: str, rewrites_location: bool = False) -> None:
        super().__init__(name)
        self.rewrites_location = rewrites_location

    def _out(self, calendar: str, item_id: str) -> CalendarItem:
        out = super()._out(calendar, item_id)
        for n, e in enumerate(out.components):
            if e.attendees:
                e = replace(e, organizer=Attendee(ME, partstat=PartStat.ACCEPTED, role=Role.CHAIR),
                            attendees=[replace(a, partstat=PartStat.NEEDS_ACTION) for a in e.attendees])
            if self.rewrites_location:
                e = replace(e, location=(e.location or "") + " (room)")
            out.components[n] = e
        return out


def imposing_world(full: bool, rewrites_location: bool = False,
                   options: PlanOptions = PlanOptions()) -> tuple[World, MemoryConnector, MemoryConnector]:
    ms = members("a", "b")
    a, b = MemoryConnector("a"), OwnerOrganises("b", rewrites_location)
    return World(ms, {"a": a, "b": b}, options, full=full), a, b


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([None, BOSS, ME]), st.lists(st.sampled_from(list(PartStat)), min_size=2, max_size=2))
def test_hash_ignores_scheduling_state_not_who_attends(organizer: str | None, answers: list[PartStat]) -> None:
    """ORGANIZER and PARTSTAT are each calendar's scheduling state (platforms impose their own on
    a copy); the attendee list is content."""
    reference = bosses_meeting()
    other = bosses_meeting()
    event = other.components[0]
    event.organizer = Attendee(organizer) if organizer else None
    event.attendees = [replace(a, partstat=p) for a, p in zip(event.attendees, answers, strict=True)]
    assert content_hash(other) == content_hash(reference)
    merged = with_scheduling(other, reference)
    assert content_hash(merged) == content_hash(reference)
    assert merged.components[0].organizer == reference.components[0].organizer
    assert merged.components[0].attendees == reference.components[0].attendees
    event.attendees = [*event.attendees, Attendee("new@x.org")]
    assert content_hash(other) != content_hash(reference)
    event.attendees = [replace(event.attendees[0], role=Role.OPTIONAL), *event.attendees[1:2]]
    assert content_hash(other) != content_hash(reference)


@pytest.mark.parametrize("full", [True, False])
def test_meeting_organised_by_someone_else_is_not_rewritten_and_keeps_its_organizer(full: bool) -> None:
    """``attendees = "copy"``: the copy is a meeting its platform re-organises."""
    w, a, b = imposing_world(full, options=PlanOptions(attendees="copy"))
    a.user_put(bosses_meeting())
    w.run()
    assert (a.writes, b.writes) == (0, 1)
    for _ in range(3):
        assert w.run().writes == []
    # an edit on the copy crosses, but the copy's organizer and answers do not
    [copy] = b.all()
    b.user_put(CalendarItem(copy.uid, [replace(copy.components[0], start=T0 + timedelta(hours=5),
                                               end=T0 + timedelta(hours=6), sequence=1)]))
    w.run()
    [original] = a.all()
    event = original.components[0]
    assert (as_utc(event.start), a.writes) == (T0 + timedelta(hours=5), 1)
    assert event.organizer == Attendee(BOSS, "Boss", PartStat.ACCEPTED, Role.CHAIR)
    assert [(x.email, x.partstat) for x in event.attendees] == [(ME, PartStat.ACCEPTED), (PEER, PartStat.TENTATIVE)]
    assert w.run().writes == [] and w.run().writes == []


def test_recorded_version_keeps_its_recorded_hash_on_every_later_run() -> None:
    """A copy read back with a synced field spelled differently, ETag unchanged since calmesh
    wrote it: its recorded hash counts on this run and on every later one (it used to be
    replaced by the read-back's hash after one run, and the next run "restored" the copy)."""
    w, a, b = imposing_world(True, rewrites_location=True)
    a.user_put(item("u1", location="HQ"))
    w.run()
    for _ in range(3):
        assert w.run().writes == []
    assert b.writes == 1


# ------------------------------------------------------------------ attendees = "omit"
OMIT = PlanOptions(attendees="omit")


def test_omitted_people_are_not_content() -> None:
    """With people omitted, a plain copy hashes like its meeting original, whatever either
    says of organizer or attendees; everything else still counts. ``with_scheduling(..., "omit")``
    puts the reference's people back whole, override by override."""
    original = bosses_meeting()
    plain = CalendarItem("m1", [replace(original.components[0], organizer=None, attendees=[])])
    assert synced_hash(plain, "mirror", attendees="omit") == synced_hash(original, "mirror", attendees="omit")
    assert synced_hash(plain, "mirror", attendees="copy") != synced_hash(original, "mirror", attendees="copy")
    moved = CalendarItem("m1", [replace(plain.components[0], start=T0 + timedelta(hours=1))])
    assert synced_hash(moved, "mirror", attendees="omit") != synced_hash(original, "mirror", attendees="omit")
    override = replace(moved.components[0], recurrence_id=T0 + timedelta(days=7))
    back = with_scheduling(CalendarItem("m1", [moved.components[0], override]), original, "omit")
    assert all((e.organizer, e.attendees) == (original.components[0].organizer, original.components[0].attendees)
               for e in back.components)
    assert back.components[0].start == T0 + timedelta(hours=1)
    assert synced_hash(original, "busy", attendees="omit") == synced_hash(original, "busy", attendees="copy")


def people_of(conn: MemoryConnector) -> list[tuple[str | None, list[tuple[str, PartStat, Role]]]]:
    return [(e.organizer.email if e.organizer else None, [(x.email, x.partstat, x.role) for x in e.attendees])
            for i in conn.all() for e in i.components]


@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("origin_side", ["a", "b"])
def test_omitted_people_stay_on_the_original_while_edits_cross_both_ways(full: bool, origin_side: str) -> None:
    """The copy of a meeting is a plain event; re-runs write nothing; an edit on the copy is
    written back onto the original with the original's organizer, attendees and answers, also
    when the original was not read that run (change feed: it is listed first); an edit on the
    original reaches the copy without people; answers changing on the original are no change."""
    w, a, b = imposing_world(full, options=OMIT)
    origin, copy_side = (a, b) if origin_side == "a" else (b, a)
    origin.user_put(bosses_meeting())
    people = people_of(origin)
    w.run()
    assert people_of(copy_side) == [(None, [])]
    assert w.run().writes == [] and w.run().writes == []

    [copy] = copy_side.all()
    copy_side.user_put(CalendarItem(copy.uid, [replace(copy.components[0], start=T0 + timedelta(hours=5),
                                                       end=T0 + timedelta(hours=6), summary="Moved", sequence=1)]))
    result = w.run()
    assert [(type(x).__name__, x.target) for x in result.writes] == [("Update", f"{origin_side}/cal")]
    [original] = origin.all()
    assert (as_utc(original.components[0].start), original.components[0].summary) == (T0 + timedelta(hours=5), "Moved")
    assert people_of(origin) == people
    assert original.marker is None
    assert w.run().writes == []

    answered = replace(original.components[0], attendees=[replace(x, partstat=PartStat.DECLINED)
                                                           for x in original.components[0].attendees])
    origin.user_put(CalendarItem(original.uid, [answered]))
    assert w.run().writes == []
    origin.user_put(CalendarItem(original.uid, [replace(answered, summary="Renamed", sequence=2)]))
    assert [x.target for x in w.run().writes] == [f"{'b' if origin_side == 'a' else 'a'}/cal"]
    assert [i.components[0].summary for i in copy_side.all()] == ["Renamed"]
    assert people_of(copy_side) == [(None, [])]
    assert w.run().writes == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(full=st.booleans(),
       steps=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["time", "title", "people"])),
                      min_size=1, max_size=6))
def test_omitted_people_property(full: bool, steps: list[tuple[str, str]]) -> None:
    """Any sequence of edits on either side: calmesh never writes people onto the copy, the
    original keeps the people last set on it (people set on the copy never reach it), the
    other fields agree after each run, and a re-run writes nothing."""
    w, a, b = imposing_world(full, options=OMIT)
    a.user_put(bosses_meeting())
    assert people_of(b) == [] and [x.target for x in w.run().writes] == ["b/cal"]
    expected = people_of(a)
    assert people_of(b) == [(None, [])]
    for n, (side, kind) in enumerate(steps, start=1):
        conn = a if side == "a" else b
        [current] = conn.all()
        event = current.components[0]
        if kind == "time":
            event = replace(event, start=T0 + timedelta(hours=n), end=T0 + timedelta(hours=n, minutes=30))
        elif kind == "title":
            event = replace(event, summary=f"title {n}")
        else:
            event = replace(event, organizer=Attendee(f"o{n}@x.org"), attendees=[Attendee(f"p{n}@x.org")])
        conn.user_put(CalendarItem(current.uid, [replace(event, sequence=event.sequence + 1)]))
        if side == "a" and kind == "people":
            expected = people_of(a)
        to_copy = [x.item for x in w.run().writes if x.target == "b/cal" and not isinstance(x, Delete)]
        assert all((e.organizer, e.attendees) == (None, []) for i in to_copy for e in i.components)
        assert w.run().writes == []
        [orig], [copy] = a.all(), b.all()
        assert people_of(a) == expected
        assert (as_utc(orig.components[0].start), orig.components[0].summary) == \
               (as_utc(copy.components[0].start), copy.components[0].summary)


@pytest.mark.parametrize("full", [True, False])
def test_switching_a_group_to_omit_rewrites_nothing_until_an_event_changes(full: bool) -> None:
    """docs/sync.md, "Attendees": copies written under "copy" keep their people until their
    event next changes; then the copy loses them and the original keeps them."""
    w, a, b = imposing_world(full, options=PlanOptions(attendees="copy"))
    a.user_put(bosses_meeting())
    converge(w)
    people = people_of(a)
    w.options = OMIT
    assert w.run().writes == []
    assert people_of(b)[0][1] != []
    [original] = a.all()
    a.user_put(CalendarItem(original.uid, [replace(original.components[0], summary="Renamed", sequence=1)]))
    assert [x.target for x in w.run().writes] == ["b/cal"]
    assert people_of(b) == [(None, [])] and people_of(a) == people
    assert w.run().writes == []


def test_keep_both_fork_of_an_original_meeting_carries_no_people() -> None:
    """A conflict under ``keep-both`` where the original's version loses: the losing version
    becomes a new event everywhere, as a plain event like any copy; the winner is written onto
    the original with the original's people."""
    w, a, b = imposing_world(True, options=PlanOptions(attendees="omit", conflict="keep-both"))
    a.user_put(bosses_meeting())
    converge(w)
    people = people_of(a)
    [original], [copy] = a.all(), b.all()
    a.user_put(CalendarItem(original.uid, [replace(original.components[0], summary="on a", sequence=1)]))
    b.user_put(CalendarItem(copy.uid, [replace(copy.components[0], summary="on b", sequence=2)]))
    assert any(isinstance(x, Conflict) for x in w.run().actions)
    converge(w)
    assert summaries(a) == summaries(b) == ["on a", "on b"]
    assert people_of(b) == [(None, []), (None, [])]
    on_a = {i.components[0].summary: (i.components[0].organizer, i.components[0].attendees) for i in a.all()}
    assert on_a["on a"] == (None, [])  # the fork
    assert [(x.email, x.partstat, x.role) for x in on_a["on b"][1]] == people[0][1]
    assert on_a["on b"][0] is not None and on_a["on b"][0].email == BOSS


# ----------------------------------------------------- booking markers (issue 12, item 2)
def invitation(uid: str, marker: str) -> CalendarItem:
    """An attendee's copy as ``calmesh book`` writes it: the organiser's UID and calmesh's marker."""
    copy = item(uid)
    copy.components[0].extra[MARKER_PROPERTY] = marker
    return copy


@pytest.mark.parametrize("mode", ["mirror", "busy"])
@pytest.mark.parametrize("names", ["item id", "UID"])
def test_a_booked_invitation_is_a_copy_of_the_organisers_item(mode: str, names: str) -> None:
    """The marker names the organiser's item by its id (as booking writes it now) or by its UID
    (as booking wrote it before identities were recorded): either way it is that item's copy,
    never an orphan to delete nor a new event to copy back."""
    w = world("a", "b", options=PlanOptions(mode=mode))  # type: ignore[arg-type]
    ref = w.platforms["a"].user_put(item("m1"))
    w.platforms["b"].user_put(invitation("m1", f"a/cal/{ref.id if names == 'item id' else 'm1'}"))
    first = w.run()
    assert first.writes == [], first.writes
    assert uids(w.platforms["a"]) == uids(w.platforms["b"]) == ["m1"]
    assert w.run().writes == []


def test_a_marker_naming_a_calendar_outside_the_group_is_never_grounds_to_delete() -> None:
    w = world("a", "b")
    w.platforms["b"].user_put(invitation("m1", "elsewhere/cal/some-item"))
    result = w.run()
    assert not [x for x in result.writes if isinstance(x, Delete)]
    assert uids(w.platforms["b"]) == ["m1"]


def test_a_marker_maps_to_the_logical_id_recorded_for_its_location() -> None:
    """Items paired by UID are named after the first member's copy; an invitation (on a calendar
    that joins the group later) whose marker names the other copy's location joins that same
    logical item instead of being taken for the copy of a deleted one."""
    w = world("a", "b")
    w.platforms["a"].user_put(item("m1"))
    ref_b = w.platforms["b"].user_put(item("m1"))
    converge(w)
    (lid,) = w.state
    assert lid.startswith("a/")
    bigger = World(members("a", "b", "c"), {**w.platforms, "c": MemoryConnector("c")}, state=w.state)
    bigger.platforms["c"].user_put(invitation("m1", f"b/cal/{ref_b.id}"))
    result = bigger.run()
    assert result.writes == [], result.writes
    assert set(bigger.state) == {lid} and set(bigger.state[lid].copies) == {"a/cal", "b/cal", "c/cal"}


@pytest.mark.parametrize("landed", [False, True])
def test_an_invitation_takes_the_place_of_a_killed_runs_pending_copy(landed: bool) -> None:
    """A killed run left a copy of ``m1`` pending on b (at a server-chosen id: a placeholder) and
    its record dirty; meanwhile b got its own invitation of ``m1``. The invitation is that
    meeting on b: it is adopted, never written beside (found by the agency soak). Had the copy
    landed before the kill, the copy goes and the invitation stays."""
    a_item, b_item = _with_ref(item("m1"), "cal", "a1"), _with_ref(item("m1"), "cal", "b1")
    lid, agreed = "a/cal/a1", content_hash(a_item)
    pending = CopyState("b/cal", PLACEHOLDER + lid, "m1", None, agreed, marker=lid, pending=True,
                        evidence=T0.isoformat())
    rec = ItemState(lid, "a/cal", agreed, {"a/cal": CopyState("a/cal", "a1", "m1", '"1"', agreed),
                                           "b/cal": pending}, dirty=True)
    on_b = [b_item]
    if landed:
        copy = _with_ref(item("m1"), "cal", "b0")
        copy.components[0].extra[MARKER_PROPERTY] = lid
        on_b.append(copy)
    result = plan([Member("a", "cal"), Member("b", "cal")], {lid: rec},
                  {"a/cal": Observation("a/cal", [a_item], complete=True),
                   "b/cal": Observation("b/cal", on_b, complete=True)})
    assert [(type(w).__name__, w.target) for w in result.writes] == ([("Delete", "b/cal")] if landed else [])
    if landed:
        assert result.writes[0].ref.id == "b0"  # type: ignore[union-attr]
    (batch,) = result.batches
    kept = batch.records[lid].copies["b/cal"]
    assert (kept.item_id, kept.pending) == ("b1", False)


@pytest.mark.parametrize("full", [True, False])
def test_an_attendees_deletion_waits_while_the_organisers_calendar_cannot_be_read(full: bool) -> None:
    """The boss's meeting, on the boss's calendar (a), copied to mine (b) and to the peer's (c).
    The peer deletes their copy while a cannot be read: who organises the meeting is unknown, so
    the deletion is neither spread as a cancellation (it used to delete my copy, then the boss's
    original once a was back) nor undone; the item waits, dirty. Once a is read again, the
    peer's deletion stays theirs and my copy stays."""
    ms = [Member("a", "cal", owner=BOSS), Member("b", "cal", owner=ME), Member("c", "cal", owner=PEER)]
    conns = {m.platform: MemoryConnector(m.platform) for m in ms}
    w = World(ms, conns, full=full)
    conns["a"].user_put(bosses_meeting())
    converge(w)
    conns["c"].user_delete("m1")
    conns["a"].reachable = False
    for _ in range(2):
        result = w.run()
        assert not [x for x in result.writes if isinstance(x, Delete)], result.writes
        assert [x.reason for x in result.actions if isinstance(x, Skip) and x.member == "a/cal"] == [
            "the meeting's original cannot be read now, so its organiser is unknown; decided when it can"]
        [record] = w.state.values()
        assert record.dirty
    conns["a"].reachable = True
    result = w.run()
    assert result.writes == [] and [n for n in result.notices if "deleted their copy" in n]
    converge(w)
    assert (uids(conns["a"]), uids(conns["b"]), uids(conns["c"])) == (["m1"], ["m1"], [])


@pytest.mark.parametrize("mode", ["mirror", "busy"])
def test_an_invitation_its_owner_deleted_before_the_first_run_is_not_written_back(mode: str) -> None:
    """calmesh delivered ``m1``'s invitation to a and b when it booked it; b's owner deleted
    theirs before the group's first run: neither a copy nor a busy block of a's goes to b."""
    a_item = _with_ref(item("m1", organizer=Attendee("boss@x.org"), attendees=[Attendee("a@x.org")]), "cal", "a1")
    observations = {"a/cal": Observation("a/cal", [a_item], complete=True),
                    "b/cal": Observation("b/cal", [], complete=True)}
    members = [Member("a", "cal"), Member("b", "cal")]
    result = plan(members, {}, observations, PlanOptions(mode=mode), invited={"m1": frozenset({"a/cal", "b/cal"})})
    assert result.writes == []
    assert any("b/cal: the invitation to meeting m1" in n for n in result.notices)
    assert [(type(w).__name__, w.target) for w in plan(members, {}, observations, PlanOptions(mode=mode)).writes] == [
        ("Create", "b/cal")]


def test_a_copy_a_killed_run_landed_is_not_an_edit_racing_the_originals_deletion() -> None:
    """A killed run's copy of ``m1`` landed on b at an id the server chose (recorded pending at a
    placeholder); then ``m1`` was deleted on a. The landed copy is the run's own write, not an
    edit racing the deletion: it is deleted, and the original is not written back (found by the
    agency soak)."""
    a_item = _with_ref(item("m1"), "cal", "a1")
    lid, agreed = "a/cal/a1", content_hash(a_item)
    pending = CopyState("b/cal", PLACEHOLDER + lid, "m1", None, agreed, marker=lid, pending=True,
                        evidence=T0.isoformat())
    rec = ItemState(lid, "a/cal", agreed, {"a/cal": CopyState("a/cal", "a1", "m1", '"1"', agreed),
                                           "b/cal": pending}, dirty=True)
    copy = _with_ref(item("m1"), "cal", "b0")
    copy.components[0].extra[MARKER_PROPERTY] = lid
    result = plan([Member("a", "cal"), Member("b", "cal")], {lid: rec},
                  {"a/cal": Observation("a/cal", [], complete=True),
                   "b/cal": Observation("b/cal", [copy], complete=True)})
    assert [(type(w).__name__, w.target, getattr(w, "ref", None) and w.ref.id) for w in result.writes] == [
        ("Delete", "b/cal", "b0")]
