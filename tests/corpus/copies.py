"""Calendar objects on CalDAV servers as the corpus round trips see them: PUT as they are, read
back as the server stores them (through the caldav library, not calmesh), and what a copy must
keep of them beside its occurrences (its zone, CLASS values and alarms), read from the text."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx

from calmesh.timezones import to_iana

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

_UID = re.compile(r"^UID[^:\r\n]*:([^\r\n]*)", re.M)
_TZID = re.compile(r"^DTSTART;(?:[^:\r\n]*;)?TZID=\"?([^\":;\r\n]*)\"?[;:]", re.M)
_UTC_START = re.compile(r"^DTSTART(?:;VALUE=DATE-TIME)?:\d{8}T\d{6}Z", re.M)
_CLASS = re.compile(r"^CLASS:([^\r\n]*)", re.M)
_ALARM = re.compile(r"^BEGIN:VALARM\r?\n(.*?)^END:VALARM", re.M | re.S)
_TRIGGER = re.compile(r"^(TRIGGER[^\r\n]*|ACTION:[^\r\n]*)", re.M)
_ZERO = re.compile(r"^(TRIGGER[^:\r\n]*):[-+]?P(?:T?0[DHMSW]|0D(?:T0[HMS])?)$")
"""A zero duration however spelt (``PT0S``, ``P0D``, ``-PT0M``): RFC 5545 3.3.6 gives them one value."""
EVENT = re.compile(r"^BEGIN:VEVENT\r?\n.*?^END:VEVENT", re.M | re.S)


def unfold(text: str) -> str:
    return re.sub(r"\r?\n[ \t]", "", text)


_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Zulu", "Etc/UCT", "UCT", "Zulu", "Etc/Universal"}


def zone(event: str) -> str:
    """The zone of an event's DTSTART as an IANA name where one is known, else as written (the
    names of UTC all count as UTC: writing Etc/GMT as UTC changes nothing)."""
    found = _TZID.search(event)
    if found:
        name = to_iana(found.group(1)) or found.group(1)
        return "UTC" if name in _UTC_NAMES else name
    return "UTC" if _UTC_START.search(event) else "floating or date"


def same_zones(original: list[str], copy: list[str]) -> bool:
    """Do a copy's zones stand for its original's? The same names, or, for a name that is
    neither IANA nor Windows (a VTIMEZONE of the object's own, ``US-Eastern``), an IANA zone:
    calmesh names the IANA zone the definition matches (issue 13 item 3). That it is the right
    one is what the occurrence comparison checks, over windows around DST changes."""
    if len(original) != len(copy):
        return False
    for want, got in zip(sorted(original), sorted(copy), strict=True):
        if want != got and not (to_iana(want) is None and want not in ("UTC", "floating or date")
                                and to_iana(got) == got and got != "UTC"):
            return False
    return True


def klass(event: str) -> str:
    """CLASS as a reader must take it: RFC 5545 3.8.1.3 has unknown values treated as PRIVATE."""
    found = _CLASS.search(event)
    value = found.group(1).strip().upper() if found else "PUBLIC"
    return value if value in ("PUBLIC", "PRIVATE", "CONFIDENTIAL") else "PRIVATE"


def shape(text: str) -> dict[str, object]:
    """What a copy must keep of an object beside its occurrences, per component in a stable order."""
    events = sorted(EVENT.findall(unfold(text)), key=lambda e: ("RECURRENCE-ID" in e, e))
    return {
        "zones": sorted(zone(e) for e in events),
        "class": sorted(klass(e) for e in events),
        "alarms": sorted(tuple(sorted(_ZERO.sub(r"\1:PT0S", line) for line in _TRIGGER.findall(a)))
                         for e in events for a in _ALARM.findall(e)),
    }


def put_object(server: CalDAVServer, calendar: str, uid: str, body: str) -> str | None:
    """PUT one object as it is; the server's refusal (status and text) or None."""
    url = calendar + quote(hashlib.sha1(uid.encode()).hexdigest()) + ".ics"
    response = httpx.put(url, content=body.encode(), auth=(server.username, server.password),
                         headers={"Content-Type": "text/calendar; charset=utf-8", "If-None-Match": "*"})
    if response.status_code >= 300:
        return f"{response.status_code} {response.text[:120]!r}"
    return None


def stored_objects(server: CalDAVServer, calendar: str) -> dict[str, str]:
    """Every object of a calendar as the server stores it, by UID (the caldav library, not calmesh)."""
    from caldav.collection import Calendar
    from caldav.davclient import DAVClient

    with DAVClient(url=calendar, username=server.username, password=server.password,
                   enable_rfc6764=False) as client:
        out = {}
        for obj in Calendar(client=client, url=calendar).events():
            text = str(obj.data)
            found = _UID.search(unfold(text))
            if found:
                out[found.group(1).strip()] = text
        return out
