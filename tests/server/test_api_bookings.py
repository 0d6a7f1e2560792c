"""Moving and cancelling booked meetings through the JSON API, on a real hub server on 127.0.0.1
(see conftest: the demo agency's week in ICS folders), spoken to with httpx. Meetings are in 2030
because the server measures "in the past" from the real clock."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

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
from calmesh.fakes.ews import EWSFake
from calmesh.model import CalendarItem, Event, EventStatus, PartStat
from calmesh.services import scheduling
from calmesh.services.detection import stored_item
from calmesh.services.hub import Hub

from .conftest import DEMO, OPS, Served
from .test_api_schedule import ALICE, CARLA, auth, book

PARIS = ZoneInfo("Europe/Paris")
DAVID = "dora@agency.example"
CHANGES = {"PATCH /api/v1/bookings/{uid}", "POST /api/v1/bookings/{uid}/cancel"}


def copy_of(server: Served, platform: str, owner: str, uid: str) -> Event:
    return stored_item(server.hub, platform, f"{owner}.ics", uid).components[0]


def move(server: Served, uid: str, user: tuple[str, str] = DEMO, **body: object) -> httpx.Response:
    return httpx.patch(f"{server.url}/api/v1/bookings/{uid}", headers=auth(user), timeout=20,
                       json={"organizer": ALICE, "start": "2030-03-05T16:00:00+01:00",
                             "end": "2030-03-05T17:00:00+01:00", **body})


def cancel(server: Served, uid: str, user: tuple[str, str] = DEMO, **body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/bookings/{uid}/cancel", headers=auth(user), timeout=20,
                      json={"organizer": ALICE, **body})


@pytest.fixture
def uid(server: Served) -> str:
    response = book(server, DEMO)
    assert response.status_code == 201, response.text
    return str(response.json()["uid"])


def test_move_then_cancel(server: Served, uid: str) -> None:
    moved = move(server, uid)
    assert moved.status_code == 200, moved.text
    assert {d["email"]: d["method"] for d in moved.json()["deliveries"]} == {ALICE: "organizer", CARLA: "calendar"}
    for platform, owner in (("zoho", ALICE), ("exchange", CARLA)):
        copy = copy_of(server, platform, owner, uid)
        assert (copy.start.isoformat(), copy.sequence) == ("2030-03-05T16:00:00+01:00", 1)
        assert copy.partstat_of(CARLA) is PartStat.NEEDS_ACTION

    cancelled = cancel(server, uid, reason="Postponed")
    assert cancelled.status_code == 200, cancelled.text
    for platform, owner in (("zoho", ALICE), ("exchange", CARLA)):
        copy = copy_of(server, platform, owner, uid)
        assert (copy.status, copy.sequence) == (EventStatus.CANCELLED, 2)
    again = cancel(server, uid)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_a_move_without_an_end_keeps_the_meetings_length(server: Served, uid: str) -> None:
    booked = copy_of(server, "zoho", ALICE, uid)
    moved = httpx.patch(f"{server.url}/api/v1/bookings/{uid}", headers=auth(DEMO), timeout=20,
                        json={"organizer": ALICE, "start": "2030-03-05T16:00:00+01:00"})
    assert moved.status_code == 200, moved.text
    for platform, owner in (("zoho", ALICE), ("exchange", CARLA)):
        copy = copy_of(server, platform, owner, uid)
        assert copy.start.isoformat() == "2030-03-05T16:00:00+01:00"
        assert copy.end - copy.start == booked.end - booked.start


def test_the_caller_needs_a_grant_over_the_organiser(server: Served, uid: str) -> None:
    for answer in (move(server, uid, OPS), cancel(server, uid, OPS)):  # ops sees free/busy only
        assert answer.status_code == 403 and "may not change bookings" in answer.json()["detail"]
    assert httpx.post(f"{server.url}/api/v1/bookings/{uid}/cancel", json={"organizer": ALICE}).status_code == 401
    assert copy_of(server, "zoho", ALICE, uid).sequence == 0


def test_an_attendee_named_as_organiser_is_refused(server: Served, uid: str) -> None:
    """Issue 12, item 1: a user granted over Carla cannot move or cancel Alice's meeting by naming
    Carla (an attendee) as its organiser; nothing changes, and Alice still can."""
    for answer in (move(server, uid, organizer=CARLA), cancel(server, uid, organizer=CARLA)):
        assert answer.status_code == 403, answer.text
        assert f"{CARLA} is an attendee of {uid}; only {ALICE} (its organiser)" in answer.json()["detail"]
    for platform, owner in (("zoho", ALICE), ("exchange", CARLA)):
        copy = copy_of(server, platform, owner, uid)
        assert (copy.status, copy.sequence) == (EventStatus.CONFIRMED, 0)
    assert cancel(server, uid).status_code == 200


def test_unknown_busy_and_malformed(server: Served, uid: str) -> None:
    missing = cancel(server, "nope@agency.example")
    assert missing.status_code == 404 and "no meeting with UID nope@agency.example" in missing.json()["detail"]
    exchange = ICSConnector("exchange", ICSSettings(kind="ics", path=str(server.hub.config.resolve_path("exchange"))))
    pipeline = Event("c-busy", datetime(2030, 3, 5, 17, tzinfo=PARIS), datetime(2030, 3, 5, 18, tzinfo=PARIS),
                     "Pipeline", tzid="Europe/Paris")
    exchange.put(f"{CARLA}.ics", CalendarItem(pipeline.uid, [pipeline]))
    busy = move(server, uid, start="2030-03-05T17:30:00+01:00", end="2030-03-05T18:30:00+01:00")
    assert busy.status_code == 409 and "carla@agency.example (busy)" in busy.json()["detail"]
    assert copy_of(server, "zoho", ALICE, uid).sequence == 0  # nothing changed
    assert move(server, uid, end="2030-03-05T15:00:00+01:00").status_code == 400  # end before start
    assert move(server, uid, colour="red").json()["detail"] == "unknown field(s): colour"
    as_form = httpx.post(f"{server.url}/api/v1/bookings/{uid}/cancel", headers=auth(DEMO), timeout=20,
                         data={"organizer": ALICE})
    assert as_form.status_code == 415  # another site's form cannot cancel meetings (server/csrf.py)


def test_a_change_meanwhile_is_a_412(server: Served, uid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone edits Alice's copy right after calmesh read it: the ICS connector's If-Match write
    fails, the API answers 412 and nothing is changed or sent."""
    zoho = ICSConnector("zoho", ICSSettings(kind="ics", path=str(server.hub.config.resolve_path("zoho"))))

    def read_then_edit(hub: Hub, platform: str, calendar: str, wanted: str, item_id: str | None = None) -> CalendarItem:
        item = stored_item(hub, platform, calendar, wanted, item_id)
        if calendar == f"{ALICE}.ics":
            edited = item.components[0].with_changes(summary="Edited meanwhile")
            zoho.put(calendar, CalendarItem(wanted, [edited], item.ref), if_match=item.ref.etag if item.ref else None)
        return item

    monkeypatch.setattr(scheduling, "stored_item", read_then_edit)
    answer = move(server, uid)
    assert answer.status_code == 412 and "nothing was changed or sent" in answer.json()["detail"]
    monkeypatch.setattr(scheduling, "stored_item", stored_item)
    assert copy_of(server, "zoho", ALICE, uid).summary == "Edited meanwhile"
    assert copy_of(server, "exchange", CARLA, uid).start.isoformat() == "2030-03-05T15:00:00+01:00"


