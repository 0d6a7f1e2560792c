"""The agency the test lives in: the demo's six people on six real peers, two sync groups.

Peers (started once per test module, see :class:`Peers`): Alice on Radicale and Bruno on
Xandikos (CalDAV, standing in for Zoho), Carla (and Alice's second calendar) on the EWS fake,
David on the Graph fake (``calmesh.fakes``: protocol-faithful Exchange fakes on loopback, spoken
to through the real connectors), Emma (and David's and Alice's project time) in the in-house SQL
table, Farid in an ICS folder. Names, zones and working hours are the demo agency's
(``calmesh.demo.data.PEOPLE``); the config is TOML text, as a user writes it.

Every example of the state machine gets its own :class:`Agency`: fresh CalDAV collections, fresh
mailboxes on the fakes (people's addresses carry the example's number, so nothing is shared), a
fresh SQL table, ICS folder and state store. Groups: ``mirror`` keeps Alice's Radicale calendar,
her Exchange calendar and Carla's (a sales-and-marketing pair that shares everything: issue 12's
"zoho alice + exchange carla") equal; ``busy`` blocks David's time across his Graph calendar and
his project calendar.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from calmesh.config import Config, SyncGroupConfig, parse_config
from calmesh.connectors.base import Connector
from calmesh.demo.data import DOMAIN, PEOPLE
from calmesh.demo.run import _table
from calmesh.fakes.ews import EWSFake
from calmesh.fakes.graph import GraphFake
from calmesh.model import WorkingHours
from calmesh.services.hub import Hub
from calmesh.services.sync import SyncEngine
from calmesh.store.db import open_store
from calmesh.store.repository import SyncRepository
from services.meeting_world import projects_table

from .faults import Faults, Flaky
from .ids import IDS

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the CalDAV servers

EWS_PASSWORD_ENV, GRAPH_SECRET_ENV = "CALMESH_AGENCY_EWS_PASSWORD", "CALMESH_AGENCY_GRAPH_SECRET"
EWS_USER, EWS_PASSWORD = "calmesh-svc", "svc-password"

HOME = {"alice": "radicale", "bruno": "xandikos", "carla": "exchange", "david": "m365",
        "emma": "projects", "farid": "files"}
"""Each person's home platform: where their meetings are booked and invitations land."""
ALSO = {"alice": ("exchange", "projects"), "david": ("projects",)}
"""Further platforms holding part of a person's time."""
GROUPS = {"mirror": ("mirror", ("alice@radicale", "alice@exchange", "carla@exchange")),
          "busy": ("busy", ("david@m365", "david@projects"))}
"""Sync group -> (mode, member places)."""
BUSY_TITLE = "Busy"
EMPTY_CALENDAR = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmesh tests//agency//EN\r\nEND:VCALENDAR\r\n"

MONDAY = datetime(2027, 3, 15, tzinfo=UTC).date()
"""The week meetings are booked in: New York is on summer time already, Paris not yet."""
NOW = datetime(2027, 3, 10, 12, tzinfo=UTC)
"""The moment the agency's bookings are made at (they must be in the future)."""
WEEK_START = datetime.combine(MONDAY - timedelta(days=1), time(0), tzinfo=UTC)
WEEK_END = WEEK_START + timedelta(days=8)


def slot(day: int, hour: int, minutes: int) -> tuple[datetime, datetime]:
    """A slot in Paris time on ``day`` (0 = Monday) of the week, as aware datetimes."""
    start = datetime.combine(MONDAY + timedelta(days=day), time(hour), tzinfo=ZoneInfo("Europe/Paris"))
    return start, start + timedelta(minutes=minutes)


@dataclass(frozen=True)
class Place:
    """One calendar of one person: ``key`` is ``person@platform``."""

    person: str
    platform: str
    calendar: str

    @property
    def key(self) -> str:
        return f"{self.person}@{self.platform}"


@dataclass
class Peers:
    """The servers the whole module shares."""

    radicale: CalDAVServer
    xandikos: CalDAVServer
    ews: EWSFake
    graph: GraphFake


@contextmanager
def exchange_fakes() -> Iterator[tuple[EWSFake, GraphFake]]:
    """The EWS and Graph fakes on loopback, with the environment their connectors read secrets from."""
    ews, graph = EWSFake(users={EWS_USER: EWS_PASSWORD}), GraphFake()
    saved = {k: os.environ.get(k) for k in (EWS_PASSWORD_ENV, GRAPH_SECRET_ENV)}
    os.environ[EWS_PASSWORD_ENV], os.environ[GRAPH_SECRET_ENV] = EWS_PASSWORD, graph.client_secret
    ews.start()
    graph.start()
    try:
        yield ews, graph
    finally:
        ews.stop()
        graph.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class AgencyHub(Hub):
    """The hub every door builds, with each platform's connector behind the agency's faults.
    :meth:`raw` is the connector itself: what a person's own client (or the test's eyes) uses."""

    def __init__(self, config: Config, faults: Faults) -> None:
        super().__init__(config)
        self.faults = faults
        self._flaky = {p: Flaky(Hub.connector(self, p), faults) for p in config.platforms}

    def connector(self, platform: str) -> Connector:
        return self._flaky[platform]

    def raw(self, platform: str) -> Connector:
        return self._flaky[platform].inner


