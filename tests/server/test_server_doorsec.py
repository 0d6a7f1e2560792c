"""Safe to expose (issue 14 items 6, 7, 8, 10, 11), on the running server with real clients.

One platform of the suite's hub (``down``) is a calendar URL on 127.0.0.1 whose server answers
404: its failure quotes the address and the path (``feed not found: http://127.0.0.1:PORT/...``).
No door may show that to its asker: answers say "down: did not answer", the cause goes to the
log, to the monitoring details of /healthz and to ``calmesh status``.
"""

from __future__ import annotations

import base64
import logging
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import caldav
import httpx
import icalendar
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from typer.testing import CliRunner

from calmesh.cli.app import app as cli
from calmesh.connectors.base import TransientError, UnsupportedOperation
from calmesh.fakes import serve
from calmesh.services.public_errors import public_text

from .conftest import DEMO, FAST_HASH, LEAD, OPS, Served

DORA = "dora@agency.example"
ALICE = "alice@agency.example"
runner = CliRunner()


@pytest.fixture
def down_port() -> Iterator[int]:
    """The port of the ``down`` platform's calendar server, on 127.0.0.1: it answers 404 to
    everything, so the connector's error quotes the URL (``feed not found: http://...``) at once,
    without the retries a refused connection costs."""
    async def missing(scope: Scope, _receive: Receive, send: Send) -> None:
        await PlainTextResponse("no such calendar", status_code=404)(scope, _receive, send)

    running = serve(missing)
    yield int(running.url.rsplit(":", 1)[1])
    running.stop()


def down_platform(port: int) -> str:
    return f"""
[platforms.down]
kind = "ics"
url = "http://127.0.0.1:{port}/internal-calendars/dora.ics"
[[people]]
email = "{DORA}"
name = "Dora Down"
platform = "down"
"""


@pytest.fixture
def down(make_server, down_port: int) -> Served:  # type: ignore[no-untyped-def]
    return make_server(tail=down_platform(down_port))


def leaks(text: str, port: int) -> list[str]:
    """What of the down platform's technical cause ``text`` shows."""
    return [needle for needle in (f"127.0.0.1:{port}", f":{port}/", "internal-calendars", "Traceback",
                                  "ConnectError", "Connection refused", "not found:", "httpx", "urllib3", "Errno")
            if needle in text]


def test_public_text_names_the_platform_only() -> None:
    error = TransientError("exchange", "REPORT http://10.0.0.5:8080/dav/pia/: unreachable "
                                       "(HTTPConnectionPool(host='10.0.0.5', port=8080): Max retries exceeded)")
    assert public_text(error) == "exchange: did not answer"
    assert public_text(error.problem()) == "exchange: did not answer"
    assert public_text(UnsupportedOperation("projects", "PUT to https://intranet/x.ics: read-only feed")) == (
        "projects: cannot do this (read-only or not supported)")


# ------------------------------------------------------------------------------------ item 6
def test_every_door_says_which_platform_is_missing_in_plain_words(
        down: Served, down_port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="calmesh")
    answered: dict[str, str] = {}
    response = httpx.post(f"{down.url}/api/v1/freebusy", auth=OPS, timeout=30, json={
        "attendees": [DORA, ALICE], "start": "2026-11-23T00:00:00+01:00", "end": "2026-11-28T00:00:00+01:00"})
    dora = response.json()["people"][0]
    assert dora["error"] == "down: did not answer" and response.json()["people"][1]["error"] is None
    answered["json"] = response.text

    vfb = httpx.get(f"{down.url}/freebusy/{DORA}.vfb", auth=OPS, timeout=30)
    (fb,) = icalendar.Calendar.from_ical(vfb.content).walk("VFREEBUSY")
    assert str(fb["COMMENT"]) == "Data missing: down: did not answer"
    assert vfb.headers["X-Calmesh-Error"] == "down: did not answer"
    answered["vfb"] = vfb.text + str(vfb.headers)
    feed = httpx.get(f"{down.url}/feeds/{DORA}.ics", auth=OPS, timeout=30)
    assert feed.headers["X-Calmesh-Error"] == "down: did not answer"
    answered["feed"] = feed.text + str(feed.headers)

    ews = httpx.post(f"{down.url}/EWS/Exchange.asmx", auth=OPS, timeout=30, content=_availability_request(DORA),
                     headers={"Content-Type": "text/xml; charset=utf-8"})
    assert b"<m:MessageText>Data missing: down: did not answer</m:MessageText>" in ews.content
    answered["ews"] = ews.text

    client = caldav.DAVClient(url=f"{down.url}/.well-known/caldav", username=OPS[0], password=OPS[1])
    reply = client.principal().freebusy_request(
        datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC), [f"mailto:{DORA}"])
    assert reply["errors"][f"mailto:{DORA}"] == "5.1;Service unavailable;down: did not answer"
    answered["caldav"] = str(reply["errors"])

    web = httpx.get(f"{down.url}/", params={"day": "2026-11-23", "view": "week"}, auth=OPS, timeout=30)
    assert "down: did not answer" in web.text
    answered["web"] = web.text
    for door, text in answered.items():
        assert leaks(text, down_port) == [], door
    # the cause is in the server's log, once per fan-out
    causes = [r.getMessage() for r in caplog.records if "internal-calendars" in r.getMessage()]
    assert causes and all(m.startswith("free/busy: down:") for m in causes)


