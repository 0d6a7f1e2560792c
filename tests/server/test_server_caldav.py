"""The CalDAV door (principals, RFC 6638 free/busy), driven by the python ``caldav`` client and by
the requests Thunderbird, Evolution and Apple Calendar send (tests/interop runs the first two for
real; Apple Calendar's requests are replayed byte for byte by test_server_caldav_apple.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import caldav
import httpx
import icalendar
import pytest

from calmesh.ical import parse_vfreebusy
from calmesh.model import BusyType
from calmesh.server.auth import hash_password

from .conftest import FAST_HASH, OPS, Served, at

EMMA = ("emma", "emma-secret")
EMMA_USER = f"""[[server.users]]
name = "{EMMA[0]}"
email = "Emma@agency.example"
password_hash = "{hash_password(EMMA[1], **FAST_HASH)}"
"""
"""A user whose address is configured (``email``): her principal has a ``mailto:`` address."""
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "CS": "http://calendarserver.org/ns/"}
WEEK = ("20261123T000000Z", "20261128T000000Z")


@pytest.fixture
def dav(make_server) -> Served:  # type: ignore[no-untyped-def]
    return make_server(EMMA_USER)


def propfind(url: str, props: str, depth: str = "0", auth: tuple[str, str] = EMMA) -> httpx.Response:
    body = (f'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="{NS["C"]}" xmlns:CS="{NS["CS"]}">'
            f"<D:prop>{props}</D:prop></D:propfind>")
    return httpx.request("PROPFIND", url, content=body.encode(), auth=auth, headers={"Depth": depth})


def propstats(response: httpx.Response) -> dict[str, dict[str, set[str]]]:
    """href -> status -> names of the properties in that propstat."""
    out: dict[str, dict[str, set[str]]] = {}
    for resp in ET.fromstring(response.content).findall("D:response", NS):
        href = resp.findtext("D:href", namespaces=NS) or ""
        for propstat in resp.findall("D:propstat", NS):
            status = (propstat.findtext("D:status", namespaces=NS) or "").split(" ")[1]
            out.setdefault(href, {})[status] = {child.tag for child in propstat.find("D:prop", NS) or []}
    return out


def request_body(organizer: str = "mailto:emma@agency.example", start: str = f"DTSTART:{WEEK[0]}",
                 attendees: tuple[str, ...] = ("mailto:alice@agency.example",)) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", "METHOD:REQUEST", "BEGIN:VFREEBUSY",
             "UID:lookup-1", "DTSTAMP:20261120T120000Z", start, f"DTEND:{WEEK[1]}", f"ORGANIZER:{organizer}",
             *(f"ATTENDEE:{a}" for a in attendees), "END:VFREEBUSY", "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode()


def post(server: Served, body: bytes, auth: tuple[str, str] = EMMA, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}/dav/calendars/{auth[0]}/outbox/", content=body, auth=auth,
                      headers={"Content-Type": "text/calendar", **headers}, timeout=10)


def test_caldav_client_free_busy_request(server: Served) -> None:
    """A user without a configured address: the principal URL is their address (RFC 6638 2.4.1)."""
    client = caldav.DAVClient(url=f"{server.url}/.well-known/caldav", username=OPS[0], password=OPS[1])
    principal = client.principal()
    assert str(principal.url).endswith("/dav/principals/ops/")
    answer = principal.freebusy_request(
        datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC),
        ["mailto:alice@agency.example", "mailto:nobody@agency.example", "mailto:gus@agency.example"])
    assert answer["errors"]["mailto:nobody@agency.example"] == "3.7;Invalid calendar user"
    assert answer["errors"]["mailto:gus@agency.example"].startswith("5.1;Service unavailable;slow: did not answer")
    data = answer["mailto:alice@agency.example"].data
    (fb,) = icalendar.Calendar.from_ical(data).walk("VFREEBUSY")
    assert str(fb["ATTENDEE"]) == "mailto:alice@agency.example"
    assert "ORGANIZER" not in fb  # the principal URL is no mailto: address to echo
    assert (at(0, 14), at(0, 16), BusyType.BUSY) in {(p.start, p.end, p.type) for p in parse_vfreebusy(data)}
    assert "METHOD:REPLY" in data


def test_principal_has_a_mailto_address_a_home_and_boxes(dav: Served) -> None:
    asked = ("<D:current-user-principal/><D:principal-collection-set/><C:calendar-home-set/>"
             "<C:calendar-user-address-set/><C:schedule-inbox-URL/><C:schedule-outbox-URL/><D:getetag/>"
             "<CS:email-address-set/><D:resourcetype/>")
    url = f"{dav.url}/dav/principals/emma/"
    assert httpx.request("PROPFIND", url, content=b"").status_code == 401
    response = propfind(url, asked)
    assert response.status_code == 207
    root = ET.fromstring(response.content)
    assert [e.text for e in root.iterfind(".//C:calendar-user-address-set/D:href", NS)] == [
        "mailto:emma@agency.example", "/dav/principals/emma/"]
    assert root.findtext(".//C:calendar-home-set/D:href", namespaces=NS) == "/dav/calendars/emma/"
    assert root.findtext(".//C:schedule-outbox-URL/D:href", namespaces=NS) == "/dav/calendars/emma/outbox/"
    assert root.findtext(".//C:schedule-inbox-URL/D:href", namespaces=NS) == "/dav/calendars/emma/inbox/"
    assert root.findtext(".//D:principal-collection-set/D:href", namespaces=NS) == "/dav/principals/"
    assert root.findtext(".//CS:email-address-set/CS:email-address", namespaces=NS) == "emma@agency.example"
    assert root.find(".//D:resourcetype/D:principal", NS) is not None
    statuses = propstats(response)["/dav/principals/emma/"]
    assert statuses["404"] == {"{DAV:}getetag"}  # exactly what was asked, unknown ones in a 404 propstat
    assert len(statuses["200"]) == 8
    # someone else's principal is not there for her
    assert propfind(f"{dav.url}/dav/principals/ops/", asked).status_code == 404


def test_home_holds_a_read_only_calendar_and_the_boxes(dav: Served) -> None:
    asked = ("<D:resourcetype/><C:supported-calendar-component-set/><D:current-user-privilege-set/>"
             "<CS:getctag/><D:displayname/>")
    response = propfind(f"{dav.url}/dav/calendars/emma/", asked, depth="1")
    assert response.status_code == 207
    responses = {r.findtext("D:href", namespaces=NS): r for r in ET.fromstring(response.content).findall("D:response", NS)}
    assert list(responses) == ["/dav/calendars/emma/", "/dav/calendars/emma/freebusy/", "/dav/calendars/emma/inbox/",
                               "/dav/calendars/emma/outbox/"]
    calendar = responses["/dav/calendars/emma/freebusy/"]
    assert {e.tag for e in calendar.find(".//D:resourcetype", NS) or []} == {"{DAV:}collection", f"{{{NS['C']}}}calendar"}
    assert [e.get("name") for e in calendar.iterfind(".//C:supported-calendar-component-set/C:comp", NS)] == ["VEVENT"]
    privileges = {p.tag for p in calendar.iterfind(".//D:current-user-privilege-set/D:privilege/*", NS)}
    assert "{DAV:}read" in privileges and not privileges & {"{DAV:}write", "{DAV:}write-content", "{DAV:}all"}
    outbox = responses["/dav/calendars/emma/outbox/"]
    assert outbox.find(".//D:resourcetype/C:schedule-outbox", NS) is not None
    assert {p.tag for p in outbox.iterfind(".//D:privilege/*", NS)} >= {f"{{{NS['C']}}}schedule-send-freebusy"}
    # the home itself has no ctag or component set: they are in its 404 propstat, not left out
    assert propstats(response)["/dav/calendars/emma/"]["404"] == {
        f"{{{NS['C']}}}supported-calendar-component-set", f"{{{NS['CS']}}}getctag"}
    # queries on the calendar find nothing; Depth: infinity is refused as RFC 4918 allows
    report = httpx.request("REPORT", f"{dav.url}/dav/calendars/emma/freebusy/", auth=EMMA, headers={"Depth": "1"},
                           content=f'<C:calendar-query xmlns:D="DAV:" xmlns:C="{NS["C"]}"><D:prop><D:getetag/>'
                                   f'</D:prop></C:calendar-query>'.encode())
    assert report.status_code == 207 and ET.fromstring(report.content).find("D:response", NS) is None
    own = httpx.request("REPORT", f"{dav.url}/dav/calendars/emma/freebusy/", auth=EMMA, headers={"Depth": "1"},
                        content=f'<C:free-busy-query xmlns:C="{NS["C"]}"><C:time-range start="{WEEK[0]}" '
                                f'end="{WEEK[1]}"/></C:free-busy-query>'.encode())
    assert own.status_code == 200 and own.headers["content-type"].startswith("text/calendar")
    assert b"DTSTART:20261123T000000Z" in own.content and b"FREEBUSY" not in own.content.replace(b"VFREEBUSY", b"")
    unknown = httpx.request("REPORT", f"{dav.url}/dav/principals/", auth=EMMA,
                            content=b'<D:principal-search-property-set xmlns:D="DAV:"/>')
    assert unknown.status_code == 403 and b"supported-report" in unknown.content
    infinite = propfind(f"{dav.url}/dav/", "<D:resourcetype/>", depth="infinity")
    assert infinite.status_code == 403 and b"propfind-finite-depth" in infinite.content
    assert httpx.put(f"{dav.url}/dav/calendars/emma/freebusy/x.ics", content=b"", auth=EMMA).status_code == 405


def test_allprop_propname_and_discovery(dav: Served) -> None:
    everything = httpx.request("PROPFIND", f"{dav.url}/dav/calendars/emma/freebusy/", auth=EMMA,
                               headers={"Depth": "0"})
    assert b"<C:calendar />" in everything.content and b"404 Not Found" not in everything.content
    names = httpx.request("PROPFIND", f"{dav.url}/dav/calendars/emma/freebusy/", auth=EMMA, headers={"Depth": "0"},
                          content=b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>')
    assert b"<D:resourcetype />" in names.content and b"calmesh-empty" not in names.content
    options = httpx.request("OPTIONS", f"{dav.url}/dav/calendars/emma/")
    features = {f.strip() for f in options.headers["DAV"].split(",")}
    assert {"1", "2", "3", "calendar-access", "calendar-schedule"} <= features
    assert "calendar-auto-schedule" not in features
    redirect = httpx.request("PROPFIND", f"{dav.url}/.well-known/caldav", auth=EMMA)
    assert redirect.status_code == 301 and redirect.headers["location"].endswith("/dav/")
    root = propfind(f"{dav.url}/dav/", "<D:current-user-principal/>")
    assert ET.fromstring(root.content).findtext(".//D:current-user-principal/D:href", namespaces=NS) == "/dav/principals/emma/"
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><D:propfind xmlns:D="DAV:">&a;</D:propfind>'
    assert httpx.request("PROPFIND", f"{dav.url}/dav/", content=hostile, auth=EMMA).status_code == 400


def test_outbox_answers_what_the_json_api_answers(dav: Served) -> None:
    response = post(dav, request_body(attendees=("mailto:alice@agency.example", "mailto:carla@agency.example")))
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    replies = {r.findtext("C:recipient/D:href", namespaces=NS): r for r in root.findall("C:response", NS)}
    api = httpx.post(f"{dav.url}/api/v1/freebusy", auth=EMMA, timeout=10, json={
        "attendees": ["alice@agency.example", "carla@agency.example"],
        "start": "2026-11-23T00:00:00Z", "end": "2026-11-28T00:00:00Z"}).json()
    for person in api["people"]:
        reply = replies[f"mailto:{person['email']}"]
        assert reply.findtext("C:request-status", namespaces=NS) == "2.0;Success"
        data = reply.findtext("C:calendar-data", namespaces=NS) or ""
        assert "ORGANIZER:mailto:emma@agency.example" in data
        dav_busy = {(p.start, p.end, p.type.fbtype) for p in parse_vfreebusy(data)}
        json_busy = {(datetime.fromisoformat(b["start"]).astimezone(UTC), datetime.fromisoformat(b["end"]).astimezone(UTC),
                      {"busy": "BUSY", "tentative": "BUSY-TENTATIVE", "oof": "BUSY-UNAVAILABLE"}[b["type"]])
                     for b in person["busy"]}
        assert dav_busy == json_busy and dav_busy


def test_outbox_refuses_someone_elses_organizer_or_originator(dav: Served) -> None:
    forged = post(dav, request_body(organizer="mailto:alice@agency.example"))
    assert forged.status_code == 403 and b"organizer-allowed" in forged.content
    assert post(dav, request_body(organizer="MAILTO:EMMA@agency.example")).status_code == 200
    as_principal = post(dav, request_body(organizer=f"{dav.url}/dav/principals/emma/"))
    assert as_principal.status_code == 200
    originator = post(dav, request_body(), Originator="mailto:alice@agency.example")
    assert originator.status_code == 403 and b"originator-allowed" in originator.content
    assert post(dav, request_body(), Originator="mailto:emma@agency.example").status_code == 200
    missing = post(dav, request_body().replace(b"ORGANIZER:mailto:emma@agency.example\r\n", b""))
    assert missing.status_code == 400 and b"valid-scheduling-message" in missing.content
    # one user's outbox is not another's
    assert httpx.post(f"{dav.url}/dav/calendars/ops/outbox/", content=request_body(), auth=EMMA,
                      headers={"Content-Type": "text/calendar"}).status_code == 405


def test_outbox_refuses_an_unknown_time_zone(dav: Served) -> None:
    """Issue 14 item 11: ``TZID=Mars/Base`` without a VTIMEZONE was read in the hub's zone and
    answered "2.0;Success" for hours nobody asked about."""
    mars = post(dav, request_body(start="DTSTART;TZID=Mars/Base:20261123T000000"))
    assert mars.status_code == 400
    error = ET.fromstring(mars.content)
    assert error.find("C:valid-calendar-data", NS) is not None
    assert "Mars/Base" in (error.findtext("D:responsedescription", namespaces=NS) or "")
    tokyo = post(dav, request_body(start="DTSTART;TZID=Asia/Tokyo:20261123T090000"))
    assert tokyo.status_code == 200 and b"DTSTART:20261123T000000Z" in tokyo.content
    defined = request_body(start="DTSTART;TZID=Mars/Base:20261123T030000").replace(
        b"BEGIN:VFREEBUSY", b"BEGIN:VTIMEZONE\r\nTZID:Mars/Base\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        b"TZOFFSETFROM:+0300\r\nTZOFFSETTO:+0300\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nBEGIN:VFREEBUSY", 1)
    answered = post(dav, defined)
    assert answered.status_code == 200 and b"DTSTART:20261123T000000Z" in answered.content
