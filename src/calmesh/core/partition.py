"""Parts of a first comparison: items grouped so that each part can be planned alone.

A sync group's first comparison (nothing on record yet) decides each item from the items the
planner may join it to: the same UID elsewhere, the original a marker names, the forks of a
conflict (:func:`calmesh.core.syncplan.joins`). Items that share no such name never look at each
other, so the group can be planned a few hundred items at a time, from a spool on disk, instead
of holding both calendars whole in memory. Pure: no I/O.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import pairwise


class Joiner:
    """Items (integer keys) added one by one with the names they may be joined by; :meth:`parts`
    cuts them into parts that each hold whole groups of linked items.

    What is kept is a few machine words per item and per name, in arrays: the key, and each
    name's hash with the item holding it, not the names nor an object per item, so that what a
    first comparison holds of 10,000 items is a few hundred kilobytes. Two names of equal hash
    only join groups that need not be (a bigger part), never split one."""

    def __init__(self) -> None:
        self._keys = array("q")
        self._hashes = array("q")
        self._holders = array("q")
        """Per name: its hash, and the position (order of :meth:`add`) of the item holding it."""

    def add(self, key: int, names: Iterable[str]) -> None:
        position = len(self._keys)
        self._keys.append(key)
        for name in names:
            self._hashes.append(hash(name))
            self._holders.append(position)

    def parts(self, size: int) -> list[list[int]]:
        """The keys in parts of about ``size`` (a group larger than ``size`` is a part of its
        own), in order: a group's keys sorted, groups by their first keys. The same items give
        the same parts in whatever order they were added (members are read side by side)."""
        parent = array("q", range(len(self._keys)))

        def root(at: int) -> int:
            while (up := parent[at]) != at:
                parent[at] = parent[up]  # path halving
                at = up
            return at

        hashes = self._hashes
        by_hash = sorted(range(len(hashes)), key=hashes.__getitem__)
        for before, after in pairwise(by_hash):
            if hashes[before] == hashes[after]:
                a, b = root(self._holders[before]), root(self._holders[after])
                if a != b:
                    parent[max(a, b)] = min(a, b)
        del by_hash
        groups: dict[int, list[int]] = {}
        for position in sorted(range(len(self._keys)), key=self._keys.__getitem__):
            groups.setdefault(root(position), []).append(self._keys[position])
        out: list[list[int]] = []
        current: list[int] = []
        for group in groups.values():
            if current and len(current) + len(group) > size:
                out.append(current)
                current = []
            current.extend(group)
        if current:
            out.append(current)
        return out
