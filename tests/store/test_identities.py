"""The identity record (store/identities.py) on a migrated SQLite store: booked meetings, their
copies, and the one identity per stored item that detection asks for."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from calmesh.core.syncplan import CopyState, ItemState
from calmesh.model import Attendee, PartStat, Role
from calmesh.store.db import open_store
from calmesh.store.identities import INVITATION, CopyRecord, Identity, IdentityRepository
from calmesh.store.repository import SyncRepository


@pytest.fixture
def stores(tmp_path: Path) -> tuple[IdentityRepository, SyncRepository]:
    sessions = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    return IdentityRepository(sessions), SyncRepository(sessions)


BOOKED = Identity("m1@agency.example", "alice@agency.example", "zoho", "alice", "/alice/m1.ics", 0, "CONFIRMED",
                  (CopyRecord(INVITATION, "exchange", "carla", "AAMk1", "carla@agency.example",
                              "zoho/alice//alice/m1.ics"),))


def test_a_booking_round_trips_and_updates_in_place(stores: tuple[IdentityRepository, SyncRepository]) -> None:
    identities, _ = stores
    assert identities.get("m1@agency.example") is None
    identities.save(BOOKED)
    assert identities.get("m1@agency.example") == BOOKED
    assert BOOKED.logical_id == "zoho/alice//alice/m1.ics"
    moved = replace(BOOKED, sequence=2, copies=(CopyRecord(INVITATION, "exchange", "carla", "AAMk2", "carla@agency.example"),
                                       CopyRecord(INVITATION, "google", "bruno", "g1", "bruno@agency.example")))
    identities.save(moved)
    assert identities.get("m1@agency.example") == moved


def test_the_people_of_a_meeting_round_trip(stores: tuple[IdentityRepository, SyncRepository]) -> None:
    """The record keeps each ATTENDEE's role and answer (for platforms that store none)."""
    identities, _ = stores
    people = (Attendee("alice@agency.example", "Alice", PartStat.ACCEPTED, Role.CHAIR),
              Attendee("emma@agency.example", None, PartStat.TENTATIVE, Role.OPTIONAL, rsvp=True))
    identities.save(replace(BOOKED, people=people))
    assert identities.get("m1@agency.example") == replace(BOOKED, people=people)
    identities.save(BOOKED)
    assert identities.get("m1@agency.example") == BOOKED


def test_places_name_every_copy_with_one_identity(stores: tuple[IdentityRepository, SyncRepository]) -> None:
    """A sync group that paired the booked meeting by UID under Carla's copy's id, and gave it a
    placeholder elsewhere, is read as naming the booked meeting: one identity for all four."""
    identities, sync = stores
    identities.save(BOOKED)
    lid = "exchange/carla/AAMk1"
    sync.save_records("g", [ItemState(lid, "exchange/carla", "h", {
        "exchange/carla": CopyState("exchange/carla", "AAMk1", "m1@agency.example", None, "h"),
        "projects/carla": CopyState("projects/carla", "7", "calmesh-busy-x", None, "h", marker="calmesh-busy:a:b"),
    }), ItemState("projects/carla/8", "projects/carla", "h2", {
        "projects/carla": CopyState("projects/carla", "8", "own", None, "h2")})])
    places = identities.places()
    meeting = BOOKED.logical_id
    assert places == {("zoho", "alice", "m1@agency.example"): meeting,
                      ("exchange", "carla", "m1@agency.example"): meeting,
                      ("projects", "carla", "calmesh-busy-x"): meeting,
                      ("projects", "carla", "own"): "projects/carla/8"}

