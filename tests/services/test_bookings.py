"""The bookings the web page offers to move or cancel (calmesh.services.bookings): the meetings
calmesh booked, read from their organisers' calendars (``.ics`` folders: the ICS connector on real
files) and told apart from everything else there by the identity record."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from browser.conftest import MONDAY, config_text
from calmesh.config import parse_config
from calmesh.model import Window
from calmesh.services import bookings, scheduling
from calmesh.services.hub import Hub
from calmesh.store.db import StoreError
from server.conftest import seed_ics

ALICE, CARLA, DAVID = "alice@agency.example", "carla@agency.example", "david@agency.example"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    seed_ics(tmp_path, MONDAY)
    path = tmp_path / "calmesh.toml"
    path.write_text(config_text(cache_ttl=0))  # the web page tests' hub: three .ics folders
    with Hub(parse_config(path.read_text(), path)) as hub:
        yield hub


def _book(hub: Hub, day: int, hour: int, title: str, organizer: str = ALICE,
          attendees: tuple[str, ...] = (CARLA,)) -> scheduling.Booking:
    start = datetime.combine(MONDAY + timedelta(days=day), time(hour), tzinfo=PARIS)
    request = scheduling.BookingRequest(organizer, attendees, start, start + timedelta(hours=1), title)
    return scheduling.book(hub, request, now=datetime.now(UTC))


WEEK = Window(datetime.combine(MONDAY, time(0), tzinfo=PARIS), datetime.combine(MONDAY + timedelta(days=7), time(0),
                                                                                tzinfo=PARIS))


def test_the_organisers_live_bookings_are_listed_and_nothing_else(hub: Hub) -> None:
    first = _book(hub, 2, 17, "Launch plan")
    second = _book(hub, 4, 11, "Atlas kick-off", organizer=DAVID, attendees=(ALICE,))
    found, problems = bookings.organised(hub, [ALICE, CARLA, DAVID], WEEK)
    assert problems == []
    assert [(m.uid, m.organizer, m.summary, m.attendees) for m in found] == [
        (first.uid, ALICE, "Launch plan", (CARLA,)), (second.uid, DAVID, "Atlas kick-off", (ALICE,))]
    assert found[0].start == datetime.combine(MONDAY + timedelta(days=2), time(17), tzinfo=PARIS)
    # Carla's copy of the first meeting does not make her its organiser; the demo's own meetings
    # (not booked by calmesh) are not offered either
    assert bookings.organised(hub, [CARLA], WEEK) == ([], [])
    # only the window asked
    monday = Window(WEEK.start, WEEK.start + timedelta(days=1))
    assert bookings.organised(hub, [ALICE, DAVID], monday) == ([], [])


def test_a_cancelled_or_moved_booking_is_listed_as_it_is_now(hub: Hub) -> None:
    kept = _book(hub, 2, 17, "Launch plan")
    gone = _book(hub, 2, 15, "Retro")
    scheduling.cancel_booking(hub, gone.uid, ALICE, now=datetime.now(UTC))
    new_start = datetime.combine(MONDAY + timedelta(days=1), time(10), tzinfo=PARIS)
    scheduling.move_booking(hub, kept.uid, ALICE, new_start, new_start + timedelta(hours=1), now=datetime.now(UTC))
    found, _ = bookings.organised(hub, [ALICE], WEEK)
    assert [(m.uid, m.start) for m in found] == [(kept.uid, new_start)]
    # the identity record names Alice while one of her bookings is live, and nobody after
    assert hub.identities().organisers() == {ALICE}
    scheduling.cancel_booking(hub, kept.uid, ALICE, now=datetime.now(UTC))
    assert hub.identities().organisers() == set()
    assert bookings.organised(hub, [ALICE], WEEK) == ([], [])


def test_a_store_that_cannot_be_read_is_reported(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(hub, "identities", broken)
    found, problems = bookings.organised(hub, [ALICE], WEEK)
    assert found == [] and problems == ["the state store, where calmesh records its bookings, cannot be read: disk full"]
