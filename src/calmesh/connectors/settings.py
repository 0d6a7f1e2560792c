"""Each built-in connector's ``[platforms.NAME]`` settings, in a module of their own.

Why here and not beside each connector: loading a config validates every platform's table, and
that must not import the connectors themselves (exchangelib, caldav and its HTTP client, the
Google crypto: ~1 s of imports) for a command that asks one ICS folder. This module needs only
pydantic; the connector modules import their class from here, and the registry maps a kind to its
settings class without loading the connector (plugins still bring their own ``Settings``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from calmesh.connectors.base import ConnectorSettings

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
"""Google Calendar's full-access OAuth scope."""


class CalDAVSettings(ConnectorSettings):
    url: str
    """The CalDAV root, principal or calendar-home URL (e.g. ``https://calendar.zoho.com/caldav/``)."""
    username: str | None = None
    password_env: str | None = None
    """Environment variable holding the password (an app-specific password on Zoho, iCloud, Fastmail)."""
    verify_tls: bool = True
    calendars: list[str] = []
    """Calendar collection URLs to use instead of discovering the principal's calendars."""
    freebusy_source: Literal["events", "server"] = "events"
    """Where free/busy comes from. ``events``: calmesh expands the events and applies its own rules
    (declined and unanswered invitations, Outlook's OOF hint), asking the server's free-busy-query
    only for calendars shared "free/busy only". ``server``: the server's free-busy-query
    (RFC 4791 7.10) first, which sends no event details but counts a declined invitation as busy."""
    sync_collection: bool = True
    """Use RFC 6578 sync-collection for changes; false uses the ETag comparison fallback."""


class ICSSettings(ConnectorSettings):
    path: str | None = None
    """A ``.ics`` file or a folder of them (relative to the config file)."""
    url: str | None = None
    """An http(s) feed (read-only)."""
    username: str | None = None
    password_env: str | None = None
    verify_tls: bool = True
    writable: bool = True
    """Local files accept writes unless this is false (an export you must not touch)."""

    @model_validator(mode="after")
    def _one_source(self) -> ICSSettings:
        if bool(self.path) == bool(self.url):
            raise ValueError("an ics platform needs exactly one of 'path' or 'url'")
        return self


class EWSSettings(ConnectorSettings):
    """``[platforms.NAME]`` with ``kind = "ews"``."""

    kind: str = "ews"
    service_endpoint: str | None = None
    """``https://mail.example.com/EWS/Exchange.asmx``; without it, autodiscover finds it."""
    autodiscover_email: str | None = None
    """Address autodiscover starts from when ``service_endpoint`` is not set."""
    auth: Literal["oauth2", "ntlm", "basic"] = "oauth2"
    username: str | None = None
    """NTLM (``DOMAIN\\user`` or UPN) / Basic account."""
    password_env: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    token_url: str | None = None
    """Defaults to ``https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token``."""
    scope: str = "https://outlook.office365.com/.default"
    impersonation: bool | None = None
    """Act as each mailbox (ApplicationImpersonation); default: yes for OAuth2, no (delegate) otherwise."""
    mailboxes: list[str] = []
    server_version: Literal["Exchange2010_SP2", "Exchange2013", "Exchange2016", "Exchange2019"] | None = None
    """Skip exchangelib's version probe; None asks the server."""
    verify_tls: bool = True
    retries: int = 4
    max_retry_wait: float = 60.0
    availability_interval: int = 30
    """Minutes per digit of the merged free/busy string."""

    @model_validator(mode="after")
    def _complete(self) -> EWSSettings:
        if not self.service_endpoint and not self.autodiscover_email:
            raise ValueError("set service_endpoint (the EWS URL) or autodiscover_email")
        if self.auth == "oauth2":
            needed = ["client_id", "client_secret_env"] + ([] if self.token_url else ["tenant_id"])
            missing = [n for n in needed if not getattr(self, n)]
            if missing:
                raise ValueError(f"auth = \"oauth2\" needs {', '.join(missing)}")
        elif not self.username or not (self.password_env or self.password_command or self.keyring):
            raise ValueError(f"auth = \"{self.auth}\" needs username and password_env (or password_command, keyring)")
        return self


class GraphSettings(ConnectorSettings):
    """``[platforms.NAME]`` with ``kind = "graph"``."""

    kind: str = "graph"
    tenant_id: str
    client_id: str
    client_secret_env: str
    """Environment variable holding the app registration's client secret."""
    mailboxes: list[str] = []
    """Mailboxes whose calendars ``calendars()`` lists (people's calendars are also reachable
    directly by address)."""
    base_url: str = "https://graph.microsoft.com/v1.0"
    token_url: str | None = None
    """Defaults to ``https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token``."""
    scope: str = "https://graph.microsoft.com/.default"
    zone_names: Literal["windows", "iana"] = "windows"
    """How written events name their zone (Graph accepts both)."""
    availability_interval: int = 15
    """Minutes per digit of getSchedule's availabilityView."""
    page_size: int = 100
    retries: int = 4
    max_retry_wait: float = 60.0


class GoogleSettings(ConnectorSettings):
    """``[platforms.NAME]`` with ``kind = "google"``."""

    kind: str = "google"
    credentials_env: str
    """Environment variable holding the service account's JSON key, or the path to that file
    (relative paths are relative to the config file)."""
    subject: str | None = None
    """The Workspace user every call acts as (domain-wide delegation)."""
    impersonate: bool = False
    """Act as the owner of each calendar instead of ``subject`` (a person's calendar is then read
    with that person's own rights)."""
    mailboxes: list[str] = []
    """People whose calendar lists ``calendars()`` shows (default: ``subject``)."""
    base_url: str = "https://www.googleapis.com/calendar/v3"
    token_url: str = "https://oauth2.googleapis.com/token"
    scopes: list[str] = [CALENDAR_SCOPE]
    page_size: int = 250
    retries: int = 4
    max_retry_wait: float = 60.0


class Columns(BaseModel):
    """Which column holds what. Only ``id``, ``calendar``, ``start`` and ``end`` are required."""

    model_config = ConfigDict(extra="forbid")

    id: str
    calendar: str
    start: str
    end: str
    title: str | None = None
    description: str | None = None
    location: str | None = None
    uid: str | None = None
    status: str | None = None
    """Values ``cancelled``/``canceled`` and ``tentative`` (any case) are understood."""
    show_as: str | None = None
    """``free``, ``tentative``, ``busy``, ``oof``/``away`` (any case)."""
    updated: str | None = None
    marker: str | None = None
    """A text column where calmesh records the origin of rows it writes (loop prevention)."""


class SQLSettings(ConnectorSettings):
    url: str
    password_env: str | None = None
    table: str
    columns: Columns
    writable: bool = False


BUILTIN: dict[str, type[ConnectorSettings]] = {
    "caldav": CalDAVSettings,
    "ics": ICSSettings,
    "ews": EWSSettings,
    "graph": GraphSettings,
    "google": GoogleSettings,
    "sql": SQLSettings,
}
"""Built-in kind -> its settings class (the registry's lazily imported connectors use the same)."""
