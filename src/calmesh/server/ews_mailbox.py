"""The mailbox an EWS client logs into: empty, as Exchange shows one that exposes free/busy only.

EWS clients do not start with GetUserAvailability: they log in by looking at a mailbox first.
DavMail (6.x) asks for the root folder twice, converts its id (``ConvertId``, Format ``EwsId``)
to learn the account's address from the ``Mailbox`` Exchange answers, then reads eight
distinguished folders with ``AdditionalProperties`` (MAPI tags: counts, class, ctag); it lists
a calendar with ``FindItem`` and sub-folders with ``FindFolder``. evolution-ews reads the inbox
(``GetFolder``) to check the password and keeps a calendar in step with ``SyncFolderItems``.
exchangelib probes the version with a ``ConvertId`` of a dummy id.

calmesh answers these the way Exchange answers them for an account whose folders are empty:
folders exist, hold nothing and have no sub-folders; item searches find nothing; a sync
reports no change and hands back a sync state it accepts next time. Folder ids are calmesh's
own (``calmesh:<owner>:<folder>``, base64), so ``ConvertId`` can answer with the mailbox that
owns the folder, as Exchange does, whatever ``Mailbox`` the client put in its request.

The caller's own mailbox is its server user name when that is an address, else
``<name>@calmesh.invalid`` (a server user is a login, not a person in the directory; clients
only need an address-shaped answer).
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from calmesh.model import normalize_email
from calmesh.server.auth import User
from calmesh.server.context import ServerContext
from calmesh.server.ews_soap import XSI, m, response_message, sub, t

DISTINGUISHED = {
    "root", "msgfolderroot", "inbox", "outbox", "sentitems", "deleteditems", "drafts", "junkemail",
    "calendar", "contacts", "tasks", "notes", "journal", "searchfolders", "voicemail",
    "publicfoldersroot", "archivemsgfolderroot", "archiveroot", "conversationhistory", "recoverableitemsroot",
}
"""The DistinguishedFolderId names of [MS-OXWSCDATA] clients ask for at login."""
_KINDS = {"calendar": ("CalendarFolder", "IPF.Appointment"), "contacts": ("ContactsFolder", "IPF.Contact"),
          "tasks": ("TasksFolder", "IPF.Task")}
_NO_CLASS = {"root", "msgfolderroot", "publicfoldersroot", "archivemsgfolderroot", "archiveroot"}
_CHANGED = "2026-01-01T00:00:00Z"
"""The folders never change: one fixed last-modified time (PR_LAST_MODIFICATION_TIME and the
ctag DavMail reads, PR_LOCAL_COMMIT_TIME_MAX) keeps clients from re-reading them."""
_ID_PREFIX = "calmesh:"
_SYNC_PREFIX = "calmesh-sync:"


class MailboxError(ValueError):
    """One folder or id of a request that Exchange would answer with an error message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Folder:
    owner: str
    name: str

    @property
    def id(self) -> str:
        return base64.b64encode(f"{_ID_PREFIX}{self.owner}:{self.name}".encode()).decode()

    @property
    def kind(self) -> str:
        return _KINDS.get(self.name, ("Folder", "IPF.Note"))[0]

    @property
    def folder_class(self) -> str | None:
        return None if self.name in _NO_CLASS else _KINDS.get(self.name, ("Folder", "IPF.Note"))[1]


def own_mailbox(user: User) -> str:
    """The address EWS clients are told is the caller's own (see the module's docstring)."""
    return normalize_email(user.name) if "@" in user.name else f"{user.name.lower()}@calmesh.invalid"


