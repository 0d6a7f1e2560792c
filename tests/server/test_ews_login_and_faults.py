"""How EWS clients log in to the door, and how it refuses what it cannot answer.

The login sequences are the clients' own bytes, captured from the Debian packages (DavMail
6.0.1, evolution-ews 3.46) talking to calmesh, in tests/server/ews_requests/. Faults are read
back with exchangelib's own fault parser, which raises the error class named by the fault's
``e:ResponseCode`` (issue 15 item 2: a 400 used to make it raise "Unknown failure ... Code: 400").
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from exchangelib import errors
from exchangelib.services.common import EWSService
from exchangelib.util import to_xml

from .conftest import DEMO, OPS, Served
from .ews_checks import ews_views, json_merged
from .test_server_ews import PARIS, SOAP, views

REQUESTS = Path(__file__).parent / "ews_requests"
M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
SOAP_NS = "{http://schemas.xmlsoap.org/soap/envelope/}"


def post(server: Served, body: bytes | str, auth: tuple[str, str] = DEMO) -> httpx.Response:
    return httpx.post(f"{server.url}/ews/exchange.asmx", auth=auth, timeout=30,
                      content=body.encode() if isinstance(body, str) else body,
                      headers={"Content-Type": "text/xml; charset=utf-8"})


def messages(response: httpx.Response) -> list[ET.Element]:
    assert response.status_code == 200, response.text
    return [el for el in ET.fromstring(response.content).iter() if el.tag.endswith("ResponseMessage")]


def raised_by_exchangelib(response: httpx.Response) -> type[Exception]:
    """What exchangelib raises for this fault (the classmethod its services call on one)."""
    assert response.status_code == 500 and response.headers["content-type"].startswith("text/xml")
    fault = to_xml(response.content).find(f"{SOAP_NS}Body/{SOAP_NS}Fault")
    assert fault is not None
    with pytest.raises(Exception) as caught:
        EWSService._raise_soap_errors(fault=fault)
    return type(caught.value)


# ------------------------------------------------------------------------------------ DavMail
def test_davmail_logs_in_and_gets_free_busy(server: Served) -> None:
    """DavMail 6.0.1's login in its own bytes: GetFolder root, ConvertId of the root's id with a
    dummy Mailbox (calmesh used to answer ErrorNonExistentMailbox, failing the login), eight
    GetFolders with AdditionalProperties, then GetUserAvailability."""
    sent = (REQUESTS / "davmail-6.0.1-login-and-freebusy.txt").read_text().splitlines()
    answers = {}
    for body in sent:
        response = post(server, body)
        found = messages(response)
        assert found and all(m.get("ResponseClass") == "Success" for m in found), response.text
        answers[body] = ET.fromstring(response.content)
    (convert,) = [a for b, a in answers.items() if "ConvertId" in b]
    (alternate,) = convert.iter(f"{M}AlternateId")
    # Exchange answers with the mailbox owning the folder (DavMail reads its address from it),
    # not with the "blah@blah.com" DavMail sent
    assert alternate.get("Mailbox") == "demo@calmesh.invalid"
    (calendar,) = [a for b, a in answers.items() if 'Id="calendar"' in b and "GetFolder" in b]
    folder = calendar.find(f".//{T}CalendarFolder")
    assert folder is not None and folder.findtext(f"{T}DisplayName") == "Calendar"
    props = {e.find(f"{T}ExtendedFieldURI").get("PropertyTag"): e.findtext(f"{T}Value")
             for e in folder.iter(f"{T}ExtendedProperty")}
    assert props["0x3613"] == "IPF.Appointment" and props["0x3602"] == "0" and props["0x360a"] == "false"
    assert props["0x670a"] == props["0x3008"]  # DavMail's ctag: steady, so it does not re-read
    (availability,) = [b for b in sent if "GetUserAvailabilityRequest" in b]
    (view,) = ews_views(ET.tostring(answers[availability]))
    window = (dt.datetime(2026, 11, 23, tzinfo=dt.UTC), dt.datetime(2026, 11, 28, tzinfo=dt.UTC))
    alice = json_merged(server.url, ["alice@agency.example"], *window, 15, DEMO)["alice@agency.example"]
    assert view[2] is not None and view[2].merged == alice and "2" in alice


def test_davmail_lists_an_empty_calendar(server: Served) -> None:
    """What DavMail sends when a CalDAV client lists the calendar: two FindItems (events, tasks)
    and a FindFolder, each answered as an empty view with nothing more to page through."""
    for body in (REQUESTS / "davmail-6.0.1-calendar-listing.txt").read_text().splitlines():
        (message,) = messages(post(server, body))
        assert message.get("ResponseClass") == "Success"
        root = message.find(f"{M}RootFolder")
        assert root is not None and root.get("TotalItemsInView") == "0"
        assert root.get("IncludesLastItemInRange") == "true" and len(root[0]) == 0


# ------------------------------------------------------------------------------ evolution-ews
def test_evolution_ews_login_check_and_sync(server: Served) -> None:
    """evolution-ews checks the password with GetFolder inbox (Default shape) and keeps a calendar
    in step with SyncFolderItems: a folder id calmesh gave out gets a sync state that it accepts
    next time; evolution's own request (an empty id when the source has none) gets Exchange's
    ErrorInvalidIdEmpty rather than a fault that would fail the whole calendar."""
    (inbox,) = messages(post(server, (REQUESTS / "evolution-ews-3.46-getfolder-inbox.xml").read_bytes()))
    assert inbox.get("ResponseClass") == "Success"
    folder = inbox.find(f"{M}Folders/{T}Folder")
    assert folder is not None and [c.tag.split("}")[1] for c in folder] == [
        "FolderId", "DisplayName", "TotalCount", "ChildFolderCount", "UnreadCount"]  # schema order
    own = (REQUESTS / "evolution-ews-3.46-syncfolderitems.xml").read_bytes()
    (empty,) = messages(post(server, own))
    assert empty.findtext(f"{M}ResponseCode") == "ErrorInvalidIdEmpty"

    calendar_id = _folder_id(server, "calendar")
    first = own.replace(b'<FolderId Id=""/>', f'<FolderId Id="{calendar_id}"/>'.encode())
    (synced,) = messages(post(server, first))
    state = synced.findtext(f"{M}SyncState")
    assert synced.findtext(f"{M}ResponseCode") == "NoError" and state
    assert synced.findtext(f"{M}IncludesLastItemInRange") == "true" and len(synced.find(f"{M}Changes")) == 0
    again = first.replace(b"<messages:MaxChangesReturned>",
                          f"<messages:SyncState>{state}</messages:SyncState><messages:MaxChangesReturned>".encode())
    (resynced,) = messages(post(server, again))
    assert resynced.findtext(f"{M}ResponseCode") == "NoError" and resynced.findtext(f"{M}SyncState") == state
    (stale,) = messages(post(server, again.replace(state.encode(), b"bm90LW91cnM=")))
    assert stale.findtext(f"{M}ResponseCode") == "ErrorInvalidSyncStateData"


def _folder_id(server: Served, name: str, auth: tuple[str, str] = DEMO) -> str:
    body = (f'<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>'
            f'<t:DistinguishedFolderId Id="{name}"/></m:FolderIds></m:GetFolder>')
    (message,) = messages(post(server, SOAP.format(dtd="", body=body), auth))
    folder_id = message.find(f".//{T}FolderId")
    assert folder_id is not None
    return folder_id.get("Id", "")


def test_folders_of_other_mailboxes_and_ids_from_elsewhere(server: Served) -> None:
    """A distinguished folder of a directory person belongs to that person (ConvertId says so);
    an address calmesh does not know and an id calmesh did not give out are refused per message,
    as Exchange does."""
    body = ('<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds>'
            '<t:DistinguishedFolderId Id="calendar"><t:Mailbox><t:EmailAddress>alice@agency.example</t:EmailAddress>'
            '</t:Mailbox></t:DistinguishedFolderId>'
            '<t:DistinguishedFolderId Id="calendar"><t:Mailbox><t:EmailAddress>zed@elsewhere.example</t:EmailAddress>'
            '</t:Mailbox></t:DistinguishedFolderId><t:FolderId Id="AAMkAGI2TG93AAA="/>'
            '<t:DistinguishedFolderId Id="nosuchfolder"/></m:FolderIds></m:GetFolder>')
    alice, zed, foreign, unknown = messages(post(server, SOAP.format(dtd="", body=body)))
    assert alice.get("ResponseClass") == "Success"
    assert alice.findtext(f".//{T}FolderClass") == "IPF.Appointment"
    assert [m.findtext(f"{M}ResponseCode") for m in (zed, foreign, unknown)] == [
        "ErrorNonExistentMailbox", "ErrorInvalidIdMalformed", "ErrorFolderNotFound"]
    alice_id = alice.find(f".//{T}FolderId").get("Id")
    convert = (f'<m:ConvertId DestinationFormat="HexEntryId"><m:SourceIds><t:AlternateId Format="EwsId" '
               f'Id="{alice_id}" Mailbox="whoever@example.com"/></m:SourceIds></m:ConvertId>')
    (converted,) = messages(post(server, SOAP.format(dtd="", body=convert)))
    alternate = converted.find(f"{M}AlternateId")
    assert alternate is not None and alternate.get("Mailbox") == "alice@agency.example"
    assert alternate.get("Format") == "HexEntryId"


# ------------------------------------------------------------------------------------- faults
GUA = ('<m:GetUserAvailabilityRequest><t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias>'
       '<t:Time>00:00:00</t:Time><t:DayOrder>0</t:DayOrder><t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>'
       '</t:StandardTime><t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>0</t:DayOrder>'
       '<t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>'
       '<m:MailboxDataArray>{mailboxes}</m:MailboxDataArray>'
       '<t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>{start}</t:StartTime><t:EndTime>{end}</t:EndTime>'
       '</t:TimeWindow><t:RequestedView>FreeBusy</t:RequestedView></t:FreeBusyViewOptions>'
       '</m:GetUserAvailabilityRequest>')
ONE = ('<t:MailboxData><t:Email><t:Address>alice@agency.example</t:Address></t:Email>'
       '<t:AttendeeType>Required</t:AttendeeType></t:MailboxData>')


@pytest.mark.parametrize(("body", "error"), [
    ("<m:GetFolder><unclosed></m:GetFolder>", errors.ErrorSchemaValidation),
    (GUA.format(mailboxes="", start="2026-11-23T00:00:00", end="2026-11-24T00:00:00"), errors.ErrorSchemaValidation),
    (GUA.format(mailboxes=ONE, start="2026-11-24T00:00:00", end="2026-11-23T00:00:00"), errors.ErrorInvalidTimeInterval),
    (GUA.format(mailboxes=ONE * 101, start="2026-11-23T00:00:00", end="2026-11-24T00:00:00"),
     errors.ErrorMailboxDataArrayTooBig),
    (GUA.format(mailboxes=ONE, start="yesterday", end="2026-11-24T00:00:00"), errors.ErrorSchemaValidation),
    ("<m:CreateItem/>", errors.ErrorInvalidRequest),
])
def test_faults_are_500_with_the_ews_code_exchangelib_raises(server: Served, body: str,
                                                             error: type[Exception]) -> None:
    response = post(server, SOAP.format(dtd="", body=body), OPS)
    assert raised_by_exchangelib(response) is error
    fault = ET.fromstring(response.content).find(f"{SOAP_NS}Body/{SOAP_NS}Fault")
    assert fault is not None and fault.findtext("faultcode") == f"t:{error.__name__}"


def test_exchangelib_raises_time_interval_too_big(make_server) -> None:  # type: ignore[no-untyped-def]
    """Through exchangelib itself: a window beyond server.max_window_days is Exchange's
    ErrorTimeIntervalTooBig, not MalformedResponseError("Unknown failure ... Code: 400")."""
    server = make_server("max_window_days = 3")
    with pytest.raises(errors.ErrorTimeIntervalTooBig, match="max_window_days"):
        views(server, ["alice@agency.example"], tz=PARIS)
