"""The web page (issue 7): the organisation's availability at a glance, and booking from it.

Why server-rendered: time-zone arithmetic (DST weeks, a Tokyo colleague's working day seen from
New York) belongs in Python with zoneinfo, not in hand-written browser code; the page then needs no
build step and no framework, and every drawn block carries its times as data attributes, so what
the page shows can be checked. The little vanilla JavaScript in ``static/calmesh.js`` only submits
the view form, and drives find-a-time and booking through the JSON API (:mod:`.api_schedule`).
Conflicts come from :mod:`calmesh.services.detection` and sync status from the state store.

The time axis is linear in absolute time over the hours shown in the viewer's zone (the week views
default to working hours, each day's span laid after the last; whole days on demand): a block's
position is its share of the shown time, so a 23-hour DST Sunday is simply narrower. The page also
lists the meetings calmesh booked for the organisers the user acts for (:mod:`calmesh.services.bookings`),
which its script moves or cancels through the JSON API.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import available_timezones

from jinja2 import pass_context
from jinja2.runtime import Context
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from calmesh.config import PersonConfig
from calmesh.core.freebusy import invert, outside_working_hours
from calmesh.directory import UnknownPerson
from calmesh.locales import DEFAULT_STYLE, DateStyle, accept_language_locale
from calmesh.model import BusyPeriod, BusyType, PersonFreeBusy, Window, shown
from calmesh.server.auth import CHALLENGES, User
from calmesh.server.context import MAX_ATTENDEES, BadRequest, ServerContext
from calmesh.server.health import MonitoringAccess
from calmesh.services import bookings, detection
from calmesh.services.answer_json import error_text
from calmesh.store.db import StoreError, open_store
from calmesh.store.repository import SyncRepository
from calmesh.timezones import to_iana, zoneinfo

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")

VIEWS = {"day": 1, "workweek": 5, "week": 7}
"""View name -> days shown; the week starts on the viewer's locale's first day of the week (Sunday
in the United States, Monday in France), the work week on the day after its weekend."""
VIEW_LABELS = {"day": "Day", "workweek": "Work week", "week": "Week"}
GROUPINGS = ("team", "platform")
HOURS = ("work", "all")
TYPE_CLASS = {BusyType.BUSY_TENTATIVE: "tentative", BusyType.BUSY: "busy",
              BusyType.BUSY_UNAVAILABLE: "oof", BusyType.UNKNOWN: "unknown"}
"""CSS class and ``data-type`` per busy type: the same names as the JSON API's ``type``."""
SHORT_LABEL = {BusyType.BUSY_TENTATIVE: "Tentative", BusyType.BUSY: "Busy",
               BusyType.BUSY_UNAVAILABLE: "Out of office", BusyType.UNKNOWN: "Unknown"}
LEGEND = [(TYPE_CLASS[t], t.label) for t in (BusyType.BUSY, BusyType.BUSY_TENTATIVE,
                                             BusyType.BUSY_UNAVAILABLE, BusyType.UNKNOWN)]


# ------------------------------------------------------------------------------------ the axis
@dataclass(frozen=True, slots=True)
class Axis:
    """The displayed time: spans ``[start, end)`` laid end to end, one per day shown (a week in
    working hours leaves the nights out). An instant's place is the share of the shown time before
    it; an instant in a hidden night sits at the edge of the span before it."""

    segments: tuple[tuple[datetime, datetime], ...]

    @property
    def start(self) -> datetime:
        return self.segments[0][0]

    @property
    def end(self) -> datetime:
        return self.segments[-1][1]

    @property
    def hours(self) -> float:
        """Hours shown (the nights left out are not counted)."""
        return self._total() / timedelta(hours=1)

    def _total(self) -> timedelta:
        # in UTC: Python subtracts two times of the same zone by wall clock, which is wrong across DST
        return sum((e.astimezone(UTC) - s.astimezone(UTC) for s, e in self.segments), timedelta(0))

    def percent(self, instant: datetime) -> float:
        moment, before = instant.astimezone(UTC), timedelta(0)
        for start, end in self.segments:
            start, end = start.astimezone(UTC), end.astimezone(UTC)
            if moment <= start:
                break
            before += min(moment, end) - start
        return round(100 * before / self._total(), 4)

    def place(self, start: datetime, end: datetime) -> tuple[float, float]:
        """``(left, width)`` in percent of the axis for ``[start, end)``, clipped to it."""
        left = self.percent(start)
        return left, round(self.percent(end) - left, 4)

    @property
    def window(self) -> Window:
        return Window(self.start, self.end)


