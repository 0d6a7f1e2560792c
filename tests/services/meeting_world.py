"""A small organisation on real platforms, for the scheduling and detection tests.

Platforms: ``zoho`` and ``exchange`` are folders of ``.ics`` files (the ICS connector), ``projects``
is an in-house SQLite table (the SQL connector). People: Alice in Paris (Zoho, also on the
projects table and a shared Exchange calendar), Carla in New York (Exchange), Farid in Tokyo
(Zoho) whose working hours are published as VAVAILABILITY. The default week straddles the end
of US daylight saving time (Sunday 1 November 2026), a week after Europe's (25 October).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from calmesh.config import Config, parse_config
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.model import CalendarItem, Event

ALICE, CARLA, FARID = "alice@agency.example", "carla@agency.example", "farid@agency.example"
PARIS, NEW_YORK, TOKYO = ZoneInfo("Europe/Paris"), ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")

FARID_HOURS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//vavailability//EN\r
BEGIN:VAVAILABILITY\r
UID:farid-hours\r
DTSTAMP:20260101T000000Z\r
BEGIN:AVAILABLE\r
UID:farid-weekdays\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Asia/Tokyo:20260105T100000\r
DTEND;TZID=Asia/Tokyo:20260105T190000\r
RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR\r
END:AVAILABLE\r
END:VAVAILABILITY\r
END:VCALENDAR\r
"""


def at(zone: ZoneInfo, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=zone)


def utc(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def ics(root: Path, platform: str) -> ICSConnector:
    (root / platform).mkdir(parents=True, exist_ok=True)
    return ICSConnector(platform, ICSSettings(kind="ics", path=str(root / platform)))


def put(root: Path, platform: str, owner: str, *events: Event) -> None:
    connector = ics(root, platform)
    for event in events:
        connector.put(f"{owner}.ics", CalendarItem(event.uid, [event]))


def projects_table(root: Path, rows: list[dict[str, object]]) -> str:
    """An in-house meetings table (naive Paris times) holding ``rows``; returns its URL."""
    url = f"sqlite:///{root / 'projects.db'}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    table = sa.Table(
        "meetings", meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("starts_at", sa.DateTime, nullable=False),
        sa.Column("ends_at", sa.DateTime, nullable=False),
        sa.Column("name", sa.String(200)),
        sa.Column("uid", sa.String(200)),
        sa.Column("state", sa.String(20)),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        for row in rows:
            conn.execute(table.insert(), {"uid": None, "state": None, **row})
    engine.dispose()
    return url


def config(root: Path, *, rows: list[dict[str, object]] | None = None, smtp_port: int | None = None,
           extra_people: str = "", alice_invite: str = "auto") -> Config:
    """The config file, written to ``root/calmesh.toml`` (so relative paths resolve there)."""
    empty = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nEND:VCALENDAR\r\n"
    for platform, owner in (("zoho", ALICE), ("exchange", ALICE), ("exchange", CARLA), ("zoho", FARID)):
        calendar = root / platform / f"{owner}.ics"
        calendar.parent.mkdir(parents=True, exist_ok=True)
        if not calendar.exists():
            calendar.write_text(empty, newline="")
    (root / "farid-hours.ics").write_text(FARID_HOURS, newline="")
    url = projects_table(root, rows or [])
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsender = "calmesh@agency.example"\n' if smtp_port else ""
    text = f"""
[hub]
timezone = "Europe/Paris"
state = "sqlite:///state.sqlite"
{smtp}
[platforms.zoho]
kind = "ics"
path = "zoho"
[platforms.exchange]
kind = "ics"
path = "exchange"
[platforms.projects]
kind = "sql"
url = "{url}"
table = "meetings"
writable = true
timezone = "Europe/Paris"
columns = {{ id = "id", calendar = "owner", start = "starts_at", end = "ends_at", title = "name", uid = "uid", status = "state" }}

[[people]]
email = "{ALICE}"
name = "Alice Martin"
platform = "zoho"
calendars = ["{ALICE}.ics"]
timezone = "Europe/Paris"
working_hours = {{ days = "Mon-Fri", start = "09:00", end = "18:00" }}
invite = "{alice_invite}"
also = [{{ platform = "exchange", calendars = ["{ALICE}.ics"] }}, {{ platform = "projects", calendars = ["{ALICE}"] }}]

[[people]]
email = "{CARLA}"
name = "Carla Jones"
platform = "exchange"
calendars = ["{CARLA}.ics"]
timezone = "America/New_York"
working_hours = {{ days = "Mon-Fri", start = "08:30", end = "17:00" }}

[[people]]
email = "{FARID}"
name = "Farid Haddad"
platform = "zoho"
calendars = ["{FARID}.ics"]
timezone = "Asia/Tokyo"
availability = "farid-hours.ics"
invite = "email"
{extra_people}
"""
    path = root / "calmesh.toml"
    path.write_text(text)
    return parse_config(text, path)


def meeting(uid: str, start: datetime, minutes: int, summary: str, **changes: object) -> Event:
    return Event(uid, start, start + timedelta(minutes=minutes), summary).with_changes(**changes)


def caldav_config(root: Path, radicale: Any, xandikos: Any, *, smtp_port: int | None = None) -> Config:
    """Alice on Radicale (with a second calendar on Xandikos), Carla on Xandikos, Farid on ICS.

    ``radicale`` and ``xandikos`` are the ``CalDAVServer`` fixtures of tests/conftest.py; each
    test gets fresh calendar collections on them.
    """
    alice_home, alice_shared = radicale.new_calendar("alice"), xandikos.new_calendar("alice-shared")
    carla_home = xandikos.new_calendar("carla")
    (root / "zoho").mkdir(parents=True, exist_ok=True)
    (root / "zoho" / f"{FARID}.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nEND:VCALENDAR\r\n", newline="")
    (root / "farid-hours.ics").write_text(FARID_HOURS, newline="")
    smtp = f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsender = "calmesh@agency.example"\n' if smtp_port else ""

    def dav(server: Any) -> str:
        return (f'kind = "caldav"\nurl = "{server.url}"\nusername = "{server.username}"\n'
                f'password_env = "{server.password_env}"\ntimeout = 10\n')

    text = f"""
[hub]
timezone = "Europe/Paris"
{smtp}
[platforms.radicale]
{dav(radicale)}
[platforms.xandikos]
{dav(xandikos)}
[platforms.zoho]
kind = "ics"
path = "zoho"

[[people]]
email = "{ALICE}"
name = "Alice Martin"
platform = "radicale"
calendars = ["{alice_home}"]
timezone = "Europe/Paris"
working_hours = {{ days = "Mon-Fri", start = "09:00", end = "18:00" }}
also = [{{ platform = "xandikos", calendars = ["{alice_shared}"] }}]

[[people]]
email = "{CARLA}"
name = "Carla Jones"
platform = "xandikos"
calendars = ["{carla_home}"]
timezone = "America/New_York"
working_hours = {{ days = "Mon-Fri", start = "08:30", end = "17:00" }}

[[people]]
email = "{FARID}"
name = "Farid Haddad"
platform = "zoho"
calendars = ["{FARID}.ics"]
timezone = "Asia/Tokyo"
availability = "farid-hours.ics"
invite = "email"
"""
    path = root / "calmesh.toml"
    path.write_text(text)
    return parse_config(text, path)
