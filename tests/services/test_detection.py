"""Conflicts and duplicates of one person across real platforms: two ICS folders (the ICS
connector) and an in-house SQLite table (the SQL connector)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from meeting_world import ALICE, CARLA, PARIS, at, caldav_config, config, meeting, put, utc

from calmesh.config import SyncGroupConfig, SyncMember
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import Attendee, CalendarItem, EventStatus, PartStat, Window
from calmesh.services import detection, scheduling
from calmesh.services.hub import Hub
from calmesh.services.sync import SyncEngine
from calmesh.store.db import open_store
from calmesh.store.models import MeetingIdentity, SyncItem
from calmesh.store.repository import SyncRepository

WEEK = Window(utc(11, 30, 0), utc(12, 5, 0))
CARLA_ORGANISES = Attendee(CARLA, "Carla Jones", PartStat.ACCEPTED)


def row(start: datetime, end: datetime, name: str, **extra: object) -> dict[str, object]:
    """A projects-table row: naive Paris wall-clock times, as the in-house tool stores them."""
    return {"owner": ALICE, "starts_at": start.replace(tzinfo=None), "ends_at": end.replace(tzinfo=None),
            "name": name, **extra}


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    rows = [
        row(at(PARIS, 12, 1, 10, 30), at(PARIS, 12, 1, 11, 30), "Sprint planning"),
        row(at(PARIS, 12, 2, 15, 5), at(PARIS, 12, 2, 16, 5), "RE: Budget sync"),
        row(at(PARIS, 12, 3, 9), at(PARIS, 12, 3, 12), "Dropped workshop", state="cancelled"),
    ]
    cfg = config(tmp_path, rows=rows)
    people = [Attendee(ALICE, "Alice Martin"), Attendee("bruno@agency.example")]
    put(tmp_path, "zoho", ALICE,
        meeting("call-1", at(PARIS, 12, 1, 10), 60, "Client call"),
        meeting("budget-1", at(PARIS, 12, 2, 15), 60, "Budget sync", attendees=people),
        meeting("atlas-1@agency.example", at(PARIS, 12, 4, 14), 60, "Atlas review",
                organizer=CARLA_ORGANISES, attendees=[CARLA_ORGANISES, *people]),
        meeting("lunch", at(PARIS, 12, 3, 10), 60, "Focus time", transparent=True),
        meeting("declined", at(PARIS, 12, 3, 10), 60, "Town hall", organizer=CARLA_ORGANISES,
                attendees=[Attendee(ALICE, partstat=PartStat.DECLINED)]))
    put(tmp_path, "exchange", ALICE,
        meeting("ATLAS-1@AGENCY.EXAMPLE", at(PARIS, 12, 4, 14), 60, "Atlas review",
                organizer=CARLA_ORGANISES, attendees=[CARLA_ORGANISES, Attendee(ALICE)]),
        meeting("workshop", at(PARIS, 12, 3, 11), 60, "Design workshop", status=EventStatus.CONFIRMED))
    hub = Hub(cfg)
    yield hub
    hub.close()


def test_conflicts_across_platforms_name_the_platforms(hub: Hub) -> None:
    (alice,) = detection.analyse_people(hub, [ALICE], WEEK)
    assert not alice.errors
    pairs = {(c.first.event.summary, c.second.event.summary): c for c in alice.conflicts}
    assert set(pairs) == {("Client call", "Sprint planning")}  # transparent, declined, cancelled left out
    conflict = pairs["Client call", "Sprint planning"]
    assert conflict.platforms == ("projects", "zoho") and conflict.cross_platform
    assert (conflict.start, conflict.end) == (utc(12, 1, 9, 30), utc(12, 1, 10))


def test_duplicates_by_uid_and_fuzzy_with_score_and_reason(hub: Hub) -> None:
    (alice,) = detection.analyse_people(hub, [ALICE], WEEK)
    by_title = {g.members[0].event.summary: g for g in alice.duplicates}
    assert set(by_title) == {"Budget sync", "Atlas review"}
    atlas = by_title["Atlas review"]
    assert atlas.platforms == ("exchange", "zoho") and atlas.score == 1.0 and "same UID" in atlas.reason
    budget = by_title["Budget sync"]
    assert budget.platforms == ("projects", "zoho") and 0.8 <= budget.score < 1.0
    assert "same title" in budget.reason and "times within 0:05:00" in budget.reason
    assert not budget.pairs[0].same_uid


def test_resolution_never_removes_the_organizers_copy(hub: Hub) -> None:
    analyses = detection.analyse_people(hub, [ALICE], WEEK)
    plan = detection.plan_resolution(hub, analyses, WEEK)
    removed = {(r.platform, r.uid) for r in plan.removals}
    # Carla organises Atlas and lives on exchange: the exchange copy is hers to keep.
    assert ("exchange", "ATLAS-1@AGENCY.EXAMPLE") not in removed
    assert ("zoho", "atlas-1@agency.example") in removed
    atlas = next(r for r in plan.resolutions if r.keep.event.summary == "Atlas review")
    assert atlas.keep.platform == "exchange" and "organizer" in next(
        d.reason for d in atlas.decisions if not d.remove)


def test_unreadable_platform_is_reported(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "exchange" / f"{ALICE}.ics").unlink()
    with Hub(cfg) as hub:
        (alice,) = detection.analyse_people(hub, [ALICE], WEEK)
    assert [e.platform for e in alice.errors] == ["exchange"]


def test_across_radicale_and_xandikos(radicale, xandikos, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Alice's home calendar on Radicale and a shared one on Xandikos: a double booking and a
    copied meeting that neither server can see alone."""
    with Hub(caldav_config(tmp_path, radicale, xandikos)) as hub:
        home, shared = hub.directory.get(ALICE).calendars[0], hub.directory.get(ALICE).also[0].calendars[0]
        atlas = meeting("atlas-1@agency.example", at(PARIS, 12, 4, 14), 60, "Atlas review",
                        organizer=CARLA_ORGANISES, attendees=[CARLA_ORGANISES, Attendee(ALICE)])
        for calendar, connector, events in (
                (home, hub.connector("radicale"), [meeting("call-1", at(PARIS, 12, 1, 10), 60, "Client call"), atlas]),
                (shared, hub.connector("xandikos"), [meeting("review", at(PARIS, 12, 1, 10, 30), 60, "Design review"),
                                                      atlas])):
            for event in events:
                connector.put(calendar, CalendarItem(event.uid, [event]))
        (alice,) = detection.analyse_people(hub, [ALICE], WEEK)
        assert not alice.errors
        (conflict,) = alice.conflicts
        assert conflict.platforms == ("radicale", "xandikos")
        (group,) = alice.duplicates
        assert group.platforms == ("radicale", "xandikos") and group.score == 1.0
        plan = detection.plan_resolution(hub, [alice], WEEK)
        # Carla organises and lives on xandikos: the copy there is never removed
        assert [(r.platform, r.uid) for r in plan.removals] == [("radicale", "atlas-1@agency.example")]