def test_the_changes_are_documented(server: Served) -> None:
    document = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=20).json()
    assert set(document["paths"]["/api/v1/bookings/{uid}"]) == {"patch"}
    cancel_doc = document["paths"]["/api/v1/bookings/{uid}/cancel"]["post"]
    assert {"403", "404", "409", "412"} <= set(cancel_doc["responses"])
    assert "reason" in document["components"]["schemas"]["CancelRequest"]["properties"]


@pytest.mark.slow
def test_the_change_endpoints_match_their_document(make_server) -> None:  # type: ignore[no-untyped-def]
    """Schemathesis-generated moves and cancellations (by a user granted every organiser, so the
    requests reach the scheduling code) never get a 500 and match the OpenAPI document."""
    server: Served = make_server("rate_limit_per_minute = 1000000", timeout=0.2)
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().label in CHANGES]
    assert {op.label for op in operations} == CHANGES
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: schemathesis.Case) -> None:
            kwargs = case.as_transport_kwargs(base_url=server.url, headers=auth(DEMO))
            response = httpx.request(kwargs["method"], kwargs["url"], headers=kwargs["headers"],
                                     params=kwargs.get("params"), json=kwargs.get("json"), timeout=20)
            case.validate_response(response, checks=checks)

        run()


TWO_ALARMS = ["BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n",
              "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Earlier\r\nTRIGGER:-PT1H\r\nEND:VALARM\r\n"]


def test_a_change_says_what_a_calendar_holds_another_way(make_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A booking's answer carries the notices a sync run reports when a calendar written to
    cannot hold the meeting as it is: Alice's copy has two alarms, Dora's Exchange (the EWS
    fake, calmesh.fakes.ews, protocol-faithful to EWS's one reminder per item) keeps one."""
    fake = EWSFake(users={"svc": "svc-pw"})
    fake.add_mailbox(DAVID, "America/New_York")
    fake.start()
    monkeypatch.setenv("CALMESH_TEST_EWS_PW", "svc-pw")
    try:
        server = make_server(tail=f"""
[platforms.ews]
kind = "ews"
service_endpoint = "{fake.ews_url}"
auth = "basic"
username = "svc"
password_env = "CALMESH_TEST_EWS_PW"
server_version = "Exchange2016"
mailboxes = ["{DAVID}"]
[[people]]
email = "{DAVID}"
name = "Dora Park"
platform = "ews"
calendars = ["{DAVID}"]
timezone = "America/New_York"
""")
        booked = book(server, DEMO, required=[DAVID])
        assert booked.status_code == 201, booked.text
        assert booked.json()["notices"] == [] and booked.json()["adapted"] == []
        uid = booked.json()["uid"]
        zoho = ICSConnector("zoho", ICSSettings(kind="ics", path=str(server.hub.config.resolve_path("zoho"))))
        mine = stored_item(server.hub, "zoho", f"{ALICE}.ics", uid)
        zoho.put(f"{ALICE}.ics", CalendarItem(uid, [mine.components[0].with_changes(alarms=TWO_ALARMS)], mine.ref),
                 if_match=mine.ref.etag if mine.ref else None)
        moved = move(server, uid)
        assert moved.status_code == 200, moved.text
        (adapted,) = moved.json()["adapted"]
        assert adapted["member"] == f"ews:{DAVID}" and adapted["feature"] == "VALARM" and adapted["written"]
        assert moved.json()["notices"] == [f"ews:{DAVID}: UID {uid}: VALARM: {adapted['detail']}"]
        assert "1 alarm(s) left out" in adapted["detail"]
    finally:
        fake.stop()
