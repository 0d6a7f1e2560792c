"""EWS connector tests. Every test runs against calmesh.fakes.ews.EWSFake, a protocol-faithful fake of
Exchange Web Services (SOAP, plus an OAuth2 token endpoint) served by uvicorn on 127.0.0.1 and
driven through exchangelib's real client code: no Exchange server is reachable from the test
machines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from calmesh.connectors import registry
from calmesh.connectors.base import (
    AuthenticationError,
    FreeBusyRequest,
    InvalidTokenError,
    PreconditionFailed,
    TransientError,
)
from calmesh.connectors.ews import EWSConnector
from calmesh.fakes.ews import EWSFake
from calmesh.fakes.samples import NEW_YORK, PARIS, all_day, new_york_daily, single, weekly_series
from calmesh.model import MARKER_PROPERTY, BusyType, CalendarItem, Event, Window, WorkingHours

ALICE, BOB, CAROL = "alice@sales.test", "bob@sales.test", "carol@sales.test"
WEEKS = Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


@pytest.fixture
def fake() -> Iterator[EWSFake]:
    ews = EWSFake()
    ews.add_mailbox(ALICE, "Europe/Paris", WorkingHours.simple("Europe/Paris", time(9), time(17)))
    ews.add_mailbox(BOB, "America/New_York", WorkingHours.simple("America/New_York", time(8), time(16)))
    ews.add_mailbox(CAROL, "Europe/Paris")
    ews.start()
    yield ews
    ews.stop()


def _connect(fake: EWSFake, monkeypatch: pytest.MonkeyPatch, **extra: Any) -> EWSConnector:
    monkeypatch.setenv("CALMESH_TEST_EWS_PASSWORD", "svc-password")
    monkeypatch.setenv("CALMESH_TEST_EWS_SECRET", fake.client_secret)
    raw = {"kind": "ews", "service_endpoint": fake.ews_url, "auth": "basic", "username": "calmesh-svc",
           "password_env": "CALMESH_TEST_EWS_PASSWORD", "mailboxes": [ALICE, BOB], "timezone": "Europe/Paris", **extra}
    connector = registry.create("exchange", raw)
    assert isinstance(connector, EWSConnector)
    waits: list[float] = []
    connector.sleep = waits.append
    connector.waits = waits  # type: ignore[attr-defined]
    return connector


@pytest.fixture
def conn(fake: EWSFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[EWSConnector]:
    connector = _connect(fake, monkeypatch)
    yield connector
    connector.close()


def _utc_offset(hours: WorkingHours, when: datetime) -> timedelta | None:
    return when.astimezone(hours.zone).utcoffset()


def test_freebusy_several_mailboxes_with_working_hours_and_unknown(fake: EWSFake, conn: EWSConnector) -> None:
    """Against the EWS fake: one GetUserAvailability answers everyone; an unknown mailbox is an error
    naming it while the others still answer."""
    fake.add_item(ALICE, single("a1", datetime(2026, 11, 2, 10, tzinfo=PARIS), datetime(2026, 11, 2, 11, tzinfo=PARIS)))
    fake.add_item(BOB, single("b1", datetime(2026, 11, 2, 9, tzinfo=NEW_YORK), datetime(2026, 11, 2, 10, tzinfo=NEW_YORK),
                              busy_type=BusyType.BUSY_UNAVAILABLE))
    fake.add_item(CAROL, single("c1", datetime(2026, 11, 2, 12, tzinfo=PARIS), datetime(2026, 11, 2, 13, tzinfo=PARIS)),
                  status="WorkingElsewhere")
    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    people = [FreeBusyRequest(ALICE), FreeBusyRequest(BOB), FreeBusyRequest("ghost@sales.test"), FreeBusyRequest(CAROL)]
    result = {p.email: p for p in conn.freebusy(people, window)}
    assert fake.availability_calls == [[ALICE, BOB, "ghost@sales.test", CAROL]]
    alice, bob, ghost, carol = (result[e] for e in (ALICE, BOB, "ghost@sales.test", CAROL))
    assert [(p.start, p.end, p.type) for p in alice.busy] == [
        (datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 10, tzinfo=UTC), BusyType.BUSY)]
    assert [(p.start, p.type) for p in bob.busy] == [(datetime(2026, 11, 2, 14, tzinfo=UTC), BusyType.BUSY_UNAVAILABLE)]
    assert carol.busy == [] and carol.complete  # WorkingElsewhere does not block
    assert not ghost.complete and "ghost@sales.test" in str(ghost.errors[0])
    assert "ErrorMailRecipientNotFound" in str(ghost.errors[0])
    assert [p.type for p in ghost.busy] == [BusyType.UNKNOWN]
    # working hours come with a bias-and-rules zone: equivalent offsets on both sides of the DST change
    assert alice.working_hours is not None and bob.working_hours is not None
    period = alice.working_hours.periods[0]
    assert (period.days, period.start, period.end) == (frozenset(range(5)), time(9), time(17))
    for when in (datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)):
        assert _utc_offset(alice.working_hours, when) == when.astimezone(PARIS).utcoffset()
        assert _utc_offset(bob.working_hours, when) == when.astimezone(NEW_YORK).utcoffset()


def test_freebusy_chunks_at_100_mailboxes(fake: EWSFake, conn: EWSConnector) -> None:
    """Against the EWS fake, which refuses more than 100 mailboxes per GetUserAvailability."""
    people = [FreeBusyRequest(ALICE)] + [FreeBusyRequest(f"p{i}@sales.test") for i in range(149)]
    result = conn.freebusy(people, Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)))
    assert [len(call) for call in fake.availability_calls] == [100, 50]
    assert result[0].complete and len(result) == 150 and not result[1].complete


def test_recurrence_with_moved_and_cancelled_occurrence_round_trips(conn: EWSConnector) -> None:
    """Against the EWS fake: put a series with a modified and a deleted occurrence, read it back."""
    ref = conn.put(ALICE, weekly_series())
    items, problems = conn.items(ALICE, WEEKS)
    assert not problems and len(items) == 1
    item = items[0]
    assert item.ref is not None and item.ref.id == ref.id and item.ref.etag == ref.etag
    master = item.master
    assert master is not None and item.uid == master.uid == "series-1@calmesh.test"
    assert master.rrule == ["FREQ=WEEKLY;COUNT=6;BYDAY=TU"] and master.tzid == "Europe/Paris"
    assert master.start == datetime(2026, 10, 20, 9, tzinfo=PARIS)
    assert master.exdate == [datetime(2026, 11, 10, 9, tzinfo=PARIS)]
    (moved,) = item.overrides
    assert moved.recurrence_id == datetime(2026, 11, 3, 9, tzinfo=PARIS)
    assert moved.start == datetime(2026, 11, 4, 10, tzinfo=PARIS) and moved.location == "Room 2"

    events, _ = conn.events(ALICE, WEEKS)
    assert [e.start for e in events] == [datetime(2026, 10, 20, 9, tzinfo=PARIS), datetime(2026, 10, 27, 9, tzinfo=PARIS),
                                         datetime(2026, 11, 4, 10, tzinfo=PARIS), datetime(2026, 11, 17, 9, tzinfo=PARIS)]
    assert {e.uid for e in events} == {"series-1@calmesh.test"}
    assert events[2].recurrence_id == datetime(2026, 11, 3, 9, tzinfo=PARIS)


def test_seeded_series_read_as_item(fake: EWSFake, conn: EWSConnector) -> None:
    """Against the EWS fake: a series created in Outlook (seeded) keeps its UID and exceptions."""
    fake.add_item(ALICE, weekly_series("outlook-made@contoso"))
    items, _ = conn.items(ALICE)
    assert [i.uid for i in items] == ["outlook-made@contoso"]
    assert len(items[0].overrides) == 1 and len(items[0].master.exdate) == 1  # type: ignore[union-attr]


def test_all_day_event_round_trips(conn: EWSConnector) -> None:
    """Against the EWS fake: an all-day out-of-office day stays a DATE (exclusive end) and OOF."""
    conn.put(ALICE, all_day())
    events, _ = conn.events(ALICE, WEEKS)
    (event,) = events
    assert event.start == date(2026, 11, 11) and event.end == date(2026, 11, 12)
    assert event.busy_type is BusyType.BUSY_UNAVAILABLE


def test_dst_week_keeps_local_wall_time(conn: EWSConnector) -> None:
    """Against the EWS fake: New York (2026-11-01) and Paris (2026-10-25) series keep local wall time."""
    conn.put(BOB, new_york_daily())
    events, _ = conn.events(BOB, Window(datetime(2026, 10, 28, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)))
    assert [e.start.hour for e in events] == [9] * 7  # type: ignore[union-attr]
    assert [e.start.astimezone(UTC).hour for e in events] == [13, 13, 13, 14, 14, 14, 14]  # type: ignore[union-attr]
    conn.put(ALICE, weekly_series())
    paris, _ = conn.events(ALICE, Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)))
    # 09:00 Paris is 07:00 UTC before Europe's change on 2026-10-25 and 08:00 UTC after it
    assert [(e.start.hour, e.start.astimezone(UTC).hour) for e in paris] == [(9, 7), (9, 8)]  # type: ignore[union-attr]


def test_server_busy_backs_off_then_succeeds(fake: EWSFake, conn: EWSConnector) -> None:
    """Against the EWS fake: two ErrorServerBusy faults (BackOffMilliseconds 2500), then success."""
    conn.put(ALICE, single("b1", datetime(2026, 11, 5, 14, tzinfo=PARIS), datetime(2026, 11, 5, 15, tzinfo=PARIS)))
    fake.busy_next(2, back_off_ms=2500)
    events, _ = conn.events(ALICE, WEEKS)
    assert [e.uid for e in events] == ["b1"]
    assert conn.waits == [2.5, 2.5]  # type: ignore[attr-defined]


def test_oauth_token_expiring_mid_run(fake: EWSFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the EWS fake's token endpoint: client credentials, token expires, one re-fetch."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake speaks plain http on loopback
    connector = _connect(fake, monkeypatch, auth="oauth2", username=None, password_env=None,
                         client_id=fake.client_id, client_secret_env="CALMESH_TEST_EWS_SECRET",
                         token_url=fake.token_url, server_version="Exchange2016")
    try:
        assert connector.events(ALICE, WEEKS) == ([], [])
        fake.expire_tokens()
        assert connector.events(ALICE, WEEKS) == ([], [])
        assert fake.tokens_issued == 2
    finally:
        connector.close()


def test_paging_through_find_item(fake: EWSFake, conn: EWSConnector) -> None:
    """Against the EWS fake serving two items per FindItem page (IndexedPageItemView)."""
    fake.page_size = 2
    for day in range(5):
        start = datetime(2026, 11, 2 + day, 15, tzinfo=PARIS)
        fake.add_item(ALICE, single(f"p{day}", start, start + timedelta(hours=1)))
    items, problems = conn.items(ALICE)
    assert not problems and sorted(i.uid for i in items) == [f"p{d}" for d in range(5)]
    assert fake.operations.count("FindItem") == 3


def test_changes_create_update_delete(fake: EWSFake, conn: EWSConnector) -> None:
    """Against the EWS fake: SyncFolderItems SyncState as the change token."""
    first = conn.changes(ALICE, None)
    assert first.complete and first.changed == [] and first.token
    ref = conn.put(ALICE, single("c1", datetime(2026, 11, 5, 14, tzinfo=PARIS), datetime(2026, 11, 5, 15, tzinfo=PARIS)))
    created = conn.changes(ALICE, first.token)
    assert [i.uid for i in created.changed] == ["c1"] and not created.complete
    item = created.changed[0]
    item.components[0].summary = "Renamed"
    ref2 = conn.put(ALICE, item, if_match=item.ref.etag)  # type: ignore[union-attr]
    updated = conn.changes(ALICE, created.token)
    assert [i.components[0].summary for i in updated.changed] == ["Renamed"]
    conn.delete(ALICE, ref2, if_match=ref2.etag)
    deleted = conn.changes(ALICE, updated.token)
    assert [r.id for r in deleted.deleted] == [ref.id] and deleted.changed == []
    fake.invalidate_sync_states()
    with pytest.raises(InvalidTokenError):
        conn.changes(ALICE, deleted.token)


def test_stale_change_key_is_refused(conn: EWSConnector) -> None:
    """Against the EWS fake: UpdateItem with an old ChangeKey -> ErrorIrresolvableConflict."""
    item = single("s1", datetime(2026, 11, 5, 14, tzinfo=PARIS), datetime(2026, 11, 5, 15, tzinfo=PARIS))
    ref = conn.put(ALICE, item)
    item.ref = ref
    conn.put(ALICE, item, if_match=ref.etag)
    with pytest.raises(PreconditionFailed):
        conn.put(ALICE, item, if_match=ref.etag)
    with pytest.raises(PreconditionFailed):
        conn.delete(ALICE, ref, if_match=ref.etag)


def test_marker_round_trips_as_extended_property(conn: EWSConnector) -> None:
    """Against the EWS fake: the calmesh marker is stored as a PublicStrings ExtendedProperty."""
    event = Event(uid="m1", start=datetime(2026, 11, 5, 14, tzinfo=PARIS), end=datetime(2026, 11, 5, 15, tzinfo=PARIS),
                  summary="Mirrored", extra={MARKER_PROPERTY: "caldav/team/abc"}, tzid="Europe/Paris")
    conn.put(ALICE, CalendarItem("m1", [event]))
    items, _ = conn.items(ALICE)
    assert items[0].marker == "caldav/team/abc" and items[0].uid == "m1"
    assert conn.check()[0].startswith("EWS endpoint")


def test_wrong_password_is_an_authentication_error(fake: EWSFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the EWS fake: Basic credentials refused (HTTP 401) -> AuthenticationError, no retries."""
    connector = _connect(fake, monkeypatch)
    monkeypatch.setattr(fake, "users", {"calmesh-svc": "another-password"})
    with pytest.raises(AuthenticationError):
        connector.calendars()
    assert connector.waits == []  # type: ignore[attr-defined]
    connector.close()


