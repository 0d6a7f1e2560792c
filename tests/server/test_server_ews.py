"""The EWS availability door, driven by exchangelib as the real client.

exchangelib goes through the same steps as against Exchange: an unauthenticated ConvertId to learn
the auth method (401 + Basic challenge), an authenticated ConvertId as the version probe,
GetServerTimeZones for the request's zone, then GetUserAvailability with a TimeZoneContext.
"""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree

import httpx
import pytest
from exchangelib import Configuration, Credentials, EWSTimeZone
from exchangelib.errors import ErrorMailRecipientNotFound
from exchangelib.protocol import BaseProtocol, NoVerifyHTTPAdapter, Protocol

from calmesh.config import ConfigError, parse_config
from calmesh.server.app import create_app
from calmesh.server.ews_soap import RuleZone, zone_rules

from .conftest import DEMO, OPS, Served

BaseProtocol.HTTP_ADAPTER_CLS = NoVerifyHTTPAdapter
PARIS = EWSTimeZone("Europe/Paris")
NEW_YORK = EWSTimeZone("America/New_York")


def protocol(server: Served, auth: tuple[str, str] = OPS, path: str = "/EWS/Exchange.asmx") -> Protocol:
    config = Configuration(service_endpoint=server.url + path, credentials=Credentials(*auth))
    return Protocol(config=config)


def views(server: Served, emails: list[str], tz: EWSTimeZone = PARIS, auth: tuple[str, str] = OPS,
          requested_view: str = "DetailedMerged", path: str = "/EWS/Exchange.asmx") -> list:
    start = dt.datetime(2026, 11, 23, tzinfo=tz)
    end = dt.datetime(2026, 11, 28, tzinfo=tz)
    accounts = [(e, "Required", False) for e in emails]
    return list(protocol(server, auth, path).get_free_busy_info(accounts, start, end, merged_free_busy_interval=60,
                                                                 requested_view=requested_view))


def test_exchangelib_gets_free_busy_across_platforms(server: Served) -> None:
    alice, david, nobody, gus = views(server, ["alice@agency.example", "david@agency.example",
                                               "nobody@agency.example", "gus@agency.example"])
    # Alice (Zoho + in-house): Monday 14:00-16:00 Paris busy, as local times in the request's zone
    spans = {(e.start.replace(tzinfo=None), e.end.replace(tzinfo=None), e.busy_type) for e in alice.calendar_events}
    assert (dt.datetime(2026, 11, 23, 14), dt.datetime(2026, 11, 23, 16), "Busy") in spans
    assert alice.merged[14] == "2" and len(alice.merged) == 5 * 24
    assert all(e.details is None for e in alice.calendar_events)  # ops: free/busy only
    assert alice.view_type == "FreeBusyMerged"  # downgraded from DetailedMerged, as Exchange does
    # working hours: 09:00-18:00 Mon-Fri in Paris, with the zone's bias and DST rules
    (period,) = alice.working_hours
    assert (period.start, period.end) == (dt.time(9), dt.time(18))
    assert period.weekdays == [1, 2, 3, 4, 5]
    assert alice.working_hours_timezone.bias == -60
    assert alice.working_hours_timezone.daylight_time.iso_month == 3
    # David's tentative call shows as Tentative (digit 1) at 15:00 London = 16:00 Paris on Wednesday
    assert any(e.busy_type == "Tentative" and e.start.replace(tzinfo=None) == dt.datetime(2026, 11, 25, 16)
               for e in david.calendar_events)
    assert isinstance(nobody, ErrorMailRecipientNotFound)
    assert gus.merged == "4" * 120 and [e.busy_type for e in gus.calendar_events] == ["NoData"]


