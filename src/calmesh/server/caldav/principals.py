"""Each user's CalDAV resources and their properties (RFC 4791, RFC 6638, RFC 5397, RFC 3744).

A signed-in user sees this tree, and only their own part of it::

    /dav/                              root
    /dav/principals/                   principal-collection-set
    /dav/principals/NAME/              the principal
    /dav/calendars/NAME/               calendar-home-set
    /dav/calendars/NAME/freebusy/      a calendar collection: empty and read-only
    /dav/calendars/NAME/inbox/         schedule-inbox-URL (always empty)
    /dav/calendars/NAME/outbox/        schedule-outbox-URL: free/busy lookups are POSTed here

Why an empty calendar: calendars stay on their platforms, calmesh holds none; but Thunderbird
(and Evolution's account set-up) add a *calendar* URL and only then look for the principal's
schedule outbox, refusing a plain collection (``DAV_DAV_NOT_CALDAV``). The calendar gives them
something to add; what they come for is the outbox, which answers for every platform.

The principal's ``calendar-user-address-set`` holds the user's ``mailto:`` address (``email`` in
``[[server.users]]``, else the user name when it is an email address) and the principal URL,
the one address RFC 6638 2.4.1 allows for users without a well-defined one.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from urllib.parse import quote, unquote, urlsplit

from calmesh.server.auth import User
from calmesh.server.caldav.webdav import Filler, c, cs, d, href

ROOT = "/dav/"
CTAG = "calmesh-empty-1"
"""The calendar and the inbox never change: one collection tag for ever."""
DESCRIPTION = ("Empty and read-only: calendars stay on their platforms. Free/busy lookups sent to "
               "this account's schedule outbox answer for every platform calmesh knows.")


def _reports(*names: str) -> Filler:
    def fill(element: ET.Element) -> None:
        for name in names:
            ET.SubElement(ET.SubElement(ET.SubElement(element, d("supported-report")), d("report")), name)
    return fill


def _privileges(*names: str) -> Filler:
    def fill(element: ET.Element) -> None:
        for name in names:
            ET.SubElement(ET.SubElement(element, d("privilege")), name)
    return fill


def _hrefs(*urls: str) -> Filler:
    def fill(element: ET.Element) -> None:
        for url in urls:
            href(element, url)
    return fill


def _emails(*addresses: str) -> Filler:
    def fill(element: ET.Element) -> None:
        for address in addresses:
            ET.SubElement(element, cs("email-address")).text = address
    return fill


def _text(value: str) -> Filler:
    def fill(element: ET.Element) -> None:
        element.text = value
    return fill


def _children(*names: str) -> Filler:
    def fill(element: ET.Element) -> None:
        for name in names:
            ET.SubElement(element, name)
    return fill


def _components(*names: str) -> Filler:
    def fill(element: ET.Element) -> None:
        for name in names:
            ET.SubElement(element, c("comp"), name=name)
    return fill


class Principal:
    """The CalDAV resources of one signed-in user."""

    def __init__(self, user: User, email: str | None) -> None:
        self.user = user
        self.email = email
        name = quote(user.name, safe="@")
        self.url = f"{ROOT}principals/{name}/"
        self.home = f"{ROOT}calendars/{name}/"
        self.calendar = f"{self.home}freebusy/"
        self.inbox = f"{self.home}inbox/"
        self.outbox = f"{self.home}outbox/"
        self._kinds = {ROOT: "root", f"{ROOT}principals/": "collection", self.url: "principal",
                       f"{ROOT}calendars/": "collection", self.home: "home", self.calendar: "calendar",
                       self.inbox: "inbox", self.outbox: "outbox"}
        self._tree = {ROOT: [f"{ROOT}principals/", f"{ROOT}calendars/"], f"{ROOT}principals/": [self.url],
                      f"{ROOT}calendars/": [self.home], self.home: [self.calendar, self.inbox, self.outbox]}

    @property
    def addresses(self) -> list[str]:
        """``calendar-user-address-set``: the ``mailto:`` address first (clients take the first
        as ORGANIZER), then the principal URL."""
        return [*([f"mailto:{self.email}"] if self.email else []), self.url]

    def owns(self, address: str) -> bool:
        """Whether a calendar-user address (ORGANIZER, ``Originator``) is this user's: the
        ``mailto:`` address in any case, or the principal URL, relative or absolute."""
        address = address.strip()
        if address.lower().startswith("mailto:"):
            return self.email is not None and address[7:].strip().lower() == self.email
        return unquote(urlsplit(address).path) == unquote(self.url)

    def kind(self, path: str) -> str | None:
        """What the resource at ``path`` (as requested, quoted or not) is; None when this user
        has nothing there."""
        wanted = unquote(path if path.endswith("/") else path + "/")
        return next((kind for url, kind in self._kinds.items() if unquote(url) == wanted), None)

    def href(self, path: str) -> str:
        """The canonical href of a resource this user has (see :meth:`kind`)."""
        wanted = unquote(path if path.endswith("/") else path + "/")
        return next(url for url in self._kinds if unquote(url) == wanted)

    def children(self, url: str) -> list[str]:
        return self._tree.get(url, [])

    def properties(self, url: str) -> Mapping[str, Filler]:
        """Every live property of the resource at ``url`` (an href from :meth:`href`), by name."""
        kind = self._kinds[url]
        types = {"principal": [d("principal")], "calendar": [c("calendar")], "inbox": [c("schedule-inbox")],
                 "outbox": [c("schedule-outbox")]}.get(kind, [])
        names = {"principal": self.user.name, "home": f"{self.user.name}'s calendars",
                 "calendar": "calmesh free/busy", "inbox": "Inbox", "outbox": "Outbox"}
        privileges = {"calendar": [d("read"), c("read-free-busy"), d("read-current-user-privilege-set")],
                      "outbox": [d("read"), c("schedule-send"), c("schedule-send-freebusy")]}
        props: dict[str, Filler] = {
            d("resourcetype"): _children(d("collection"), *types),
            d("displayname"): _text(names.get(kind, "calmesh")),
            d("current-user-principal"): _hrefs(self.url),
            d("principal-collection-set"): _hrefs(f"{ROOT}principals/"),
            d("current-user-privilege-set"): _privileges(*privileges.get(kind, [d("read")])),
            d("supported-report-set"): _reports(),
        }
        if kind in ("principal", "home", "calendar", "inbox", "outbox"):
            props[d("owner")] = _hrefs(self.url)
        if kind == "principal":
            props.update({
                d("principal-URL"): _hrefs(self.url),
                c("calendar-home-set"): _hrefs(self.home),
                c("calendar-user-address-set"): _hrefs(*self.addresses),
                c("schedule-inbox-URL"): _hrefs(self.inbox),
                c("schedule-outbox-URL"): _hrefs(self.outbox),
                c("calendar-user-type"): _text("INDIVIDUAL"),
            })
            if self.email:
                props[cs("email-address-set")] = _emails(self.email)
        if kind in ("calendar", "inbox"):
            props[cs("getctag")] = _text(CTAG)
            props[d("supported-report-set")] = _reports(c("calendar-query"), c("calendar-multiget"))
        if kind == "calendar":
            props[c("supported-calendar-component-set")] = _components("VEVENT")
            props[c("calendar-description")] = _text(DESCRIPTION)
            props[c("schedule-calendar-transp")] = _children(c("transparent"))
        return props
