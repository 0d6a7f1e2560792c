"""The scheduling endpoints of the JSON API on a real hub server on 127.0.0.1 (see conftest: the
demo agency's week in ICS folders, plus a feed too slow to answer), spoken to with httpx.
Bookings are made in 2030 because the server measures notice from the real clock."""

from __future__ import annotations

import base64

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import PartStat

from .conftest import DEMO, OPS, Served

ALICE, CARLA, FARID = "alice@agency.example", "carla@agency.example", "farid@agency.example"
SCHEDULING = {"POST /api/v1/find-time", "POST /api/v1/book", "GET /api/v1/conflicts", "GET /api/v1/duplicates"}


def auth(user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()}


def find(server: Served, **body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/find-time", headers=auth(OPS), timeout=20,
                      json={"organizer": ALICE, "start": "2030-03-04T00:00:00+01:00",
                            "end": "2030-03-09T00:00:00+01:00", **body})


def test_find_time_answers_like_find_meeting_times(server: Served) -> None:
    response = find(server, required=[CARLA], optional=[FARID], duration=60, max_candidates=3)
    assert response.status_code == 200, response.text
    data = response.json()
    first = data["suggestions"][0]
    # Carla starts 08:30 in New York = 14:30 in Paris (both on winter time on 4 March 2030)
    assert first["start"] == "2030-03-04T14:30:00+01:00" and first["end"] == "2030-03-04T15:30:00+01:00"
    statuses = {a["email"]: a for a in first["attendees"]}
    assert statuses[CARLA]["availability"] == "free" and statuses[FARID]["outside_working_hours"]
    assert [p["timezone"] for p in data["people"]] == ["Europe/Paris", "America/New_York", "Asia/Tokyo"]


def test_find_time_refuses_bad_input(server: Served) -> None:
    assert find(server, duration=0).status_code == 400
    assert find(server, colour="blue").json()["detail"] == "unknown field(s): colour"
    answer = find(server, organizer="nobody@agency.example")
    assert answer.status_code == 400 and "not in the people directory" in answer.json()["detail"]
    assert httpx.post(f"{server.url}/api/v1/find-time", json={}).status_code == 401


def book(server: Served, user: tuple[str, str], **body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/book", headers=auth(user), timeout=20,
                      json={"organizer": ALICE, "required": [CARLA], "start": "2030-03-05T15:00:00+01:00",
                            "duration": 60, "summary": "Atlas kick-off", **body})


def test_book_then_refuse_the_same_slot(server: Served) -> None:
    response = book(server, DEMO)
    assert response.status_code == 201, response.text
    booking = response.json()
    assert {d["email"]: d["method"] for d in booking["deliveries"]} == {ALICE: "organizer", CARLA: "calendar"}
    exchange = server.hub.config.resolve_path("exchange")
    items, _ = ICSConnector("exchange", ICSSettings(kind="ics", path=str(exchange))).items(f"{CARLA}.ics")
    copy = next(i for i in items if i.uid == booking["uid"])
    assert copy.components[0].partstat_of(CARLA) is PartStat.NEEDS_ACTION

    again = book(server, DEMO, summary="Clash")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "alice@agency.example (busy)" in again.json()["detail"]  # Carla has not answered: tentative


def test_booking_needs_a_grant_over_the_organiser(server: Served) -> None:
    response = book(server, OPS)
    assert response.status_code == 403 and "may not book" in response.json()["detail"]


def test_conflicts_and_duplicates_of_the_demo_week(server: Served) -> None:
    window = {"start": "2026-11-23", "end": "2026-11-28"}
    conflicts = httpx.get(f"{server.url}/api/v1/conflicts", headers=auth(DEMO), timeout=20,
                          params={**window, "person": "team:sales"}).json()
    people = {p["email"]: p for p in conflicts["people"]}
    assert set(people) == {CARLA, "david@agency.example"}
    (cross,) = [c for c in people["david@agency.example"]["conflicts"] if c["cross_platform"]]
    assert cross["platforms"] == ["exchange", "projects"]
    assert all(e["summary"] for e in cross["events"])  # demo sees everyone's details

    # the demo's duplicate: David's follow-up with Alice, copied by hand into the in-house system
    duplicates = httpx.get(f"{server.url}/api/v1/duplicates", headers=auth(OPS), timeout=20,
                           params={**window, "person": "*"}).json()
    groups = [g for p in duplicates["people"] for g in p["duplicates"]]
    (group,) = groups
    assert group["platforms"] == ["exchange", "projects"] and not group["same_uid"]
    assert group["score"] == 1.0 and "same title, 1 of 1 attendees shared" in group["reason"]
    assert all(c["summary"] is None for g in groups for c in g["copies"])  # ops is not granted details
    slow = next(p for p in duplicates["people"] if p["email"] == "gus@agency.example")
    assert slow["errors"] and "did not answer" in slow["errors"][0]


def test_scope_errors(server: Served) -> None:
    unknown = httpx.get(f"{server.url}/api/v1/conflicts", headers=auth(OPS), params={"person": "x@y.example"})
    assert unknown.status_code == 404
    assert httpx.get(f"{server.url}/api/v1/duplicates", headers=auth(OPS), params={"when": "now"}).status_code == 400
    assert httpx.get(f"{server.url}/api/v1/conflicts").status_code == 401


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.slow
def test_scheduling_endpoints_match_their_document(make_server) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis-generated requests (valid and invalid) never get a 500 and every answer
    matches the OpenAPI document; sent with httpx, as in test_server_openapi."""
    server: Served = make_server("rate_limit_per_minute = 1000000", timeout=0.2)
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().label in SCHEDULING]
    assert {op.label for op in operations} == SCHEDULING
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            kwargs = case.as_transport_kwargs(base_url=server.url, headers=auth(OPS))
            response = httpx.request(kwargs["method"], kwargs["url"], headers=kwargs["headers"],
                                     params=kwargs.get("params"), json=kwargs.get("json"), timeout=20)
            case.validate_response(response, checks=CHECKS)

        run()


def test_a_booking_is_visible_at_once_despite_the_cache(server: Served) -> None:
    """The free/busy cache must not show a slot calmesh just booked as free (cache_ttl is 60 s)."""
    window = {"attendees": [ALICE], "start": "2030-03-06T00:00:00+01:00", "end": "2030-03-07T00:00:00+01:00",
              "interval": 60}

    def busy() -> list[dict[str, str]]:
        answer = httpx.post(f"{server.url}/api/v1/freebusy", headers=auth(DEMO), json=window, timeout=20)
        assert answer.status_code == 200, answer.text
        return answer.json()["people"][0]["busy"]

    assert busy() == []  # now cached
    assert book(server, DEMO, start="2030-03-06T10:00:00+01:00", summary="Fresh").status_code == 201
    assert [(b["start"], b["end"]) for b in busy()] == [("2030-03-06T10:00:00+01:00", "2030-03-06T11:00:00+01:00")]
