"""Graph connector tests. Every test runs against calmesh.fakes.graph.GraphFake, a protocol-faithful
fake of Microsoft Graph v1.0 (and its OAuth2 token endpoint) served by uvicorn on 127.0.0.1:
no Microsoft service is reachable from the test machines."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

import pytest

from calmesh.connectors import registry
from calmesh.connectors.base import (
    AuthenticationError,
    FreeBusyRequest,
    InvalidTokenError,
    PreconditionFailed,
    TransientError,
)
from calmesh.connectors.graph import GraphConnector
from calmesh.fakes.graph import GraphFake
from calmesh.fakes.samples import NEW_YORK, PARIS, all_day, new_york_daily, single, weekly_series
from calmesh.model import MARKER_PROPERTY, BusyType, CalendarItem, Event, Window, WorkingHours

ALICE, BOB, CAROL = "alice@sales.test", "bob@sales.test", "carol@sales.test"


@pytest.fixture
def fake() -> Iterator[GraphFake]:
    graph = GraphFake()
    graph.add_mailbox(ALICE, "Europe/Paris", WorkingHours.simple("Europe/Paris", time(9), time(17)))
    graph.add_mailbox(BOB, "America/New_York", WorkingHours.simple("America/New_York", time(8), time(16)))
    graph.add_mailbox(CAROL, "Europe/Paris")
    graph.start()
    yield graph
    graph.stop()


@pytest.fixture
def conn(fake: GraphFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[GraphConnector]:
    monkeypatch.setenv("CALMESH_TEST_GRAPH_SECRET", fake.client_secret)
    connector = registry.create("m365", {
        "kind": "graph", "tenant_id": "contoso", "client_id": fake.client_id,
        "client_secret_env": "CALMESH_TEST_GRAPH_SECRET", "mailboxes": [ALICE],
        "base_url": fake.graph_url, "token_url": fake.token_url, "timezone": "Europe/Paris",
    })
    assert isinstance(connector, GraphConnector)
    waits: list[float] = []
    connector.sleep = waits.append
    connector.waits = waits  # type: ignore[attr-defined]
    yield connector
    connector.close()


WEEK = Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


def test_freebusy_several_mailboxes_with_working_hours_and_unknown(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: one getSchedule answers three people, an unknown one is an error."""
    fake.add_item(ALICE, single("a1", datetime(2026, 11, 2, 10, tzinfo=PARIS), datetime(2026, 11, 2, 11, tzinfo=PARIS)))
    fake.add_item(BOB, single("b1", datetime(2026, 11, 2, 9, tzinfo=NEW_YORK), datetime(2026, 11, 2, 10, tzinfo=NEW_YORK),
                              busy_type=BusyType.BUSY_UNAVAILABLE))
    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    people = [FreeBusyRequest(ALICE), FreeBusyRequest(BOB), FreeBusyRequest("ghost@sales.test"), FreeBusyRequest(CAROL)]
    result = {p.email: p for p in conn.freebusy(people, window)}
    assert len(fake.schedule_calls) == 1
    alice, bob, ghost, carol = (result[e] for e in (ALICE, BOB, "ghost@sales.test", CAROL))
    assert [(p.start, p.end, p.type) for p in alice.busy] == [
        (datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 10, tzinfo=UTC), BusyType.BUSY)]
    assert bob.busy[0].type is BusyType.BUSY_UNAVAILABLE
    assert bob.busy[0].start == datetime(2026, 11, 2, 14, tzinfo=UTC)
    assert alice.working_hours == WorkingHours.simple("Europe/Paris", time(9), time(17))
    assert bob.working_hours is not None and bob.working_hours.timezone == "America/New_York"
    assert carol.busy == [] and carol.complete
    assert not ghost.complete and "ghost@sales.test" in str(ghost.errors[0])
    assert [p.type for p in ghost.busy] == [BusyType.UNKNOWN]


