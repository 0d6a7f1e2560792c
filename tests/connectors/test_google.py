"""Google Calendar connector tests. Every test runs against calmesh.fakes.google.GoogleFake, a
protocol-faithful fake of the Calendar API v3 and of Google's OAuth2 token endpoint (service
account JWT bearer grant, signature and claims checked) served by uvicorn on 127.0.0.1: no Google
service is reachable from the test machines. The service account key is generated per test."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from calmesh.connectors import registry
from calmesh.connectors.base import (
    AuthenticationError,
    FreeBusyRequest,
    InvalidDataError,
    InvalidTokenError,
    NotFoundError,
    PreconditionFailed,
    TransientError,
)
from calmesh.connectors.google import JWT_BEARER, GoogleConnector, ServiceAccount
from calmesh.fakes.google import GoogleFake
from calmesh.fakes.samples import NEW_YORK, PARIS, all_day, new_york_daily, single, weekly_series
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    PartStat,
    Role,
    Window,
)

ALICE, BOB, CAROL = "alice@calmesh.test", "bob@calmesh.test", "carol@calmesh.test"
CREDENTIALS_ENV = "CALMESH_TEST_GOOGLE_KEY"
WEEKS = Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


@pytest.fixture
def fake() -> Iterator[GoogleFake]:
    google = GoogleFake()
    google.add_user(ALICE, "Europe/Paris", extra_calendars=("Team",))
    google.add_user(BOB, "America/New_York")
    google.add_user(CAROL, "Europe/Paris")
    google.start()
    yield google
    google.stop()


def make(fake: GoogleFake, monkeypatch: pytest.MonkeyPatch, credentials: str | None = None,
         **settings: Any) -> GoogleConnector:
    monkeypatch.setenv(CREDENTIALS_ENV, credentials if credentials is not None else fake.credentials_json())
    raw = {"kind": "google", "credentials_env": CREDENTIALS_ENV, "impersonate": True, "mailboxes": [ALICE],
           "base_url": fake.api_url, "token_url": fake.token_url, "timezone": "Europe/Paris", **settings}
    connector = registry.create("workspace", raw)
    assert isinstance(connector, GoogleConnector)
    waits: list[float] = []
    connector.sleep = waits.append
    connector.waits = waits  # type: ignore[attr-defined]
    return connector


@pytest.fixture
def conn(fake: GoogleFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleConnector]:
    connector = make(fake, monkeypatch)
    yield connector
    connector.close()


def test_registry_knows_google() -> None:
    assert registry.connector_class("google") is GoogleConnector


def test_calendars_and_jwt_claims(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: calendarList as the impersonated user; the token endpoint checked
    the RS256 signature and got the documented claims."""
    cals = conn.calendars()
    assert [c.id for c in cals][0] == ALICE and cals[0].owner == ALICE and cals[0].timezone == "Europe/Paris"
    team = cals[1]
    assert team.id.startswith(ALICE + "/c_") and team.name == "Team" and not team.read_only
    conn.put(team.id, all_day())
    assert [e.uid for e in conn.events(team.id, WEEKS)[0]] == ["allday-1@calmesh.test"]
    assert conn.events(ALICE, WEEKS) == ([], [])
    (claims,) = fake.token_claims
    assert claims["iss"] == fake.client_email and claims["sub"] == ALICE
    assert claims["aud"] == fake.token_url and claims["scope"] == "https://www.googleapis.com/auth/calendar"
    assert claims["exp"] - claims["iat"] == 3600


def test_credentials_from_a_key_file(fake: GoogleFake, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Against the Google fake: the env var may name the JSON key file instead of holding it."""
    key_file = tmp_path / "sa.json"
    key_file.write_text(fake.credentials_json())
    connector = make(fake, monkeypatch, credentials=str(key_file))
    assert connector.check()[0].startswith(f"token: service account {fake.client_email} acting as {ALICE}")


def test_wrong_key_and_missing_delegation_are_authentication_errors(
        fake: GoogleFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the Google fake: a key Google does not know, and a scope the admin did not delegate."""
    info = fake.service_account_info()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()).decode()
    with pytest.raises(AuthenticationError, match="Invalid JWT Signature"):
        make(fake, monkeypatch, credentials=json.dumps(info)).calendars()
    not_granted = make(fake, monkeypatch, scopes=["https://www.googleapis.com/auth/admin.directory.user"])
    with pytest.raises(AuthenticationError, match="unauthorized"):
        not_granted.calendars()
    with pytest.raises(AuthenticationError, match="not a service account"):
        make(fake, monkeypatch, credentials='{"type": "authorized_user"}')


