"""The CalDAV scheduling door (RFC 6638), driven by the python ``caldav`` client.

The client discovers the principal and its schedule outbox with PROPFIND, then POSTs a
VFREEBUSY REQUEST; the server answers a schedule-response per recipient.
"""

from __future__ import annotations

from datetime import UTC, datetime

import caldav
import httpx
import icalendar

from calmesh.ical import parse_vfreebusy
from calmesh.model import BusyType

from .conftest import OPS, Served, at


def test_caldav_client_free_busy_request(server: Served) -> None:
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
    assert (at(0, 14), at(0, 16), BusyType.BUSY) in {(p.start, p.end, p.type) for p in parse_vfreebusy(data)}
    assert "METHOD:REPLY" in data


def test_discovery_properties_and_errors(server: Served) -> None:
    propfind = b"""<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
      <D:prop><D:current-user-principal/><C:schedule-outbox-URL/><C:calendar-user-address-set/><D:getetag/></D:prop>
    </D:propfind>"""
    url = f"{server.url}/dav/principals/ops/"
    assert httpx.request("PROPFIND", url, content=propfind).status_code == 401
    response = httpx.request("PROPFIND", url, content=propfind, auth=OPS, headers={"Depth": "0"})
    assert response.status_code == 207
    assert b"/dav/principals/ops/outbox/" in response.content and b"404 Not Found" in response.content
    hostile = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><D:propfind xmlns:D="DAV:">&a;</D:propfind>'
    assert httpx.request("PROPFIND", url, content=hostile, auth=OPS).status_code == 400
    outbox = f"{server.url}/dav/principals/ops/outbox/"
    bad = httpx.post(outbox, content=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", auth=OPS,
                     headers={"Content-Type": "text/calendar"})
    assert bad.status_code == 400 and b"METHOD:REQUEST" in bad.content
    assert httpx.post(outbox, content=b"{}", auth=OPS, headers={"Content-Type": "application/json"}).status_code == 415
    assert httpx.request("OPTIONS", outbox).headers["DAV"].find("calendar-schedule") >= 0