def test_apply_logs_each_deletion_and_undo_puts_it_back(hub: Hub) -> None:
    """Deletions go through the connectors (ICS file, SQL row) and the state store's audit log."""
    plan = detection.plan_resolution(hub, detection.analyse_people(hub, [ALICE], WEEK), WEEK)
    assert {(r.platform, r.uid) for r in plan.removals} == {("zoho", "atlas-1@agency.example"),
                                                           ("projects", "2@projects")}
    with detection.open_audit_log(hub.config) as log:
        applied = detection.apply_resolution(hub, plan, log)
        assert all(a.error is None and a.log_id for a in applied)
        entries = {e.id: e for e in log.audit_log()}
        assert {entries[a.log_id].action for a in applied} == {"delete"}
        assert all("duplicate resolution" in (entries[a.log_id].reason or "") for a in applied)

        (alice,) = detection.analyse_people(hub, [ALICE], WEEK)
        assert alice.duplicates == []  # cleaned up
        assert {e.event.summary for e in detection.gather(hub, ALICE, WEEK)[0]} >= {"Atlas review", "Budget sync"}

        for result in applied:
            detection.undo(hub, log, result.log_id)
        (alice,) = detection.analyse_people(hub, [ALICE], WEEK)
        assert {g.members[0].event.summary for g in alice.duplicates} == {"Budget sync", "Atlas review"}
        assert log.audit_log()[0].action == "create" and "undo of audit entry" in (log.audit_log()[0].reason or "")
        with pytest.raises(ValueError, match="not a duplicate-resolution deletion"):
            detection.undo(hub, log, log.audit_log()[0].id)
        with pytest.raises(LookupError):
            detection.undo(hub, log, 999_999)