def test_token_endpoint_checks_the_assertion_claims(fake: GoogleFake) -> None:
    """Against the Google fake's token endpoint: an expired assertion, a wrong audience and an
    unknown ``sub`` are refused as Google refuses them (400 invalid_grant)."""
    account = ServiceAccount(fake.service_account_info())

    def grant(assertion: str) -> httpx.Response:
        return httpx.post(fake.token_url, data={"grant_type": JWT_BEARER, "assertion": assertion})

    scopes = ["https://www.googleapis.com/auth/calendar"]
    assert grant(account.assertion(fake.token_url, scopes, ALICE)).status_code == 200
    expired = grant(account.assertion(fake.token_url, scopes, ALICE, now=time.time() - 7200))
    assert expired.status_code == 400 and "iat and exp" in expired.json()["error_description"]
    assert grant(account.assertion("https://example.org/token", scopes, ALICE)).json()["error"] == "invalid_grant"
    unknown = grant(account.assertion(fake.token_url, scopes, "nobody@calmesh.test")).json()
    assert unknown == {"error": "invalid_grant", "error_description": "Invalid email or User ID"}


def test_freebusy_several_calendars_with_a_not_found_one(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: one freeBusy.query answers four people; the unknown calendar's
    notFound becomes that person's error (UNKNOWN time), the others are answered."""
    fake.add_item(ALICE, single("a1", datetime(2026, 11, 2, 10, tzinfo=PARIS), datetime(2026, 11, 2, 11, tzinfo=PARIS)))
    fake.add_item(ALICE, single("a2", datetime(2026, 11, 2, 10, 30, tzinfo=PARIS),
                                datetime(2026, 11, 2, 12, tzinfo=PARIS)))
    fake.add_item(BOB, single("b1", datetime(2026, 11, 2, 9, tzinfo=NEW_YORK), datetime(2026, 11, 2, 10, tzinfo=NEW_YORK)))
    free = single("c1", datetime(2026, 11, 2, 9, tzinfo=PARIS), datetime(2026, 11, 2, 10, tzinfo=PARIS))
    free.components[0].transparent = True
    fake.add_item(CAROL, free)
    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    people = [FreeBusyRequest(ALICE), FreeBusyRequest(BOB), FreeBusyRequest("ghost@calmesh.test"), FreeBusyRequest(CAROL)]
    alice, bob, ghost, carol = conn.freebusy(people, window)
    assert len(fake.freebusy_calls) == 1
    assert [(p.start, p.end, p.type) for p in alice.busy] == [
        (datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 11, tzinfo=UTC), BusyType.BUSY)]
    assert [(p.start, p.end) for p in bob.busy] == [(datetime(2026, 11, 2, 14, tzinfo=UTC),
                                                     datetime(2026, 11, 2, 15, tzinfo=UTC))]
    assert carol.busy == [] and carol.complete and alice.complete
    assert not ghost.complete and "notFound" in str(ghost.errors[0])
    assert [(p.start, p.end, p.type) for p in ghost.busy] == [(window.start, window.end, BusyType.UNKNOWN)]


