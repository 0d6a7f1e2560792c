"""Run independent upstream calls at once and stop waiting at a deadline.

Why a module of its own: every service that asks several platforms (free/busy, detection) needs
the same three outcomes per call, answered, failed, or still running when the deadline passes,
and must never wait for a straggler: its result is dropped and its work told to stop (see
:mod:`calmesh.cancel`; a thread cannot be killed, work that checks stops at its next step).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from calmesh import cancel

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(slots=True)
class Outcome(Generic[K, T]):
    """What each call did, keyed as the calls were, in the order they were given."""

    answered: dict[K, T] = field(default_factory=dict)
    failed: dict[K, Exception] = field(default_factory=dict)
    late: list[K] = field(default_factory=list)


def within(calls: Mapping[K, Callable[[], T]], timeout: float, name: str = "fanout") -> Outcome[K, T]:
    """Run every call on its own thread; collect what is done after ``timeout`` seconds."""
    outcome: Outcome[K, T] = Outcome()
    if not calls:
        return outcome
    pool = cf.ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix=name)
    try:
        flags = {key: threading.Event() for key in calls}
        futures = {key: pool.submit(_watched, flags[key], call) for key, call in calls.items()}
        done, _pending = cf.wait(futures.values(), timeout=timeout)
        for key, future in futures.items():
            if future not in done:
                flags[key].set()  # nobody waits for it any more: let its work stop
                outcome.late.append(key)
                continue
            try:
                outcome.answered[key] = future.result()
            except Exception as exc:  # noqa: BLE001 - the caller decides how each failure is reported
                outcome.failed[key] = exc
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return outcome


def _watched(flag: threading.Event, call: Callable[[], T]) -> T:
    with cancel.watched(flag):
        return call()
