"""``bounded_map``: the one way connectors put several upstream requests in flight at once."""

from __future__ import annotations

import threading

import pytest

from calmesh import cancel
from calmesh.connectors.base import bounded_map


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

    assert bounded_map(call, list(range(8)), 3) == [n * n for n in range(8)]
    assert most == 3


def test_calls_see_the_callers_cancellation_flag() -> None:
    """Work on the pool's threads is abandoned with its caller (the context is copied)."""
    flag = threading.Event()
    flag.set()
    with cancel.watched(flag):
        assert bounded_map(lambda _n: cancel.abandoned(), [1, 2, 3], 2) == [True, True, True]


def test_the_first_failure_in_item_order_is_raised() -> None:
    def call(n: int) -> int:
        if n in (2, 4):
            raise ValueError(f"item {n}")
        return n

    with pytest.raises(ValueError, match="item 2"):
        bounded_map(call, [1, 2, 3, 4], 4)


def test_limit_one_runs_on_the_callers_thread() -> None:
    here = threading.get_ident()
    assert bounded_map(lambda _n: threading.get_ident(), [1, 2], 1) == [here, here]