def test_freebusy_splits_long_windows_and_big_batches(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake, which refuses windows over 90 days and answers calendars past the
    50th with tooManyCalendarsRequested, like Google."""
    people = [FreeBusyRequest(ALICE)] + [FreeBusyRequest(f"p{i}@calmesh.test") for i in range(59)]
    window = Window(datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC))
    result = conn.freebusy(people, window)
    assert len(result) == 60 and result[0].complete
    assert all("notFound" in str(p.errors[0]) for p in result[1:])
    assert len(fake.freebusy_calls) == 2 * 2  # two windows x two batches
    assert all(len(call["items"]) <= 50 for call in fake.freebusy_calls)


def test_recurrence_with_moved_and_cancelled_occurrence_round_trips(conn: GoogleConnector) -> None:
    """Against the Google fake: put a series with an override and an EXDATE (events.import, then the
    moved instance found through events.instances), read items and expanded events back."""
    ref = conn.put(ALICE, weekly_series())
    items, problems = conn.items(ALICE, WEEKS)
    assert not problems and len(items) == 1
    item = items[0]
    assert item.uid == "series-1@calmesh.test"
    assert item.ref is not None and item.ref.id == ref.id and item.ref.etag == ref.etag
    master = item.master
    assert master is not None and master.rrule == ["FREQ=WEEKLY;COUNT=6;BYDAY=TU"]
    assert master.start == datetime(2026, 10, 20, 9, tzinfo=PARIS) and master.tzid == "Europe/Paris"
    assert master.exdate == [datetime(2026, 11, 10, 9, tzinfo=PARIS)]
    (moved,) = item.overrides
    assert moved.recurrence_id == datetime(2026, 11, 3, 9, tzinfo=PARIS)
    assert moved.start == datetime(2026, 11, 4, 10, tzinfo=PARIS) and moved.summary == "Sales stand-up (moved)"
    assert moved.uid == master.uid

    events, _ = conn.events(ALICE, WEEKS)
    starts = [e.start for e in events]
    assert datetime(2026, 11, 10, 9, tzinfo=PARIS) not in starts
    assert datetime(2026, 11, 4, 10, tzinfo=PARIS) in starts
    assert datetime(2026, 10, 27, 9, tzinfo=PARIS) in starts  # the week after Europe's DST change
    assert len(events) == 4 and {e.uid for e in events} == {master.uid}  # 6, minus cancelled, minus 24 Nov


def test_items_in_a_window_are_whole_series(conn: GoogleConnector) -> None:
    """Against the Google fake: a window holding only the first occurrence still yields the series
    with its moved occurrence (3 Nov) and its cancelled one (10 Nov), both outside the window."""
    conn.put(ALICE, weekly_series())
    (item,), _ = conn.items(ALICE, Window(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 21, tzinfo=UTC)))
    assert len(item.overrides) == 1 and item.master is not None and len(item.master.exdate) == 1


def test_series_made_in_google_has_cancelled_instance_as_exdate(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: a user deleted one occurrence in Google Calendar (a cancelled
    instance, no EXDATE line) and moved another; items() reads both back."""
    fake.add_item(ALICE, weekly_series("made-in-google@calmesh.test"))
    (item,), _ = conn.items(ALICE, WEEKS)
    assert item.uid == "made-in-google@calmesh.test" and len(item.overrides) == 1
    assert item.master is not None and item.master.exdate == [datetime(2026, 11, 10, 9, tzinfo=PARIS)]
    events, _ = conn.events(ALICE, WEEKS)
    assert len(events) == 4 and all(e.recurrence_id is not None for e in events)


def test_all_day_event_round_trips(conn: GoogleConnector) -> None:
    """Against the Google fake: an all-day, out-of-office event travels as ``date`` values."""
    conn.put(ALICE, all_day())
    events, _ = conn.events(ALICE, WEEKS)
    (event,) = events
    assert event.start == date(2026, 11, 11) and event.end == date(2026, 11, 12) and event.all_day
    assert event.busy_type is BusyType.BUSY_UNAVAILABLE and event.tzid is None
    (person,) = conn.freebusy([FreeBusyRequest(ALICE)], WEEKS)
    assert [(p.start, p.end) for p in person.busy] == [(datetime(2026, 11, 10, 23, tzinfo=UTC),
                                                        datetime(2026, 11, 11, 23, tzinfo=UTC))]


def test_dst_week_in_new_york(conn: GoogleConnector) -> None:
    """Against the Google fake: a daily 09:00 New York series across 2026-11-01 stays at 09:00 local
    (13:00 UTC before the change, 14:00 after)."""
    conn.put(BOB, new_york_daily())
    events, problems = conn.events(BOB, Window(datetime(2026, 10, 28, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC)))
    assert not problems and len(events) == 7
    assert {e.start.timetz().replace(tzinfo=None).hour for e in events} == {9}  # type: ignore[union-attr]
    assert {e.tzid for e in events} == {"America/New_York"}
    utc_hours = [e.start.astimezone(UTC).hour for e in events]  # type: ignore[union-attr]
    assert utc_hours == [13, 13, 13, 14, 14, 14, 14]


def test_throttling_is_retried_after_retry_after(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: 429, then 403 rateLimitExceeded, then 500, then success."""
    fake.fail_next(1, 429, retry_after=3)
    fake.fail_next(1, 403, retry_after=None)
    fake.fail_next(1, 500, retry_after=None)
    assert len(conn.calendars()) == 2
    assert conn.waits[0] == 3.0 and len(conn.waits) == 3  # type: ignore[attr-defined]
    fake.fail_next(10, 429, retry_after=1)
    with pytest.raises(TransientError, match="rateLimitExceeded"):
        conn.calendars()


def test_token_expiring_mid_run_is_refreshed_once(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: the cached token serves many calls; once Google expires it, the
    401 leads to one new JWT grant and the call succeeds."""
    conn.calendars()
    conn.events(ALICE, WEEKS)
    assert len(fake.token_claims) == 1
    fake.expire_tokens()
    assert len(conn.calendars()) == 2
    assert len(fake.token_claims) == 2


def test_paging_follows_next_page_token(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake serving three events per page."""
    fake.page_size = 3
    for day in range(8):
        start = datetime(2026, 11, 2 + day, 9, tzinfo=PARIS)
        fake.add_item(ALICE, single(f"p{day}", start, start + timedelta(hours=1)))
    events, _ = conn.events(ALICE, WEEKS)
    assert sorted(e.uid for e in events) == [f"p{day}" for day in range(8)]
    assert fake.requests.count(f"GET /calendar/v3/calendars/{ALICE}/events") == 3
    items, _ = conn.items(ALICE)
    assert len(items) == 8


def test_changes_through_sync_token(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: a full listing, then create / update / delete through syncToken,
    then an expired token (410 fullSyncRequired)."""
    fake.add_item(ALICE, single("old", datetime(2026, 11, 2, 9, tzinfo=PARIS), datetime(2026, 11, 2, 10, tzinfo=PARIS)))
    first = conn.changes(ALICE, None)
    assert first.complete and [i.uid for i in first.changed] == ["old"] and first.token

    created = conn.put(ALICE, single("new", datetime(2026, 11, 3, 9, tzinfo=PARIS), datetime(2026, 11, 3, 10, tzinfo=PARIS)))
    second = conn.changes(ALICE, first.token)
    assert not second.complete and [i.uid for i in second.changed] == ["new"] and second.deleted == []

    (old,) = [i for i in first.changed if i.uid == "old"]
    assert old.ref is not None and old.master is not None
    old.master.summary = "Renamed"
    conn.put(ALICE, old, if_match=old.ref.etag)
    conn.delete(ALICE, created)
    third = conn.changes(ALICE, second.token)
    assert [(i.uid, i.master.summary) for i in third.changed] == [("old", "Renamed")]  # type: ignore[union-attr]
    assert [r.id for r in third.deleted] == [created.id]

    series = conn.put(ALICE, weekly_series())
    fourth = conn.changes(ALICE, third.token)
    assert [i.uid for i in fourth.changed] == ["series-1@calmesh.test"]
    assert len(fourth.changed[0].overrides) == 1 and fourth.changed[0].ref.id == series.id  # type: ignore[union-attr]

    fake.cancel_occurrence(ALICE, series.id, datetime(2026, 10, 27, 9, tzinfo=PARIS))
    fifth = conn.changes(ALICE, fourth.token)
    (touched,) = fifth.changed
    assert touched.master is not None and len(touched.overrides) == 1
    assert sorted(touched.master.exdate) == [datetime(2026, 10, 27, 9, tzinfo=PARIS),  # type: ignore[type-var]
                                             datetime(2026, 11, 10, 9, tzinfo=PARIS)]

    fake.expire_sync_tokens()
    with pytest.raises(InvalidTokenError, match="fullSyncRequired"):
        conn.changes(ALICE, fifth.token)


def test_stale_etag_is_precondition_failed(conn: GoogleConnector) -> None:
    """Against the Google fake: If-Match with an outdated etag answers 412 conditionNotMet."""
    item = single("e1", datetime(2026, 11, 2, 9, tzinfo=PARIS), datetime(2026, 11, 2, 10, tzinfo=PARIS))
    ref = conn.put(ALICE, item)
    item.ref = ref
    newer = conn.put(ALICE, item, if_match=ref.etag)
    assert newer.etag != ref.etag
    with pytest.raises(PreconditionFailed, match="conditionNotMet"):
        conn.put(ALICE, item, if_match=ref.etag)
    with pytest.raises(PreconditionFailed):
        conn.delete(ALICE, ref, if_match=ref.etag)
    conn.delete(ALICE, newer, if_match=newer.etag)
    with pytest.raises(NotFoundError):
        conn.delete(ALICE, newer)


def test_fields_and_marker_round_trip(conn: GoogleConnector) -> None:
    """Against the Google fake: status, visibility, transparency, attendees' responseStatus and
    the calmesh marker (extendedProperties.private) survive a write and a read."""
    event = Event(uid="fields@calmesh.test", start=datetime(2026, 11, 5, 14, tzinfo=PARIS),
                  end=datetime(2026, 11, 5, 15, tzinfo=PARIS), summary="Board", location="HQ",
                  status=EventStatus.TENTATIVE, classification=Classification.CONFIDENTIAL, transparent=True,
                  organizer=Attendee(ALICE, "Alice", PartStat.ACCEPTED, Role.CHAIR),
                  attendees=[Attendee(BOB, "Bob", PartStat.DECLINED), Attendee(CAROL, None, PartStat.TENTATIVE,
                                                                               Role.OPTIONAL)],
                  tzid="Europe/Paris", extra={MARKER_PROPERTY: "dav/cal/fields@calmesh.test"})
    conn.put(ALICE, CalendarItem(event.uid, [event]))
    (item,), _ = conn.items(ALICE, WEEKS)
    got = item.master
    assert got is not None and item.marker == "dav/cal/fields@calmesh.test"
    assert (got.status, got.classification, got.transparent) == (EventStatus.TENTATIVE, Classification.CONFIDENTIAL, True)
    assert got.organizer is not None and got.organizer.email == ALICE
    assert [(a.email, a.partstat, a.role) for a in got.attendees] == [
        (BOB, PartStat.DECLINED, Role.REQUIRED), (CAROL, PartStat.TENTATIVE, Role.OPTIONAL)]
    assert got.start == datetime(2026, 11, 5, 14, tzinfo=PARIS) and got.location == "HQ"


def test_rewriting_a_new_item_updates_it_instead_of_duplicating(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: events.import is keyed by iCalUID, so a re-run of an interrupted
    first sync (same item, no ref yet) updates the copy it already made."""
    first = conn.put(ALICE, single("once", datetime(2026, 11, 2, 9, tzinfo=PARIS), datetime(2026, 11, 2, 10, tzinfo=PARIS)))
    again = conn.put(ALICE, single("once", datetime(2026, 11, 2, 9, tzinfo=PARIS), datetime(2026, 11, 2, 11, tzinfo=PARIS)))
    assert again.id == first.id
    (event,), _ = conn.events(ALICE, WEEKS)
    assert event.end == datetime(2026, 11, 2, 11, tzinfo=PARIS)


def test_unstorable_extended_property_is_refused(conn: GoogleConnector) -> None:
    """Against the Google fake: Google silently drops extended properties with keys over 44
    characters, so the connector refuses the item with a clear error instead."""
    item = single("long", datetime(2026, 11, 2, 9, tzinfo=PARIS), datetime(2026, 11, 2, 10, tzinfo=PARIS))
    item.components[0].extra["X-CALMESH-" + "K" * 40] = "v"
    with pytest.raises(InvalidDataError, match="longer than Google keeps"):
        conn.put(ALICE, item)


def test_subject_without_access_sees_not_found(fake: GoogleFake, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the Google fake: acting as one subject, a calendar not shared with it is notFound;
    once shared, it reads."""
    connector = make(fake, monkeypatch, impersonate=False, subject=CAROL, mailboxes=[])
    with pytest.raises(NotFoundError):
        connector.events(BOB, WEEKS)
    fake.share(BOB, CAROL, "reader")
    assert connector.events(BOB, WEEKS) == ([], [])
    listed = {c.id: c for c in connector.calendars()}
    assert listed[BOB].owner == BOB and listed[BOB].read_only and listed[CAROL].owner == CAROL
    assert connector.calendars_of(BOB) == [BOB]
