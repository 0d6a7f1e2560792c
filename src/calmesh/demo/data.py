"""The demo agency: six people on three platforms and a realistic working week. Pure data.

Marketing lives on Zoho Calendar (CalDAV), sales on Microsoft Exchange, projects on an in-house
system that exports iCalendar files: the situation calmesh exists for. The week is built around a
given Monday so the demo always shows the current week; every event is deterministic, and the
cross-platform cases are there on purpose: a meeting copied by hand into a second platform and a
double booking across platforms (both on Thursday: see :func:`demo_monday`), a recurring stand-up
with a moved and a cancelled occurrence, a tentative invitation, an out-of-office day, a private
appointment, and people in four time zones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from calmesh.model import (
    Attendee,
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    PartStat,
)

DOMAIN = "agency.example"


@dataclass(frozen=True, slots=True)
class DemoPerson:
    email: str
    name: str
    team: str
    platform: str
    timezone: str
    hours: tuple[time, time] = (time(9), time(18))


PEOPLE = (
    DemoPerson(f"alice@{DOMAIN}", "Alice Martin", "marketing", "zoho", "Europe/Paris"),
    DemoPerson(f"bruno@{DOMAIN}", "Bruno Lefèvre", "marketing", "zoho", "Europe/Paris"),
    DemoPerson(f"carla@{DOMAIN}", "Carla Jones", "sales", "exchange", "America/New_York", (time(8, 30), time(17))),
    DemoPerson(f"david@{DOMAIN}", "David Smith", "sales", "exchange", "Europe/London"),
    DemoPerson(f"emma@{DOMAIN}", "Emma Dubois", "projects", "projects", "Europe/Paris"),
    DemoPerson(f"farid@{DOMAIN}", "Farid Haddad", "projects", "projects", "Asia/Tokyo", (time(10), time(19))),
)


@dataclass(slots=True)
class DemoCalendars:
    """Items per (platform, person email): what the demo seeds into each platform."""

    items: dict[tuple[str, str], list[CalendarItem]] = field(default_factory=dict)

    def add(self, platform: str, owner: str, *events: Event) -> None:
        self.items.setdefault((platform, owner), []).append(CalendarItem(events[0].uid, list(events)))


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


DEMO_DAY = 3
"""Thursday: the day of the demo's double booking and of its duplicated meeting."""
HUB_ZONE = "Europe/Paris"
"""The demo hub's time zone (``[hub] timezone``), where its commands count their days."""


def demo_today(now: datetime | None = None) -> date:
    """Today where the demo's commands count days (:data:`HUB_ZONE`), not by the machine's clock:
    from 22:00 or 23:00 UTC it is tomorrow in Paris already, and a week seeded by a UTC Thursday
    put the demo's Thursday before the commands' default window (today in Paris onwards)."""
    return (now or datetime.now(ZoneInfo(HUB_ZONE))).astimezone(ZoneInfo(HUB_ZONE)).date()


def demo_monday(today: date) -> date:
    """The week the demo seeds: this one until Thursday, else the next. The README's commands look
    a week ahead from today by default, so Thursday (:data:`DEMO_DAY`) is in their window
    whatever the day: from Friday this week's would be behind them; next week's is ahead."""
    return monday_of(today) if today.weekday() <= DEMO_DAY else monday_of(today) + timedelta(days=7)


