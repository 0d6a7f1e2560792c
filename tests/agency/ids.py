"""Ids that come out the same in every process, so a kept example replays the path it failed on.

calmesh and the Exchange fakes name what they create with ``uuid.uuid4()`` and
``secrets.token_*``: booked meetings' UIDs, the fakes' item and event ids, the test's CalDAV
collections. The sync plans its writes in the order of such ids, and the agency test kills a run
at its n-th write, so with random ids the same kept example kills a different write in another
process, and a failure found once passed on the next replay (issue 12's soak, session 9). Here
each id is the example's number and a counter: unique across the examples of one process (the
fakes outlive an example), and in the same order within an example whatever its number.
"""

from __future__ import annotations

import itertools
import math
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock


class Ids:
    """The counter behind the stand-ins; :meth:`start` begins an example's ids."""

    def __init__(self) -> None:
        self.example = 0
        self._count = itertools.count()

    def start(self, example: int) -> None:
        self.example, self._count = example, itertools.count()

    def _digits(self, width: int) -> str:
        """``width`` hex digits, example then counter first, so prefixes of ids stay unique."""
        head = f"{self.example:06x}{next(self._count):06x}"
        return (head * math.ceil(width / len(head)))[:width]

    def uuid4(self) -> uuid.UUID:
        digits = self._digits(32)
        return uuid.UUID(hex=f"{digits[:12]}4{digits[13:16]}8{digits[17:]}")

    def token_hex(self, nbytes: int | None = None) -> str:
        return self._digits(2 * (nbytes or 32))

    def token_urlsafe(self, nbytes: int | None = None) -> str:
        return self._digits(math.ceil(4 * (nbytes or 32) / 3))


IDS = Ids()


@contextmanager
def repeatable_ids() -> Iterator[Ids]:
    """``uuid.uuid4`` and ``secrets.token_hex``/``token_urlsafe`` drawn from :data:`IDS` meanwhile."""
    with (mock.patch.object(uuid, "uuid4", IDS.uuid4), mock.patch.object(secrets, "token_hex", IDS.token_hex),
          mock.patch.object(secrets, "token_urlsafe", IDS.token_urlsafe)):
        yield IDS
