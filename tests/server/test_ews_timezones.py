"""Every TimeZone shape EWS clients send in GetUserAvailability, read as the zone they mean.

The shapes come from the clients' sources (and, for evolution-ews and DavMail, from their own
requests, captured from the Debian packages talking to calmesh: tests/server/ews_requests/):

- evolution-ews 3.46 (``ewscal_add_availability_default_timechange``): UTC with Month 0 and
  DayOrder 0 in both transitions, Windows' way of saying "no daylight saving". calmesh used to
  answer 400 "Month or DayOrder out of range" (issue 15 item 1).
- Windows / Outlook (TIME_ZONE_INFORMATION): zones without DST (Tokyo, India, Arizona) the same
  way, with their Bias; zones with DST as n-th weekday rules, north and south.
- DavMail 6 (``GetUserAvailabilityMethod``) and the EWS Managed API's UTC
  (``LegacyAvailabilityTimeZone``): both biases 0 with dummy March/October rules.
- the EWS Managed API's fixed-date rules: a ``Year``, no ``DayOfWeek``, DayOrder = day of month;
  and, against Exchange 2010 and later, no TimeZone at all but a ``TimeZoneContext`` header.

Bias follows the documented sign: UTC = local + Bias.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from calmesh.server.ews_soap import RuleZone, SoapError, read_timezone

from .conftest import DEMO, OPS, Served
from .ews_checks import ews_busy, ews_views, json_busy, json_merged

REQUESTS = Path(__file__).parent / "ews_requests"
TYPES = "http://schemas.microsoft.com/exchange/services/2006/types"
ALICE, DAVID = "alice@agency.example", "david@agency.example"


def rule(bias: int, time: str, order: int, month: int, day: str | None = "Sunday", year: int | None = None) -> str:
    return (f"<Bias>{bias}</Bias><Time>{time}</Time><DayOrder>{order}</DayOrder><Month>{month}</Month>"
            + (f"<DayOfWeek>{day}</DayOfWeek>" if day else "") + (f"<Year>{year}</Year>" if year else ""))


def timezone(bias: int, standard: str, daylight: str) -> str:
    return (f'<TimeZone xmlns="{TYPES}"><Bias>{bias}</Bias><StandardTime>{standard}</StandardTime>'
            f"<DaylightTime>{daylight}</DaylightTime></TimeZone>")


NO_DST = rule(0, "00:00:00", 0, 0)
SHAPES = {
    # name: (TimeZone element, the IANA zone it describes)
    "evolution-ews UTC, Month 0": (timezone(0, NO_DST, NO_DST), "UTC"),
    "Windows Tokyo, Month 0": (timezone(-540, NO_DST, NO_DST), "Asia/Tokyo"),
    "Windows India, Month 0": (timezone(-330, NO_DST, NO_DST), "Asia/Kolkata"),
    "Windows Arizona, Month 0": (timezone(420, NO_DST, NO_DST), "America/Phoenix"),
    "DavMail / Managed API UTC, dummy rules": (
        timezone(0, rule(0, "02:00:00", 1, 3), rule(0, "02:00:00", 1, 10)), "UTC"),
    "Managed API Paris": (
        timezone(-60, rule(0, "03:00:00", 5, 10), rule(-60, "02:00:00", 5, 3)), "Europe/Paris"),
    "Windows New York, H:MM times": (
        timezone(300, rule(0, "2:00:00", 1, 11), rule(-60, "2:00:00", 2, 3)), "America/New_York"),
    "Windows Sydney (south)": (
        timezone(-600, rule(0, "03:00:00", 1, 4), rule(-60, "02:00:00", 1, 10)), "Australia/Sydney"),
    "Managed API fixed-date rules (Year, no DayOfWeek)": (
        timezone(-60, rule(0, "03:00:00", 25, 10, day=None, year=2026),
                 rule(-60, "02:00:00", 29, 3, day=None, year=2026)), "Europe/Paris"),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_every_timezone_shape_reads_as_the_zone_it_describes(shape: str) -> None:
    element, iana = SHAPES[shape]
    zone, real = RuleZone(read_timezone(ET.fromstring(element))), ZoneInfo(iana)
    instant = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    while instant.year == 2026:
        assert instant.astimezone(zone).utcoffset() == instant.astimezone(real).utcoffset(), instant
        instant += timedelta(hours=7)


@pytest.mark.parametrize(("element", "message"), [
    (timezone(0, rule(0, "02:00:00", 0, 3), NO_DST), "DayOrder 0 is not 1-5"),
    (timezone(0, rule(0, "02:00:00", 1, 13), rule(-60, "02:00:00", 1, 3)), "Month 13"),
    (timezone(0, rule(0, "02:00", 1, 3, day="Funday"), NO_DST), "DayOfWeek"),
    (timezone(0, rule(0, "25:00", 1, 3), NO_DST), "bad Time"),
    (timezone(2000, NO_DST, NO_DST), "Bias out of range"),
])
def test_impossible_timezones_say_what_is_wrong(element: str, message: str) -> None:
    with pytest.raises(SoapError, match=message) as caught:
        read_timezone(ET.fromstring(element))
    assert caught.value.code == "ErrorSchemaValidation"


def request(timezone_xml: str, emails: list[str], start: str = "2026-11-23T00:00:00",
            end: str = "2026-11-28T00:00:00", view: str = "DetailedMerged", header: str = "") -> bytes:
    """A GetUserAvailability request in the shape of Microsoft's documentation example
    (default namespaces, MailboxData in the types namespace under a messages MailboxDataArray)."""
    mailboxes = "".join(f'<MailboxData xmlns="{TYPES}"><Email><Address>{e}</Address></Email>'
                        "<AttendeeType>Required</AttendeeType><ExcludeConflicts>false</ExcludeConflicts></MailboxData>"
                        for e in emails)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"
               xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Header><RequestServerVersion Version="Exchange2010_SP1" xmlns="{TYPES}"/>{header}</soap:Header>
  <soap:Body>
    <GetUserAvailabilityRequest xmlns="http://schemas.microsoft.com/exchange/services/2006/messages">
      {timezone_xml}
      <MailboxDataArray>{mailboxes}</MailboxDataArray>
      <FreeBusyViewOptions xmlns="{TYPES}">
        <TimeWindow><StartTime>{start}</StartTime><EndTime>{end}</EndTime></TimeWindow>
        <MergedFreeBusyIntervalInMinutes>30</MergedFreeBusyIntervalInMinutes>
        <RequestedView>{view}</RequestedView>
      </FreeBusyViewOptions>
    </GetUserAvailabilityRequest>
  </soap:Body>
</soap:Envelope>""".encode()


