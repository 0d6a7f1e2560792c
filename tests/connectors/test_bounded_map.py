"""``bounded_map`` and ``RequestGate``: the one way connectors put several upstream requests in
flight at once, and the bound on them that every answer of the process shares."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from calmesh import cancel
from calmesh.connectors.base import RequestGate, bounded_map


def test_results_keep_item_order_and_at_most_limit_calls_run_at_once() -> None:
    """Eight calls with a limit of three: never more than three inside at once, and the three
    first really are inside together (each waits for the others at a barrier, so a pool that ran
    them one by one would never pass it)."""
    inside, most = 0, 0
    lock = threading.Lock()
    first_three = threading.Barrier(3, timeout=30)

    def call(n: int) -> int:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        if n < 3:
            first_three.wait()
        with lock:
            inside -= 1
        return n * n

    assert bounded_map(call, list(range(8)), RequestGate(3)) == [n * n for n in range(8)]
    assert most == 3


def test_calls_see_the_callers_cancellation_flag() -> None:
    """Work on the pool's threads is abandoned with its caller (the context is copied): a call
    whose asker gave up before it had a slot is not made at all."""
    flag = threading.Event()
    seen: list[bool] = []

    def call(n: int) -> int:
        seen.append(cancel.abandoned())
        flag.set()  # the asker gives up during the first call
        return n

    with cancel.watched(flag), pytest.raises(cancel.Abandoned):
        bounded_map(call, [1, 2, 3], RequestGate(1))
    assert seen == [False]


def test_maps_sharing_a_gate_share_its_slots() -> None:
    """Two answers computed at once on one platform: while the first one's two calls hold both
    slots of a gate of two, the second one's call waits, and is made once a slot is free."""
    gate = RequestGate(2)
    holding, release, made = threading.Barrier(3, timeout=30), threading.Event(), threading.Event()

    def hold(_n: int) -> int:
        holding.wait()
        release.wait(30)
        return 1

    first = threading.Thread(target=bounded_map, args=(hold, [1, 2], gate))
    first.start()
    holding.wait()  # both slots taken
    second: list[list[int]] = []
    later = threading.Thread(target=lambda: second.append(bounded_map(lambda _n: made.set() or 2, [1], gate)))
    later.start()
    assert not made.wait(0.3)  # no slot: not made
    release.set()
    later.join(30)
    first.join(30)
    assert made.is_set() and second == [[2]]


def test_an_answer_asked_behind_a_big_one_gets_the_next_free_slot() -> None:
    """A one-person answer asked while a forty-call answer holds both slots of a gate of two is
    made as soon as one of those calls ends, before the big answer's next call. With a plain
    semaphore the big answer's thread that had just freed the slot took it back at once, and the
    small answer waited for most of the forty."""
    gate = RequestGate(2)
    started: list[str] = []
    ends = [threading.Event() for _ in range(40)]
    both_in, small_made = threading.Barrier(3, timeout=30), threading.Event()

    def big(n: int) -> int:
        started.append(f"big {n}")
        if n < 2:
            both_in.wait()
        ends[n].wait(30)
        return n

    def small(_n: int) -> int:
        started.append("small")
        small_made.set()
        return -1

    first = threading.Thread(target=bounded_map, args=(big, list(range(40)), gate))
    answers: list[list[int]] = []
    second = threading.Thread(target=lambda: answers.append(bounded_map(small, [0], gate)))
    try:
        first.start()
        both_in.wait()  # big 0 and big 1 hold both slots
        second.start()
        for _ in range(3000):  # until the small answer's call is in line (white box: no public sign)
            if gate._waiting:
                break
            threading.Event().wait(0.01)
        ends[0].set()
        assert small_made.wait(30)
        assert sorted(started[:2]) == ["big 0", "big 1"] and started[2] == "small"
    finally:
        for end in ends:
            end.set()
        first.join(30)
        second.join(30)
    assert answers == [[-1]]


def test_an_answer_waits_for_one_call_of_each_answer_ahead_not_for_every_call_in_line() -> None:
    """Three answers of forty calls each hold a gate of four: four calls in flight, eight in
    line. A one-call answer asked then is made within the next four calls to start (after at
    most one call of each answer ahead of it in turn), not after the eight already in line (as
    in the order asked)."""
    gate = RequestGate(4)
    started: list[str] = []
    lock = threading.Lock()
    go = threading.Semaphore(0)

    def big(name: str) -> Callable[[int], int]:
        def call(n: int) -> int:
            with lock:
                started.append(name)
            go.acquire(timeout=30)  # each call ends when the test lets one go
            return n
        return call

    def in_line() -> int:  # white box: calls waiting for a slot (no public sign)
        with gate._lock:
            return sum(len(line) for line in gate._waiting.values())

    def until(condition: Callable[[], bool]) -> None:
        for _ in range(3000):
            if condition():
                return
            threading.Event().wait(0.01)
        raise AssertionError("the calls never lined up")

    threads = [threading.Thread(target=bounded_map, args=(big(name), list(range(40)), gate)) for name in "abc"]
    try:
        for thread in threads:
            thread.start()
        until(lambda: in_line() == 8 and len(started) == 4)
        threads.append(threading.Thread(target=bounded_map, args=(big("small"), [0], gate)))
        threads[-1].start()
        until(lambda: in_line() == 9)
        for _ in range(4):  # four calls end, four start
            before = len(started)
            go.release()
            until(lambda before=before: len(started) > before)
        assert "small" in started[4:]
    finally:
        for _ in range(200):
            go.release()
        for thread in threads:
            thread.join(30)


def test_the_first_failure_in_item_order_is_raised() -> None:
    def call(n: int) -> int:
        if n in (2, 4):
            raise ValueError(f"item {n}")
        return n

    with pytest.raises(ValueError, match="item 2"):
        bounded_map(call, [1, 2, 3, 4], RequestGate(4))


def test_limit_one_runs_on_the_callers_thread() -> None:
    here = threading.get_ident()
    assert bounded_map(lambda _n: threading.get_ident(), [1, 2], RequestGate(1)) == [here, here]
