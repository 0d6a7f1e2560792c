"""The contract every vendor connector keeps: each test runs against EWS, Microsoft Graph and Google.

Every vendor is its protocol-faithful fake from ``calmesh.fakes`` (EWSFake, GraphFake, GoogleFake)
served by uvicorn on 127.0.0.1 and spoken to through the connector's real client code: no Exchange,
Microsoft 365 or Google service is reachable from the test machines. What differs between the
vendors for the same behaviour (how a fake is throttled, which words an error carries) lives on
the :class:`conftest.Vendor` of each; vendor-only behaviour is tested in ``test_ews.py``,
``test_graph.py`` and ``test_google.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from icalendar import vRecur

from calmesh.connectors.base import (
    AuthenticationError,
    FreeBusyRequest,
    InvalidTokenError,
    NotFoundError,
    PreconditionFailed,
    TransientError,
)
from calmesh.fakes.samples import NEW_YORK, PARIS, all_day, new_york_daily, single, weekly_series
from calmesh.model import MARKER_PROPERTY, Attendee, BusyType, CalendarItem, Event, Window

from .vendors import ALICE, BOB, CAROL, KINDS, Vendor

pytestmark = pytest.mark.parametrize("vendor", KINDS, indirect=True)
WEEKS = Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))
NOV_2 = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))


def call(uid: str, day: int, hour: int, tz: Any = PARIS) -> CalendarItem:
    """A one-hour customer call on ``day`` November 2026 at ``hour`` local time."""
    return single(uid, datetime(2026, 11, day, hour, tzinfo=tz), datetime(2026, 11, day, hour + 1, tzinfo=tz))


# ------------------------------------------------------------------------------------ free/busy
def test_freebusy_answers_several_people_and_names_an_unknown_one(vendor: Vendor, fake: Any, conn: Any) -> None:
    """One request answers four people; time marked free blocks nothing; an unknown one gets an
    error naming them and UNKNOWN time for the whole window (never free time), while the others
    are answered."""
    fake.add_item(ALICE, call("a1", 2, 10))
    fake.add_item(BOB, call("b1", 2, 9, NEW_YORK))
    free = call("c1", 2, 9)
    free.components[0].transparent = True
    fake.add_item(CAROL, free)
    people = [FreeBusyRequest(ALICE), FreeBusyRequest(BOB), FreeBusyRequest("ghost@sales.test"), FreeBusyRequest(CAROL)]
    alice, bob, ghost, carol = conn.freebusy(people, NOV_2)
    assert [p.email for p in (alice, bob, ghost, carol)] == [ALICE, BOB, "ghost@sales.test", CAROL]
    assert vendor.freebusy_calls() == [4]
    assert [(p.start, p.end, p.type) for p in alice.busy] == [
        (datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 10, tzinfo=UTC), BusyType.BUSY)]
    assert [(p.start, p.end) for p in bob.busy] == [(datetime(2026, 11, 2, 14, tzinfo=UTC),
                                                     datetime(2026, 11, 2, 15, tzinfo=UTC))]
    assert carol.busy == [] and carol.complete and alice.complete and bob.complete
    assert not ghost.complete and "ghost@sales.test" in str(ghost.errors[0])
    assert vendor.not_found in str(ghost.errors[0])
    assert [(p.start, p.end, p.type) for p in ghost.busy] == [(NOV_2.start, NOV_2.end, BusyType.UNKNOWN)]


def test_freebusy_splits_big_batches_and_long_windows(vendor: Vendor, conn: Any) -> None:
    """Against fakes that refuse more people per request (EWS 100, Graph 20, Google 50) or longer
    windows (Graph 61 days, Google 90) than the vendor does: one and a half batches over four
    months make two requests per window part, none over the limit, and one answer per person.
    The requests are in flight together (``parallel_requests``), so they reach the vendor in any
    order."""
    batch, days = conn.capabilities.freebusy_batch, conn.capabilities.max_freebusy_days
    people = [FreeBusyRequest(ALICE)] + [FreeBusyRequest(f"p{i}@sales.test") for i in range(batch + batch // 2 - 1)]
    window = Window(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
    parts = 1 if days is None else len(window.split(timedelta(days=days)))
    result = conn.freebusy(people, window)
    assert sorted(vendor.freebusy_calls()) == sorted([batch, batch // 2] * parts) and (days is None) == (parts == 1)
    assert [p.email for p in result] == [p.email for p in people]
    assert result[0].complete and not any(p.complete for p in result[1:])
    assert all(vendor.not_found in str(p.errors[0]) for p in result[1:])


# ------------------------------------------------------------------------------------ reading
def test_series_with_moved_and_cancelled_occurrence_round_trips(vendor: Vendor, conn: Any) -> None:
    """Put a series with a moved occurrence (override) and a cancelled one (EXDATE); read it back
    as one item and as expanded events (across Europe's DST change on 2026-10-25)."""
    ref = conn.put(ALICE, weekly_series())
    items, problems = conn.items(ALICE, WEEKS)
    assert not problems and len(items) == 1
    item = items[0]
    assert item.ref is not None and item.ref.id == ref.id and item.ref.etag == ref.etag
    assert item.uid == "series-1@calmesh.test" or not vendor.keeps_new_uids
    master = item.master
    assert master is not None and item.uid == master.uid
    assert master.rrule == ["FREQ=WEEKLY;COUNT=6;BYDAY=TU"] and master.tzid == "Europe/Paris"
    assert master.start == datetime(2026, 10, 20, 9, tzinfo=PARIS)
    assert master.exdate == [datetime(2026, 11, 10, 9, tzinfo=PARIS)]
    (moved,) = item.overrides
    assert moved.uid == master.uid and moved.recurrence_id == datetime(2026, 11, 3, 9, tzinfo=PARIS)
    assert moved.start == datetime(2026, 11, 4, 10, tzinfo=PARIS)
    assert (moved.summary, moved.location) == ("Sales stand-up (moved)", "Room 2")

    events, problems = conn.events(ALICE, WEEKS)
    assert not problems and {e.uid for e in events} == {master.uid}
    # six Tuesdays, minus the cancelled 10 Nov, minus 24 Nov (outside the window); 3 Nov moved
    assert [e.start for e in events] == [datetime(2026, 10, 20, 9, tzinfo=PARIS), datetime(2026, 10, 27, 9, tzinfo=PARIS),
                                         datetime(2026, 11, 4, 10, tzinfo=PARIS), datetime(2026, 11, 17, 9, tzinfo=PARIS)]
    assert events[2].recurrence_id == datetime(2026, 11, 3, 9, tzinfo=PARIS)


def test_series_made_by_a_user_keeps_its_uid_and_exceptions(fake: Any, conn: Any) -> None:
    """A series a user made in the vendor's own client (seeded in the fake, cancelled occurrence
    as the vendor stores it) keeps its UID, its moved occurrence and its cancelled date."""
    fake.add_item(ALICE, weekly_series("outlook-made@contoso"))
    (item,), problems = conn.items(ALICE, WEEKS)
    assert not problems and item.uid == "outlook-made@contoso" and len(item.overrides) == 1
    assert item.master is not None and item.master.exdate == [datetime(2026, 11, 10, 9, tzinfo=PARIS)]
    events, _ = conn.events(ALICE, WEEKS)
    assert len(events) == 4 and {e.uid for e in events} == {"outlook-made@contoso"}
    assert all(e.recurrence_id is not None for e in events)  # occurrences, never the master itself


def test_all_day_out_of_office_round_trips(conn: Any) -> None:
    """An all-day out-of-office day stays a DATE (exclusive end), OOF, and in no zone."""
    conn.put(ALICE, all_day())
    (event,), problems = conn.events(ALICE, WEEKS)
    assert not problems and event.all_day and event.tzid is None
    assert event.start == date(2026, 11, 11) and event.end == date(2026, 11, 12)
    assert event.busy_type is BusyType.BUSY_UNAVAILABLE
    (person,) = conn.freebusy([FreeBusyRequest(ALICE)], WEEKS)
    assert [(p.start, p.end) for p in person.busy] == [(datetime(2026, 11, 10, 23, tzinfo=UTC),
                                                        datetime(2026, 11, 11, 23, tzinfo=UTC))]  # Paris day


def test_dst_weeks_keep_local_wall_time(conn: Any) -> None:
    """A daily 09:00 New York series across 2026-11-01 is 13:00 UTC before the change and 14:00
    after; a weekly 09:00 Paris one is 07:00 UTC before 2026-10-25 and 08:00 after."""
    conn.put(BOB, new_york_daily())
    events, problems = conn.events(BOB, Window(datetime(2026, 10, 28, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)))
    assert not problems and {e.tzid for e in events} == {"America/New_York"}
    assert [e.start.hour for e in events] == [9] * 7
    assert [e.start.astimezone(UTC).hour for e in events] == [13, 13, 13, 14, 14, 14, 14]
    conn.put(ALICE, weekly_series())
    paris, _ = conn.events(ALICE, Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)))
    assert [(e.start.hour, e.start.astimezone(UTC).hour) for e in paris] == [(9, 7), (9, 8)]


