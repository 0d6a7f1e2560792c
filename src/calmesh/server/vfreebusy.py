"""iCalendar doors: free/busy URLs (RFC 5545 VFREEBUSY) and busy feeds (subscribable VEVENTs).

``/freebusy/{email}.vfb`` (or ``.ifb``) is what Outlook's "Internet Free/Busy" search path and
other free/busy-URL readers fetch; ``/feeds/{email}.ics`` is a calendar subscription for
platforms that cannot read VFREEBUSY but can subscribe to a URL (Zoho, Google, Outlook), showing
a person's busy blocks as opaque events. Both carry free/busy only, never titles.

Those readers cannot log in, so each is also served at a secret, revocable URL,
``/freebusy/<token>/{email}.vfb`` and ``/feeds/<token>/{email}.ics`` (tokens issued by ``calmesh
feeds issue``, :mod:`calmesh.store.feeds`); every URL a token does not open answers the same 404.
``server.anonymous_freebusy`` serves the plain URLs of everyone without authentication instead:
everyone's free/busy becomes public and the directory can be enumerated.

Feed events get UIDs derived from their content so that a subscriber polling an unchanged
calendar sees the same events, not a delete-and-recreate churn every refresh.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime

import icalendar
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from calmesh.ical import PRODID, vfreebusy
from calmesh.model import BusyType, PersonFreeBusy, Window, normalize_email
from calmesh.server.auth import User
from calmesh.server.context import Answer, BadRequest, ServerContext, problem, unauthorized
from calmesh.services.answer_json import error_text
from calmesh.store.db import StoreError, open_store
from calmesh.store.feeds import FeedGrant, FeedTokens

log = logging.getLogger(__name__)

FREEBUSY_DAYS = (7, 56)
"""Default VFREEBUSY window: a week back, eight weeks ahead (what Outlook publishes by default)."""
FEED_DAYS = (30, 180)
"""Default feed window: subscribers keep recent history and plan months ahead."""
_FEED_STATUS = {BusyType.BUSY_TENTATIVE: "TENTATIVE", BusyType.BUSY: "BUSY", BusyType.BUSY_UNAVAILABLE: "OOF",
                BusyType.UNKNOWN: "TENTATIVE"}
"""Outlook's status per block. A feed has no "no data": time calmesh could not read (a platform
down, a file that is not iCalendar) is a tentative block titled so, never a gap subscribers take
for free time."""
_CALENDAR = "text/calendar; charset=utf-8"


def feed_uid(email: str, start: datetime, end: datetime, kind: BusyType) -> str:
    """The same busy block always gets the same UID."""
    key = f"{email}|{start.astimezone(UTC).isoformat()}|{end.astimezone(UTC).isoformat()}|{kind.fbtype}"
    return f"busy-{hashlib.sha256(key.encode()).hexdigest()[:32]}@calmesh"


def feed_calendar(person: PersonFreeBusy, busy_title: str) -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("PRODID", PRODID)
    cal.add("VERSION", "2.0")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("X-WR-CALNAME", f"{person.name or person.email} (busy)")
    cal.add("REFRESH-INTERVAL", icalendar.vDuration.from_ical("PT15M"), parameters={"VALUE": "DURATION"})
    cal.add("X-PUBLISHED-TTL", "PT15M")
    titles = {BusyType.BUSY_TENTATIVE: "Tentative", BusyType.BUSY: busy_title,
              BusyType.BUSY_UNAVAILABLE: "Out of office", BusyType.UNKNOWN: "Unknown (data missing)"}
    for period in person.busy:
        if period.type not in _FEED_STATUS:
            continue
        event = icalendar.Event()
        event.add("UID", feed_uid(person.email, period.start, period.end, period.type))
        event.add("DTSTAMP", period.start.astimezone(UTC))
        event.add("DTSTART", period.start.astimezone(UTC))
        event.add("DTEND", period.end.astimezone(UTC))
        event.add("SUMMARY", titles[period.type])
        event.add("TRANSP", "OPAQUE")
        event.add("CLASS", "PRIVATE")
        if period.type in (BusyType.BUSY_TENTATIVE, BusyType.UNKNOWN):
            event.add("STATUS", "TENTATIVE")
        event.add("X-MICROSOFT-CDO-BUSYSTATUS", _FEED_STATUS[period.type])
        cal.add_component(event)
    return cal


def _window(ctx: ServerContext, request: Request, default: tuple[int, int]) -> Window:
    start_text, end_text = request.query_params.get("start"), request.query_params.get("end")
    if start_text is None and end_text is None:
        return ctx.default_window(*default)
    base = ctx.default_window(*default)
    start = ctx.parse_time(start_text, "start") if start_text is not None else base.start
    end = ctx.parse_time(end_text, "end") if end_text is not None else start + base.duration
    return ctx.window(start, end)


_NO_SUCH_URL = "no such free/busy URL"
"""The one answer to a secret URL that shows nothing: unknown or revoked token, or a person the
token does not cover or the directory does not hold (so a token cannot probe the directory)."""


def routes(ctx: ServerContext) -> list[BaseRoute]:
    anonymous = ctx.config.server.anonymous_freebusy
    opened: list[FeedTokens] = []

    def grant_of(token: str) -> FeedGrant | None:
        """Blocking (database): the store is opened at the first secret URL asked for."""
        if not opened:
            opened.append(FeedTokens(open_store(ctx.config.state_url())))
        return opened[0].find(token)

    async def fetch(request: Request, user: User | None, email: str,
                    default: tuple[int, int]) -> tuple[PersonFreeBusy, Answer] | Response:
        try:
            window = _window(ctx, request, default)
        except BadRequest as exc:
            return problem(exc.status, "Bad Request", exc.detail)
        answer = await run_in_threadpool(ctx.freebusy, user, [email], window, details=False)
        return answer.people[0], answer

    async def signed_in(request: Request, default: tuple[int, int]) -> tuple[PersonFreeBusy, Answer] | Response:
        user = ctx.user(request)
        if user is None and not anonymous:
            return unauthorized()
        email = normalize_email(request.path_params["email"])
        if email not in ctx.hub.directory:
            return problem(404, "Not Found", f"{email} is not in the people directory")
        return await fetch(request, user, email, default)

    async def by_token(request: Request, default: tuple[int, int]) -> tuple[PersonFreeBusy, Answer] | Response:
        email = normalize_email(request.path_params["email"])
        try:
            grant = await run_in_threadpool(grant_of, request.path_params["token"])
        except (StoreError, SQLAlchemyError) as exc:
            log.error("secret free/busy URLs: the state store cannot be read: %s", exc)
            return problem(503, "Service Unavailable", "free/busy URLs are unavailable for now")
        if grant is None or not grant.covers(email) or email not in ctx.hub.directory:
            return problem(404, "Not Found", _NO_SUCH_URL)
        return await fetch(request, None, email, default)

    def freebusy_answer(found: tuple[PersonFreeBusy, Answer] | Response) -> Response:
        if isinstance(found, Response):
            return found
        person, answer = found
        cal = vfreebusy(person.busy, person.window, organizer=person.email, uid=f"freebusy-{person.email}@calmesh",
                        stamp=answer.fetched_at)
        error = error_text(person)
        headers = answer.freshness_headers()
        if error:
            cal.walk("VFREEBUSY")[0].add("COMMENT", f"Data missing: {error}")
            headers["X-Calmesh-Error"] = error.encode("ascii", "replace").decode()[:500]
        return Response(cal.to_ical(), media_type=_CALENDAR, headers=headers)

    def feed_answer(found: tuple[PersonFreeBusy, Answer] | Response) -> Response:
        if isinstance(found, Response):
            return found
        person, answer = found
        headers = answer.freshness_headers()
        error = error_text(person)
        if error:
            headers["X-Calmesh-Error"] = error.encode("ascii", "replace").decode()[:500]
        body = feed_calendar(person, ctx.config.privacy.busy_title).to_ical()
        return Response(body, media_type=_CALENDAR, headers=headers)

    async def freebusy(request: Request) -> Response:
        return freebusy_answer(await signed_in(request, FREEBUSY_DAYS))

    async def feed(request: Request) -> Response:
        return feed_answer(await signed_in(request, FEED_DAYS))

    async def secret_freebusy(request: Request) -> Response:
        return freebusy_answer(await by_token(request, FREEBUSY_DAYS))

    async def secret_feed(request: Request) -> Response:
        return feed_answer(await by_token(request, FEED_DAYS))

    return [
        Route("/freebusy/{email}.vfb", freebusy, methods=["GET"]),
        Route("/freebusy/{email}.ifb", freebusy, methods=["GET"]),
        Route("/feeds/{email}.ics", feed, methods=["GET"]),
        Route("/freebusy/{token}/{email}.vfb", secret_freebusy, methods=["GET"]),
        Route("/freebusy/{token}/{email}.ifb", secret_freebusy, methods=["GET"]),
        Route("/feeds/{token}/{email}.ics", secret_feed, methods=["GET"]),
    ]