def build_week(monday: date) -> DemoCalendars:
    """The demo week starting on ``monday``."""
    cals = DemoCalendars()
    person = {p.email.split("@")[0]: p for p in PEOPLE}

    def at(who: str, day: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(monday + timedelta(days=day), time(hour, minute), tzinfo=ZoneInfo(person[who].timezone))

    def att(who: str, partstat: PartStat = PartStat.ACCEPTED) -> Attendee:
        p = person[who]
        return Attendee(p.email, p.name, partstat)

    def uid(tag: str) -> str:
        return f"demo-{tag}-{monday.isoformat()}@{DOMAIN}"

    # Marketing (Zoho): a daily stand-up, Tuesday moved, Thursday cancelled
    standup = Event(uid("mkt-standup"), at("alice", 0, 9, 30), at("alice", 0, 9, 45), "Marketing stand-up",
                    rrule=["FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=5"], exdate=[at("alice", 3, 9, 30)],
                    organizer=att("alice"), attendees=[att("alice"), att("bruno")], tzid="Europe/Paris")
    moved = Event(uid("mkt-standup"), at("alice", 1, 11), at("alice", 1, 11, 15), "Marketing stand-up (moved)",
                  recurrence_id=at("alice", 1, 9, 30), organizer=att("alice"),
                  attendees=[att("alice"), att("bruno")], sequence=1, tzid="Europe/Paris")
    for who in ("alice", "bruno"):
        cals.add("zoho", person[who].email, standup, moved)

    cals.add("zoho", person["alice"].email,
             Event(uid("campaign"), at("alice", 0, 14), at("alice", 0, 16), "Spring campaign review",
                   location="Room Opéra", organizer=att("alice"), attendees=[att("alice"), att("bruno")]),
             )
    cals.add("zoho", person["bruno"].email,
             Event(uid("campaign"), at("alice", 0, 14), at("alice", 0, 16), "Spring campaign review",
                   location="Room Opéra", organizer=att("alice"), attendees=[att("alice"), att("bruno")]))
    cals.add("zoho", person["alice"].email,
             Event(uid("dentist"), at("alice", 2, 8), at("alice", 2, 9, 30), "Dentist",
                   classification=Classification.PRIVATE))
    cals.add("zoho", person["bruno"].email,
             Event(uid("bruno-oof"), monday + timedelta(days=4), monday + timedelta(days=5), "Day off",
                   busy_type=BusyType.BUSY_UNAVAILABLE, tzid=person["bruno"].timezone))
    cals.add("zoho", person["bruno"].email,
             Event(uid("agency-lunch"), at("bruno", 2, 12, 30), at("bruno", 2, 14), "Agency lunch", transparent=True))

    # Sales (Exchange): the client pitch; Alice's invitation in her Zoho calendar carries its UID
    pitch = Event(uid("pitch-acme"), at("david", 1, 14), at("david", 1, 15, 30), "Pitch: ACME rebrand",
                  location="Teams", organizer=att("david"),
                  attendees=[att("david"), att("carla"), att("alice", PartStat.ACCEPTED)])
    cals.add("exchange", person["david"].email, pitch)
    cals.add("exchange", person["carla"].email, pitch)
    cals.add("zoho", person["alice"].email, pitch.with_changes(summary="ACME rebrand pitch", location=None))
    cals.add("exchange", person["carla"].email,
             Event(uid("pipeline"), at("carla", 0, 10), at("carla", 0, 11), "Weekly pipeline",
                   rrule=["FREQ=WEEKLY;COUNT=8"], organizer=att("carla"), attendees=[att("carla"), att("david")]))
    cals.add("exchange", person["david"].email,
             Event(uid("pipeline"), at("carla", 0, 10), at("carla", 0, 11), "Weekly pipeline",
                   rrule=["FREQ=WEEKLY;COUNT=8"], organizer=att("carla"), attendees=[att("carla"), att("david")]))
    cals.add("exchange", person["carla"].email,
             Event(uid("trade-show"), monday + timedelta(days=3), monday + timedelta(days=5), "Trade show, Chicago",
                   busy_type=BusyType.BUSY_UNAVAILABLE, tzid=person["carla"].timezone))  # authored in New York
    cals.add("exchange", person["david"].email,
             Event(uid("client-call"), at("david", 2, 15), at("david", 2, 16), "Call with Globex",
                   status=EventStatus.TENTATIVE))
    # a double booking for David across platforms: Exchange call vs the in-house project review
    cals.add("exchange", person["david"].email,
             Event(uid("forecast"), at("david", DEMO_DAY, 13), at("david", DEMO_DAY, 14, 30), "Q1 forecast"))
    # the same Thursday, a follow-up David organises with Alice, which he also copied by hand into
    # the in-house system where his project time lives: one meeting under a new UID and a forwarded
    # title, the duplicate `calmesh duplicates` finds (and, being a copy, never a conflict)
    follow_up = Event(uid("acme-follow-up"), at("david", DEMO_DAY, 10), at("david", DEMO_DAY, 10, 45),
                      "ACME follow-up", location="Teams", organizer=att("david"),
                      attendees=[att("david"), att("alice")])
    cals.add("exchange", person["david"].email, follow_up)
    cals.add("zoho", person["alice"].email, follow_up)
    cals.add("projects", person["david"].email,
             follow_up.with_changes(uid=uid("acme-follow-up-copy"), summary="TR: ACME follow-up", location=None))

    # Projects (in-house, ICS): reviews that pull in people from the other platforms
    review = Event(uid("proj-review"), at("emma", DEMO_DAY, 14), at("emma", DEMO_DAY, 15), "Project Atlas review",
                   organizer=att("emma"), attendees=[att("emma"), att("david"), att("farid", PartStat.TENTATIVE)])
    for who in ("emma", "farid", "david"):  # David's project time lives in the in-house system
        cals.add("projects", person[who].email, review)
    cals.add("projects", person["emma"].email,
             Event(uid("sprint"), at("emma", 0, 10), at("emma", 0, 12), "Sprint planning",
                   organizer=att("emma"), attendees=[att("emma"), att("farid")]))
    cals.add("projects", person["farid"].email,
             Event(uid("sprint"), at("emma", 0, 10), at("emma", 0, 12), "Sprint planning",
                   organizer=att("emma"), attendees=[att("emma"), att("farid")]))
    cals.add("projects", person["farid"].email,
             Event(uid("tokyo-sync"), at("farid", 1, 17), at("farid", 1, 18), "Tokyo office sync"))
    cals.add("projects", person["emma"].email,
             Event(uid("declined"), at("emma", 4, 9), at("emma", 4, 10), "Vendor demo",
                   attendees=[att("emma", PartStat.DECLINED)]))
    # Alice's project time lives in the in-house system too
    cals.add("projects", person["alice"].email,
             Event(uid("atlas-workshop"), at("alice", 2, 10), at("alice", 2, 12), "Atlas workshop"))
    return cals
