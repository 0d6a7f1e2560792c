"""The requests Exchange and Outlook send, written from Microsoft's documentation, byte for byte.

Exchange and Outlook cannot run here, so tests/server/microsoft_requests/ holds what they send
(see its README for the documents each one follows): Exchange's availability service asking an
availability address space (Autodiscover SOAP GetUserSettings, then GetUserAvailability with
the organisation-wide credentials), Outlook's Autodiscover POX request, and Outlook's Internet
Free/Busy fetch of a ``.vfb`` URL. Each file is sent unchanged; the answers are read back with
the parsers clients use (exchangelib for EWS, icalendar for VFREEBUSY) and must carry the same
busy time as the JSON API for the same people and window.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from calmesh.config import parse_config
from calmesh.fakes import serve
from calmesh.server.app import create_app
from calmesh.services.hub import Hub

from .conftest import DEMO, OPS, PASSWORD_ENV, Served, config_text, seed_ics
from .ews_checks import M, ews_busy, ews_views, json_busy, json_merged

REQUESTS = Path(__file__).parent / "microsoft_requests"
PUBLIC = "https://calmesh.agency.example"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
A = "{http://schemas.microsoft.com/exchange/2010/Autodiscover}"
ALICE, DAVID = "alice@agency.example", "david@agency.example"
FREEBUSY_VIEW_ORDER = ["FreeBusyViewType", "MergedFreeBusy", "CalendarEventArray", "WorkingHours"]
"""The sequence of t:FreeBusyView in the EWS schema (types.xsd, FreeBusyView)."""


def soap(url: str, fixture: str, action: str) -> httpx.Response:
    """POST a fixture unchanged, with the headers a .NET SOAP client sends and the address space's account."""
    return httpx.post(url, auth=OPS, timeout=30, content=(REQUESTS / fixture).read_bytes(),
                      headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'})


def test_exchange_availability_address_space(make_server) -> None:  # type: ignore[no-untyped-def]
    """Exchange (Add-AvailabilityAddressSpace -AccessMethod OrgWideFB -TargetAutodiscoverEpr ...)
    first asks Autodiscover for each person's EWS URL, then posts GetUserAvailability there with
    the organisation-wide account: the answer has Alice's and David's busy time as the JSON API
    has it, and Exchange's own error for a mailbox calmesh does not know."""
    server = make_server(f'public_url = "{PUBLIC}"')
    discovered = soap(f"{server.url}/autodiscover/autodiscover.svc", "autodiscover-soap-getusersettings.xml",
                      "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings")
    assert discovered.status_code == 200, discovered.text
    alice, zed = ET.fromstring(discovered.content).iter(f"{A}UserResponse")
    settings = {s.findtext(f"{A}Name"): s.findtext(f"{A}Value") for s in alice.iter(f"{A}UserSetting")}
    assert settings["ExternalEwsUrl"] == settings["InternalEwsUrl"] == f"{PUBLIC}/EWS/Exchange.asmx"
    assert [e.findtext(f"{A}SettingName") for e in alice.iter(f"{A}UserSettingError")] == ["InteropExternalEwsUrl"]
    assert zed.findtext(f"{A}ErrorCode") == "InvalidUser"

    path = settings["ExternalEwsUrl"].removeprefix(PUBLIC)
    response = soap(f"{server.url}{path}", "exchange-availability-address-space.xml",
                    "http://schemas.microsoft.com/exchange/services/2006/messages/GetUserAvailability")
    assert response.status_code == 200, response.text
    (alice_view, david_view, room) = ews_views(response.content)
    assert room[:2] == ("Error", "ErrorMailRecipientNotFound")
    zone = ZoneInfo("Europe/Paris")  # the TimeZone the request describes
    window = (datetime(2026, 11, 23, tzinfo=zone), datetime(2026, 11, 28, tzinfo=zone))
    busy = json_busy(server.url, [ALICE, DAVID], *window, OPS)
    merged = json_merged(server.url, [ALICE, DAVID], *window, 30, OPS)
    for email, (cls, code, view) in zip((ALICE, DAVID), (alice_view, david_view), strict=True):
        assert (cls, code) == ("Success", "NoError") and view is not None
        assert view.view_type == "FreeBusyMerged"  # an account without detail grants: Exchange's downgrade
        assert ews_busy(view, zone) == busy[email] and busy[email]
        assert view.merged == merged[email]
    for view_el in ET.fromstring(response.content).iter(f"{M}FreeBusyView"):
        names = [c.tag.split("}")[1] for c in view_el]
        assert names == [n for n in FREEBUSY_VIEW_ORDER if n in names], names


def test_outlook_autodiscover_pox(make_server) -> None:  # type: ignore[no-untyped-def]
    """[MS-OXDSCLI] request, as Outlook posts it: the EWS URL (EwsUrl, and ASUrl for the
    availability service) is calmesh's, built from server.public_url."""
    server = make_server(f'public_url = "{PUBLIC}"')
    response = httpx.post(f"{server.url}/autodiscover/autodiscover.xml", auth=OPS, timeout=30,
                          content=(REQUESTS / "autodiscover-pox-outlook.xml").read_bytes(),
                          headers={"Content-Type": "text/xml"})
    assert response.status_code == 200
    outlook = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    root = ET.fromstring(response.content)
    assert root.tag == "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover"
    assert root.findtext(f".//{outlook}AutoDiscoverSMTPAddress") == ALICE
    assert {e.text for e in root.iter(f"{outlook}EwsUrl")} == {f"{PUBLIC}/EWS/Exchange.asmx"}
    assert {e.text for e in root.iter(f"{outlook}ASUrl")} == {f"{PUBLIC}/EWS/Exchange.asmx"}


@pytest.fixture
def this_week(tmp_path: Path, slow_feed: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """The demo week seeded in the current week, served with anonymous free/busy: Outlook's
    Internet Free/Busy fetch carries no window (calmesh answers a week back, eight ahead) and
    no credentials."""
    monkeypatch.setenv(PASSWORD_ENV, DEMO[1])
    today = datetime.now(UTC).date()
    seed_ics(tmp_path, today - timedelta(days=today.weekday()))
    text = config_text(slow_feed, server_extra="anonymous_freebusy = true")
    (tmp_path / "calmesh.toml").write_text(text)
    hub = Hub(parse_config(text, tmp_path / "calmesh.toml"))
    app = create_app(hub)
    running = serve(app)
    yield Served(running.url, hub, app, running, tmp_path / "calmesh.toml")
    running.stop()
    hub.close()


def raw_http(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` unchanged over a socket; read the whole answer (the request says close)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


FBTYPES = {"BUSY": "busy", "BUSY-TENTATIVE": "tentative", "BUSY-UNAVAILABLE": "oof", "X-UNKNOWN": "unknown"}


def test_outlook_internet_freebusy_fetch(this_week: Served) -> None:
    """Outlook's Internet Free/Busy (search path ``http://host/freebusy/%NAME%@%SERVER%.vfb``)
    fetches the URL with WinInet, no credentials and no window: the VFREEBUSY it gets has its
    window and periods in UTC (what Outlook reads) and the JSON API's busy time for that window."""
    status, headers, body = raw_http(this_week.url, (REQUESTS / "outlook-internet-freebusy.http").read_bytes())
    assert status == 200 and headers["content-type"].startswith("text/calendar")
    (fb,) = icalendar.Calendar.from_ical(body).walk("VFREEBUSY")
    assert b"DTSTART:" in body and b"DTEND:" in body  # UTC values, no TZID Outlook would need a VTIMEZONE for
    start, end = fb.decoded("DTSTART"), fb.decoded("DTEND")
    assert start.tzinfo is not None and start.utcoffset() == timedelta(0) and end - start >= timedelta(days=56)
    assert str(fb["ORGANIZER"]).lower() == f"mailto:{ALICE}"
    periods = fb.get("FREEBUSY", [])
    got = {(p.dt[0].astimezone(UTC), p.dt[1].astimezone(UTC), FBTYPES[p.params.get("FBTYPE", "BUSY")])
           for p in (periods if isinstance(periods, list) else [periods])}
    expected = json_busy(this_week.url, [ALICE], start, end, DEMO)[ALICE]
    assert got == expected and got, "the week seeded around today has busy time for Alice"