WHOLE_DAY = (0, 24)


def view_days(view: str, day: date, style: DateStyle = DEFAULT_STYLE) -> list[date]:
    """The days a view shows: one, or the days from the first day of ``day``'s (work) week."""
    first = style.week_start(day, work_week=view == "workweek") if VIEWS[view] > 1 else day
    return [first + timedelta(days=n) for n in range(VIEWS[view])]


def view_axis(view: str, day: date, zone: tzinfo, hours: tuple[int, int] = WHOLE_DAY,
              style: DateStyle = DEFAULT_STYLE) -> Axis:
    """From ``hours[0]`` to ``hours[1]`` o'clock (24: midnight after) local time, on each day shown."""
    low, high = hours
    return Axis(tuple((datetime.combine(d, time(low), tzinfo=zone),
                       datetime.combine(d + timedelta(days=high // 24), time(high % 24), tzinfo=zone))
                      for d in view_days(view, day, style)))


def shown_hours(people: Sequence[PersonConfig], zone_name: str, default_zone: str,
                days: Sequence[date]) -> tuple[int, int]:
    """The whole hours of the viewer's day the week views show by default: the working hours of
    the people who live in the viewed zone (of everyone shown when nobody does), as the viewer's
    clock reads them on the days shown. The whole day when nobody has working hours or when they
    run over the viewer's midnight (a Tokyo team seen from New York)."""
    hours = [h for p in people if (p.timezone or default_zone) == zone_name and (h := p.hours(default_zone))] \
        or [h for p in people if (h := p.hours(default_zone))]
    zone = zoneinfo(zone_name)
    low, high = 24, 0
    for wh in hours:
        for day in days:
            for period in wh.periods:
                if day.weekday() not in period.days:
                    continue
                start = datetime.combine(day, period.start, tzinfo=wh.zone).astimezone(zone)
                end = datetime.combine(day, period.end, tzinfo=wh.zone).astimezone(zone)
                if end.date() != start.date() and end.time() != time(0):
                    return WHOLE_DAY
                low = min(low, start.hour)
                high = max(high, 24 if end.date() != start.date() else end.hour + (end.time() != time(end.hour)))
    return (low, high) if low < high else WHOLE_DAY


@dataclass(frozen=True, slots=True)
class Tick:
    left: float
    width: float
    label: str
    major: bool


def ticks(axis: Axis, view: str, zone: tzinfo, style: DateStyle = DEFAULT_STYLE) -> list[Tick]:
    """Column headings: days in the week views, hours in the day view (local to the viewer)."""
    if VIEWS[view] > 1:
        return [Tick(*axis.place(start, end), style.day(start.date()), True) for start, end in axis.segments]
    return hour_ticks(axis, zone, every=1)


def hour_ticks(axis: Axis, zone: tzinfo, every: int) -> list[Tick]:
    """A tick per hour of the shown time (local to the viewer), labelled every ``every`` hours."""
    out: list[Tick] = []
    for start, end in axis.segments:
        cursor = start
        while cursor < end:
            # add in UTC so a DST change cannot make an hour repeat or vanish
            nxt = (cursor.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
            left, width = axis.place(cursor, min(nxt, end))
            labelled = cursor.hour % every == 0
            out.append(Tick(left, width, cursor.strftime("%H:%M") if labelled else "",
                            labelled and (every > 1 or cursor.hour % 6 == 0)))
            cursor = nxt
    return out


# ------------------------------------------------------------------------------------ the rows
@dataclass(slots=True)
class Block:
    kind: str
    label: str
    start: str
    end: str
    left: float
    width: float
    title: str
    summary: str | None = None


@dataclass(slots=True)
class Row:
    email: str
    name: str
    platform: str
    platform_kind: str
    group: str
    timezone: str
    blocks: list[Block] = field(default_factory=list)
    working: list[tuple[float, float]] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    unseen: int = 0
    """Busy periods wholly inside the hours the view leaves out (said, never silently dropped)."""


def block(period: BusyPeriod, axis: Axis, zone: tzinfo, style: DateStyle = DEFAULT_STYLE) -> Block:
    left, width = axis.place(period.start, period.end)
    kind = TYPE_CLASS.get(period.type, "busy")
    title = f"{SHORT_LABEL.get(period.type, 'Busy')}, {style.span(period.start.astimezone(zone), period.end.astimezone(zone))}"
    if period.summary:
        title += f": {period.summary}"
    if period.location:
        title += f" ({period.location})"
    return Block(kind, SHORT_LABEL.get(period.type, "Busy"), period.start.astimezone(zone).isoformat(),
                 period.end.astimezone(zone).isoformat(), left, width, title, period.summary)


def working_bands(answer: PersonFreeBusy, axis: Axis) -> list[tuple[float, float]]:
    """Where the person's working hours fall on the axis (none when they have none configured)."""
    if answer.working_hours is None:
        return []
    window = axis.window
    inside = invert(outside_working_hours(answer.working_hours, window), window, BusyType.FREE)
    return [band for band in (axis.place(p.start, p.end) for p in inside) if band[1] > 0]


def row(person: PersonConfig, answer: PersonFreeBusy, axis: Axis, zone: tzinfo, grouping: str,
        kinds: dict[str, Any], default_zone: str, details: bool, style: DateStyle = DEFAULT_STYLE) -> Row:
    group = (person.team or "no team") if grouping == "team" else person.platform
    kind = str(kinds.get(person.platform, {}).get("kind", "?"))
    out = Row(person.email, person.name or person.email, person.platform, kind, group,
              person.timezone or default_zone)
    drawn = [block(p, axis, zone, style) for p in answer.busy if p.type is not BusyType.FREE]
    out.blocks = [b for b in drawn if b.width > 0]
    out.unseen = len(drawn) - len(out.blocks)
    out.working = working_bands(answer, axis)
    out.error = error_text(answer, details)
    out.warnings = shown(answer.warnings, details)
    return out


def grouped(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    groups: dict[str, list[Row]] = {}
    for r in sorted(rows, key=lambda r: (r.group.lower(), r.name.lower())):
        groups.setdefault(r.group, []).append(r)
    return list(groups.items())


# ------------------------------------------------------------------------------------ input
@dataclass(frozen=True, slots=True)
class GridQuery:
    view: str
    day: date
    zone_name: str
    grouping: str
    who: str
    hours: str = "work"
    """``work``: the week views show working hours (:func:`shown_hours`); ``all``: whole days."""

    @property
    def zone(self) -> tzinfo:
        return zoneinfo(self.zone_name)


def parse_query(request: Request, default_zone: str) -> GridQuery:
    q = request.query_params
    view = q.get("view", "week")
    if view not in VIEWS:
        raise BadRequest(f"view must be one of {', '.join(VIEWS)}")
    grouping = q.get("group", "team")
    if grouping not in GROUPINGS:
        raise BadRequest(f"group must be one of {', '.join(GROUPINGS)}")
    zone_name = to_iana(q.get("tz") or default_zone)
    if zone_name is None:
        raise BadRequest(f"unknown time zone {q.get('tz', '')[:60]!r} (use an IANA name like Europe/Paris)")
    text = q.get("date", "").strip()
    try:
        day = date.fromisoformat(text) if text else datetime.now(zoneinfo(zone_name)).date()
    except ValueError:
        raise BadRequest(f"date {text[:40]!r} is not an ISO date (YYYY-MM-DD)") from None
    if not 1900 <= day.year <= 2500:
        raise BadRequest("date must be between the years 1900 and 2500")
    asked = q.getlist("hours")  # the form sends "work" and, when "Whole day" is ticked, "all" too
    hours = "all" if "all" in asked else (asked[-1] if asked else "work")
    if hours not in HOURS:
        raise BadRequest(f"hours must be one of {', '.join(HOURS)}")
    return GridQuery(view, day, zone_name, grouping, q.get("who", "*").strip() or "*", hours)


@lru_cache(maxsize=1)
def all_zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


# ------------------------------------------------------------------------------------ conflicts
def platform_link(platform: str, calendar: str, settings: dict[str, Any]) -> str | None:
    """Where a person can open the calendar: the calendar itself when it is a URL (CalDAV), else
    the platform's configured web or service address; None for local files."""
    for candidate in (calendar, settings.get("web_url"), settings.get("url"), settings.get("service_endpoint")):
        if isinstance(candidate, str) and candidate.startswith(("https://", "http://")):
            return candidate
    return None


def span_text(start_iso: str, end_iso: str, style: DateStyle = DEFAULT_STYLE) -> str:
    """``Mon 23 Nov 14:00–16:00`` for two ISO times already in the viewer's zone."""
    return style.span(datetime.fromisoformat(start_iso), datetime.fromisoformat(end_iso))


@pass_context
def _span_filter(context: Context, start_iso: str, end_iso: str) -> str:
    """``{{ start | span(end) }}`` in the page's date style (``style`` in the template context)."""
    return span_text(start_iso, end_iso, context.get("style") or DEFAULT_STYLE)


templates.env.filters["span"] = _span_filter


def date_style(request: Request, setting: str | None) -> DateStyle:
    """The config's ``[hub] locale``, else the browser's language, else the default."""
    return DateStyle.choose(setting, accept_language_locale(request.headers.get("accept-language")))


# ------------------------------------------------------------------------------------ pages
def _title(axis: Axis, view: str, style: DateStyle = DEFAULT_STYLE) -> str:
    return style.days(axis.start.date(), axis.segments[-1][0].date())


def _challenge(request: Request) -> Response:
    response = templates.TemplateResponse(request, "unauthorized.html", {}, status_code=401)
    for challenge in CHALLENGES:
        response.headers.append("WWW-Authenticate", challenge)
    return response


def _bad(request: Request, user: User, exc: BadRequest) -> Response:
    return templates.TemplateResponse(request, "error.html", {"user": user, "message": exc.detail},
                                      status_code=exc.status)


def routes(ctx: ServerContext) -> list[BaseRoute]:
    config = ctx.config
    monitoring = MonitoringAccess(config.server)

    def scope(request: Request) -> Response | tuple[User, GridQuery, list[PersonConfig]]:
        """Who asks, what view, and whom it shows; or the answer refusing the request."""
        user = ctx.user(request)
        if user is None:
            return _challenge(request)
        try:
            query = parse_query(request, config.hub.timezone)
            people = ctx.hub.directory.select(s for s in query.who.split(",") if s.strip())
        except BadRequest as exc:
            return _bad(request, user, exc)
        except UnknownPerson as exc:
            return _bad(request, user, BadRequest(str(exc)))
        return user, query, people

    async def grid(request: Request) -> Response:
        scoped = scope(request)
        if isinstance(scoped, Response):
            return scoped
        user, query, people = scoped
        listed = people[:MAX_ATTENDEES]
        zone = query.zone
        style = date_style(request, config.hub.locale)
        hours = WHOLE_DAY
        if query.view != "day" and query.hours == "work":
            hours = shown_hours(listed, query.zone_name, config.hub.timezone, view_days(query.view, query.day, style))
        axis = view_axis(query.view, query.day, zone, hours, style)
        answer = await run_in_threadpool(ctx.freebusy, user, [p.email for p in listed], axis.window)
        details = ctx.details_for(user)
        rows = [row(p, a, axis, zone, query.grouping, config.platforms, config.hub.timezone, details(p.email), style)
                for p, a in zip(listed, answer.people, strict=True)]
        booked, booking_problems = await run_in_threadpool(
            bookings.organised, ctx.hub, [p.email for p in listed if details(p.email)], axis.window)
        names = {p.email: p.name or p.email for p in listed}
        meetings = [{"uid": m.uid, "organizer": m.organizer, "organizer_name": names.get(m.organizer, m.organizer),
                     "summary": m.summary, "attendees": m.attendees,
                     "start": m.start.astimezone(zone).isoformat(), "end": m.end.astimezone(zone).isoformat()}
                    for m in booked]
        step = timedelta(days=1 if query.view == "day" else 7)
        now = datetime.now(zone)
        context = {
            "user": user, "query": query, "axis": axis, "ticks": ticks(axis, query.view, zone, style), "style": style,
            "hour_ticks": hour_ticks(axis, zone, every=1 if hours != WHOLE_DAY else 6) if query.view != "day" else [],
            "hours": hours, "segments": [[s.isoformat(), e.isoformat()] for s, e in axis.segments],
            "groups": grouped(rows), "legend": LEGEND, "views": VIEW_LABELS, "hidden": len(people) - len(listed),
            "prev": (query.day - step).isoformat(), "next": (query.day + step).isoformat(),
            "today": now.date().isoformat(),
            "now": axis.percent(now) if axis.start <= now < axis.end else None,
            "fetched_at": answer.fetched_at.astimezone(zone).strftime("%H:%M:%S") if answer.entries else None,
            "zones": all_zones(),
            "people_zones": sorted({config.hub.timezone, *(r.timezone for r in rows)}),
            "title": _title(axis, query.view, style), "cache_ttl": int(ctx.cache.ttl),
            "bookings": meetings, "booking_problems": booking_problems,
            "booked_at": {(email, m.start.astimezone(zone).isoformat(), m.end.astimezone(zone).isoformat()): m.uid
                          for m in booked for email in (m.organizer, *m.attendees)},
        }
        return templates.TemplateResponse(request, "grid.html", context)

    async def conflicts(request: Request) -> Response:
        scoped = scope(request)
        if isinstance(scoped, Response):
            return scoped
        user, query, people = scoped
        style = date_style(request, config.hub.locale)
        axis = view_axis(query.view, query.day, query.zone, style=style)
        analyses = await run_in_threadpool(ctx.analyse, [p.email for p in people[:MAX_ATTENDEES]], axis.window)
        details = ctx.details_for(user)
        sections = [{"platform": ctx.hub.directory.get(a.email).platform,
                     **detection.conflicts_json(a, query.zone, details(a.email)),
                     **detection.duplicates_json(a, query.zone, details(a.email))}
                    for a in analyses]
        return templates.TemplateResponse(request, "conflicts.html", {
            "user": user, "query": query, "title": _title(axis, query.view, style), "style": style,
            "sections": sections, "views": VIEW_LABELS,
            "busy_title": config.privacy.busy_title,
            "link": lambda platform, calendar: platform_link(platform, calendar, config.platforms.get(platform, {})),
        })

    opened: list[SyncRepository] = []

    def sync_state() -> tuple[dict[str, dict[str, Any]] | None, str | None]:
        """Per group: last run, counts, held deletions and quarantined items from the state store, or why it
        cannot be read. Blocking (database): called on a thread."""
        try:
            if not opened:  # opened once; a failure is retried at the next request
                opened.append(SyncRepository(open_store(config.state_url())))
            repo = opened[0]
            return {name: {"last": next(iter(repo.runs(name, limit=1)), None), "counts": repo.counts(name),
                           "quarantined": repo.quarantined(name), "held": list(repo.holds(name).values())}
                    for name in config.sync.groups}, None
        except (StoreError, SQLAlchemyError) as exc:
            log.error("web /sync: the sync state store cannot be read: %s", exc)
            return None, "the sync state store cannot be read (the cause is in the server's log)"

    async def sync(request: Request) -> Response:
        user = ctx.user(request)
        if user is None:
            return _challenge(request)
        groups = [{"name": name, "mode": group.mode, "interval": group.interval,
                   "members": [f"{m.platform}:{m.calendar} ({m.direction})" for m in group.calendars]}
                  for name, group in config.sync.groups.items()]
        state, problem = await run_in_threadpool(sync_state) if groups else (None, None)
        # errors and quarantined items name anyone's events: only to users who see everyone's details
        sees_all = config.privacy.default == "details" or "*" in user.sees_details_of
        return templates.TemplateResponse(request, "sync.html", {
            "user": user, "groups": groups, "state": state, "problem": problem, "sees_all": sees_all,
            "monitoring": monitoring.allows(ctx, request),  # run errors carry platforms' technical causes
            "zone": ctx.zone, "zone_name": config.hub.timezone, "style": date_style(request, config.hub.locale)})

    return [
        Route("/", grid, methods=["GET"]),
        Route("/conflicts", conflicts, methods=["GET"]),
        Route("/sync", sync, methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