def _decode(folder_id: str) -> Folder | None:
    try:
        text = base64.b64decode(folder_id, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not text.startswith(_ID_PREFIX):
        return None
    owner, _, name = text[len(_ID_PREFIX):].rpartition(":")
    return Folder(owner, name) if owner and name in DISTINGUISHED else None


class Mailbox:
    """The login calls, for one request's caller."""

    def __init__(self, ctx: ServerContext, user: User) -> None:
        self.ctx = ctx
        self.own = own_mailbox(user)

    def _owner(self, address: str) -> str:
        address = normalize_email(address)
        if address and address != self.own and address not in self.ctx.hub.directory:
            raise MailboxError("ErrorNonExistentMailbox", f"{address[:100]!r} is not in the calmesh directory")
        return address or self.own

    def folder(self, el: ET.Element) -> Folder:
        """A ``t:DistinguishedFolderId`` (optionally with a ``t:Mailbox``) or a ``t:FolderId``."""
        if el.tag == t("FolderId"):
            if not el.get("Id"):
                raise MailboxError("ErrorInvalidIdEmpty", "the folder id is empty")
            found = _decode(el.get("Id", ""))
            if found is None:
                raise MailboxError("ErrorInvalidIdMalformed", "not a folder id calmesh gave out")
            return found
        if el.tag != t("DistinguishedFolderId"):
            raise MailboxError("ErrorInvalidRequest", f"unexpected {el.tag.rsplit('}', 1)[-1][:60]}")
        name = el.get("Id", "")
        if name not in DISTINGUISHED:
            raise MailboxError("ErrorFolderNotFound", f"no distinguished folder {name[:60]!r}")
        return Folder(self._owner(el.findtext(f"{t('Mailbox')}/{t('EmailAddress')}") or ""), name)

    # ------------------------------------------------------------------------------ the calls
    def _each(self, request: ET.Element, container: str, response: str, message: str,
              fill: Callable[[ET.Element, Folder, ET.Element], None]) -> ET.Element:
        """One response message per folder named in ``container``, errors per folder."""
        out = ET.Element(m(response))
        messages = sub(out, m("ResponseMessages"))
        holder = request.find(m(container))
        if holder is None:
            holder = request.find(t(container))
        for el in (list(holder) if holder is not None else []):
            try:
                folder = self.folder(el)
            except MailboxError as exc:
                response_message(messages, m(message), exc.code, str(exc))
                continue
            fill(request, folder, response_message(messages, m(message)))
        return out

    def get_folder(self, request: ET.Element) -> ET.Element:
        return self._each(request, "FolderIds", "GetFolderResponse", "GetFolderResponseMessage", _folder_shape)

    def find_item(self, request: ET.Element) -> ET.Element:
        return self._each(request, "ParentFolderIds", "FindItemResponse", "FindItemResponseMessage",
                          partial(_empty_root, "Items"))

    def find_folder(self, request: ET.Element) -> ET.Element:
        return self._each(request, "ParentFolderIds", "FindFolderResponse", "FindFolderResponseMessage",
                          partial(_empty_root, "Folders"))

    def sync_folder_items(self, request: ET.Element) -> ET.Element:
        out = ET.Element(m("SyncFolderItemsResponse"))
        messages = sub(out, m("ResponseMessages"))
        target = request.find(m("SyncFolderId"))
        try:
            if target is None or len(target) != 1:
                raise MailboxError("ErrorInvalidRequest", "SyncFolderId must name one folder")
            folder = self.folder(target[0])
            state = base64.b64encode(f"{_SYNC_PREFIX}{folder.id}".encode()).decode()
            given = (request.findtext(m("SyncState")) or "").strip()
            if given and given != state:
                raise MailboxError("ErrorInvalidSyncStateData", "not a sync state calmesh gave out for this folder")
        except MailboxError as exc:
            response_message(messages, m("SyncFolderItemsResponseMessage"), exc.code, str(exc))
            return out
        msg = response_message(messages, m("SyncFolderItemsResponseMessage"))
        sub(msg, m("SyncState"), state)
        sub(msg, m("IncludesLastItemInRange"), "true")
        sub(msg, m("Changes"))
        return out

    def convert_id(self, request: ET.Element) -> ET.Element:
        """Exchange answers with the mailbox that owns the id, whatever ``Mailbox`` was sent."""
        out = ET.Element(m("ConvertIdResponse"))
        messages = sub(out, m("ResponseMessages"))
        destination = request.get("DestinationFormat", "EwsId")
        source = request.find(m("SourceIds"))
        for alternate in (list(source) if source is not None else []):
            folder = _decode(alternate.get("Id", ""))
            if folder is None:
                response_message(messages, m("ConvertIdResponseMessage"), "ErrorInvalidIdMalformed",
                                 "not an id calmesh gave out (calmesh holds no items, only free/busy)")
                continue
            msg = response_message(messages, m("ConvertIdResponseMessage"))
            sub(msg, m("AlternateId"), **{f"{{{XSI}}}type": "t:AlternateIdType", "Format": destination,
                                          "Id": folder.id, "Mailbox": folder.owner})
        return out


def _empty_root(children: str, request: ET.Element, folder: Folder, msg: ET.Element) -> None:
    """``FindItem``/``FindFolder``: a view with nothing in it, and nothing more to page through."""
    root = sub(msg, m("RootFolder"), IndexedPagingOffset="0", TotalItemsInView="0", IncludesLastItemInRange="true")
    sub(root, t(children))


_EXTENDED = {0x3602: "0", 0x3603: "0", 0x360A: "false", 0x3008: _CHANGED, 0x670A: _CHANGED, 0x6751: "1", 0x6752: "0"}
"""MAPI properties clients ask for by tag (DavMail's folder properties): content and unread
counts, has-subfolders, last modification, local commit time max (its ctag), next and highest
IMAP uid. PR_CONTAINER_CLASS (0x3613) and the folder's URL name (0x10F3) depend on the folder."""


def _folder_shape(request: ET.Element, folder: Folder, msg: ET.Element) -> None:
    """A folder in the order of the schema's FolderType, with the shape and extras asked for."""
    shape = request.find(m("FolderShape"))
    base = (shape.findtext(t("BaseShape")) if shape is not None else None) or "Default"
    fields: set[str] = set()
    tags: list[tuple[ET.Element, int]] = []
    extras = shape.find(t("AdditionalProperties")) if shape is not None else None
    for prop in (list(extras) if extras is not None else []):
        if prop.tag == t("FieldURI"):
            fields.add(prop.get("FieldURI", ""))
        elif prop.tag == t("ExtendedFieldURI") and prop.get("PropertyTag"):
            try:
                tags.append((prop, int(prop.get("PropertyTag", ""), 0)))
            except ValueError:
                continue
    everything = base != "IdOnly"
    el = sub(sub(msg, m("Folders")), t(folder.kind))
    sub(el, t("FolderId"), Id=folder.id, ChangeKey="AQAAAA==")
    if folder.folder_class and (base == "AllProperties" or "folder:FolderClass" in fields):
        sub(el, t("FolderClass"), folder.folder_class)
    if everything or "folder:DisplayName" in fields:
        sub(el, t("DisplayName"), folder.name[:1].upper() + folder.name[1:])
    for field, name in (("folder:TotalCount", "TotalCount"), ("folder:ChildFolderCount", "ChildFolderCount")):
        if everything or field in fields:
            sub(el, t(name), "0")
    for prop, tag in tags:
        value = _EXTENDED.get(tag)
        if tag == 0x3613:
            value = folder.folder_class
        elif tag == 0x10F3:
            value = folder.name
        if value is None:
            continue  # Exchange leaves out properties a folder does not have
        ext = sub(el, t("ExtendedProperty"))
        sub(ext, t("ExtendedFieldURI"), **dict(prop.attrib))
        sub(ext, t("Value"), value)
    if folder.kind == "Folder" and (everything or "folder:UnreadCount" in fields):
        sub(el, t("UnreadCount"), "0")