RULES = ["FREQ=DAILY;INTERVAL=2;UNTIL=20261110T080000Z", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;WKST=SU",
         "FREQ=MONTHLY;COUNT=3;BYMONTHDAY=20", "FREQ=MONTHLY;COUNT=3;BYDAY=TU;BYSETPOS=-1",
         "FREQ=YEARLY;COUNT=2;BYDAY=TU;BYSETPOS=3;BYMONTH=10"]


@pytest.mark.parametrize("rule", RULES)
def test_recurrence_rules_round_trip(conn: EWSConnector, rule: str) -> None:
    """Against the EWS fake: RRULE -> EWS Recurrence (via exchangelib) -> RRULE is stable."""
    start = datetime(2026, 10, 20, 9, tzinfo=PARIS)
    event = Event(uid="r1", start=start, end=start + timedelta(hours=1), rrule=[rule], tzid="Europe/Paris")
    conn.put(ALICE, CalendarItem("r1", [event]))
    (item,) = conn.items(ALICE)[0]
    assert item.master is not None and item.master.rrule == [rule]


def test_unreachable_server_retries_a_bounded_number_of_times(fake: EWSFake, conn: EWSConnector) -> None:
    """Against a stopped EWS fake: connection refused -> TransientError after 3 bounded retries."""
    conn.calendars()
    fake.stop()
    with pytest.raises(TransientError):
        conn.events(ALICE, WEEKS)
    assert len(conn.waits) == 3  # type: ignore[attr-defined]