def test_listings_are_paged(vendor: Vendor, fake: Any, conn: Any) -> None:
    """Against fakes serving two events per page: every page is followed, in both listings (EWS
    answers a window in one CalendarView, which has no pages)."""
    fake.page_size = 2
    for day in range(5):
        fake.add_item(ALICE, call(f"p{day}", 2 + day, 15))
    before = vendor.listing_requests()
    events, _ = conn.events(ALICE, WEEKS)
    assert [e.uid for e in events] == [f"p{d}" for d in range(5)]
    middle = vendor.listing_requests()
    items, problems = conn.items(ALICE)
    assert not problems and sorted(i.uid for i in items) == [f"p{d}" for d in range(5)]
    assert middle - before == (3 if vendor.pages_windows else 1)
    assert vendor.listing_requests() - middle == 3


# ------------------------------------------------------------------------------------ writing
def test_stale_etag_or_change_key_is_refused(vendor: Vendor, conn: Any) -> None:
    """A write or a delete guarded by an outdated ETag/ChangeKey is refused (somebody else's edit
    is never overwritten); with the current one it succeeds; a deleted item is not found."""
    item = call("s1", 5, 14)
    ref = conn.put(ALICE, item)
    item.ref = ref
    newer = conn.put(ALICE, item, if_match=ref.etag)
    assert newer.id == ref.id and newer.etag != ref.etag
    with pytest.raises(PreconditionFailed, match=vendor.conflict):
        conn.put(ALICE, item, if_match=ref.etag)
    with pytest.raises(PreconditionFailed):
        conn.delete(ALICE, ref, if_match=ref.etag)
    conn.delete(ALICE, newer, if_match=newer.etag)
    assert conn.items(ALICE) == ([], [])
    with pytest.raises(NotFoundError):
        conn.delete(ALICE, newer)


