"""Start the demo agency's platforms on loopback, seed them, and write a calmesh config for them.

- "zoho": a real CalDAV server (Radicale) standing in for Zoho Calendar;
- "exchange": the protocol-faithful EWS fake (``calmesh.fakes.ews``) standing in for Exchange;
- "projects": a folder of ``.ics`` files standing in for the in-house project system.

Seeding goes through calmesh's own connectors, so the demo exercises the same code as production.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from calmesh.config import Config, load_config
from calmesh.connectors import registry
from calmesh.demo.data import DOMAIN, HUB_ZONE, PEOPLE, build_week, demo_monday, demo_today
from calmesh.model import WorkingHours

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
PASSWORD_ENV = "CALMESH_DEMO_PASSWORD"

DEMO_HEADER = """\
# calmesh demo configuration, written by `calmesh demo`: three local stand-ins for real platforms.
#
# To use the real thing, replace a [platforms.NAME] table and keep the people pointing at it:
#
#   Zoho Calendar (CalDAV; docs/caldav.md):
#     [platforms.zoho]
#     kind = "caldav"
#     url = "https://calendar.zoho.eu/caldav/"
#     username = "calmesh@agency.example"
#     password_env = "ZOHO_APP_PASSWORD"            # an application-specific password
#
#   Exchange on-premises (EWS; docs/exchange.md):
#     [platforms.exchange]
#     kind = "ews"
#     service_endpoint = "https://mail.agency.example/EWS/Exchange.asmx"
#     auth = "ntlm"
#     username = "AGENCY\\\\svc-calmesh"
#     password_env = "EXCHANGE_PASSWORD"
#
#   Microsoft 365 (Graph, application permission Calendars.ReadWrite; docs/exchange.md):
#     [platforms.exchange]
#     kind = "graph"
#     tenant_id = "<directory (tenant) id>"
#     client_id = "<application (client) id>"
#     client_secret_env = "GRAPH_CLIENT_SECRET"
#
# A person's `calendars` may then be left out: Exchange and Graph find a mailbox by address.
"""


@dataclass
class DemoEnvironment:
    root: Path
    config_path: Path
    monday: date
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def config(self) -> Config:
        return load_config(self.config_path)

    def close(self) -> None:
        self.stack.close()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _table(header: str, values: dict[str, Any]) -> str:
    return "\n".join([header, *(f"{k} = {_toml_value(v)}" for k, v in values.items())]) + "\n"


def _mkcalendar(url: str) -> None:
    response = httpx.request("MKCALENDAR", url, auth=(DEMO_USER, DEMO_PASSWORD), timeout=10)
    if response.status_code not in (201, 405):  # 405: it exists already
        raise RuntimeError(f"cannot create demo calendar {url}: {response.status_code} {response.text[:200]}")


def _start_exchange(env: DemoEnvironment) -> tuple[dict[str, Any], dict[str, str]]:
    """The protocol-faithful EWS fake standing in for the sales team's Exchange server.

    Mailboxes are created with their owners' zones and working hours, as an Exchange admin
    would; their meetings are then written through calmesh's own EWS connector.
    """
    from calmesh.fakes.ews import EWSFake

    fake = EWSFake(users={DEMO_USER: DEMO_PASSWORD})
    mailboxes = [p for p in PEOPLE if p.platform == "exchange"]
    for person in mailboxes:
        fake.add_mailbox(person.email, person.timezone, WorkingHours.simple(person.timezone, *person.hours))
    fake.start()
    env.stack.callback(fake.stop)
    settings = {"kind": "ews", "service_endpoint": fake.ews_url, "auth": "basic", "username": DEMO_USER,
                "password_env": PASSWORD_ENV, "mailboxes": [p.email for p in mailboxes]}
    return settings, {p.email: p.email for p in mailboxes}


SYNC_GROUP = "alice-busy"
"""The demo's sync group: Alice's Zoho calendar shown as busy blocks in the in-house system."""


def start(root: Path, monday: date | None = None, port: int = 8765) -> DemoEnvironment:
    """Start and seed everything under ``root``; the caller closes the returned environment.
    ``port`` is the hub's, written into the config so ``calmesh serve`` on it uses the same."""
    from calmesh.demo.servers import start_radicale

    root.mkdir(parents=True, exist_ok=True)
    os.environ[PASSWORD_ENV] = DEMO_PASSWORD
    env = DemoEnvironment(root, root / "calmesh.toml", monday or demo_monday(demo_today()))
    try:
        radicale = env.stack.enter_context(start_radicale(root / "radicale", {DEMO_USER: DEMO_PASSWORD}))
        base = radicale.url.rstrip("/") + f"/{DEMO_USER}/"
        platforms: dict[str, dict[str, Any]] = {
            "zoho": {"kind": "caldav", "url": base, "username": DEMO_USER, "password_env": PASSWORD_ENV},
            "projects": {"kind": "ics", "path": "projects"},
        }
        platforms["exchange"], mailbox_calendars = _start_exchange(env)
        calendars = {("exchange", e): c for e, c in mailbox_calendars.items()}
        for person in PEOPLE:
            if person.platform == "zoho":
                url = f"{base}{person.platform}-{person.email.split('@')[0]}/"
                _mkcalendar(url)
                calendars[(person.platform, person.email)] = url
        (root / "projects").mkdir(exist_ok=True)
        # the sync group's target: an empty calendar the in-house system shows, filled by `calmesh sync`
        (root / "projects" / "marketing-busy.ics").write_text(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmesh//demo//EN\r\nEND:VCALENDAR\r\n", encoding="utf-8")

        people_toml = []
        week = build_week(env.monday)
        for person in PEOPLE:
            entry: dict[str, Any] = {"email": person.email, "name": person.name, "team": person.team,
                                     "platform": person.platform, "timezone": person.timezone}
            if (person.platform, person.email) in calendars:
                entry["calendars"] = [calendars[(person.platform, person.email)]]
            elif person.platform == "projects":
                entry["calendars"] = [f"{person.email}.ics"]
            also = [{"platform": "projects", "calendars": [f"{person.email}.ics"]}
                    for (platform, owner) in week.items if platform == "projects" and owner == person.email
                    and person.platform != "projects"]
            if also:
                entry["also"] = also
            start_h, end_h = person.hours
            entry["working_hours"] = {"days": "Mon-Fri", "start": start_h.strftime("%H:%M"),
                                      "end": end_h.strftime("%H:%M")}
            people_toml.append(_table("[[people]]", entry))

        text = [
            DEMO_HEADER,
            _table("[hub]", {"timezone": HUB_ZONE, "state": "sqlite:///state.sqlite"}),
            _table("[server]", {"host": "127.0.0.1", "port": port,
                                "users": [{"name": DEMO_USER, "password_env": PASSWORD_ENV,
                                           "sees_details_of": ["*"], "email": f"{DEMO_USER}@{DOMAIN}"}]}),
            *(_table(f"[platforms.{name}]", values) for name, values in platforms.items()),
            *people_toml,
            _table(f"[sync.groups.{SYNC_GROUP}]", {
                "mode": "busy", "busy_title": "Busy (marketing)",
                "calendars": [{"platform": "zoho", "calendar": calendars[("zoho", f"alice@{DOMAIN}")], "direction": "out"},
                              {"platform": "projects", "calendar": "marketing-busy.ics", "direction": "in"}]}),
        ]
        env.config_path.write_text("\n".join(text), encoding="utf-8")
        config = env.config()
        connectors = {name: registry.create(name, {"timezone": config.hub.timezone, **raw, "base_dir": str(root)})
                      for name, raw in config.platforms.items()}
        for (platform, owner), items in week.items.items():
            calendar = calendars.get((platform, owner)) or f"{owner}.ics"
            for item in items:
                connectors[platform].put(calendar, item)
        for connector in connectors.values():
            connector.close()
        return env
    except BaseException:
        env.close()
        raise


@contextlib.contextmanager
def running(root: Path, monday: date | None = None, port: int = 8765) -> Iterator[DemoEnvironment]:
    env = start(root, monday, port)
    try:
        yield env
    finally:
        env.close()