_examples = itertools.count(1)


class Agency:
    """One example's agency (see the module docstring); :meth:`close` releases it."""

    def __init__(self, peers: Peers, root: Path) -> None:
        n = next(_examples)
        IDS.start(n)
        self.number = n
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.email = {p.email.split("@")[0]: f"{p.email.split('@')[0]}@ex{n}.{DOMAIN}" for p in PEOPLE}
        self.person_of = {e: p for p, e in self.email.items()}
        demo = {p.email.split("@")[0]: p for p in PEOPLE}
        for who in ("alice", "carla"):
            peers.ews.add_mailbox(self.email[who], demo[who].timezone, WorkingHours.simple(demo[who].timezone,
                                                                                         *demo[who].hours))
        peers.graph.add_mailbox(self.email["david"], demo["david"].timezone,
                                WorkingHours.simple(demo["david"].timezone, *demo["david"].hours))
        calendars = {
            "alice@radicale": peers.radicale.new_calendar("alice"),
            "bruno@xandikos": peers.xandikos.new_calendar("bruno"),
            "alice@exchange": self.email["alice"], "carla@exchange": self.email["carla"],
            "david@m365": self.email["david"], "farid@files": f"{self.email['farid']}.ics",
            **{f"{who}@projects": self.email[who] for who in ("alice", "david", "emma")},
        }
        self.places = {key: Place(key.split("@")[0], key.split("@")[1], cal) for key, cal in calendars.items()}
        (root / "files").mkdir()
        (root / "files" / calendars["farid@files"]).write_text(EMPTY_CALENDAR, newline="")
        self.config = parse_config(self._toml(peers, demo, self._projects()), root / "calmesh.toml")
        self.faults = Faults()
        self.hub = AgencyHub(self.config, self.faults)
        self._sessions = open_store(self.config.state_url())
        self.repo = SyncRepository(self._sessions)
        self.engine = SyncEngine(self.repo, self.hub.connector, retry_sleep=lambda _s: None)

    def _projects(self) -> str:
        """The in-house meetings table (tests/services/meeting_world.py), plus the text column
        where calmesh records the origin of the rows it writes."""
        url = projects_table(self.root, [])
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE meetings ADD COLUMN marker VARCHAR(500)"))
        engine.dispose()
        return url

    def _toml(self, peers: Peers, demo: dict[str, Any], projects_url: str) -> str:
        def dav(server: CalDAVServer) -> dict[str, Any]:
            return {"kind": "caldav", "url": server.url, "username": server.username,
                    "password_env": server.password_env, "timeout": 10}

        platforms = {
            "radicale": dav(peers.radicale), "xandikos": dav(peers.xandikos),
            "exchange": {"kind": "ews", "service_endpoint": peers.ews.ews_url, "auth": "basic", "username": EWS_USER,
                         "password_env": EWS_PASSWORD_ENV,
                         "mailboxes": [self.email["alice"], self.email["carla"]]},
            "m365": {"kind": "graph", "tenant_id": "agency", "client_id": peers.graph.client_id,
                     "client_secret_env": GRAPH_SECRET_ENV, "mailboxes": [self.email["david"]],
                     "base_url": peers.graph.graph_url, "token_url": peers.graph.token_url},
            "files": {"kind": "ics", "path": "files"},
            "projects": {"kind": "sql", "url": projects_url, "table": "meetings", "writable": True,
                         "timezone": "Europe/Paris",
                         "columns": {"id": "id", "calendar": "owner", "start": "starts_at", "end": "ends_at",
                                     "title": "name", "uid": "uid", "status": "state", "marker": "marker"}},
        }
        people = []
        for who, platform in HOME.items():
            person = demo[who]
            entry: dict[str, Any] = {"email": self.email[who], "name": person.name, "team": person.team,
                                     "platform": platform, "calendars": [self.places[f"{who}@{platform}"].calendar],
                                     "timezone": person.timezone,
                                     "working_hours": {"days": "Mon-Fri", "start": person.hours[0].strftime("%H:%M"),
                                                       "end": person.hours[1].strftime("%H:%M")}}
            if who in ALSO:
                entry["also"] = [{"platform": p, "calendars": [self.places[f"{who}@{p}"].calendar]}
                                 for p in ALSO[who]]
            people.append(_table("[[people]]", entry))
        groups = [_table(f"[sync.groups.{name}]", {
            "mode": mode, "busy_title": BUSY_TITLE, "max_delete_share": 1.0,
            "calendars": [{"platform": self.places[k].platform, "calendar": self.places[k].calendar}
                          for k in members]}) for name, (mode, members) in GROUPS.items()]
        return "\n".join([
            _table("[hub]", {"timezone": "Europe/Paris", "state": "sqlite:///state.sqlite", "freebusy_timeout": 60}),
            *(_table(f"[platforms.{name}]", values) for name, values in platforms.items()),
            *people, *groups])

    def home(self, who: str) -> Place:
        return self.places[f"{who}@{HOME[who]}"]

    def places_of(self, who: str) -> list[Place]:
        return [p for p in self.places.values() if p.person == who]

    def group(self, name: str) -> SyncGroupConfig:
        return self.config.sync.groups[name]

    def close(self) -> None:
        self.hub.close()
        bind = self._sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()
