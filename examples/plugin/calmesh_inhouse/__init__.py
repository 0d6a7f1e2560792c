"""An in-house project tool's JSON API as a calmesh platform (example plugin)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import httpx

from calmesh.config import secret
from calmesh.connectors.base import (
    AuthenticationError,
    Capabilities,
    Connector,
    ConnectorSettings,
    NotFoundError,
    TransientError,
    parse_retry_after,
    with_retries,
)
from calmesh.model import Attendee, CalendarInfo, Event, EventStatus, PartStat, Problem, Window


class InHouseSettings(ConnectorSettings):
    url: str
    token_env: str | None = None


class InHouseConnector(Connector):
    """Each person is a calendar (its id is their email); meetings come from ``/meetings``."""

    kind: ClassVar[str] = "inhouse"
    Settings: ClassVar[type[ConnectorSettings]] = InHouseSettings
    capabilities: ClassVar[Capabilities] = Capabilities(read=True)

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, InHouseSettings)
        token = secret(settings.token_env, f"platforms.{name}.token_env")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=settings.url.rstrip("/"), headers=headers, timeout=settings.timeout)

    def calendars(self) -> list[CalendarInfo]:
        people = self._get("/people")["people"]
        return [CalendarInfo(p["email"], p.get("name") or p["email"], self.name, owner=p["email"], read_only=True)
                for p in people]

    def calendars_of(self, email: str) -> list[str]:
        return [email]

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        data = self._get("/meetings", person=calendar, **{"from": window.start.isoformat(), "to": window.end.isoformat()})
        events, problems = [], []
        for row in data.get("meetings", []):
            try:
                events.append(Event(
                    uid=f"{row['id']}@{self.name}",
                    start=datetime.fromisoformat(row["start"]),
                    end=datetime.fromisoformat(row["end"]),
                    summary=row.get("title"),
                    status=EventStatus.CANCELLED if row.get("status") == "cancelled" else EventStatus.CONFIRMED,
                    attendees=[Attendee(e, partstat=PartStat.ACCEPTED) for e in row.get("people", [])],  # assigned = committed
                ))
            except (KeyError, ValueError, TypeError) as exc:
                problems.append(Problem(self.name, f"unreadable meeting: {exc!r}", str(row.get("id"))))
        return events, problems

    def _get(self, path: str, **params: str) -> dict:
        def call() -> dict:
            try:
                response = self.http.get(path, params=params)
            except httpx.TransportError as exc:
                raise TransientError(self.name, f"unreachable: {exc}") from exc
            if response.status_code in (401, 403):
                raise AuthenticationError(self.name, "the project tool refused the token")
            if response.status_code == 404:
                raise NotFoundError(self.name, f"{path} not found")
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientError(self.name, f"answered {response.status_code}",
                                     retry_after=parse_retry_after(response.headers.get("Retry-After")))
            return response.json()

        return with_retries(call)

    def close(self) -> None:
        self.http.close()