def test_freebusy_splits_long_windows_and_big_batches(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake, which refuses >20 schedules and windows of 62+ days like Graph."""
    people = [FreeBusyRequest(ALICE)] + [FreeBusyRequest(f"p{i}@sales.test") for i in range(24)]
    window = Window(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
    result = conn.freebusy(people, window)
    assert len(result) == 25 and result[0].complete
    assert len(fake.schedule_calls) == 2 * 2  # two windows x two batches
    assert all(len(call["schedules"]) <= 20 for call in fake.schedule_calls)


def test_recurrence_with_moved_and_cancelled_occurrence_round_trips(conn: GraphConnector) -> None:
    """Against the Graph fake: put a series with an override and an EXDATE, read items and events."""
    ref = conn.put(ALICE, weekly_series())
    items, problems = conn.items(ALICE, WEEK)
    assert not problems and len(items) == 1
    item = items[0]
    assert item.ref is not None and item.ref.id == ref.id and item.ref.etag == ref.etag
    master = item.master
    assert master is not None and master.rrule == ["FREQ=WEEKLY;COUNT=6;BYDAY=TU"]
    assert master.start == datetime(2026, 10, 20, 9, tzinfo=PARIS) and master.tzid == "Europe/Paris"
    assert master.exdate == [datetime(2026, 11, 10, 9, tzinfo=PARIS)]
    (moved,) = item.overrides
    assert moved.recurrence_id == datetime(2026, 11, 3, 9, tzinfo=PARIS)
    assert moved.start == datetime(2026, 11, 4, 10, tzinfo=PARIS) and moved.summary == "Sales stand-up (moved)"
    assert moved.uid == master.uid == item.uid

    events, _ = conn.events(ALICE, WEEK)
    starts = [e.start for e in events]
    assert datetime(2026, 11, 10, 9, tzinfo=PARIS) not in starts
    assert datetime(2026, 11, 4, 10, tzinfo=PARIS) in starts
    assert len(events) == 4 and {e.uid for e in events} == {master.uid}  # 6 minus cancelled minus 24 Nov


def test_seeded_series_keeps_ical_uid(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: a series created by a user keeps its iCalUId on Event.uid."""
    fake.add_item(ALICE, weekly_series("outlook-made@contoso"))
    items, _ = conn.items(ALICE, WEEK)
    assert items[0].uid == "outlook-made@contoso" and len(items[0].overrides) == 1
    assert len(items[0].master.exdate) == 1  # type: ignore[union-attr]


def test_all_day_event_round_trips(conn: GraphConnector) -> None:
    """Against the Graph fake: an all-day out-of-office day stays a DATE and OOF."""
    conn.put(ALICE, all_day())
    events, _ = conn.events(ALICE, WEEK)
    (event,) = events
    assert event.start == date(2026, 11, 11) and event.end == date(2026, 11, 12)
    assert event.all_day and event.busy_type is BusyType.BUSY_UNAVAILABLE


def test_dst_week_keeps_local_wall_time(conn: GraphConnector) -> None:
    """Against the Graph fake: a New York daily series stays at 09:00 local across 2026-11-01."""
    conn.put(BOB, new_york_daily())
    events, _ = conn.events(BOB, Window(datetime(2026, 10, 28, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)))
    assert [e.start.hour for e in events] == [9] * 7  # type: ignore[union-attr]
    utc_hours = [e.start.astimezone(UTC).hour for e in events]  # type: ignore[union-attr]
    assert utc_hours == [13, 13, 13, 14, 14, 14, 14]
    conn.put(ALICE, weekly_series())
    paris, _ = conn.events(ALICE, WEEK)
    # 09:00 Paris is 07:00 UTC before 2026-10-25 and 08:00 UTC after
    assert {e.start.astimezone(UTC).hour for e in paris if e.start.hour == 9} == {7, 8}  # type: ignore[union-attr]


def test_throttling_429_honours_retry_after(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: two 429s with Retry-After: 3, then success."""
    conn.calendars()
    fake.fail_next(2, status=429, retry_after=3)
    assert [c.id for c in conn.calendars()] == [ALICE]
    assert conn.waits == [3.0, 3.0]  # type: ignore[attr-defined]


def test_token_expiring_mid_run_is_refreshed(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: the token expires between calls; one refresh, no error."""
    conn.calendars()
    fake.expire_tokens()
    assert conn.calendars()
    assert fake.requests.count("POST /token") == 2


def test_paging_follows_next_link(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake serving at most 2 events per page."""
    fake.page_size = 2
    for day in range(5):
        start = datetime(2026, 11, 2 + day, 15, tzinfo=PARIS)
        fake.add_item(ALICE, single(f"p{day}", start, start + timedelta(hours=1)))
    events, _ = conn.events(ALICE, WEEK)
    assert [e.uid for e in events] == [f"p{d}" for d in range(5)]
    assert fake.requests.count(f"GET /v1.0/users/{ALICE}/calendar/calendarView") == 3


def test_changes_create_update_delete(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: events/delta deltaLink as the change token."""
    first = conn.changes(ALICE, None)
    assert first.complete and first.changed == [] and first.token
    ref = conn.put(ALICE, single("c1", datetime(2026, 11, 5, 14, tzinfo=PARIS), datetime(2026, 11, 5, 15, tzinfo=PARIS)))
    created = conn.changes(ALICE, first.token)
    assert [i.ref.id for i in created.changed] == [ref.id] and not created.complete  # type: ignore[union-attr]
    item = created.changed[0]
    item.components[0].summary = "Renamed"
    ref2 = conn.put(ALICE, item, if_match=ref.etag)
    updated = conn.changes(ALICE, created.token)
    assert updated.changed[0].components[0].summary == "Renamed"
    conn.delete(ALICE, ref2, if_match=ref2.etag)
    deleted = conn.changes(ALICE, updated.token)
    assert [r.id for r in deleted.deleted] == [ref.id] and deleted.changed == []
    fake.invalidate_delta()
    with pytest.raises(InvalidTokenError):
        conn.changes(ALICE, deleted.token)


def test_stale_if_match_is_refused(conn: GraphConnector) -> None:
    """Against the Graph fake: PATCH with an old @odata.etag answers 412 -> PreconditionFailed."""
    item = single("s1", datetime(2026, 11, 5, 14, tzinfo=PARIS), datetime(2026, 11, 5, 15, tzinfo=PARIS))
    ref = conn.put(ALICE, item)
    item.ref = ref
    conn.put(ALICE, item, if_match=ref.etag)
    with pytest.raises(PreconditionFailed):
        conn.put(ALICE, item, if_match=ref.etag)
    with pytest.raises(PreconditionFailed):
        conn.delete(ALICE, ref, if_match=ref.etag)


def test_marker_round_trips_as_extended_property(conn: GraphConnector) -> None:
    """Against the Graph fake: the calmesh marker is stored as a singleValueExtendedProperty."""
    event = Event(uid="m1", start=datetime(2026, 11, 5, 14, tzinfo=PARIS), end=datetime(2026, 11, 5, 15, tzinfo=PARIS),
                  summary="Mirrored", extra={MARKER_PROPERTY: "caldav/team/abc"}, tzid="Europe/Paris")
    conn.put(ALICE, CalendarItem("m1", [event]))
    items, _ = conn.items(ALICE)
    assert items[0].marker == "caldav/team/abc"
    assert conn.check()[0].startswith("token")


def test_token_refreshed_before_expiry(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake issuing 30-second tokens: each call finds it within the refresh margin."""
    fake.token_lifetime = 30
    conn.calendars()
    conn.calendars()
    assert fake.requests.count("POST /token") == 2


def test_iana_zone_names_written_and_windows_names_read(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake: zone_names = "iana" writes IANA names; Windows names are read back."""
    conn.settings.zone_names = "iana"
    ref = conn.put(ALICE, single("z1", datetime(2026, 11, 5, 14, tzinfo=NEW_YORK), datetime(2026, 11, 5, 15, tzinfo=NEW_YORK)))
    stored = fake.mailboxes[ALICE].default.events[ref.id].data
    assert stored["start"]["timeZone"] == "America/New_York"
    seeded = fake.add_item(ALICE, single("z2", datetime(2026, 11, 6, 14, tzinfo=NEW_YORK),
                                         datetime(2026, 11, 6, 15, tzinfo=NEW_YORK)))
    assert fake.mailboxes[ALICE].default.events[seeded].data["start"]["timeZone"] == "Eastern Standard Time"
    by_id = {i.ref.id: i.components[0] for i in conn.items(ALICE)[0]}  # type: ignore[union-attr]
    assert by_id[seeded].tzid == by_id[ref.id].tzid == "America/New_York"
    assert by_id[seeded].start == datetime(2026, 11, 6, 14, tzinfo=NEW_YORK)


def test_wrong_client_secret_is_an_authentication_error(fake: GraphFake, conn: GraphConnector) -> None:
    """Against the Graph fake's token endpoint: invalid_client -> AuthenticationError."""
    fake.client_secret = "rotated"
    with pytest.raises(AuthenticationError, match="AADSTS7000215"):
        conn.calendars()


RULES = ["FREQ=DAILY;INTERVAL=2;UNTIL=20261110T080000Z", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;WKST=SU",
         "FREQ=MONTHLY;COUNT=3;BYMONTHDAY=20", "FREQ=MONTHLY;COUNT=3;BYDAY=TU;BYSETPOS=-1",
         "FREQ=YEARLY;COUNT=2;BYDAY=TU;BYSETPOS=3;BYMONTH=10"]


@pytest.mark.parametrize("rule", RULES)
def test_recurrence_rules_round_trip(conn: GraphConnector, rule: str) -> None:
    """Against the Graph fake: RRULE -> patternedRecurrence -> RRULE is stable."""
    start = datetime(2026, 10, 20, 9, tzinfo=PARIS)
    event = Event(uid="r1", start=start, end=start + timedelta(hours=1), rrule=[rule], tzid="Europe/Paris")
    conn.put(ALICE, CalendarItem("r1", [event]))
    (item,) = conn.items(ALICE)[0]
    assert item.master is not None and item.master.rrule == [rule]


def test_unreachable_service_retries_a_bounded_number_of_times(fake: GraphFake, conn: GraphConnector) -> None:
    """Against a stopped Graph fake: connection refused -> TransientError after 3 bounded retries."""
    conn.calendars()
    fake.stop()
    with pytest.raises(TransientError):
        conn.calendars()
    assert len(conn.waits) == 3  # type: ignore[attr-defined]