def test_marker_round_trips(vendor: Vendor, conn: Any) -> None:
    """The calmesh marker (a named extended property / private extended property) survives a
    write and a read; ``check()`` says how the connector signed in."""
    event = Event(uid="m1", start=datetime(2026, 11, 5, 14, tzinfo=PARIS), end=datetime(2026, 11, 5, 15, tzinfo=PARIS),
                  summary="Mirrored", extra={MARKER_PROPERTY: "caldav/team/abc"}, tzid="Europe/Paris")
    conn.put(ALICE, CalendarItem("m1", [event]))
    (item,), _ = conn.items(ALICE)
    assert item.marker == "caldav/team/abc" and (item.uid == "m1" or not vendor.keeps_new_uids)
    assert conn.check()[0].startswith(vendor.check_first)


def test_only_meetings_have_an_organizer(conn: Any) -> None:
    """The vendors name the calendar's owner organizer of every event, but iCalendar has ORGANIZER
    only on group-scheduled ones (RFC 5545 3.8.4.3): a plain appointment reads back without one
    (else every copy sync writes here would read back changed), a meeting with its organizer."""
    conn.put(ALICE, call("plain", 5, 9))
    meeting = call("meeting", 5, 11)
    meeting.components[0] = meeting.components[0].with_changes(organizer=Attendee(ALICE), attendees=[Attendee(BOB)])
    conn.put(ALICE, meeting)
    masters = {i.master.start.hour: i.master for i in conn.items(ALICE)[0]}
    assert masters[9].organizer is None and masters[9].attendees == []
    assert masters[11].organizer is not None and masters[11].organizer.email == ALICE
    assert [a.email for a in masters[11].attendees] == [BOB]


RULES = ["FREQ=DAILY;INTERVAL=2;UNTIL=20261110T080000Z", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE,FR;WKST=SU",
         "FREQ=MONTHLY;COUNT=3;BYMONTHDAY=20", "FREQ=MONTHLY;COUNT=3;BYDAY=TU;BYSETPOS=-1",
         "FREQ=YEARLY;COUNT=2;BYDAY=TU;BYSETPOS=3;BYMONTH=10"]


@pytest.mark.parametrize("rule", RULES)
def test_recurrence_rules_round_trip(vendor: Vendor, conn: Any, rule: str) -> None:
    """RRULE -> the vendor's recurrence (EWS Recurrence, Graph patternedRecurrence, Google's
    RRULE lines) -> RRULE is stable."""
    start = datetime(2026, 10, 20, 9, tzinfo=PARIS)
    event = Event(uid="r1", start=start, end=start + timedelta(hours=1), rrule=[rule], tzid="Europe/Paris")
    conn.put(ALICE, CalendarItem("r1", [event]))
    (item,), _ = conn.items(ALICE)
    assert item.master is not None
    assert item.master.rrule == [vRecur.from_ical(rule).to_ical().decode() if vendor.canonical_rrules else rule]


