"""A fake Exchange Web Services endpoint (``/EWS/Exchange.asmx``), with an OAuth2 ``/token`` endpoint.

SOAP 1.1 envelopes in Microsoft's ``messages``/``types`` namespaces, answered with a
``ServerVersionInfo`` header and ``ResponseClass``/``ResponseCode``/``MessageText`` per message,
for the operations calmesh's EWS connector drives through exchangelib: GetFolder, FindItem
(``CalendarView`` expansion and indexed paging), GetItem (``ItemId`` and ``OccurrenceItemId``),
CreateItem, UpdateItem (``ConflictResolution`` with ChangeKey: ``ErrorIrresolvableConflict``; an
occurrence moved to or past the day of an adjacent one: ``ErrorOccurrenceCrossingBoundary``, as Exchange refuses it),
DeleteItem (occurrences become ``DeletedOccurrences``; ``DeleteType="MoveToDeletedItems"``, what
Outlook does, moves a whole item into the mailbox's Deleted Items folder under a new ItemId, where
FindItem with a ``Restriction`` on its extended properties, UID or creation time finds it),
SyncFolderItems (opaque ``SyncState``,
``ErrorInvalidSyncStateData``), GetUserAvailability (``DetailedMerged`` view, working hours with
their bias-and-transitions time zone, ``ErrorMailRecipientNotFound`` per unknown mailbox) and
ConvertId (exchangelib's version probe). Unknown mailboxes on folder operations answer
``ErrorNonExistentMailbox``.

Fault injection for tests: :meth:`EWSFake.busy_next` answers the next requests with the SOAP fault
``ErrorServerBusy`` carrying ``BackOffMilliseconds``; :meth:`EWSFake.expire_tokens` makes OAuth
tokens stale (HTTP 401); :meth:`EWSFake.invalidate_sync_states`.

Incoming XML is parsed with defusedxml. Series are expanded with the pattern<->RRULE mapping in
``calmesh.connectors._exchange_common``, in the zone StartTimeZone names or, for a zone of the
item's own, defines (``TimeZoneDefinitionType``, read by :mod:`calmesh.fakes.ews_zones` and echoed
as received; ``ErrorTimeZone`` for a broken definition or an Id neither known nor defined).
"""

from __future__ import annotations

import base64
import secrets
import time as _time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring
from zoneinfo import ZoneInfo

from defusedxml.ElementTree import ParseError, fromstring
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calmesh.alarms import Reminder, alarm, reminders
from calmesh.connectors import _exchange_common as ex
from calmesh.connectors._fitting import crosses
from calmesh.fakes import FakeService
from calmesh.fakes.ews_zones import DefinitionZone, InvalidZone, zone_from
from calmesh.model import (
    MARKER_PROPERTY,
    Attendee,
    BusyType,
    CalendarItem,
    Event,
    Role,
    Temporal,
    WorkingHours,
    as_utc,
)
from calmesh.timezones import to_iana, to_windows

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_DAY_NAMES = tuple(d.capitalize() for d in ex.WEEKDAYS)
_INDEX_NAMES = ("First", "Second", "Third", "Fourth", "Last")


