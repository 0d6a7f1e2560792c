"""The JSON API, VFREEBUSY URLs, busy feeds, auth, limits and metrics, over real HTTP (httpx).

The server runs on 127.0.0.1 over ICS folders seeded with the demo week plus a too-slow feed
(see conftest); answers are parsed back with icalendar where they are iCalendar.
"""

from __future__ import annotations

import base64
import socket
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
import pytest

from calmesh.ical import parse_vfreebusy
from calmesh.model import BusyType
from calmesh.server.auth import Authenticator, hash_password, verify_password

from .conftest import DEMO, FAST_HASH, LEAD, OPS, OPS_TOKEN, Served, at

ALICE, BRUNO, DAVID, GUS = ("alice@agency.example", "bruno@agency.example", "david@agency.example",
                            "gus@agency.example")
WEEK = {"start": "2026-11-23T00:00:00+01:00", "end": "2026-11-28T00:00:00+01:00"}


def ask(server: Served, attendees: list[str], auth: tuple[str, str] = DEMO, **extra: object) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/freebusy", json={"attendees": attendees, **WEEK, **extra},
                      auth=auth, timeout=10)


def test_freebusy_merges_platforms_and_reports_missing_people(server: Served) -> None:
    response = ask(server, [ALICE, GUS, "zed@elsewhere.example"], auth=OPS, interval=60)
    assert response.status_code == 200
    alice, gus, zed = response.json()["people"]
    assert alice["email"] == ALICE and alice["platform"] == "zoho" and alice["error"] is None
    spans = {(b["start"], b["end"], b["type"]) for b in alice["busy"]}
    assert ("2026-11-23T14:00:00+01:00", "2026-11-23T16:00:00+01:00", "busy") in spans  # Zoho
    assert ("2026-11-25T10:00:00+01:00", "2026-11-25T12:00:00+01:00", "busy") in spans  # in-house projects
    assert all("summary" not in b for b in alice["busy"])  # ops sees free/busy only
    assert len(alice["availability_view"]) == 5 * 24 and alice["availability_view"][14] == "2"
    assert alice["working_hours"] == {"timezone": "Europe/Paris",
                                      "periods": [{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"],
                                                   "start": "09:00", "end": "18:00"}]}
    assert gus["error"] == "slow: did not answer"
    assert gus["availability_view"] == "4" * 120 and gus["busy"][0]["type"] == "unknown"
    assert "not in the people directory" in zed["error"]
    assert response.headers["X-Calmesh-Fetched-At"] and int(response.headers["Age"]) <= 2


def test_details_follow_grants_and_never_show_private_events(server: Served) -> None:
    demo = {b.get("summary") for b in ask(server, [ALICE]).json()["people"][0]["busy"]}
    assert "Spring campaign review" in demo and "Dentist" not in demo
    lead_alice, lead_david = ask(server, [ALICE, DAVID], auth=LEAD).json()["people"]
    assert any(b.get("summary") == "Spring campaign review" for b in lead_alice["busy"])  # team:marketing
    assert all("summary" not in b for b in lead_david["busy"])  # sales: not granted


def test_cache_answers_warm_with_age_and_keeps_privacy_views_apart(server: Served) -> None:
    first = ask(server, [ALICE], auth=OPS)
    second = ask(server, [ALICE], auth=OPS)
    assert second.json() == first.json()
    assert second.headers["X-Calmesh-Fetched-At"] == first.headers["X-Calmesh-Fetched-At"]
    assert second.headers["Cache-Control"].startswith("private, max-age=")
    # the demo user may see details: it must not be served the ops (free/busy only) entry
    assert any("summary" in b for b in ask(server, [ALICE]).json()["people"][0]["busy"])
    metrics = httpx.get(f"{server.url}/metrics", auth=DEMO).text
    assert 'calmesh_freebusy_cache_lookups_total{result="hit"} 1.0' in metrics


def test_people_and_health(server: Served) -> None:
    people = httpx.get(f"{server.url}/api/v1/people", auth=DEMO).json()["people"]
    assert {"email": ALICE, "name": "Alice Martin", "platform": "zoho", "team": "marketing"} in people
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "up"}