def post(server: Served, body: bytes, auth: tuple[str, str] = OPS) -> httpx.Response:
    return httpx.post(f"{server.url}/EWS/Exchange.asmx", content=body, auth=auth, timeout=30,
                      headers={"Content-Type": "text/xml; charset=utf-8"})


def assert_same_as_json_api(server: Served, answer: bytes, emails: list[str], iana: str,
                            start: str = "2026-11-23T00:00:00", end: str = "2026-11-28T00:00:00",
                            interval: int = 30, auth: tuple[str, str] = OPS) -> None:
    """The EWS answer holds, for each person, the JSON API's busy periods and availability view
    for the same instants (the request's local window read in the zone it described)."""
    zone = ZoneInfo(iana)
    window = (datetime.fromisoformat(start).replace(tzinfo=zone), datetime.fromisoformat(end).replace(tzinfo=zone))
    expected = json_busy(server.url, emails, *window, auth)
    merged = json_merged(server.url, emails, *window, interval, auth)
    views = ews_views(answer)
    assert [(cls, code) for cls, code, _ in views] == [("Success", "NoError")] * len(emails)
    for email, (_, _, view) in zip(emails, views, strict=True):
        assert view is not None and view.merged == merged[email], email
        if view.view_type != "MergedOnly":
            assert ews_busy(view, zone) == expected[email], email
        assert expected[email], f"{email} has busy time that week: the comparison means something"


@pytest.mark.parametrize("shape", ["Windows Tokyo, Month 0", "Windows India, Month 0", "Managed API Paris",
                                   "Windows Sydney (south)", "Managed API fixed-date rules (Year, no DayOfWeek)"])
def test_the_door_answers_each_shape_with_the_json_apis_busy_time(server: Served, shape: str) -> None:
    element, iana = SHAPES[shape]
    response = post(server, request(element, [ALICE, DAVID]))
    assert response.status_code == 200, response.text
    assert_same_as_json_api(server, response.content, [ALICE, DAVID], iana)


def test_managed_api_sends_only_a_timezonecontext_header(server: Served) -> None:
    """Against Exchange 2010+, the EWS Managed API leaves TimeZone out of the body
    (GetUserAvailabilityRequest.WriteElementsToXml) and names the zone in the SOAP header."""
    header = f'<TimeZoneContext xmlns="{TYPES}"><TimeZoneDefinition Id="Tokyo Standard Time"/></TimeZoneContext>'
    response = post(server, request("", [ALICE, DAVID], header=header))
    assert response.status_code == 200, response.text
    assert_same_as_json_api(server, response.content, [ALICE, DAVID], "Asia/Tokyo")
    unknown = post(server, request("", [ALICE], header=header.replace("Tokyo Standard Time", "Mars Time")))
    assert unknown.status_code == 500 and b"ErrorTimeZone" in unknown.content


def test_evolution_ews_request_as_it_sends_it(server: Served) -> None:
    """evolution-ews 3.46's own request bytes (UTC, Month 0): answered, not refused with 400."""
    body = (REQUESTS / "evolution-ews-3.46-getuseravailability.xml").read_bytes()
    response = post(server, body, auth=DEMO)
    assert response.status_code == 200, response.text
    assert_same_as_json_api(server, response.content, [ALICE], "UTC", interval=60, auth=DEMO)


def test_davmail_request_as_it_sends_it(server: Served) -> None:
    """DavMail 6.0.1's own GetUserAvailability (UTC with dummy rules, window in Z, MergedOnly)."""
    lines = (REQUESTS / "davmail-6.0.1-login-and-freebusy.txt").read_text().splitlines()
    (body,) = [line for line in lines if "GetUserAvailabilityRequest" in line]
    response = post(server, body.encode(), auth=DEMO)
    assert response.status_code == 200, response.text
    assert_same_as_json_api(server, response.content, [ALICE], "UTC", interval=15, auth=DEMO)
