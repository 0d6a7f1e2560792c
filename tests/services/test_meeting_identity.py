"""One identity for a booked meeting across booking, sync and detection (issue 12, items 2 and 3),
on the peers of test_rescheduling: Alice (the organiser) on Radicale, David on the EWS fake
(calmesh.fakes.ews, protocol-faithful, spoken to by the real EWS connector, as no Exchange is
reachable here), both calendars in one sync group run by the real engine and state store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from meeting_world import meeting, utc
from test_rescheduling import (  # noqa: F401 (fixtures)
    ALICE,
    BOB,
    DAVID,
    EWS_PASSWORD_ENV,
    NOW,
    SLOT,
    book,
    copy_of,
    ews,
    hub,
)

from calmesh.config import SyncGroupConfig, SyncMember, parse_config
from calmesh.core.syncplan import Delete
from calmesh.fakes.ews import EWSFake
from calmesh.model import MARKER_PROPERTY, CalendarItem, EventStatus, PartStat, Window
from calmesh.services import detection, itip, scheduling
from calmesh.services.detection import stored_item
from calmesh.services.hub import Hub
from calmesh.services.sync import SyncEngine, SyncReport
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository
from conftest import CalDAVServer


@pytest.fixture
def engine(hub: Hub) -> Iterator[SyncEngine]:  # noqa: F811
    sessions = open_store(hub.config.state_url())
    yield SyncEngine(SyncRepository(sessions), hub.connector)
    sessions.kw["bind"].dispose()


def group(hub: Hub, mode: str, *, owners: bool = False) -> SyncGroupConfig:  # noqa: F811
    """Alice's Radicale calendar and David's Exchange one; with ``owners``, the group knows whose
    each calendar is (as a config's ``[[people]]`` tell it, see ``Config._owner_of``)."""
    return SyncGroupConfig(mode=mode, calendars=[  # type: ignore[arg-type]
        SyncMember(platform="radicale", calendar=hub.directory.get(ALICE).calendars[0],
                   owner=ALICE if owners else None),
        SyncMember(platform="exchange", calendar=DAVID, owner=DAVID if owners else None)])


def writes_to(report: SyncReport, uid: str) -> list[object]:
    """The planned writes that touch ``uid``'s copies (by their logical id or their item)."""
    return [w for w in report.plan.writes
            if uid in w.logical_id or getattr(getattr(w, "ref", None), "id", "").endswith(uid)]


def david_items(hub: Hub, uid: str) -> int:  # noqa: F811
    items, _ = hub.connector("exchange").items(DAVID)
    return sum(1 for i in items if i.uid == uid)


def mark_as_before(hub: Hub, uid: str) -> None:  # noqa: F811
    """Give David's copy the marker booking wrote before identities were recorded,
    ``platform/calendar/UID``, as calendars filled by an older calmesh hold them."""
    calendar = hub.directory.get(ALICE).calendars[0]
    copy = stored_item(hub, "exchange", DAVID, uid)
    old = [replace(e, extra={**e.extra, MARKER_PROPERTY: f"radicale/{calendar}/{uid}"}) for e in copy.components]
    hub.connector("exchange").put(DAVID, CalendarItem(uid, old, copy.ref), if_match=copy.ref.etag if copy.ref else None)
    assert stored_item(hub, "exchange", DAVID, uid).marker == f"radicale/{calendar}/{uid}"


@pytest.mark.parametrize("marker", ["identity", "before identities"])
@pytest.mark.parametrize("mode", ["mirror", "busy"])
def test_sync_keeps_a_booked_meeting_whole(hub: Hub, engine: SyncEngine, mode: str,  # noqa: F811
                                           marker: str) -> None:
    """Book Alice -> David, sync both calendars: the dry run plans no deletion of David's live
    invitation ("copy of an item deleted at its origin", issue 12 item 2) and the real run damages
    neither copy; moving and cancelling still work and the group stays in step. Copies marked the
    old way (``.../UID``) are recognised too."""
    booking = book(hub)
    if marker != "identity":
        mark_as_before(hub, booking.uid)
    dry = engine.run("team", group(hub, mode), dry_run=True)
    assert not [w for w in dry.plan.writes if isinstance(w, Delete)], dry.plan.writes
    assert writes_to(dry, booking.uid) == []
    before = {who: copy_of(hub, who, booking.uid) for who in (ALICE, DAVID)}

    report = engine.run("team", group(hub, mode))
    assert not report.errors and writes_to(report, booking.uid) == []
    assert {who: copy_of(hub, who, booking.uid) for who in (ALICE, DAVID)} == before
    assert david_items(hub, booking.uid) == 1

    new_start = SLOT[0] + timedelta(days=1)
    scheduling.move_booking(hub, booking.uid, ALICE, new_start, new_start + timedelta(hours=1), now=NOW)
    report = engine.run("team", group(hub, mode))
    assert not report.errors and not [w for w in report.plan.writes if isinstance(w, Delete)]
    for who in (ALICE, DAVID):
        assert copy_of(hub, who, booking.uid).start == new_start
    assert copy_of(hub, ALICE, booking.uid).organizer.email == ALICE
    assert david_items(hub, booking.uid) == 1
    with pytest.raises(scheduling.NotOrganiser):
        scheduling.cancel_booking(hub, booking.uid, DAVID, now=NOW)

    scheduling.cancel_booking(hub, booking.uid, ALICE, now=NOW)
    report = engine.run("team", group(hub, mode))
    assert not report.errors and not [w for w in report.plan.writes if isinstance(w, Delete)]
    for who in (ALICE, DAVID):
        assert copy_of(hub, who, booking.uid).status is EventStatus.CANCELLED or who == DAVID
    assert copy_of(hub, DAVID, booking.uid).transparent
    assert engine.run("team", group(hub, mode)).plan.writes == []


def test_an_attendees_edit_or_deletion_of_their_copy_stays_theirs(hub: Hub, engine: SyncEngine) -> None:  # noqa: F811
    """Issue 12 item 1 in a mirror group holding the organiser's calendar and an attendee's:
    David renames and moves his invitation copy on Exchange; the sync does not carry it to
    Alice's original (only the organiser changes a meeting) but sets his copy back, saying so.
    Then he deletes his copy: Alice's meeting stays, his copy is not brought back, and the
    group is in step (no writes) on the next runs. Alice's own move still reaches everyone."""
    booking = book(hub)
    engine.run("team", group(hub, "mirror", owners=True))
    original = copy_of(hub, ALICE, booking.uid)

    mine = stored_item(hub, "exchange", DAVID, booking.uid)
    later = original.start + timedelta(hours=3)
    edited = [replace(e, summary="David's own title", start=later, end=later + timedelta(hours=1),
                      sequence=e.sequence + 1) for e in mine.components]
    hub.connector("exchange").put(DAVID, CalendarItem(booking.uid, edited, mine.ref),
                                  if_match=mine.ref.etag if mine.ref else None)
    report = engine.run("team", group(hub, "mirror", owners=True))
    assert not report.errors
    assert copy_of(hub, ALICE, booking.uid) == original
    assert [n for n in report.plan.notices if "set back" in n and DAVID in n]
    assert copy_of(hub, DAVID, booking.uid).start == original.start
    assert copy_of(hub, DAVID, booking.uid).summary == original.summary
    assert engine.run("team", group(hub, "mirror", owners=True)).plan.writes == []

    mine = stored_item(hub, "exchange", DAVID, booking.uid)
    assert mine.ref is not None
    hub.connector("exchange").delete(DAVID, mine.ref, mine.ref.etag)
    report = engine.run("team", group(hub, "mirror", owners=True))
    assert not report.errors and not report.plan.writes, report.plan.writes
    assert [n for n in report.plan.notices if "deleted their copy" in n]
    assert copy_of(hub, ALICE, booking.uid) == original
    assert david_items(hub, booking.uid) == 0
    assert engine.run("team", group(hub, "mirror", owners=True)).plan.writes == []
    assert david_items(hub, booking.uid) == 0

    new_start = SLOT[0] + timedelta(days=1)
    scheduling.move_booking(hub, booking.uid, ALICE, new_start, new_start + timedelta(hours=1), now=NOW)
    report = engine.run("team", group(hub, "mirror", owners=True))
    assert not report.errors
    assert copy_of(hub, ALICE, booking.uid).start == new_start


def test_a_reply_from_an_exchange_copy_reaches_the_organiser(hub: Hub) -> None:  # noqa: F811
    """David answers from his Exchange copy, which names him ORGANIZER (as Exchange does): the
    identity record, not the message, says whose copy the answer belongs to; and a CANCEL sent
    from his copy is refused."""
    booking = book(hub)
    theirs = stored_item(hub, "exchange", DAVID, booking.uid)
    assert (theirs.master or theirs.components[0]).organizer.email == DAVID
    done = scheduling.process_message(hub, itip.reply(theirs, DAVID, PartStat.ACCEPTED))
    assert done.updated == [f"radicale:{hub.directory.get(ALICE).calendars[0]}"]
    assert copy_of(hub, ALICE, booking.uid).partstat_of(DAVID) is PartStat.ACCEPTED
    with pytest.raises(itip.ITIPError, match=f"does not come from its organiser \\({ALICE}\\)"):
        scheduling.process_message(hub, itip.cancel(theirs))
    assert copy_of(hub, ALICE, booking.uid).status is EventStatus.CONFIRMED


@pytest.fixture
def two_calendar_hub(tmp_path: Path, radicale: CalDAVServer, ews: EWSFake,  # noqa: F811
                     monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """Alice on Radicale; David's time on the EWS fake and on a private Radicale calendar."""
    monkeypatch.setenv(EWS_PASSWORD_ENV, "svc-pw")
    text = f"""
[hub]
timezone = "Europe/Paris"
[platforms.radicale]
kind = "caldav"
url = "{radicale.url}"
username = "{radicale.username}"
password_env = "{radicale.password_env}"
timeout = 10
[platforms.exchange]
kind = "ews"
service_endpoint = "{ews.ews_url}"
auth = "basic"
username = "svc"
password_env = "{EWS_PASSWORD_ENV}"
server_version = "Exchange2016"
mailboxes = ["{DAVID}"]

[[people]]
email = "{ALICE}"
platform = "radicale"
calendars = ["{radicale.new_calendar('alice')}"]
timezone = "Europe/Paris"
[[people]]
email = "{DAVID}"
platform = "exchange"
calendars = ["{DAVID}"]
timezone = "America/New_York"
also = [{{ platform = "radicale", calendars = ["{radicale.new_calendar('david-private')}"] }}]
"""
    with Hub(parse_config(text, tmp_path / "calmesh.toml")) as h:
        yield h


def test_busy_blocks_and_an_invitation_on_exchange_are_not_conflicts(two_calendar_hub: Hub, ews: EWSFake,  # noqa: F811
                                                                     ) -> None:
    """David's Exchange mailbox (the EWS fake) and his private Radicale calendar in a busy group,
    holding an invitation Alice booked: after sync, his conflicts are the one real double booking."""
    hub_ = two_calendar_hub
    private = hub_.directory.get(DAVID).sources[1].calendars[0]
    ews.add_item(DAVID, CalendarItem("standup", [meeting("standup", utc(10, 28, 13), 30, "Standup")]))
    ews.add_item(DAVID, CalendarItem("pipeline", [meeting("pipeline", utc(10, 27, 16), 60, "Weekly pipeline")]))
    hub_.connector("radicale").put(private, CalendarItem("dentist", [meeting("dentist", utc(10, 28, 13, 15), 45,
                                                                             "Dentist")]))
    booking = scheduling.book(hub_, scheduling.BookingRequest(ALICE, (DAVID,), *SLOT, "Atlas kick-off"), now=NOW)
    window = Window(utc(10, 26, 0), utc(10, 31, 0))
    (before,) = detection.analyse_people(hub_, [DAVID], window)
    assert [(c.start, c.end) for c in before.conflicts] == [(utc(10, 28, 13, 15), utc(10, 28, 13, 30))]

    sessions = open_store(hub_.config.state_url())
    try:
        report = SyncEngine(SyncRepository(sessions), hub_.connector).run("david", SyncGroupConfig(
            mode="busy", calendars=[SyncMember(platform="exchange", calendar=DAVID),
                                    SyncMember(platform="radicale", calendar=private)]))
    finally:
        sessions.kw["bind"].dispose()
    assert not report.errors and len(report.plan.writes) == 4  # a block for each event, both ways
    placeholders, _ = hub_.connector("radicale").items(private)
    assert booking.uid not in {i.uid for i in placeholders} and len(placeholders) == 4
    (after,) = detection.analyse_people(hub_, [DAVID], window)
    assert not after.errors
    assert [(c.start, c.end) for c in after.conflicts] == [(utc(10, 28, 13, 15), utc(10, 28, 13, 30))]