def test_calmesh_status_shows_the_cause_the_answers_leave_out(make_server, down_port: int) -> None:  # type: ignore[no-untyped-def]
    served = make_server(tail=down_platform(down_port) + SYNC_GROUP)
    ask = {"attendees": [DORA], "start": "2026-11-23T00:00:00+01:00", "end": "2026-11-28T00:00:00+01:00"}
    assert httpx.post(f"{served.url}/api/v1/freebusy", auth=OPS, timeout=30, json=ask).json()["people"][0]["error"]
    shown = _cli(served, "status")
    assert "platform down failing" in shown and f"127.0.0.1:{down_port}/internal-calendars" in shown
    # kept only while it lasts: once the platform answers again (as the next fan-out records it)
    served.app.state.ctx.health.record(["down"], [])
    assert "platform down" not in _cli(served, "status")


def test_a_booking_on_a_platform_that_fails_says_so_in_plain_words(down: Served, down_port: int) -> None:
    response = httpx.post(f"{down.url}/api/v1/book", auth=DEMO, timeout=30, json={
        "organizer": DORA, "required": [ALICE], "duration": 30,
        "start": (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0).isoformat(),
        "summary": "Plan"})
    assert response.status_code == 502, response.text
    assert response.json()["detail"].startswith("could not create the event: down: ")
    assert leaks(response.text, down_port) == []


def _availability_request(address: str) -> bytes:
    """A GetUserAvailability request for ``address`` over the demo week (UTC)."""
    zone = ("<t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time>"
            "<t:DayOrder>1</t:DayOrder><t:Month>1</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>"
            "<t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>5</t:DayOrder>"
            "<t:Month>12</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>")
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
            'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body>'
            f'<m:GetUserAvailabilityRequest>{zone}<m:MailboxDataArray><t:MailboxData><t:Email>'
            f'<t:Address>{address}</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType></t:MailboxData>'
            '</m:MailboxDataArray><t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>2026-11-23T00:00:00</t:StartTime>'
            '<t:EndTime>2026-11-28T00:00:00</t:EndTime></t:TimeWindow><t:RequestedView>FreeBusy</t:RequestedView>'
            '</t:FreeBusyViewOptions></m:GetUserAvailabilityRequest></s:Body></s:Envelope>').encode()


