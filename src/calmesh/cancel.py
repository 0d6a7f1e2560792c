"""Cooperative cancellation: long work (a recurrence expansion) stops once nobody waits for it.

Why: a thread cannot be killed. :func:`calmesh.services.fanout.within` stops *waiting* for a
platform at its deadline; without a way to tell the platform's thread, that thread kept a core busy
until its work ended (hours, for ``FREQ=SECONDLY`` from years ago), one more for every request
under ``calmesh serve``, and the CLI could not exit before it. Work that can stop checks
:func:`abandoned` between steps and raises :class:`Abandoned`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_FLAG: ContextVar[threading.Event | None] = ContextVar("calmesh_abandoned", default=None)


class Abandoned(Exception):  # noqa: N818 - it is what happened, not an error in the data
    """Raised by work that noticed nobody waits for its result any more."""


def abandoned() -> bool:
    """Whether the caller of the current work has given up on it."""
    flag = _FLAG.get()
    return flag is not None and flag.is_set()


def check() -> None:
    """Raise :class:`Abandoned` if the current work was given up."""
    if abandoned():
        raise Abandoned


@contextmanager
def watched(flag: threading.Event) -> Iterator[None]:
    """Run the block as work that ``flag`` being set abandons."""
    token = _FLAG.set(flag)
    try:
        yield
    finally:
        _FLAG.reset(token)