def test_a_copy_changed_since_it_was_read_is_not_deleted(hub: Hub, tmp_path: Path) -> None:
    plan = detection.plan_resolution(hub, detection.analyse_people(hub, [ALICE], WEEK), WEEK)
    zoho_atlas = next(r for r in plan.removals if r.platform == "zoho")
    item = detection.stored_item(hub, "zoho", f"{ALICE}.ics", zoho_atlas.uid)

    class Racing:
        """A log that lets someone edit the copy between its logging and its deletion."""

        def __init__(self, inner: object) -> None:
            self.inner = inner

        def audit(self, **kwargs: object) -> int:
            edited = item.components[0].with_changes(summary="Atlas review (moved room)")
            hub.connector("zoho").put(f"{ALICE}.ics", CalendarItem(item.uid, [edited], item.ref), if_match=item.ref.etag)
            return self.inner.audit(**kwargs)  # type: ignore[attr-defined]

    with detection.open_audit_log(hub.config) as log:
        applied = detection.apply_resolution(hub, detection.ResolutionPlan([], [zoho_atlas]), Racing(log))  # type: ignore[arg-type]
    assert applied[0].error and "changed since it was read" in applied[0].error
    assert detection.stored_item(hub, "zoho", f"{ALICE}.ics", zoho_atlas.uid).components[0].summary.endswith("room)")


# ------------------------------------------------------- copies are never conflicts (issue 12, item 3)
def synced(hub: Hub, mode: str) -> None:
    """One run of a sync group over Alice's two calendars (zoho and exchange folders)."""
    group = SyncGroupConfig(mode=mode, calendars=[  # type: ignore[arg-type]
        SyncMember(platform="zoho", calendar=f"{ALICE}.ics"), SyncMember(platform="exchange", calendar=f"{ALICE}.ics")])
    sessions = open_store(hub.config.state_url())
    try:
        report = SyncEngine(SyncRepository(sessions), hub.connector).run("alice", group)
    finally:
        sessions.kw["bind"].dispose()
    assert not report.errors and report.plan.writes


def forget_records(hub: Hub) -> None:
    """Lose the state store's records (a new store, a lost file): only the markers are left."""
    sessions = hub.identities()._sessions
    with sessions() as session, session.begin():
        session.execute(sa.delete(SyncItem))
        session.execute(sa.delete(MeetingIdentity))


def overlaps(hub: Hub, who: str = ALICE) -> list[tuple[datetime, datetime]]:
    (analysis,) = detection.analyse_people(hub, [who], WEEK)
    assert not analysis.errors
    return sorted((c.start, c.end) for c in analysis.conflicts)


@pytest.mark.parametrize("records", ["kept", "lost"])
@pytest.mark.parametrize("mode", ["busy", "mirror"])
def test_copies_are_never_conflicts(hub: Hub, mode: str, records: str) -> None:
    """Busy placeholders (their own UID and title), mirror copies and a booked invitation (Carla
    invites Alice), all in Alice's view after her two calendars are synced: only the real double
    booking is reported, whether the copies are known from the identity record or, with the
    records lost, from their markers alone."""
    before = overlaps(hub)
    assert before == [(utc(12, 1, 9, 30), utc(12, 1, 10))]  # Client call x Sprint planning
    slot = (at(PARIS, 12, 2, 9), at(PARIS, 12, 2, 10))
    booking = scheduling.book(hub, scheduling.BookingRequest(CARLA, (ALICE,), *slot, "Roadmap"), now=utc(11, 1, 0))
    assert {d.email: d.method for d in booking.deliveries}[ALICE] == "calendar"
    synced(hub, mode)
    exchange = ICSConnector("exchange", ICSSettings(kind="ics", path=str(hub.config.resolve_path("exchange"))))
    copies, _ = exchange.items(f"{ALICE}.ics")
    assert sum(1 for i in copies if i.marker) >= 3  # Client call, Budget sync and Roadmap arrived
    if records == "lost":
        forget_records(hub)
    assert overlaps(hub) == before
    assert overlaps(hub, CARLA) == []


def test_a_copy_still_conflicts_with_another_meeting(hub: Hub) -> None:
    """A placeholder stands for its own meeting only: a different meeting at its time is still a
    conflict, reported once."""
    synced(hub, "busy")
    put(hub.config.resolve_path("."), "exchange", ALICE, meeting("clash", at(PARIS, 12, 2, 15, 30), 30, "Clash"))
    (analysis,) = detection.analyse_people(hub, [ALICE], WEEK)
    clashes = [c for c in analysis.conflicts if "clash" in (c.first.event.uid, c.second.event.uid)]
    assert [(c.start, c.end) for c in clashes] == [(utc(12, 2, 14, 30), utc(12, 2, 15))]