def _concrete(path: str) -> str:
    """A request path for a route pattern: every parameter filled in."""
    values = {"email": DORA, "token": "not-a-token", "uid": "some-uid", "rest": "principals/ops/outbox/"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def _requests(served: Served) -> Iterator[tuple[str, str]]:
    for route in served.app.routes:
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                yield method, _concrete(route.path)
        elif isinstance(route, Mount):
            yield "GET", route.path + "/x"


@pytest.mark.parametrize("authorization", [None, "Basic " + base64.b64encode(b"ops:wrong").decode()],
                         ids=["none", "wrong"])
def test_no_route_shows_internal_details_to_the_unauthenticated(
        down: Served, down_port: int, authorization: str | None) -> None:
    # a platform down, and answers about it in the cache
    httpx.post(f"{down.url}/api/v1/freebusy", auth=DEMO, timeout=30, json={
        "attendees": [DORA, ALICE], "start": "2026-11-23T00:00:00+01:00",
        "end": "2026-11-28T00:00:00+01:00"})
    for method, path, text in _ask_every_route(down, {"Authorization": authorization} if authorization else {}):
        assert leaks(text, down_port) == [], (method, path)
        for private in ("did not answer", "Dora", "Spring campaign", "agency.example"):
            assert private not in text, (method, path, private)


def _ask_every_route(served: Served, headers: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """Each route of the app asked once (a small XML body where one is expected): method, path,
    and the answer's body and headers as one text. No answer may be a crash (Autodiscover's 503
    without ``server.public_url`` and EWS's SOAP faults, HTTP 500, are by design)."""
    asked = list(_requests(served))
    assert len(asked) >= 25  # every door is listed
    for method, path in asked:
        body = b"<x/>" if method in ("POST", "PROPFIND", "PATCH") else None
        response = httpx.request(method, f"{served.url}{path}", headers=headers, content=body, timeout=60)
        # never a crash; EWS answers a malformed request with a SOAP fault, HTTP 500 as SOAP 1.1 says
        fault = path.lower().startswith("/ews/") and "<s:Fault>" in response.text
        assert response.status_code != 500 or fault, (method, path, response.text)
        yield method, path, response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())


@pytest.mark.parametrize("user", [OPS, DEMO], ids=["ungranted", "granted"])
def test_no_route_shows_internal_details_to_signed_in_users(
        down: Served, down_port: int, user: tuple[str, str]) -> None:
    """The same for users who may read free/busy (and details): the platform's failure in plain
    words, its cause nowhere but in the monitoring details of /healthz (the granted user here is
    also the monitoring user)."""
    headers = {"Authorization": "Basic " + base64.b64encode(":".join(user).encode()).decode()}
    for method, path, text in _ask_every_route(down, headers):
        if path != "/healthz":
            assert leaks(text, down_port) == [], (method, path)


SYNC_GROUP = """
[sync.groups.g]
calendars = [{ platform = "zoho", calendar = "alice@agency.example.ics" },
             { platform = "projects", calendar = "alice@agency.example.ics" }]
"""


# ------------------------------------------------------------------------------------ item 8
def test_healthz_says_up_or_degraded_and_details_are_for_monitoring(down: Served) -> None:
    assert httpx.get(f"{down.url}/healthz").json() == {"status": "up"}
    httpx.post(f"{down.url}/api/v1/freebusy", auth=OPS, timeout=30, json={
        "attendees": [DORA, ALICE], "start": "2026-11-23T00:00:00+01:00", "end": "2026-11-28T00:00:00+01:00"})
    assert httpx.get(f"{down.url}/healthz").json() == {"status": "degraded"}
    assert httpx.get(f"{down.url}/healthz", auth=OPS).json() == {"status": "degraded"}  # not a monitoring user
    details = httpx.get(f"{down.url}/healthz", auth=DEMO).json()  # monitoring_users = ["demo"]
    assert details["status"] == "degraded" and details["people"] == 8 and details["owed_deliveries"] == 0
    assert details["platforms"]["down"]["status"] == "failed" and "internal-calendars" in details["platforms"]["down"]["error"]
    assert details["platforms"]["zoho"]["status"] == "up" and details["platforms"]["exchange"] == {"status": "unchecked"}
    not_found = httpx.get(f"{down.url}/no-such-page").json()
    assert httpx.get(f"{down.url}/metrics").status_code == 404
    assert httpx.get(f"{down.url}/metrics", auth=OPS).json() == not_found
    assert "calmesh_http_requests_total" in httpx.get(f"{down.url}/metrics", auth=DEMO).text


def test_monitoring_addresses_read_the_details_without_signing_in(make_server) -> None:  # type: ignore[no-untyped-def]
    served = make_server(server_extra='monitoring_addresses = ["127.0.0.0/8"]')
    assert "calmesh_http_requests_total" in httpx.get(f"{served.url}/metrics").text
    assert httpx.get(f"{served.url}/healthz").json()["people"] == 7


def test_the_sync_page_shows_run_errors_to_monitoring_only(make_server) -> None:  # type: ignore[no-untyped-def]
    from calmesh.store.db import open_store
    from calmesh.store.repository import SyncRepository

    served = make_server(tail=SYNC_GROUP)
    repo = SyncRepository(open_store(served.hub.config.state_url()))
    repo.finish_run(repo.start_run("g"), "partial", {}, ["projects: PUT http://10.9.8.7:5232/cal/: refused"])
    plain = httpx.get(f"{served.url}/sync", auth=OPS).text
    assert "10.9.8.7" not in plain and "calmesh status" in plain
    assert "PUT http://10.9.8.7:5232/cal/: refused" in httpx.get(f"{served.url}/sync", auth=DEMO).text


# ------------------------------------------------------------------------------------ item 7
def _cli(served: Served, *args: str) -> str:
    result = runner.invoke(cli, [*args, "--config", str(served.config_path)])
    assert result.exit_code == 0, result.output
    return result.output


def _token(output: str) -> str:
    match = re.search(r"/freebusy/([A-Za-z0-9_-]{20,})/", output)
    assert match, output
    return match.group(1)


def test_secret_urls_open_one_person_and_are_revocable(server: Served) -> None:
    assert httpx.get(f"{server.url}/freebusy/{ALICE}.vfb").status_code == 401  # anonymous access is off
    issued = _cli(server, "feeds", "issue", ALICE, "--label", "alice's google calendar")
    token = _token(issued)
    assert f"/feeds/{token}/{ALICE}.ics" in issued
    vfb = httpx.get(f"{server.url}/freebusy/{token}/{ALICE}.vfb")
    assert vfb.status_code == 200 and b"BEGIN:VFREEBUSY" in vfb.content and b"SUMMARY" not in vfb.content
    assert httpx.get(f"{server.url}/freebusy/{token}/{ALICE}.ifb").status_code == 200
    feed = httpx.get(f"{server.url}/feeds/{token}/{ALICE}.ics")
    assert feed.status_code == 200 and b"Spring campaign" not in feed.content  # free/busy only
    # one answer for everything the token does not open: unknown token, another person, nobody
    refusals = [httpx.get(f"{server.url}/freebusy/{token}/david@agency.example.vfb"),
                httpx.get(f"{server.url}/freebusy/{token}/nobody@agency.example.vfb"),
                httpx.get(f"{server.url}/freebusy/{'x' * 32}/{ALICE}.vfb"),
                httpx.get(f"{server.url}/feeds/{token}/david@agency.example.ics")]
    assert {(r.status_code, r.content) for r in refusals} == {(404, refusals[0].content)}
    listed = _cli(server, "feeds", "list")
    assert ALICE in listed and "google calendar" in listed and token not in listed
    grant_id = re.search(r"issued URL #(\d+)", issued).group(1)  # type: ignore[union-attr]
    assert "revoked 1 URL" in _cli(server, "feeds", "revoke", grant_id)
    assert httpx.get(f"{server.url}/freebusy/{token}/{ALICE}.vfb").content == refusals[0].content
    assert "no feed URLs issued" in _cli(server, "feeds", "list")


def test_a_subscriber_url_opens_everyone_and_revoking_by_person(server: Served) -> None:
    token = _token(_cli(server, "feeds", "issue", "--everyone", "--label", "partner outlook"))
    for email in (ALICE, "david@agency.example"):
        assert httpx.get(f"{server.url}/freebusy/{token}/{email}.vfb").status_code == 200
    assert httpx.get(f"{server.url}/freebusy/{token}/nobody@agency.example.vfb").status_code == 404
    result = runner.invoke(cli, ["feeds", "issue", "nobody@agency.example", "--config", str(server.config_path)])
    assert result.exit_code != 0 and "nobody@agency.example" in result.output
    assert "revoked 1 URL" in _cli(server, "feeds", "revoke", "--person", "*")
    assert httpx.get(f"{server.url}/freebusy/{token}/{ALICE}.vfb").status_code == 404


# ------------------------------------------------------------------------------------ item 10
def test_a_service_account_gets_its_own_budget(make_server) -> None:  # type: ignore[no-untyped-def]
    from calmesh.server.auth import hash_password

    served = make_server(server_extra="rate_limit_per_minute = 3", tail=f"""
[[server.users]]
name = "exchange-as"
password_hash = "{hash_password("as-secret", **FAST_HASH)}"
rate_limit_per_minute = 6000
""")
    ops = [httpx.get(f"{served.url}/api/v1/people", auth=LEAD).status_code for _ in range(5)]
    assert ops[:3] == [200, 200, 200] and 429 in ops[3:]
    account = [httpx.get(f"{served.url}/api/v1/people", auth=("exchange-as", "as-secret")).status_code
               for _ in range(30)]
    assert account == [200] * 30


# ------------------------------------------------------------------------------------ item 11
def test_a_body_that_never_arrives_times_out(make_server) -> None:  # type: ignore[no-untyped-def]
    served = make_server(server_extra="body_timeout = 0.5")
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(b"POST /api/v1/freebusy HTTP/1.1\r\nHost: calmesh\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):  # until the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower() and b"server.body_timeout" in answer
    assert httpx.get(f"{served.url}/api/v1/people", auth=DEMO).status_code == 200  # nothing held