def test_one_connector_serves_concurrent_writers(vendor: Vendor) -> None:
    """What ``[hub] sync_write_workers`` relies on (issue #5): four threads writing through one
    connector, its signed-in session and token cache shared, while the vendor expires the token
    halfway, land every item once."""
    conn = vendor.oauth_connector()

    def write(n: int) -> str:
        return str(conn.put(ALICE, call(f"t{n}@calmesh.test", 2 + n % 5, 8 + n % 9)).id)

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(write, range(12)))
        vendor.fake.expire_tokens()
        ids += pool.map(write, range(12, 24))
    items, problems = conn.items(ALICE)
    assert not problems and len(set(ids)) == 24 and sorted(i.ref.id for i in items) == sorted(ids)
    assert vendor.tokens_issued() == 2 if vendor.one_refresh_per_expiry else vendor.tokens_issued() >= 2


# ------------------------------------------------------------------------------------ changes
def test_changes_through_the_token(vendor: Vendor, fake: Any, conn: Any) -> None:
    """The vendor's change feed (SyncFolderItems SyncState, delta's deltaLink, syncToken) as the
    change token: a full listing, then a create, then an edit and a delete; a token the vendor
    has forgotten is an InvalidTokenError."""
    fake.add_item(ALICE, call("old", 2, 9))
    first = conn.changes(ALICE, None)
    assert first.complete and [i.uid for i in first.changed] == ["old"] and first.deleted == [] and first.token

    created = conn.put(ALICE, call("new", 3, 9))
    second = conn.changes(ALICE, first.token)
    assert not second.complete and second.deleted == []
    assert [i.ref.id for i in second.changed] == [created.id]
    assert [i.uid for i in second.changed] == ["new"] or not vendor.keeps_new_uids

    (old,) = first.changed
    assert old.ref is not None and old.master is not None
    old.master.summary = "Renamed"
    conn.put(ALICE, old, if_match=old.ref.etag)
    conn.delete(ALICE, created, if_match=created.etag)
    third = conn.changes(ALICE, second.token)
    assert not third.complete
    assert [(i.uid, i.ref.id, i.components[0].summary) for i in third.changed] == [("old", old.ref.id, "Renamed")]
    assert [r.id for r in third.deleted] == [created.id]

    vendor.invalidate_change_tokens()
    with pytest.raises(InvalidTokenError):
        conn.changes(ALICE, third.token)


def test_change_feed_items_carry_the_marker(vendor: Vendor, conn: Any) -> None:
    """Items from the change feed carry calmesh's marker, in the first round and the later ones.
    Graph's ``delta`` takes no ``$expand``, so the marker never comes with it: a copy a killed
    run wrote but did not record then read as a new event of that calendar, and was copied back
    as a second busy block (found by the agency soak; tests/agency/test_agency_regressions.py)."""
    def marked(uid: str, day: int) -> CalendarItem:
        item = call(uid, day, 9)
        item.components[0].extra[MARKER_PROPERTY] = f"caldav/team/{uid}"
        return item

    conn.put(ALICE, marked("first", 2))
    first = conn.changes(ALICE, None)
    assert [i.marker for i in first.changed] == ["caldav/team/first"]
    conn.put(ALICE, marked("later", 3))
    second = conn.changes(ALICE, first.token)
    assert [i.marker for i in second.changed] == ["caldav/team/later"]


# ------------------------------------------------------------------------------------ errors
def test_throttling_waits_as_told_then_succeeds(vendor: Vendor, conn: Any) -> None:
    """Two "too busy" answers (EWS ErrorServerBusy with BackOffMilliseconds, HTTP 429 with
    Retry-After) are waited out exactly as long as the vendor asked, then the call succeeds;
    throttling that never ends is a TransientError after a bounded number of tries."""
    conn.put(ALICE, call("b1", 5, 14))
    vendor.throttle(2, seconds=3)
    events, _ = conn.events(ALICE, WEEKS)
    assert [e.summary for e in events] == ["Customer call"] and conn.waits == [3.0, 3.0]
    vendor.throttle(10, seconds=1)
    with pytest.raises(TransientError, match=vendor.throttled):
        conn.events(ALICE, WEEKS)
    assert conn.waits == [3.0, 3.0, 1.0, 1.0, 1.0]  # four tries in all


