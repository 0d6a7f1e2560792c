"""Items read for a first comparison, kept on disk until their part is planned.

A first comparison reads every item of every member before it can pair them (the same event on
two calendars may be anywhere in each listing). Held in memory, two 10,000-object calendars cost
some 50 MB of parsed events; spooled, they cost files that are gone when the run ends, and the
memory of one part at a time (:mod:`calmesh.core.partition`).

The files are this process's own (anonymous temporary files, never named, never shared), so
items go in as pickles: read back, they are the very objects that were read, zones included.
"""

from __future__ import annotations

import pickle
import struct
import tempfile
from collections.abc import Iterable
from types import TracebackType
from typing import IO

from calmesh.model import CalendarItem

_SHIFT = 48
"""A key is the member's number above this bit and the item's offset in its file below it."""
_LENGTH = struct.Struct("<I")


class Spool:
    """Items written once per member and read back by the key :meth:`add` gave them: one file
    per member, so that members read side by side on their own threads write without waiting
    for each other, and each member's keys follow the order it was read in."""

    def __init__(self, members: int) -> None:
        self._files: list[IO[bytes]] = [tempfile.TemporaryFile(prefix="calmesh-spool-") for _ in range(members)]

    def add(self, member: int, item: CalendarItem) -> int:
        """Keep ``item`` of the ``member``-th member; returns its key (see :func:`member_of`).
        Only that member's reader adds to its file."""
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        file = self._files[member]
        at = file.seek(0, 2)
        file.write(_LENGTH.pack(len(data)))
        file.write(data)
        return member << _SHIFT | at

    def read(self, keys: Iterable[int]) -> list[CalendarItem]:
        """The items kept under ``keys``, in that order (once every member was read)."""
        out: list[CalendarItem] = []
        for key in keys:
            file = self._files[member_of(key)]
            file.seek(key & ((1 << _SHIFT) - 1))
            (length,) = _LENGTH.unpack(file.read(_LENGTH.size))
            out.append(pickle.loads(file.read(length)))  # noqa: S301 - this process's own file
        return out

    def close(self) -> None:
        for file in self._files:
            file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def member_of(key: int) -> int:
    """The number of the member whose item a spool key names."""
    return key >> _SHIFT