def test_missing_data_says_why(server: Served) -> None:
    body = ('<m:GetUserAvailabilityRequest><t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias>'
            '<t:Time>00:00:00</t:Time><t:DayOrder>1</t:DayOrder><t:Month>1</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>'
            '</t:StandardTime><t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>5</t:DayOrder>'
            '<t:Month>12</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>'
            '<m:MailboxDataArray><t:MailboxData><t:Email><t:Address>gus@agency.example</t:Address></t:Email>'
            '<t:AttendeeType>Required</t:AttendeeType></t:MailboxData></m:MailboxDataArray>'
            '<t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>2026-11-23T00:00:00</t:StartTime>'
            '<t:EndTime>2026-11-24T00:00:00</t:EndTime></t:TimeWindow>'
            '<t:RequestedView>FreeBusy</t:RequestedView></t:FreeBusyViewOptions></m:GetUserAvailabilityRequest>')
    response = httpx.post(f"{server.url}/EWS/Exchange.asmx", content=SOAP.format(dtd="", body=body).encode(),
                          auth=OPS, timeout=10)
    assert response.status_code == 200
    assert b"Data missing: slow: did not answer" in response.content


def test_times_follow_the_requests_zone_and_details_follow_grants(server: Served) -> None:
    (alice,) = views(server, ["alice@agency.example"], tz=NEW_YORK, auth=DEMO)
    spans = {(e.start.replace(tzinfo=None), e.busy_type) for e in alice.calendar_events}
    assert (dt.datetime(2026, 11, 23, 8), "Busy") in spans  # 14:00 Paris = 08:00 New York
    assert alice.view_type == "DetailedMerged"
    subjects = {e.details.subject for e in alice.calendar_events if e.details}
    assert "Spring campaign review" in subjects and "Dentist" not in subjects


def test_path_is_case_insensitive(server: Served) -> None:
    (alice,) = views(server, ["alice@agency.example"], path="/ews/exchange.ASMX", requested_view="MergedOnly")
    assert alice.merged and not alice.calendar_events


SOAP = """<?xml version="1.0"?>{dtd}
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
  <s:Body>{body}</s:Body></s:Envelope>"""

BILLION_LAUGHS = """<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>"""
EXTERNAL = """<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"""


@pytest.mark.parametrize(("dtd", "body"), [
    (BILLION_LAUGHS, "<m:GetFolder>&lol3;</m:GetFolder>"),
    (EXTERNAL, "<m:GetFolder>&xxe;</m:GetFolder>"),
    ("", "<m:GetFolder><unclosed></m:GetFolder>"),
])
def test_hostile_or_broken_xml_is_refused_with_a_soap_fault(server: Served, dtd: str, body: str) -> None:
    response = httpx.post(f"{server.url}/EWS/Exchange.asmx", content=SOAP.format(dtd=dtd, body=body).encode(),
                          auth=OPS, headers={"Content-Type": "text/xml"})
    assert response.status_code == 500  # SOAP 1.1 and Exchange: faults are 500
    assert b"ErrorSchemaValidation" in response.content and b"root:" not in response.content


def test_unauthenticated_gets_basic_challenge_and_login_calls_work(server: Served) -> None:
    url = f"{server.url}/EWS/Exchange.asmx"
    refused = httpx.post(url, content=b"<x/>")
    assert refused.status_code == 401
    assert any(c.startswith("Basic") for c in refused.headers.get_list("www-authenticate"))
    body = ('<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>'
            '<t:DistinguishedFolderId Id="calendar"/><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>')
    folders = httpx.post(url, content=SOAP.format(dtd="", body=body).encode(), auth=OPS)
    assert folders.status_code == 200
    assert b"ServerVersionInfo" in folders.content and b"CalendarFolder" in folders.content
    body = ('<m:ConvertId DestinationFormat="EwsId"><m:SourceIds><t:AlternateId Format="EntryId" Id="AAA=" '
            'Mailbox="alice@agency.example"/></m:SourceIds></m:ConvertId>')
    converted = httpx.post(url, content=SOAP.format(dtd="", body=body).encode(), auth=OPS)
    # an id calmesh never gave out: what Exchange answers for a malformed id (exchangelib's probe expects it)
    assert converted.status_code == 200 and b"ErrorInvalidIdMalformed" in converted.content
    other = httpx.post(url, content=SOAP.format(dtd="", body="<m:CreateItem/>").encode(), auth=OPS)
    assert other.status_code == 500 and b"free/busy only" in other.content and b"ErrorInvalidRequest" in other.content


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Tokyo"])
def test_zone_rules_round_trip_through_windows_rules(zone: str) -> None:
    from zoneinfo import ZoneInfo

    real = ZoneInfo(zone)
    rules = RuleZone(zone_rules(real, 2026))
    instant = dt.datetime(2026, 1, 1, 0, 30, tzinfo=dt.UTC)
    while instant.year == 2026:
        assert instant.astimezone(rules).utcoffset() == instant.astimezone(real).utcoffset(), instant
        instant += dt.timedelta(hours=7)