def test_token_expiring_mid_run_is_fetched_again_once(vendor: Vendor) -> None:
    """Against the fake's OAuth2 token endpoint: the cached token serves many calls; once the
    vendor expires it, one new token is fetched and the call succeeds."""
    conn = vendor.oauth_connector()
    assert conn.events(ALICE, WEEKS) == ([], [])
    assert conn.events(ALICE, WEEKS) == ([], [])
    assert vendor.tokens_issued() == 1
    vendor.fake.expire_tokens()
    assert conn.events(ALICE, WEEKS) == ([], [])
    assert vendor.tokens_issued() == 2


def test_refused_credentials_are_an_authentication_error(vendor: Vendor) -> None:
    """Credentials the vendor refuses are an AuthenticationError naming why, never retried."""
    conn = vendor.refusing_connector()
    with pytest.raises(AuthenticationError, match=vendor.refused):
        conn.calendars()
    assert conn.waits == []


def test_unreachable_service_retries_a_bounded_number_of_times(vendor: Vendor, conn: Any) -> None:
    """Against a stopped fake: connection refused is a TransientError after bounded retries."""
    conn.calendars()
    vendor.fake.stop()
    with pytest.raises(TransientError):
        conn.events(ALICE, WEEKS)
    assert len(conn.waits) == 3  # four tries in all


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback port that accepts connections (kernel backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_service_that_never_answers_times_out_as_transient(vendor: Vendor, silent_url: str) -> None:
    """A service that accepts the connection but never replies is a TransientError once the
    configured timeout passes, not a hang."""
    address = {"ews": {"service_endpoint": silent_url + "/EWS/Exchange.asmx", "server_version": "Exchange2016"},
               "graph": {"base_url": silent_url + "/v1.0"},
               "google": {"base_url": silent_url + "/calendar/v3"}}[vendor.kind]
    conn = vendor.connect(timeout=0.5, retries=1, **address)
    with pytest.raises(TransientError):
        conn.events(ALICE, WEEKS)


def test_a_copy_deleted_by_its_user_is_found_as_deleted(vendor: Vendor, conn: Any) -> None:
    """What a person deletes stays findable where the platform keeps it (Exchange moves it to
    Deleted Items, as Outlook does; Google keeps it cancelled): ``deleted_since`` finds a copy
    calmesh wrote there, by its marker, if written after the given time. It is the evidence that
    a copy whose write a killed run never recorded was deleted by its user, not never written
    (Graph lists no deleted events: no evidence, and such a copy is written again, reported)."""
    before = datetime.now(UTC)
    marked = call("copy-1", 9, 10)
    marked.components[0].extra[MARKER_PROPERTY] = "radicale/alice/one.ics"
    ref = conn.put(ALICE, marked)
    conn.put(ALICE, call("own-1", 9, 12))
    copies = {"copy-1": "radicale/alice/one.ics", "copy-2": "radicale/alice/two.ics"}
    assert conn.deleted_since(ALICE, copies, before) == set()  # written, still there
    conn.delete(ALICE, ref, ref.etag)
    assert conn.deleted_since(ALICE, copies, before) == ({"copy-1"} if vendor.keeps_deleted else set())
    assert conn.deleted_since(BOB, copies, before) == set()  # another person's calendar
    assert conn.deleted_since(ALICE, copies, datetime.now(UTC) + timedelta(hours=1)) == set()  # an older copy


def test_items_are_read_by_their_ids_without_a_listing(vendor: Vendor, fake: Any, conn: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``fetch`` reads the items at the ids asked for, and no others, without listing the
    calendar (sync asks for the few items a failed write left half-done, on every run of an
    outage): a series whole, with its moved and cancelled occurrences; an id its user deleted
    (Exchange moved it to Deleted Items under a new ItemId, Google keeps it cancelled, Graph
    answers 404) is left out, as the contract says, not a problem."""
    series = conn.put(ALICE, weekly_series())
    one = conn.put(ALICE, call("one", 9, 10))
    conn.put(ALICE, call("other", 9, 14))
    gone = conn.put(ALICE, call("gone", 9, 12))
    conn.delete(ALICE, gone, gone.etag)

    def listed(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("fetch listed the calendar")

    monkeypatch.setattr(conn, "items", listed)
    items, problems = conn.fetch(ALICE, [series.id, one.id, gone.id])
    assert not problems
    assert sorted(i.ref.id for i in items) == sorted([series.id, one.id])
    whole = next(i for i in items if i.ref.id == series.id)
    assert whole.master is not None and whole.master.exdate == [datetime(2026, 11, 10, 9, tzinfo=PARIS)]
    assert [o.summary for o in whole.overrides] == ["Sales stand-up (moved)"]
    trash = list(getattr(fake, "deleted_items", {}))  # Exchange: the deleted item's new ItemId
    assert conn.fetch(ALICE, trash)[0] == []  # in Deleted Items, not in this calendar
