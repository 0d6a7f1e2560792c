"""Corpus: every item read from the public test calendars comes back from a first sync's spool
(:mod:`calmesh.services.spool`) as it went in: zones a calendar defines itself, odd values and
all. A first sync made in parts plans and writes what the spool gives back."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import datetime

import pytest

from calmesh import ical
from calmesh.model import CalendarItem
from calmesh.services.spool import Spool, member_of

from .sources import corpus


def _items() -> list[tuple[str, CalendarItem]]:
    out = []
    for source in corpus():
        try:
            items, _problems = ical.parse_items(source.data())
        except ical.ICalError:
            continue
        out += [(source.id, item) for item in items]
    return out


def test_every_corpus_item_comes_back_from_the_spool_as_it_went_in() -> None:
    found = _items()
    assert len(found) > 500  # the corpus, not a few files
    with Spool(2) as spool:
        keys = [spool.add(n % 2, item) for n, (_source, item) in enumerate(found)]
        assert [member_of(k) for k in keys] == [n % 2 for n in range(len(found))]
        back = spool.read(reversed(keys))
    for (source, item), again in zip(reversed(found), back, strict=True):
        if _plain(again) != _plain(item):
            pytest.fail(f"{source}: {item.uid} came back changed")


def _plain(value: object) -> object:
    """``value`` with every time as its wall-clock fields, fold and zone: two aware times in
    distinct zone objects are unequal in a zone's ambiguous hour whatever they hold (Python's
    inter-zone comparison), and the spool gives back distinct objects of equal zones."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None), value.fold, value.tzinfo
    if is_dataclass(value) and not isinstance(value, type):
        return type(value).__name__, tuple(_plain(getattr(value, f.name)) for f in fields(value))
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    return value