def test_connections_are_answered_without_nagles_delay(server: Served) -> None:
    """Every connection the server accepts has Nagle's algorithm off. With it on, each answer
    after a connection's first waited ~40 ms: uvicorn writes the headers and the body apart, the
    body waited for the client's acknowledgement of the headers, which clients delay by 40 ms.
    asyncio turns it off only on sockets made as TCP by name. Read on the server's side of the
    connection, not timed. The socket is :func:`calmesh.server.listen.bind`'s, as for ``calmesh
    serve`` and the vendor fakes."""
    with httpx.Client() as client:
        client.get(f"{server.url}/healthz").raise_for_status()
        nodelay = [bool(c.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                   for c in server.running.server.server_state.connections]
    assert nodelay == [True]


@pytest.mark.parametrize("auth_header", [
    None,
    "Basic " + base64.b64encode(b"ops:wrong").decode(),
    "Basic !!!notbase64",
    "Bearer wrong-token",
    "Digest whatever",
])
def test_bad_credentials_get_401_with_challenges(server: Served, auth_header: str | None) -> None:
    headers = {"Authorization": auth_header} if auth_header else {}
    response = httpx.get(f"{server.url}/api/v1/people", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    challenges = response.headers.get_list("www-authenticate")
    assert any(c.startswith("Basic ") for c in challenges) and any(c.startswith("Bearer ") for c in challenges)


def test_bearer_tokens(server: Served) -> None:
    for token in (OPS_TOKEN, DEMO[1]):  # a hashed API token; a password_env password
        response = httpx.get(f"{server.url}/api/v1/people", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200


@pytest.mark.parametrize(("body", "message"), [
    (b"not json", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (b'{"attendees": [], "start": "2026-11-23", "end": "2026-11-24"}', "non-empty list"),
    (b'{"attendees": ["a@b.c"], "start": "yesterday", "end": "2026-11-24"}', "not an ISO-8601"),
    (b'{"attendees": ["a@b.c"], "start": "2026-11-24", "end": "2026-11-23"}', "end must be after start"),
    (b'{"attendees": ["a@b.c"], "start": "2026-01-01", "end": "2028-01-01"}', "longer than 366 days"),
    (b'{"attendees": ["a@b.c"], "start": "2026-11-23", "end": "2026-11-24", "interval": 0}', "interval"),
    (b'{"attendees": ["a@b.c"], "start": "0001-01-01", "end": "0001-01-02"}', "outside the years"),
    (b'{"attendees": ["a@b.c"], "start": "2026-11-23", "end": "2026-11-24", "colour": 1}', "unknown field"),
])
def test_bad_input_is_a_clear_400(server: Served, body: bytes, message: str) -> None:
    response = httpx.post(f"{server.url}/api/v1/freebusy", content=body, auth=OPS,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_oversized_body_is_refused(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server("max_request_bytes = 2000")
    response = httpx.post(f"{server.url}/api/v1/freebusy", content=b"x" * 5000, auth=OPS)
    assert response.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"y" * 500

    assert httpx.post(f"{server.url}/api/v1/freebusy", content=chunks(), auth=OPS).status_code == 413


def test_rate_limit_answers_429_with_retry_after(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server("rate_limit_per_minute = 3")
    codes = [httpx.get(f"{server.url}/api/v1/people", auth=OPS).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = httpx.get(f"{server.url}/api/v1/people", auth=OPS)
    assert int(refused.headers["Retry-After"]) >= 1
    assert httpx.get(f"{server.url}/api/v1/people", auth=LEAD).status_code == 200  # per client


def test_vfreebusy_url_parses_back_with_icalendar(server: Served) -> None:
    response = httpx.get(f"{server.url}/freebusy/{ALICE}.vfb",
                         params={"start": "2026-11-23", "end": "2026-11-28"}, auth=OPS)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    (fb,) = icalendar.Calendar.from_ical(response.content).walk("VFREEBUSY")
    assert str(fb["ORGANIZER"]) == f"mailto:{ALICE}"
    periods = {(p.start, p.end, p.type) for p in parse_vfreebusy(response.content)}
    assert (at(0, 14), at(0, 16), BusyType.BUSY) in periods
    assert httpx.get(f"{server.url}/freebusy/{ALICE}.ifb", auth=OPS).status_code == 200  # default window


def test_vfreebusy_needs_auth_unless_anonymous(make_server) -> None:  # type: ignore[no-untyped-def]
    closed = make_server()
    assert httpx.get(f"{closed.url}/freebusy/{ALICE}.vfb").status_code == 401
    open_ = make_server("anonymous_freebusy = true")
    assert httpx.get(f"{open_.url}/freebusy/{ALICE}.vfb").status_code == 200
    assert httpx.get(f"{open_.url}/freebusy/nobody@agency.example.vfb").status_code == 404
    assert httpx.get(f"{open_.url}/api/v1/people").status_code == 401  # only free/busy is anonymous


def test_vfreebusy_says_when_data_is_missing(server: Served) -> None:
    response = httpx.get(f"{server.url}/freebusy/{GUS}.vfb", auth=OPS)
    assert "did not answer" in response.headers["X-Calmesh-Error"]
    (fb,) = icalendar.Calendar.from_ical(response.content).walk("VFREEBUSY")
    assert "Data missing" in str(fb["COMMENT"])


def test_busy_feed_is_opaque_and_stable(server: Served) -> None:
    params = {"start": "2026-11-23", "end": "2026-11-28"}
    first = httpx.get(f"{server.url}/feeds/{BRUNO}.ics", params=params, auth=DEMO)
    assert first.status_code == 200
    events = icalendar.Calendar.from_ical(first.content).walk("VEVENT")
    summaries = {str(e["SUMMARY"]) for e in events}
    assert summaries <= {"Busy", "Tentative", "Out of office"} and "Out of office" in summaries
    assert all(str(e["TRANSP"]) == "OPAQUE" and "LOCATION" not in e for e in events)  # no details, even for demo
    server.app.state.ctx.cache.clear()  # a fresh fetch must give the same UIDs
    again = httpx.get(f"{server.url}/feeds/{BRUNO}.ics", params=params, auth=DEMO)
    assert [e["UID"] for e in icalendar.Calendar.from_ical(again.content).walk("VEVENT")] == [e["UID"] for e in events]


def test_errors_are_problem_details_never_500(server: Served) -> None:
    assert httpx.get(f"{server.url}/nope").json()["status"] == 404
    assert httpx.get(f"{server.url}/api/v1/freebusy", auth=OPS).status_code == 405
    response = httpx.get(f"{server.url}/freebusy/{ALICE}.vfb", params={"start": "garbage"}, auth=OPS)
    assert response.status_code == 400


def test_password_hashes() -> None:
    stored = hash_password("s3cret", **FAST_HASH)
    assert stored.startswith("$argon2id$")  # memory-hard for new hashes
    assert verify_password("s3cret", stored) and not verify_password("s3cret!", stored)
    assert not verify_password("x", "garbage") and not verify_password("x", "md5$1$a$b")
    assert not verify_password("x", "$argon2id$v=19$m=8,t=1,p=1$garbage")
    auth = Authenticator([])
    assert auth.verify("Basic " + base64.b64encode(b"a:b").decode()) is None


def test_openapi_document_is_served(server: Served) -> None:
    doc = httpx.get(f"{server.url}/api/v1/openapi.json").json()
    assert {"/api/v1/freebusy", "/api/v1/people"} <= set(doc["paths"])


def test_window_bounds_use_now_by_default(server: Served) -> None:
    response = httpx.get(f"{server.url}/feeds/{ALICE}.ics", auth=OPS)
    assert response.status_code == 200
    now = datetime.now(UTC)
    for event in icalendar.Calendar.from_ical(response.content).walk("VEVENT"):
        assert event.decoded("DTSTART") > now - timedelta(days=31)