class _SoapError(Exception):
    """An error answered in a ResponseMessage (ResponseClass="Error")."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _t(parent: Element, tag: str, text: object = None, **attrs: str) -> Element:
    child = SubElement(parent, _q(T, tag), attrs)
    if text is not None:
        child.text = str(text)
    return child


def _m(parent: Element, tag: str, text: object = None, **attrs: str) -> Element:
    child = SubElement(parent, _q(M, tag), attrs)
    if text is not None:
        child.text = str(text)
    return child


def _text(elem: Element | None, tag: str, ns: str = T) -> str | None:
    if elem is None:
        return None
    found = elem.find(_q(ns, tag))
    return found.text if found is not None and found.text is not None else None


def _restriction(elem: Element | None) -> Callable[[_Item], bool]:
    """A FindItem ``Restriction`` as a test of stored items: IsEqualTo, IsGreaterThanOrEqualTo,
    And and Or over the calmesh marker (an ExtendedFieldURI), ``calendar:UID`` and
    ``item:DateTimeCreated``, what a client looking for its own items in Deleted Items asks."""
    if elem is None:
        return lambda _item: True
    if elem.tag == _q(M, "Restriction"):
        if len(elem) != 1:
            raise _SoapError("ErrorInvalidRestriction", "The restriction is invalid.")
        return _restriction(elem[0])
    kind = elem.tag.rsplit("}", 1)[-1]
    if kind in ("And", "Or"):
        parts = [_restriction(child) for child in elem]
        return (lambda i: all(p(i) for p in parts)) if kind == "And" else (lambda i: any(p(i) for p in parts))
    ops: dict[str, Callable[[Any, Any], bool]] = {"IsEqualTo": lambda a, b: a == b,
                                                  "IsGreaterThanOrEqualTo": lambda a, b: a is not None and a >= b}
    constant = elem.find(f"{_q(T, 'FieldURIOrConstant')}/{_q(T, 'Constant')}")
    if kind not in ops or constant is None:
        raise _SoapError("ErrorInvalidRestriction", f"The restriction is invalid: {kind} is not supported here.")
    value = constant.get("Value", "")
    compare = ops[kind]
    extended, field_uri = elem.find(_q(T, "ExtendedFieldURI")), elem.find(_q(T, "FieldURI"))
    if extended is not None and extended.get("PropertyName") == MARKER_PROPERTY:
        return lambda i: compare(i.event.extra.get(MARKER_PROPERTY), value)
    if field_uri is not None and field_uri.get("FieldURI") == "calendar:UID":
        return lambda i: compare(i.event.uid, value)
    if field_uri is not None and field_uri.get("FieldURI") == "item:DateTimeCreated":
        since = _parse_time(value)
        return lambda i: compare(i.created, since)
    raise _SoapError("ErrorInvalidRestriction", "The restriction is invalid: unsupported field.")


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str, zone: ZoneInfo | None = None) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone or UTC)
    return value


@dataclass
class _Item:
    """A stored calendar item: a single event or a series with its exceptions."""

    id: str
    mailbox: str
    event: Event
    """Master (or single) event; aware local times, RRULE, EXDATE of deleted occurrences."""
    zone: ZoneInfo | DefinitionZone
    """A zone Exchange knows by name, or one its StartTimeZone defined."""
    status: str = "Busy"
    change_key: int = 1
    modified: dict[int, tuple[Event, str]] = field(default_factory=dict)
    """Instance index -> (exception event, its status)."""
    deleted: set[int] = field(default_factory=set)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def change_key_text(self) -> str:
        return f"CQAAABYAAA{self.id[-6:]}{self.change_key:04d}"

    def occurrences(self, until: datetime) -> list[tuple[int, Temporal]]:
        """(1-based instance index, original start) of every occurrence, deleted ones included."""
        plain = self.event.with_changes(exdate=[])
        starts = ex.occurrence_starts(plain, self.zone, until)
        return list(enumerate(starts, start=1))


@dataclass
class _Mailbox:
    email: str
    timezone: str
    working_hours: WorkingHours | None
    folder_id: str


class EWSFake(FakeService):
    """In-memory Exchange organisation answering EWS SOAP. Seed with :meth:`add_mailbox` and
    :meth:`add_item`, then :meth:`start`."""

    def __init__(self, users: dict[str, str] | None = None, client_id: str = "calmesh-test",
                 client_secret: str = "test-secret", page_size: int = 100) -> None:
        super().__init__()
        self.users = dict(users or {"calmesh-svc": "svc-password"})
        """Basic-auth accounts (username -> password)."""
        self.client_id, self.client_secret = client_id, client_secret
        self.page_size = page_size
        self.mailboxes: dict[str, _Mailbox] = {}
        self.items: dict[str, _Item] = {}
        self.deleted_items: dict[str, _Item] = {}
        """Items moved to their mailbox's Deleted Items folder (by new ItemId)."""
        self.operations: list[str] = []
        """SOAP operation names served, in order, for tests to inspect."""
        self.availability_calls: list[list[str]] = []
        self.invitations_sent: list[tuple[str, str, list[str]]] = []
        """(operation, UID, attendees) of every meeting request, update or cancellation Exchange
        would have mailed: a write of a meeting the mailbox organises, unless it said SendToNone."""
        self._tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self._busy: list[int] = []
        self._changes: list[tuple[int, str, str, bool]] = []
        self._seq = 0
        self._sync_floor = 0

    # ----------------------------------------------------------------------------- seeding
    def add_mailbox(self, email: str, timezone: str = "UTC", working_hours: WorkingHours | None = None) -> None:
        email = email.lower()
        self.mailboxes[email] = _Mailbox(email, timezone, working_hours,
                                         "AAMkCalendar" + base64.urlsafe_b64encode(email.encode()).decode().rstrip("="))

    def add_item(self, mailbox: str, item: CalendarItem, status: str | None = None,
                 zone_definition: str | None = None) -> str:
        """Seed an item as if its owner had created it in Outlook, or, when it names an organizer
        other than the owner, as the accepted invitation to that person's meeting; returns its
        ItemId. ``zone_definition``: a ``StartTimeZone`` element with its own Periods and
        Transitions (as Outlook stores a customised zone) for the item's times."""
        box = self.mailboxes[mailbox.lower()]
        master = item.master or item.components[0]
        zone: ZoneInfo | DefinitionZone = ex.event_zone(master, box.timezone)
        if zone_definition is not None:
            zone = zone_from(fromstring(zone_definition))
            item = CalendarItem(item.uid, [_in_zone(e, zone) for e in item.components], item.ref)
            master = item.master or item.components[0]
        with self._lock:
            stored = self._store(box, master, zone, status or ex.ews_status(ex.write_busy(master)))
            for override in item.overrides:
                index = self._index_of(stored, override.recurrence_id)
                stored.modified[index] = (override, ex.ews_status(ex.write_busy(override)))
            for excluded in master.exdate:
                stored.deleted.add(self._index_of(stored, excluded))
            return stored.id

    def _store(self, box: _Mailbox, event: Event, zone: ZoneInfo | DefinitionZone, status: str) -> _Item:
        item_id = "AAMkAGI2TG93AAA" + secrets.token_urlsafe(16).replace("-", "A").replace("_", "B")
        stored = _Item(item_id, box.email, event.with_changes(exdate=[]), zone, status)
        self.items[item_id] = stored
        self._log(stored)
        return stored

    def _mail(self, operation: Element, attribute: str, stored: _Item, name: str) -> None:
        """Record the mail Exchange sends for a write of a meeting the mailbox organises: any
        ``attribute`` value but SendToNone (an absent one is Exchange's default, sending)."""
        attendees = [a.email for a in stored.event.attendees]
        if attendees and _organizer(stored) == stored.mailbox and operation.get(attribute) != "SendToNone":
            self.invitations_sent.append((name, stored.event.uid, attendees))

    def _index_of(self, stored: _Item, original: Temporal | None) -> int:
        if original is None:
            raise _SoapError("ErrorInvalidRecurrence", "An occurrence needs an original start.")
        target = as_utc(original, stored.zone)
        for index, start in stored.occurrences(target + timedelta(days=1)):
            if as_utc(start, stored.zone) == target:
                return index
        raise _SoapError("ErrorRecurrenceHasNoOccurrence", "The recurrence has no occurrence at that time.")

    def _log(self, stored: _Item, removed: bool = False) -> None:
        self._seq += 1
        self._changes.append((self._seq, stored.mailbox, stored.id, removed))

    def _touch(self, stored: _Item) -> None:
        stored.change_key += 1
        stored.last_modified = datetime.now(UTC)
        self._log(stored)

    # ----------------------------------------------------------------------------- faults
    def busy_next(self, count: int = 1, back_off_ms: int = 1000) -> None:
        """The next ``count`` requests get the SOAP fault ErrorServerBusy with BackOffMilliseconds."""
        with self._lock:
            self._busy.extend([back_off_ms] * count)

    def expire_tokens(self) -> None:
        with self._lock:
            self._tokens = {t: 0.0 for t in self._tokens}

    def invalidate_sync_states(self) -> None:
        with self._lock:
            self._sync_floor = self._seq + 1

    # ----------------------------------------------------------------------------- serving
    @property
    def ews_url(self) -> str:
        return self.base_url + "/EWS/Exchange.asmx"

    def _dispatch(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        if path == "/token" and request.method == "POST":
            return self._token(dict(parse_qsl(body.decode())))
        if path.lower() != "/ews/exchange.asmx" or request.method != "POST":
            return Response("Not found", status_code=404)
        if not self._authorized(request.headers.get("authorization", "")):
            return Response("", status_code=401, headers={"WWW-Authenticate": 'Basic realm="fake"'})
        try:
            envelope = fromstring(body)
        except ParseError as exc:
            return _fault("a:ErrorSchemaValidation", f"The request failed schema validation: {exc}", "ErrorSchemaValidation")
        soap_body = envelope.find(_q(SOAP, "Body"))
        if soap_body is None or len(soap_body) == 0:
            return _fault("a:ErrorInvalidRequest", "The request is invalid.", "ErrorInvalidRequest")
        operation = soap_body[0]
        # GetUserAvailability's body element is the only one named ...Request
        name = operation.tag.rsplit("}", 1)[-1].removesuffix("Request")
        self.operations.append(name)
        if self._busy:
            back_off = self._busy.pop(0)
            return _fault("a:ErrorServerBusy", "The server cannot service this request right now. Try again later.",
                          "ErrorServerBusy", back_off)
        handler = getattr(self, f"_op_{name}", None)
        if handler is None:
            return _fault("a:ErrorInvalidRequest", f"The request is invalid: unsupported operation {name}.",
                          "ErrorInvalidRequest")
        root = Element(_q(M, f"{name}Response"))
        handler(operation, root)
        return _envelope(root)

    def _token(self, form: dict[str, str]) -> Response:
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type",
                                 "error_description": "AADSTS70003: The app requested an unsupported grant type."},
                                status_code=400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_client",
                                 "error_description": "AADSTS7000215: Invalid client secret provided."}, status_code=401)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = _time.monotonic() + 3599
        self.tokens_issued += 1
        return JSONResponse({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token})

    def _authorized(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return self._tokens.get(value.strip(), 0.0) > _time.monotonic()
        if scheme.lower() == "basic":
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            return self.users.get(user.lstrip("\\")) == password
        return False

    # ----------------------------------------------------------------------------- helpers
    def _messages(self, root: Element) -> Element:
        return _m(root, "ResponseMessages")

    def _message(self, container: Element, name: str, error: _SoapError | None = None) -> Element:
        msg = _m(container, f"{name}ResponseMessage", ResponseClass="Error" if error else "Success")
        if error is not None:
            _m(msg, "MessageText", error.text)
        _m(msg, "ResponseCode", error.code if error else "NoError")
        if error is not None:
            _m(msg, "DescriptiveLinkKey", 0)
        return msg

    def _mailbox_of_folder(self, folder_ids: Element | None) -> _Mailbox:
        return self._folder(folder_ids)[0]

    def _folder(self, folder_ids: Element | None) -> tuple[_Mailbox, bool]:
        """The mailbox a folder id names, and whether the folder is its Deleted Items."""
        if folder_ids is None or len(folder_ids) == 0:
            raise _SoapError("ErrorInvalidRequest", "No folder given.")
        folder = folder_ids[0]
        if folder.tag == _q(T, "DistinguishedFolderId"):
            address = _text(folder.find(_q(T, "Mailbox")), "EmailAddress")
            if address is None:
                raise _SoapError("ErrorInvalidRequest", "A mailbox is required (no default mailbox for this account).")
            box = self.mailboxes.get(address.lower())
            if box is None:
                raise _SoapError("ErrorNonExistentMailbox", "The SMTP address has no mailbox associated with it.")
            return box, folder.get("Id") == "deleteditems"
        folder_id = folder.get("Id", "")
        for box in self.mailboxes.values():
            if box.folder_id == folder_id or folder_id == "root-" + box.folder_id:
                return box, False
            if folder_id == "trash-" + box.folder_id:
                return box, True
        raise _SoapError("ErrorFolderNotFound", "The specified folder could not be found in the store.")

    # ----------------------------------------------------------------------------- operations
    def _op_ConvertId(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        self._message(msgs, "ConvertId", _SoapError("ErrorInvalidIdMalformed", "Id is malformed."))

    def _op_GetFolder(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        ids = operation.find(_q(M, "FolderIds"))
        for folder in list(ids) if ids is not None else []:
            try:
                holder = Element("x")
                holder.append(folder)
                box, trash = self._folder(holder)
            except _SoapError as exc:
                self._message(msgs, "GetFolder", exc)
                continue
            msg = self._message(msgs, "GetFolder")
            folders = _m(msg, "Folders")
            if trash:
                elem = _t(folders, "Folder")
                _t(elem, "FolderId", Id="trash-" + box.folder_id, ChangeKey="AQAAAA==")
                _t(elem, "ParentFolderId", Id="root-" + box.folder_id, ChangeKey="AQAAAA==")
                _t(elem, "FolderClass", "IPF.Note")
                _t(elem, "DisplayName", "Deleted Items")
                _t(elem, "TotalCount", sum(1 for i in self.deleted_items.values() if i.mailbox == box.email))
                _t(elem, "ChildFolderCount", 0)
            elif folder.get("Id") in ("root", "root-" + box.folder_id):
                elem = _t(folders, "Folder")
                _t(elem, "FolderId", Id="root-" + box.folder_id, ChangeKey="AQAAAA==")
                _t(elem, "DisplayName", "Root")
                _t(elem, "ChildFolderCount", 1)
            else:
                elem = _t(folders, "CalendarFolder")
                _t(elem, "FolderId", Id=box.folder_id, ChangeKey="AgAAAA==")
                _t(elem, "ParentFolderId", Id="root-" + box.folder_id, ChangeKey="AQAAAA==")
                _t(elem, "FolderClass", "IPF.Appointment")
                _t(elem, "DisplayName", "Calendar")
                _t(elem, "TotalCount", sum(1 for i in self.items.values() if i.mailbox == box.email))
                _t(elem, "ChildFolderCount", 0)
                rights = _t(elem, "EffectiveRights")
                for right, value in (("CreateAssociated", "true"), ("CreateContents", "true"),
                                     ("CreateHierarchy", "true"), ("Delete", "true"), ("Modify", "true"),
                                     ("Read", "true"), ("ViewPrivateItems", "true")):
                    _t(rights, right, value)

    def _op_FindItem(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        try:
            box, trash = self._folder(operation.find(_q(M, "ParentFolderIds")))
            wanted = _restriction(operation.find(_q(M, "Restriction")))
        except _SoapError as exc:
            self._message(msgs, "FindItem", exc)
            return
        msg = self._message(msgs, "FindItem")
        view = operation.find(_q(M, "CalendarView"))
        mine = [i for i in (self.deleted_items if trash else self.items).values() if i.mailbox == box.email and wanted(i)]
        if view is not None:
            start, end = _parse_time(view.get("StartDate", "")), _parse_time(view.get("EndDate", ""))
            rendered = []
            for stored in mine:
                rendered.extend(self._expand(stored, start, end))
            rendered.sort(key=lambda pair: as_utc(pair[0].start, pair[1].zone))
            folder = _m(msg, "RootFolder", TotalItemsInView=str(len(rendered)), IncludesLastItemInRange="true")
            items = _t(folder, "Items")
            for event, stored, index, status in rendered:
                self._render(items, stored, event, index, status, full=False)
            return
        paging = operation.find(_q(M, "IndexedPageItemView"))
        offset = int(paging.get("Offset", "0")) if paging is not None else 0
        size = min(int(paging.get("MaxEntriesReturned", self.page_size)) if paging is not None else self.page_size,
                   self.page_size)
        page = mine[offset:offset + size]
        last = offset + size >= len(mine)
        folder = _m(msg, "RootFolder", IndexedPagingOffset=str(offset + len(page)),
                    TotalItemsInView=str(len(mine)), IncludesLastItemInRange="true" if last else "false")
        items = _t(folder, "Items")
        for stored in page:
            self._render(items, stored, stored.event, None, stored.status, full=False)

    def _expand(self, stored: _Item, start: datetime, end: datetime) -> list[tuple[Event, _Item, int | None, str]]:
        """Occurrences (and exceptions) of a stored item overlapping [start, end)."""
        found: list[tuple[Event, _Item, int | None, str]] = []
        if not stored.event.rrule:
            s, e = stored.event.span_utc(stored.zone)
            if s < end and e > start:
                found.append((stored.event, stored, None, stored.status))
            return found
        duration = as_utc(stored.event.effective_end(), stored.zone) - as_utc(stored.event.start, stored.zone)
        # as far as the window, and as the latest moved occurrence: one moved from years later
        # into the window (or before its series) is in it too
        horizon = max([end + timedelta(days=366)] + [as_utc(e.recurrence_id, stored.zone) + timedelta(days=1)
                                                     for e, _status in stored.modified.values()
                                                     if e.recurrence_id is not None])
        for index, original in stored.occurrences(horizon):
            if index in stored.deleted:
                continue
            if index in stored.modified:
                event, status = stored.modified[index]
            else:
                occ_end = (original + timedelta(days=max(1, duration.days)) if not isinstance(original, datetime)
                           else original + duration)
                event = stored.event.with_changes(start=original, end=occ_end, rrule=[], recurrence_id=original)
                status = stored.status
            s, e = event.span_utc(stored.zone)
            if s < end and e > start:
                found.append((event.with_changes(recurrence_id=original), stored, index, status))
        return found

    def _render(self, parent: Element, stored: _Item, event: Event, index: int | None, status: str, full: bool) -> None:
        """A t:CalendarItem; ``index`` set for an occurrence or exception of a series."""
        elem = _t(parent, "CalendarItem")
        if index is None:
            _t(elem, "ItemId", Id=stored.id, ChangeKey=stored.change_key_text)
        else:
            _t(elem, "ItemId", Id=f"{stored.id}.OCC{index}", ChangeKey=stored.change_key_text)
        folder_id = self.mailboxes[stored.mailbox].folder_id
        _t(elem, "ParentFolderId", Id=("trash-" if stored.id in self.deleted_items else "") + folder_id,
           ChangeKey="AgAAAA==")
        _t(elem, "ItemClass", "IPM.Appointment")
        _t(elem, "Subject", event.summary or "")
        _t(elem, "Sensitivity", ex.sensitivity(event.classification))
        if full:
            _t(elem, "Body", event.description or "", BodyType="Text")
        _t(elem, "DateTimeCreated", _utc(stored.created))
        _t(elem, "LastModifiedTime", _utc(stored.last_modified))
        marker = event.extra.get(MARKER_PROPERTY) or stored.event.extra.get(MARKER_PROPERTY)
        if marker is not None:
            prop = _t(elem, "ExtendedProperty")
            _t(prop, "ExtendedFieldURI", DistinguishedPropertySetId="PublicStrings",
               PropertyName=MARKER_PROPERTY, PropertyType="String")
            _t(prop, "Value", marker)
        kept = reminders(event.alarms, 1)[0]
        _t(elem, "ReminderIsSet", str(bool(kept)).lower())
        _t(elem, "ReminderMinutesBeforeStart", kept[0].minutes if kept else 15)
        _t(elem, "UID", stored.event.uid)
        if index is not None and isinstance(event.recurrence_id, (date, datetime)):
            _t(elem, "RecurrenceId", _utc(as_utc(event.recurrence_id, stored.zone)))
        _t(elem, "Start", _utc(as_utc(event.start, stored.zone)))
        _t(elem, "End", _utc(as_utc(event.effective_end(), stored.zone)))
        if index is not None and event.recurrence_id is not None:
            _t(elem, "OriginalStart", _utc(as_utc(event.recurrence_id, stored.zone)))
        _t(elem, "IsAllDayEvent", str(event.all_day).lower())
        _t(elem, "LegacyFreeBusyStatus", status)
        _t(elem, "Location", event.location or "")
        _t(elem, "IsMeeting", str(bool(event.attendees)).lower())
        _t(elem, "IsCancelled", "false")
        _t(elem, "IsRecurring", str(bool(stored.event.rrule)).lower())
        kind = "Single"
        if stored.event.rrule:
            kind = "RecurringMaster" if index is None else ("Exception" if index in stored.modified else "Occurrence")
        _t(elem, "CalendarItemType", kind)
        organizer_address = _organizer(stored)
        _t(elem, "MyResponseType", "Organizer" if organizer_address == stored.mailbox else "Accept")
        organizer = _t(_t(elem, "Organizer"), "Mailbox")
        _t(organizer, "Name", organizer_address)
        _t(organizer, "EmailAddress", organizer_address)
        _t(organizer, "RoutingType", "SMTP")
        for tag, role in (("RequiredAttendees", Role.REQUIRED), ("OptionalAttendees", Role.OPTIONAL)):
            people = [a for a in event.attendees if (a.role is Role.OPTIONAL) == (role is Role.OPTIONAL)]
            if people:
                holder = _t(elem, tag)
                for person in people:
                    att = _t(holder, "Attendee")
                    mbx = _t(att, "Mailbox")
                    _t(mbx, "Name", person.name or person.email)
                    _t(mbx, "EmailAddress", person.email)
                    _t(mbx, "RoutingType", "SMTP")
                    _t(att, "ResponseType", "Unknown")
        if full and index is None and stored.event.rrule:
            self._render_recurrence(elem, stored)
        if isinstance(stored.zone, DefinitionZone):  # echoed as received, as Exchange does
            elem.append(stored.zone.renamed(_q(T, "StartTimeZone")))
            elem.append(stored.zone.renamed(_q(T, "EndTimeZone")))
            return
        zone_id = to_windows(stored.zone.key)
        _t(elem, "StartTimeZone", Id=zone_id, Name=zone_id)
        _t(elem, "EndTimeZone", Id=zone_id, Name=zone_id)

    def _render_recurrence(self, elem: Element, stored: _Item) -> None:
        pattern = ex.pattern_from_rrule(stored.event.rrule[0], stored.event.start, stored.zone)
        recurrence = _t(elem, "Recurrence")
        tag = {"daily": "DailyRecurrence", "weekly": "WeeklyRecurrence",
               "absoluteMonthly": "AbsoluteMonthlyRecurrence", "relativeMonthly": "RelativeMonthlyRecurrence",
               "absoluteYearly": "AbsoluteYearlyRecurrence", "relativeYearly": "RelativeYearlyRecurrence"}[pattern.kind]
        node = _t(recurrence, tag)
        if not pattern.kind.endswith("Yearly"):
            _t(node, "Interval", pattern.interval)
        if pattern.days_of_week:
            _t(node, "DaysOfWeek", " ".join(_DAY_NAMES[d] for d in pattern.days_of_week))
        if pattern.index:
            _t(node, "DayOfWeekIndex", pattern.index.capitalize())
        if pattern.kind == "weekly":
            _t(node, "FirstDayOfWeek", _DAY_NAMES[pattern.first_day_of_week])
        if pattern.day_of_month:
            _t(node, "DayOfMonth", pattern.day_of_month)
        if pattern.month:
            _t(node, "Month", _MONTHS[pattern.month - 1])
        start_date = pattern.start_date.isoformat() if pattern.start_date else ""
        if pattern.range_kind == "numbered":
            rng = _t(recurrence, "NumberedRecurrence")
            _t(rng, "StartDate", start_date)
            _t(rng, "NumberOfOccurrences", pattern.count)
        elif pattern.range_kind == "endDate":
            rng = _t(recurrence, "EndDateRecurrence")
            _t(rng, "StartDate", start_date)
            _t(rng, "EndDate", pattern.end_date.isoformat() if pattern.end_date else "")
        else:
            _t(_t(recurrence, "NoEndRecurrence"), "StartDate", start_date)
        occurrences = stored.occurrences(datetime(9999, 1, 1, tzinfo=UTC) - timedelta(days=400))
        by_index = dict(occurrences)
        if stored.modified:
            holder = _t(elem, "ModifiedOccurrences")
            for index, (event, _status) in sorted(stored.modified.items()):
                occ = _t(holder, "Occurrence")
                _t(occ, "ItemId", Id=f"{stored.id}.OCC{index}", ChangeKey=stored.change_key_text)
                _t(occ, "Start", _utc(as_utc(event.start, stored.zone)))
                _t(occ, "End", _utc(as_utc(event.effective_end(), stored.zone)))
                _t(occ, "OriginalStart", _utc(as_utc(by_index[index], stored.zone)))
        if stored.deleted:
            holder = _t(elem, "DeletedOccurrences")
            for index in sorted(stored.deleted):
                _t(_t(holder, "DeletedOccurrence"), "Start", _utc(as_utc(by_index[index], stored.zone)))

    def _resolve_id(self, elem: Element) -> tuple[_Item, int | None]:
        """An ItemId / OccurrenceItemId / RecurringMasterItemId -> (stored item, instance index)."""
        tag = elem.tag.rsplit("}", 1)[-1]
        if tag == "OccurrenceItemId":
            stored = self.items.get(elem.get("RecurringMasterId", ""))
            index = int(elem.get("InstanceIndex", "0"))
            if stored is None or not stored.event.rrule:
                raise _SoapError("ErrorItemNotFound", "The specified object was not found in the store.")
            known = dict(stored.occurrences(datetime(9000, 1, 1, tzinfo=UTC)))
            if index not in known or index in stored.deleted:
                raise _SoapError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
                                 "The occurrence index is out of the recurrence range.")
            return stored, index
        raw = elem.get("Id") or elem.get("OccurrenceId") or ""
        master_id, _, occ = raw.partition(".OCC")
        stored = self.items.get(master_id) or self.deleted_items.get(master_id)
        if stored is None:
            raise _SoapError("ErrorItemNotFound", "The specified object was not found in the store.")
        if tag == "RecurringMasterItemId":
            return stored, None
        return stored, (int(occ) if occ else None)

    def _occurrence_event(self, stored: _Item, index: int) -> tuple[Event, str]:
        if index in stored.modified:
            event, status = stored.modified[index]
            return event, status
        original = dict(stored.occurrences(datetime(9000, 1, 1, tzinfo=UTC)))[index]
        duration = as_utc(stored.event.effective_end(), stored.zone) - as_utc(stored.event.start, stored.zone)
        end = original + (timedelta(days=max(1, duration.days)) if not isinstance(original, datetime) else duration)
        return stored.event.with_changes(start=original, end=end, rrule=[], recurrence_id=original), stored.status

    def _op_GetItem(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        ids = operation.find(_q(M, "ItemIds"))
        for elem in list(ids) if ids is not None else []:
            try:
                stored, index = self._resolve_id(elem)
            except _SoapError as exc:
                self._message(msgs, "GetItem", exc)
                continue
            items = _m(self._message(msgs, "GetItem"), "Items")
            if index is None:
                self._render(items, stored, stored.event, None, stored.status, full=True)
            else:
                event, status = self._occurrence_event(stored, index)
                original = dict(stored.occurrences(datetime(9000, 1, 1, tzinfo=UTC)))[index]
                self._render(items, stored, event.with_changes(recurrence_id=original), index, status, full=True)

    def _op_CreateItem(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        try:
            box = self._mailbox_of_folder(operation.find(_q(M, "SavedItemFolderId")))
        except _SoapError as exc:
            self._message(msgs, "CreateItem", exc)
            return
        items = operation.find(_q(M, "Items"))
        for elem in list(items) if items is not None else []:
            try:
                fields = _read_fields(elem)
                event, zone, status = _event_from_fields(fields, None, box.timezone)
                stored = self._store(box, event, zone, status)
                self._mail(operation, "SendMeetingInvitations", stored, "CreateItem")
            except _SoapError as exc:
                self._message(msgs, "CreateItem", exc)
                continue
            out = _m(self._message(msgs, "CreateItem"), "Items")
            _t(_t(out, "CalendarItem"), "ItemId", Id=stored.id, ChangeKey=stored.change_key_text)

    def _op_UpdateItem(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        resolution = operation.get("ConflictResolution", "AutoResolve")
        changes = operation.find(_q(M, "ItemChanges"))
        for change in list(changes) if changes is not None else []:
            try:
                id_elem = next(c for c in change if c.tag != _q(T, "Updates"))
                stored, index = self._resolve_id(id_elem)
                if resolution == "NeverOverwrite" and id_elem.get("ChangeKey") not in (None, stored.change_key_text):
                    raise _SoapError("ErrorIrresolvableConflict",
                                     "The send or update operation could not be performed because the change key "
                                     "passed in the request does not match the current change key for the item.")
                fields: dict[str, Any] = {}
                deleted_fields: set[str] = set()
                updates = change.find(_q(T, "Updates"))
                for update in list(updates) if updates is not None else []:
                    if update.tag == _q(T, "SetItemField"):
                        for holder in update:
                            if holder.tag in (_q(T, "CalendarItem"), _q(T, "Item")):
                                fields.update(_read_fields(holder))
                    elif update.tag == _q(T, "DeleteItemField"):
                        uri = update.find(_q(T, "FieldURI"))
                        if uri is not None:
                            deleted_fields.add(uri.get("FieldURI", "").split(":")[-1])
                if index is None:
                    event, zone, status = _event_from_fields(fields, stored, stored.zone.key, deleted_fields)
                    stored.event, stored.zone, stored.status = event.with_changes(exdate=[]), zone, status
                else:
                    current, current_status = self._occurrence_event(stored, index)
                    base = _Item(stored.id, stored.mailbox, current, stored.zone, current_status)
                    event, _zone, status = _event_from_fields(fields, base, stored.zone.key, deleted_fields)
                    if event.span_utc(stored.zone) != current.span_utc(stored.zone):
                        self._refuse_crossing(stored, index, event)
                    original = dict(stored.occurrences(datetime(9000, 1, 1, tzinfo=UTC)))[index]
                    stored.modified[index] = (event.with_changes(rrule=[], recurrence_id=original), status)
                self._touch(stored)
                self._mail(operation, "SendMeetingInvitationsOrCancellations", stored, "UpdateItem")
            except _SoapError as exc:
                self._message(msgs, "UpdateItem", exc)
                continue
            msg = self._message(msgs, "UpdateItem")
            out = _m(msg, "Items")
            item_id = stored.id if index is None else f"{stored.id}.OCC{index}"
            _t(_t(out, "CalendarItem"), "ItemId", Id=item_id, ChangeKey=stored.change_key_text)
            _t(_m(msg, "ConflictResults"), "Count", 0)

    def _refuse_crossing(self, stored: _Item, index: int, event: Event) -> None:
        """Exchange's rule for a moved occurrence (:func:`calmesh.connectors._fitting.crosses`):
        not to or past the day of the previous or next occurrence (as they are now). EWS answers ResponseCode ``ErrorOccurrenceCrossingBoundary``
        (exchangelib ``errors.ErrorOccurrenceCrossingBoundary``; the message text is the one
        Microsoft documents for Graph's same code, and that EWS users quote, e.g.
        OfficeDev/ews-java-api#381)."""
        present = [i for i, _start in stored.occurrences(datetime(9000, 1, 1, tzinfo=UTC)) if i not in stored.deleted]
        before = max((i for i in present if i < index), default=None)
        after = min((i for i in present if i > index), default=None)

        def start(neighbour: int | None) -> datetime | None:
            return None if neighbour is None else self._occurrence_event(stored, neighbour)[0].span_utc(stored.zone)[0]

        if crosses(event.span_utc(stored.zone)[0], start(before), start(after), stored.zone) is not None:
            raise _SoapError("ErrorOccurrenceCrossingBoundary",
                             "Modified occurrence is crossing or overlapping adjacent occurrence.")

    def _op_DeleteItem(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        ids = operation.find(_q(M, "ItemIds"))
        for elem in list(ids) if ids is not None else []:
            try:
                stored, index = self._resolve_id(elem)
            except _SoapError as exc:
                self._message(msgs, "DeleteItem", exc)
                continue
            self._mail(operation, "SendMeetingCancellations", stored, "DeleteItem")
            if stored.id in self.deleted_items:  # deleting from Deleted Items is for good
                del self.deleted_items[stored.id]
            elif index is None:
                del self.items[stored.id]
                self._log(stored, removed=True)
                if operation.get("DeleteType") == "MoveToDeletedItems":  # a move gives a new ItemId
                    moved = replace(stored, id="AAMkAGI2TG93AAA" + secrets.token_urlsafe(16).replace("-", "A"))
                    self.deleted_items[moved.id] = moved
            else:
                stored.deleted.add(index)
                stored.modified.pop(index, None)
                self._touch(stored)
            self._message(msgs, "DeleteItem")

    def _op_SyncFolderItems(self, operation: Element, root: Element) -> None:
        msgs = self._messages(root)
        try:
            box = self._mailbox_of_folder(operation.find(_q(M, "SyncFolderId")))
            state = _text(operation, "SyncState", M)
            since = self._decode_state(box, state)
        except _SoapError as exc:
            # Exchange's error answer still carries an empty SyncState and IncludesLastItemInRange.
            msg = self._message(msgs, "SyncFolderItems", exc)
            _m(msg, "SyncState", "")
            _m(msg, "IncludesLastItemInRange", "true")
            return
        limit = int(_text(operation, "MaxChangesReturned", M) or "100")
        latest: dict[str, tuple[int, bool]] = {}
        for seq, email, item_id, removed in self._changes:
            if seq > since and email == box.email:
                latest[item_id] = (seq, removed)
        ordered = sorted(latest.items(), key=lambda kv: kv[1][0])
        batch = ordered[:limit]
        done = len(ordered) <= limit
        reached = batch[-1][1][0] if batch and not done else self._seq
        msg = self._message(msgs, "SyncFolderItems")
        _m(msg, "SyncState", base64.b64encode(f"fake-ews:{box.email}:{reached}".encode()).decode())
        _m(msg, "IncludesLastItemInRange", str(done).lower())
        changes = _m(msg, "Changes")
        for item_id, (_seq, removed) in batch:
            created_since = state is None or not any(
                s <= since and i == item_id for s, _e, i, _r in self._changes)
            if removed or item_id not in self.items:
                if not created_since:
                    _t(_t(changes, "Delete"), "ItemId", Id=item_id, ChangeKey="AAAA")
                continue
            stored = self.items[item_id]
            holder = _t(changes, "Create" if created_since else "Update")
            self._render(holder, stored, stored.event, None, stored.status, full=False)

    def _decode_state(self, box: _Mailbox, state: str | None) -> int:
        if not state:
            return 0
        try:
            prefix, email, seq = base64.b64decode(state).decode().split(":")
            value = int(seq)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _SoapError("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.") from exc
        if prefix != "fake-ews" or email != box.email or value < self._sync_floor:
            raise _SoapError("ErrorInvalidSyncStateData", "Synchronization state data is corrupt or otherwise invalid.")
        return value

    def _op_GetUserAvailability(self, operation: Element, root: Element) -> None:
        zone_elem = operation.find(_q(T, "TimeZone"))
        bias = int(_text(zone_elem, "Bias") or "0")
        request_zone = _fixed_zone(bias)
        options = operation.find(_q(T, "FreeBusyViewOptions"))
        window = options.find(_q(T, "TimeWindow")) if options is not None else None
        start = _parse_time(_text(window, "StartTime") or "", request_zone)
        end = _parse_time(_text(window, "EndTime") or "", request_zone)
        interval = timedelta(minutes=int(_text(options, "MergedFreeBusyIntervalInMinutes") or "30"))
        view_type = _text(options, "RequestedView") or "DetailedMerged"
        data_array = operation.find(_q(M, "MailboxDataArray"))
        addresses = [_text(d.find(_q(T, "Email")), "Address") or "" for d in (list(data_array) if data_array is not None else [])]
        self.availability_calls.append(addresses)
        responses = _m(root, "FreeBusyResponseArray")
        if len(addresses) > 100:
            raise_error = _SoapError("ErrorExceededFindCountLimit", "Too many mailboxes in one request (limit 100).")
            for _ in addresses:
                resp = _m(responses, "FreeBusyResponse")
                self._availability_message(resp, raise_error)
            return
        held: dict[str, list[_Item]] = {}  # each mailbox's items, gathered once for the whole request
        for stored in self.items.values():
            held.setdefault(stored.mailbox, []).append(stored)
        for address in addresses:
            resp = _m(responses, "FreeBusyResponse")
            box = self.mailboxes.get(address.lower())
            if box is None:
                self._availability_message(resp, _SoapError(
                    "ErrorMailRecipientNotFound",
                    f"Unable to resolve e-mail address {address} to an Active Directory object."))
                _t(_m(resp, "FreeBusyView"), "FreeBusyViewType", "None")
                continue
            self._availability_message(resp, None)
            self._free_busy_view(_m(resp, "FreeBusyView"), box, held.get(box.email, []), start.astimezone(UTC),
                                 end.astimezone(UTC), interval, view_type, request_zone)

    def _availability_message(self, parent: Element, error: _SoapError | None) -> None:
        msg = _m(parent, "ResponseMessage", ResponseClass="Error" if error else "Success")
        if error is not None:
            _m(msg, "MessageText", error.text)
        _m(msg, "ResponseCode", error.code if error else "NoError")
        if error is not None:
            _m(msg, "DescriptiveLinkKey", 0)

    def _free_busy_view(self, view: Element, box: _Mailbox, items: list[_Item], start: datetime, end: datetime,
                        interval: timedelta, view_type: str, zone: ZoneInfo) -> None:
        _t(view, "FreeBusyViewType", view_type)
        spans = []
        for stored in items:
            for event, _stored, index, status in self._expand(stored, start, end):
                s, e = event.span_utc(stored.zone)
                spans.append((s, e, status, event, index))
        spans.sort(key=lambda s: s[0])
        # one digit per interval from the start (the last may reach past the end): the highest
        # status of the spans touching it; each span raises the intervals it touches
        digits = [0] * -(-(end - start) // interval)
        for s, e, status, _event, _index in spans:
            value = min(int(ex.busy_from_exchange(status)), int(BusyType.BUSY_UNAVAILABLE))
            for i in range(max(0, (s - start) // interval), min(len(digits), -(-(e - start) // interval))):
                digits[i] = max(digits[i], value)
        _t(view, "MergedFreeBusy", "".join(map(str, digits)))
        events = _t(view, "CalendarEventArray")
        for s, e, status, event, index in spans:
            node = _t(events, "CalendarEvent")
            _t(node, "StartTime", s.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"))
            _t(node, "EndTime", e.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"))
            _t(node, "BusyType", status)
            details = _t(node, "CalendarEventDetails")
            _t(details, "ID", "00000000" + secrets.token_hex(8).upper())
            private = event.private
            _t(details, "Subject", "" if private else (event.summary or ""))
            _t(details, "Location", "" if private else (event.location or ""))
            _t(details, "IsMeeting", str(bool(event.attendees)).lower())
            _t(details, "IsRecurring", str(index is not None).lower())
            _t(details, "IsException", "false")
            _t(details, "IsReminderSet", "false")
            _t(details, "IsPrivate", str(private).lower())
        hours = box.working_hours or WorkingHours.simple(box.timezone, time(8), time(17))
        wh = _t(view, "WorkingHours")
        _working_zone_xml(_t(wh, "TimeZone"), ZoneInfo(to_iana(hours.timezone) or "UTC"), start.year)
        periods = _t(wh, "WorkingPeriodArray")
        for period in hours.periods:
            node = _t(periods, "WorkingPeriod")
            _t(node, "DayOfWeek", " ".join(_DAY_NAMES[d] for d in sorted(period.days)))
            _t(node, "StartTimeInMinutes", period.start.hour * 60 + period.start.minute)
            _t(node, "EndTimeInMinutes", period.end.hour * 60 + period.end.minute)


# ----------------------------------------------------------------------------------- XML in
def _organizer(stored: _Item) -> str:
    """The organizer's address: the mailbox owner for what is created in the mailbox (Exchange
    ignores an organizer sent with CreateItem); whoever sent it for a seeded invitation."""
    organizer = stored.event.organizer
    return organizer.email if organizer is not None else stored.mailbox


def _read_fields(elem: Element) -> dict[str, Any]:
    """The child elements of an incoming t:CalendarItem as a name -> element/text mapping."""
    fields: dict[str, Any] = {}
    for child in elem:
        name = child.tag.rsplit("}", 1)[-1]
        if name == "ExtendedProperty":
            uri = child.find(_q(T, "ExtendedFieldURI"))
            if uri is not None and uri.get("PropertyName") == MARKER_PROPERTY:
                fields["marker"] = _text(child, "Value") or ""
        elif name in ("Recurrence", "RequiredAttendees", "OptionalAttendees", "StartTimeZone", "EndTimeZone",
                      "MeetingTimeZone"):
            fields[name] = child
        else:
            fields[name] = child.text or ""
    return fields


def _event_from_fields(fields: dict[str, Any], base: _Item | None, default_zone: str,
                       deleted: set[str] | None = None) -> tuple[Event, ZoneInfo | DefinitionZone, str]:
    """Apply incoming CalendarItem fields over ``base`` (None: create) -> (event, zone, status)."""
    deleted = deleted or set()
    zone: ZoneInfo | DefinitionZone = base.zone if base is not None else ZoneInfo(to_iana(default_zone) or "UTC")
    tz_elem = fields.get("StartTimeZone")
    if tz_elem is not None and tz_elem.find(_q(T, "Periods")) is not None and to_iana(tz_elem.get("Id")) is None:
        try:  # a zone of the item's own (TimeZoneDefinitionType), as Exchange 2010 and later take it
            zone = zone_from(tz_elem)
        except InvalidZone as exc:
            raise _SoapError("ErrorTimeZone", f"The time zone definition is invalid: {exc}") from exc
    elif tz_elem is not None:
        if to_iana(tz_elem.get("Id")) is None:
            raise _SoapError("ErrorTimeZone", f"The time zone {tz_elem.get('Id')!r} is unknown and not defined.")
        zone = ex.zone_of(tz_elem.get("Id"), zone.key)
    event = base.event if base is not None else None
    status = base.status if base is not None else "Busy"
    if event is None:
        if "Start" not in fields or "End" not in fields:
            raise _SoapError("ErrorInvalidPropertySet", "A calendar item needs Start and End.")
        event = Event(uid=fields.get("UID") or "040000008200E00074C5B7101A82E008" + secrets.token_hex(24).upper(),
                      start=datetime.now(UTC))
    changes: dict[str, Any] = {}
    all_day = fields.get("IsAllDayEvent", str(event.all_day).lower()) in ("true", "1")  # xs:boolean
    start_text, end_text = fields.get("Start"), fields.get("End")
    start = _parse_time(start_text).astimezone(zone) if start_text else as_utc(event.start, zone).astimezone(zone)
    end = _parse_time(end_text).astimezone(zone) if end_text else as_utc(event.effective_end(), zone).astimezone(zone)
    changes["start"], changes["end"] = (start.date(), end.date()) if all_day else (start, end)
    changes["tzid"] = None if all_day else zone.key
    for name, attr in (("Subject", "summary"), ("Location", "location"), ("Body", "description")):
        if name in fields:
            changes[attr] = fields[name] or None
        elif name in deleted:
            changes[attr] = None
    if "Sensitivity" in fields:
        changes["classification"] = ex.classification(fields["Sensitivity"])
    if "LegacyFreeBusyStatus" in fields:
        status = fields["LegacyFreeBusyStatus"]
    if "UID" in fields and fields["UID"]:
        changes["uid"] = fields["UID"]
    if "marker" in fields:
        changes["extra"] = {**event.extra, MARKER_PROPERTY: fields["marker"]}
    if "ReminderIsSet" in fields or "ReminderMinutesBeforeStart" in fields:
        was = reminders(event.alarms, 1)[0]
        on = fields.get("ReminderIsSet", str(bool(was)).lower()) in ("true", "1")
        minutes = int(fields.get("ReminderMinutesBeforeStart") or (was[0].minutes if was else 15))
        changes["alarms"] = [alarm(Reminder(minutes))] if on else []
    attendees: list[Attendee] = []
    touched = False
    for tag, role in (("RequiredAttendees", Role.REQUIRED), ("OptionalAttendees", Role.OPTIONAL)):
        holder = fields.get(tag)
        if holder is not None:
            touched = True
            for att in holder:
                address = _text(att.find(_q(T, "Mailbox")), "EmailAddress")
                if address:
                    attendees.append(Attendee(address, role=role))
    if touched:
        changes["attendees"] = attendees
    recurrence = fields.get("Recurrence")
    if recurrence is not None:
        try:
            pattern = _pattern_from_xml(recurrence)
            first = changes["start"]
            changes["rrule"] = [ex.rrule_from_pattern(pattern, first, zone)]
        except (ValueError, KeyError, StopIteration) as exc:
            raise _SoapError("ErrorInvalidRecurrence", f"The recurrence pattern is invalid: {exc}") from exc
    elif "Recurrence" in deleted:
        changes["rrule"] = []
    return event.with_changes(**changes), zone, status


def _in_zone(event: Event, zone: DefinitionZone) -> Event:
    """A seeded event's times read in ``zone`` (their wall times kept)."""
    def local(value: Any) -> Any:
        return value.replace(tzinfo=zone) if isinstance(value, datetime) else value

    return event.with_changes(start=local(event.start), end=local(event.end), recurrence_id=local(event.recurrence_id),
                              exdate=[local(v) for v in event.exdate], rdate=[local(v) for v in event.rdate],
                              tzid=zone.key)


def _pattern_from_xml(recurrence: Element) -> ex.Pattern:
    pattern_elem, range_elem = recurrence[0], recurrence[1]
    kind_tag = pattern_elem.tag.rsplit("}", 1)[-1]
    kind = {"DailyRecurrence": "daily", "WeeklyRecurrence": "weekly",
            "AbsoluteMonthlyRecurrence": "absoluteMonthly", "RelativeMonthlyRecurrence": "relativeMonthly",
            "AbsoluteYearlyRecurrence": "absoluteYearly", "RelativeYearlyRecurrence": "relativeYearly"}[kind_tag]
    days = (_text(pattern_elem, "DaysOfWeek") or "").split()
    if kind.startswith("relative") and len(days) != 1:  # Types.xsd: DayOfWeekType, one value
        raise ValueError(f"{kind_tag} names one DaysOfWeek value (a day, Day, Weekday or WeekendDay), not {days}")
    month = _text(pattern_elem, "Month")
    index = _text(pattern_elem, "DayOfWeekIndex")
    range_tag = range_elem.tag.rsplit("}", 1)[-1]
    start_date = date.fromisoformat((_text(range_elem, "StartDate") or "")[:10])
    end_text = _text(range_elem, "EndDate")
    count = _text(range_elem, "NumberOfOccurrences")
    return ex.Pattern(
        kind=kind,
        interval=int(_text(pattern_elem, "Interval") or "1"),
        days_of_week=tuple(sorted(ex.weekday_set(days))),
        day_of_month=int(_text(pattern_elem, "DayOfMonth") or "0") or None,
        month=_MONTHS.index(month) + 1 if month else None,
        index=index.lower() if index else None,
        first_day_of_week=ex.weekday_index(_text(pattern_elem, "FirstDayOfWeek") or "Sunday"),
        range_kind={"NoEndRecurrence": "noEnd", "EndDateRecurrence": "endDate", "NumberedRecurrence": "numbered"}[range_tag],
        start_date=start_date,
        end_date=date.fromisoformat(end_text[:10]) if end_text else None,
        count=int(count) if count else None,
    )


# ----------------------------------------------------------------------------------- XML out
def _server_version(header: Element) -> None:
    SubElement(header, _q(T, "ServerVersionInfo"), {
        "MajorVersion": "15", "MinorVersion": "1", "MajorBuildNumber": "2507", "MinorBuildNumber": "6",
        "Version": "V2017_07_11"})


def _envelope(response: Element) -> Response:
    envelope = Element(_q(SOAP, "Envelope"))
    _server_version(SubElement(envelope, _q(SOAP, "Header")))
    SubElement(envelope, _q(SOAP, "Body")).append(response)
    return Response(b'<?xml version="1.0" encoding="utf-8"?>' + tostring(envelope), media_type="text/xml; charset=utf-8")


def _fault(faultcode: str, message: str, code: str, back_off_ms: int | None = None) -> Response:
    """A SOAP fault as Exchange sends it (HTTP 500), e.g. ErrorServerBusy with BackOffMilliseconds."""
    envelope = Element(_q(SOAP, "Envelope"))
    _server_version(SubElement(envelope, _q(SOAP, "Header")))
    fault = SubElement(SubElement(envelope, _q(SOAP, "Body")), _q(SOAP, "Fault"))
    SubElement(fault, "faultcode").text = faultcode
    SubElement(fault, "faultstring").text = message
    detail = SubElement(fault, "detail")
    SubElement(detail, _q(E, "ResponseCode")).text = code
    SubElement(detail, _q(E, "Message")).text = message
    if back_off_ms is not None:
        value = SubElement(SubElement(detail, _q(T, "MessageXml")), _q(T, "Value"), {"Name": "BackOffMilliseconds"})
        value.text = str(back_off_ms)
    return Response(b'<?xml version="1.0" encoding="utf-8"?>' + tostring(envelope), status_code=500,
                    media_type="text/xml; charset=utf-8")


def _fixed_zone(bias_minutes: int) -> ZoneInfo:
    """The request's availability zone; calmesh asks in UTC, other biases map to Etc/GMT zones."""
    hours = -bias_minutes // 60
    if hours == 0:
        return ZoneInfo("UTC")
    return ZoneInfo(f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}")


@lru_cache(maxsize=256)
def _transitions(zone: ZoneInfo, year: int) -> tuple[tuple[datetime, int], ...]:
    """(local wall time just before the change, new UTC offset in minutes) for a year's changes.
    Remembered: the hour-by-hour walk costs ~45 ms, once per mailbox of every availability answer
    (measured in bench/freebusy.py, where this fake is the Exchange the hub waits for)."""
    found = []
    cursor = datetime(year, 1, 1, tzinfo=UTC)
    offset = cursor.astimezone(zone).utcoffset()
    while cursor.year == year:
        nxt = cursor + timedelta(hours=1)
        new = nxt.astimezone(zone).utcoffset()
        if new != offset:
            assert offset is not None and new is not None
            local_before = (nxt.astimezone(zone) - (new - offset)).replace(tzinfo=None)
            found.append((local_before, int(new.total_seconds() // 60)))
            offset = new
        cursor = nxt
    return tuple(found)


def _working_zone_xml(parent: Element, zone: ZoneInfo, year: int) -> None:
    """EWS's availability TimeZone: a bias plus StandardTime/DaylightTime transition rules."""
    changes = _transitions(zone, year)
    january = datetime(year, 1, 15, tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)
    july = datetime(year, 7, 15, tzinfo=UTC).astimezone(zone).utcoffset() or timedelta(0)
    standard = min(january, july)
    _t(parent, "Bias", int(-standard.total_seconds() // 60))
    to_dst = next((c for c in changes if c[1] * 60 > standard.total_seconds()), None)
    to_std = next((c for c in changes if c[1] * 60 == standard.total_seconds()), None)
    for tag, change, bias in (("StandardTime", to_std, 0),
                              ("DaylightTime", to_dst, int(-(max(january, july) - standard).total_seconds() // 60))):
        node = _t(parent, tag)
        _t(node, "Bias", bias)
        if change is None:
            _t(node, "Time", "00:00:00")
            _t(node, "DayOrder", 1)
            _t(node, "Month", 0)
            _t(node, "DayOfWeek", "Sunday")
            continue
        when = change[0]
        last = (when + timedelta(days=7)).month != when.month
        _t(node, "Time", when.strftime("%H:%M:%S"))
        _t(node, "DayOrder", 5 if last else (when.day - 1) // 7 + 1)
        _t(node, "Month", when.month)
        _t(node, "DayOfWeek", _DAY_NAMES[when.weekday()])

