"""Google-only connector behaviour; what Google shares with EWS and Graph is in
``test_vendor_contract.py``. Every test runs against calmesh.fakes.google.GoogleFake, a
protocol-faithful fake of the Calendar API v3 and of Google's OAuth2 token endpoint (service
account JWT bearer grant, signature and claims checked) served by uvicorn on 127.0.0.1: no Google
service is reachable from the test machines. The service account key is generated per test."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from calmesh.connectors import registry
from calmesh.connectors.base import (
    AuthenticationError,
    FreeBusyRequest,
    InvalidDataError,
    InvalidTokenError,
    NotFoundError,
)
from calmesh.connectors.google import JWT_BEARER, GoogleConnector, ServiceAccount
from calmesh.fakes.google import GoogleFake
from calmesh.fakes.samples import PARIS, all_day, single, weekly_series
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

from .vendors import ALICE, BOB, CAROL, GoogleVendor

VENDOR = "google"
WEEKS = Window(datetime(2026, 10, 19, tzinfo=UTC), datetime(2026, 11, 23, tzinfo=UTC))


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


def test_credentials_from_a_key_file(vendor: GoogleVendor, fake: GoogleFake, tmp_path: Path) -> None:
    """Against the Google fake: the env var may name the JSON key file instead of holding it."""
    key_file = tmp_path / "sa.json"
    key_file.write_text(fake.credentials_json())
    connector = vendor.connect(credentials=str(key_file))
    assert connector.check()[0].startswith(f"token: service account {fake.client_email} acting as {ALICE}")


def test_missing_delegation_and_a_user_key_are_authentication_errors(vendor: GoogleVendor) -> None:
    """Against the Google fake: a scope the Workspace admin did not delegate, and a key that is not
    a service account's (a key Google does not know is in the contract suite)."""
    not_granted = vendor.connect(scopes=["https://www.googleapis.com/auth/admin.directory.user"])
    with pytest.raises(AuthenticationError, match="unauthorized"):
        not_granted.calendars()
    with pytest.raises(AuthenticationError, match="not a service account"):
        vendor.connect(credentials='{"type": "authorized_user"}')


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
    unknown = grant(account.assertion(fake.token_url, scopes, "nobody@sales.test")).json()
    assert unknown == {"error": "invalid_grant", "error_description": "Invalid email or User ID"}


def test_freebusy_merges_overlapping_busy_times(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: freeBusy.query answers merged busy periods, so two overlapping
    meetings are one busy span."""
    fake.add_item(ALICE, single("a1", datetime(2026, 11, 2, 10, tzinfo=PARIS), datetime(2026, 11, 2, 11, tzinfo=PARIS)))
    fake.add_item(ALICE, single("a2", datetime(2026, 11, 2, 10, 30, tzinfo=PARIS),
                                datetime(2026, 11, 2, 12, tzinfo=PARIS)))
    window = Window(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC))
    (alice,) = conn.freebusy([FreeBusyRequest(ALICE)], window)
    assert len(fake.freebusy_calls) == 1 and alice.complete
    assert [(p.start, p.end, p.type) for p in alice.busy] == [
        (datetime(2026, 11, 2, 9, tzinfo=UTC), datetime(2026, 11, 2, 11, tzinfo=UTC), BusyType.BUSY)]


def test_items_in_a_window_are_whole_series(conn: GoogleConnector) -> None:
    """Against the Google fake: a window holding only the first occurrence still yields the series
    with its moved occurrence (3 Nov) and its cancelled one (10 Nov), both outside the window."""
    conn.put(ALICE, weekly_series())
    (item,), _ = conn.items(ALICE, Window(datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 21, tzinfo=UTC)))
    assert len(item.overrides) == 1 and item.master is not None and len(item.master.exdate) == 1


def test_rate_limit_403_and_backend_errors_are_retried(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: besides 429 (contract suite), Google throttles with 403
    rateLimitExceeded and fails with 500 backendError; both are retried, then the call succeeds."""
    fake.fail_next(1, 403, retry_after=None)
    fake.fail_next(1, 500, retry_after=None)
    assert len(conn.calendars()) == 2
    assert len(conn.waits) == 2  # type: ignore[attr-defined]


def test_sync_token_follows_series_and_expires_as_full_sync_required(fake: GoogleFake, conn: GoogleConnector) -> None:
    """Against the Google fake: a series put, then an occurrence cancelled in Google Calendar,
    each come through the syncToken as the whole series; a token Google expired answers 410
    fullSyncRequired (create / update / delete are in the contract suite)."""
    first = conn.changes(ALICE, None)
    series = conn.put(ALICE, weekly_series())
    second = conn.changes(ALICE, first.token)
    assert [i.uid for i in second.changed] == ["series-1@calmesh.test"]
    assert len(second.changed[0].overrides) == 1 and second.changed[0].ref.id == series.id  # type: ignore[union-attr]

    fake.cancel_occurrence(ALICE, series.id, datetime(2026, 10, 27, 9, tzinfo=PARIS))
    third = conn.changes(ALICE, second.token)
    (touched,) = third.changed
    assert touched.master is not None and len(touched.overrides) == 1
    assert sorted(touched.master.exdate) == [datetime(2026, 10, 27, 9, tzinfo=PARIS),  # type: ignore[type-var]
                                             datetime(2026, 11, 10, 9, tzinfo=PARIS)]

    fake.expire_sync_tokens()
    with pytest.raises(InvalidTokenError, match="fullSyncRequired"):
        conn.changes(ALICE, third.token)


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


def test_subject_without_access_sees_not_found(vendor: GoogleVendor, fake: GoogleFake) -> None:
    """Against the Google fake: acting as one subject, a calendar not shared with it is notFound;
    once shared, it reads."""
    connector = vendor.connect(impersonate=False, subject=CAROL, mailboxes=[])
    with pytest.raises(NotFoundError):
        connector.events(BOB, WEEKS)
    fake.share(BOB, CAROL, "reader")
    assert connector.events(BOB, WEEKS) == ([], [])
    listed = {c.id: c for c in connector.calendars()}
    assert listed[BOB].owner == BOB and listed[BOB].read_only and listed[CAROL].owner == CAROL
    assert connector.calendars_of(BOB) == [BOB]
