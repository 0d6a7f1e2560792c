"""The bulk-delete guard in the planner: held decisions outlive the run that made them, deletions
are judged across runs, and a full listing that shrinks without the change feed saying so is
suspect. Driven through the in-memory harness (tests/sync/harness.py), which keeps the guard's
holds and deletions between runs as the engine keeps them in the store."""

from __future__ import annotations

from calmesh.core.syncplan import Delete, DeleteHistory, Hold, Observation, PlanOptions, Skip, plan

from .harness import World, uids, world
from .test_syncplan import converge, item

CONFIRM = PlanOptions(confirm_deletes=True)


def filled(n: int, *specs: str, **kw: object) -> World:
    w = world(*(specs or ("a", "b")), **kw)  # type: ignore[arg-type]
    for k in range(n):
        w.platforms["a"].user_put(item(f"u{k:02}", hour=k % 12, summary=f"Event {k}"))
    converge(w)
    return w


def deletes(result: object) -> list[Delete]:
    return [x for x in result.writes if isinstance(x, Delete)]  # type: ignore[attr-defined]


def test_an_emptied_member_stays_held_whatever_listing_comes_next() -> None:
    """The reported walk-around: a full listing of an emptied calendar is held; the change feed
    of the next runs says nothing new; a confirmation must still apply the held decision."""
    w = filled(12)
    for k in range(12):
        w.platforms["a"].user_delete(f"u{k:02}")
    first = w.run()
    assert first.writes == [] and w.holds["a/cal"].kind == "empty"
    assert any("listed no items" in n and "held until confirmed" in n for n in first.notices)
    w.full = False  # later runs read change feeds: a's token was not advanced past the evidence
    for _ in range(3):
        again = w.run()
        assert deletes(again) == [] and "a/cal" in again.holds
        assert any("held until confirmed" in n for n in again.notices)
    assert len(uids(w.platforms["b"])) == 12
    w.options = CONFIRM
    assert len(deletes(w.run())) == 12
    assert uids(w.platforms["b"]) == [] and w.holds == {}
    assert w.run().writes == []


def test_a_held_member_is_listed_in_full_and_its_held_items_are_shown() -> None:
    w = filled(10)
    for k in range(4):
        w.platforms["a"].user_delete(f"u{k:02}")
    held = w.run()
    assert deletes(held) == [] and held.holds["a/cal"].kind == "budget"
    skips = [a for a in held.actions if isinstance(a, Skip)]
    assert len(skips) == 4 and all("held by the bulk-delete guard" in s.reason for s in skips)
    w.full = False
    again = w.plan()
    assert "a/cal" in again.holds and deletes(again) == []


def test_deletions_are_judged_across_runs() -> None:
    """Four of forty per run is under the share each time; twelve within the window is not."""
    w = filled(40)
    gone = 0
    for _ in range(2):
        for k in range(gone, gone + 4):
            w.platforms["a"].user_delete(f"u{k:02}")
        gone += 4
        assert len(deletes(w.run())) == 4 and w.holds == {}
    for k in range(gone, gone + 4):
        w.platforms["a"].user_delete(f"u{k:02}")
    third = w.run()
    assert deletes(third) == [] and third.holds["a/cal"].kind == "budget"
    assert "8 deleted in recent runs" in third.holds["a/cal"].reason
    w.deletions += [{}] * w.window  # the window slides on: the hold stays until confirmed
    assert deletes(w.run()) == [] and "a/cal" in w.holds
    w.options = CONFIRM
    assert len(deletes(w.run())) == 4 and len(uids(w.platforms["b"])) == 28


def _observations(w: World, missing: set[str], vouched: frozenset[str] | None) -> dict[str, Observation]:
    a, b = w.members
    listed = [i for i in w.platforms["a"].all() if i.ref is not None and i.ref.id not in missing]
    return {"a/cal": Observation("a/cal", listed, complete=True, vouched=vouched),
            "b/cal": w.observe(b, True)}


def test_a_full_listing_that_shrinks_without_the_feed_saying_so_is_held() -> None:
    """A fifth of the calendar silently left out of a full listing (under the 25% share): the
    change feed reported none of it deleted, so nothing is deleted and the member is held."""
    w = filled(40)
    ids = sorted(i.ref.id for i in w.platforms["a"].all() if i.ref is not None)[:8]
    silent = plan(w.members, w.state, _observations(w, set(ids), frozenset()), w.options)
    assert deletes(silent) == [] and silent.holds["a/cal"].kind == "shrink"
    assert "never reported deleted" in silent.holds["a/cal"].reason
    vouched = plan(w.members, w.state, _observations(w, set(ids), frozenset(ids)), w.options)
    assert len(deletes(vouched)) == 8 and vouched.holds == {}
    history = DeleteHistory(held=silent.holds)  # the next run, the items listed again: undone
    back = plan(w.members, w.state, _observations(w, set(), frozenset()), w.options, history)
    assert back.writes == [] and back.holds == {}
    still = plan(w.members, w.state, _observations(w, set(ids), frozenset(ids)), w.options, history)
    assert deletes(still) == [] and "a/cal" in still.holds  # held stays held, feed or not


def test_a_held_member_still_sends_its_other_changes() -> None:
    w = filled(10)
    for k in range(4):
        w.platforms["a"].user_delete(f"u{k:02}")
    w.run()
    w.platforms["a"].user_put(item("u09", hour=9, summary="Moved", seq=1))
    w.platforms["b"].user_put(item("new", hour=11))
    result = w.run()
    assert deletes(result) == [] and "a/cal" in result.holds
    assert {i.components[0].summary for i in w.platforms["b"].all() if i.uid == "u09"} == {"Moved"}
    assert "new" in uids(w.platforms["a"])


def test_holds_are_dropped_for_members_no_longer_in_the_group() -> None:
    w = filled(4)
    stale = {"gone/cal": Hold("gone/cal", "empty", 4, 4, "listed no items")}
    result = plan(w.members, w.state, {m.key: w.observe(m, True) for m in w.members}, w.options,
                  DeleteHistory(held=stale))
    assert result.holds == {} and result.writes == []


def test_dismissing_a_hold_puts_the_items_back_where_they_went_missing() -> None:
    w = filled(12)
    for k in range(12):
        w.platforms["a"].user_delete(f"u{k:02}")
    assert w.run().writes == [] and "a/cal" in w.holds
    w.options = PlanOptions(restore_held=True)
    restored = w.run()
    assert {(type(x).__name__, x.target) for x in restored.writes} == {("Create", "a/cal")}
    assert len(uids(w.platforms["a"])) == 12 and len(uids(w.platforms["b"])) == 12 and w.holds == {}
    w.options = PlanOptions()
    assert w.run().writes == []


def test_busy_originals_cannot_be_restored_from_placeholders_and_stay_held() -> None:
    w = filled(6, options=PlanOptions(mode="busy"))
    for k in range(6):
        w.platforms["a"].user_delete(f"u{k:02}")
    assert w.run().writes == [] and "a/cal" in w.holds
    w.options = PlanOptions(mode="busy", restore_held=True)
    result = w.run()
    assert result.writes == [] and w.holds["a/cal"].missing == 6
    assert len(uids(w.platforms["b"])) == 6
