"""The busy time a client reads from an answer, next to what the JSON API says for the same people.

EWS answers are read with exchangelib's parsers (``FreeBusyView.from_xml``, which follows the
EWS schema's element names and order), not with calmesh's own code, so a shape calmesh gets
wrong fails here as it would in a client. Everything is compared as UTC instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import httpx
from exchangelib.properties import FreeBusyView
from exchangelib.util import to_xml

Span = tuple[datetime, datetime, str]
M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
EWS_TYPES = {"Tentative": "tentative", "Busy": "busy", "OOF": "oof", "NoData": "unknown"}


def json_busy(url: str, emails: list[str], start: datetime, end: datetime,
              auth: tuple[str, str]) -> dict[str, set[Span]]:
    """The JSON API's busy periods per person (UTC)."""
    response = httpx.post(f"{url}/api/v1/freebusy", auth=auth, timeout=30,
                          json={"attendees": emails, "start": start.isoformat(), "end": end.isoformat()})
    response.raise_for_status()
    return {p["email"]: {(datetime.fromisoformat(b["start"]).astimezone(UTC),
                          datetime.fromisoformat(b["end"]).astimezone(UTC), b["type"]) for b in p["busy"]}
            for p in response.json()["people"]}


def json_merged(url: str, emails: list[str], start: datetime, end: datetime, interval: int,
                auth: tuple[str, str]) -> dict[str, str]:
    """The JSON API's availability view (Exchange's digits) per person."""
    response = httpx.post(f"{url}/api/v1/freebusy", auth=auth, timeout=30,
                          json={"attendees": emails, "start": start.isoformat(), "end": end.isoformat(),
                                "interval": interval})
    response.raise_for_status()
    return {p["email"]: p["availability_view"] for p in response.json()["people"]}


def ews_views(body: bytes) -> list[tuple[str, str, FreeBusyView | None]]:
    """Each ``FreeBusyResponse`` of a GetUserAvailability answer: (ResponseClass, ResponseCode, view)."""
    out = []
    for response in to_xml(body).iter(f"{M}FreeBusyResponse"):
        message = response.find(f"{M}ResponseMessage")
        view = response.find(f"{M}FreeBusyView")
        parsed = FreeBusyView.from_xml(view, account=None) if view is not None else None
        out.append((message.get("ResponseClass"), message.findtext(f"{M}ResponseCode"), parsed))
    return out


def ews_busy(view: FreeBusyView, zone: tzinfo) -> set[Span]:
    """A view's CalendarEvents as UTC spans; EWS writes them as local times of the request's zone."""
    def utc(local: datetime) -> datetime:  # exchangelib's EWSDateTime only converts to its own zones
        return datetime.fromisoformat(local.isoformat()).replace(tzinfo=zone).astimezone(UTC)

    return {(utc(e.start), utc(e.end), EWS_TYPES[e.busy_type]) for e in view.calendar_events or []}