PUBLIC = "https://calmesh.agency.example"


def test_soap_autodiscover_points_exchangelib_at_the_ews_door(make_server) -> None:  # type: ignore[no-untyped-def]
    from exchangelib.autodiscover.protocol import AutodiscoverProtocol

    server = make_server(f'public_url = "{PUBLIC}/"')

    autodiscover = AutodiscoverProtocol(config=Configuration(
        service_endpoint=f"{server.url}/Autodiscover/Autodiscover.svc", credentials=Credentials(*OPS)))
    found = autodiscover.get_user_settings(user="alice@agency.example")
    found.raise_errors()  # settings calmesh does not serve are "not available", which is harmless
    assert found.ews_url == f"{PUBLIC}/EWS/Exchange.asmx"  # server.public_url, never the Host
    assert found.autodiscover_smtp_address == "alice@agency.example"
    assert found.version is not None and found.version.api_version == "Exchange2016"
    unknown = autodiscover.get_user_settings(user="nobody@agency.example")
    assert unknown.error_code == "InvalidUser"


def test_pox_autodiscover_for_outlook(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(f'public_url = "{PUBLIC}"')
    request = b"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request><EMailAddress>Carla@agency.example</EMailAddress>
  <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request></Autodiscover>"""
    url = f"{server.url}/autodiscover/autodiscover.xml"
    assert httpx.post(url, content=request).status_code == 401
    response = httpx.post(url, content=request, auth=OPS)
    assert response.status_code == 200
    outlook = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
    urls = {el.text for el in ElementTree.fromstring(response.content).iter(f"{outlook}EwsUrl")}
    assert urls == {f"{PUBLIC}/EWS/Exchange.asmx"}
    forged = httpx.post(url, content=request, auth=OPS, headers={"Host": "evil.example"})
    assert b"evil.example" not in forged.content and f"{PUBLIC}/EWS/Exchange.asmx".encode() in forged.content
    missing = httpx.post(url, content=request.replace(b"Carla", b"Zed"), auth=OPS)
    assert b"cannot be found" in missing.content


def test_autodiscover_without_public_url_is_refused_clearly(server: Served, caplog: pytest.LogCaptureFixture) -> None:
    soap = httpx.post(f"{server.url}/autodiscover/autodiscover.svc", auth=OPS, headers={"Host": "evil.example"},
                      content=b"<not-even-read/>")
    pox = httpx.post(f"{server.url}/autodiscover/autodiscover.xml", auth=OPS, content=b"<not-even-read/>")
    for response in (soap, pox):
        assert response.status_code == 503 and b"server.public_url" in response.content
        assert b"evil.example" not in response.content
    assert httpx.post(f"{server.url}/autodiscover/autodiscover.xml").status_code == 401  # login first
    with caplog.at_level("WARNING", logger="calmesh.server.app"):
        create_app(server.hub)
    assert "server.public_url is not set" in caplog.text


@pytest.mark.parametrize("url", ["calmesh.agency.example", "ftp://calmesh.agency.example", "https://", "https://x/?a=1"])
def test_public_url_must_be_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ConfigError, match="public_url must be an absolute http"):
        parse_config(f'[server]\npublic_url = "{url}"\n')
