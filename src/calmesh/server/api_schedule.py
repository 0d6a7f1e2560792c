"""The scheduling part of the JSON API: find a time, book, conflicts and duplicates.

- ``POST /api/v1/find-time``: ranked suggestions (any authenticated user: free/busy only).
- ``POST /api/v1/book``: 201 with the booking; 409 naming who became busy since the suggestion.
  A user may book for an organiser whose details they are granted (``sees_details_of``), since
  booking writes into that person's calendar.
- ``GET /api/v1/conflicts`` and ``GET /api/v1/duplicates`` (``person``, ``start``, ``end``): event
  titles only for people the user is granted, never for private events.

Errors are RFC 9457 problem details (the helpers of :mod:`calmesh.server.context`); the OpenAPI
fragment :data:`OPENAPI_PATHS` / :data:`OPENAPI_SCHEMAS` is merged into the served document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from calmesh.connectors.base import ConnectorError
from calmesh.directory import UnknownPerson
from calmesh.model import Window
from calmesh.server.auth import User
from calmesh.server.context import MAX_ATTENDEES, BadRequest, ServerContext, problem, unauthorized
from calmesh.services import detection, scheduling

_DEFAULT_DAYS = 7


class _Body:
    """A JSON object body, read field by field with clear messages; unknown fields are refused."""

    def __init__(self, raw: bytes, allowed: set[str]) -> None:
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        unknown = set(data) - allowed
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
        self.data = data

    def get(self, name: str, kind: type, default: Any = None, *, required: bool = False) -> Any:
        if name not in self.data or self.data[name] is None:
            if required:
                raise BadRequest(f"missing field {name!r}")
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise BadRequest(f"field {name!r} must be a {kind.__name__}")
        return value

    def number(self, name: str, default: int, low: int, high: int) -> int:
        value = self.get(name, int, default)
        if not low <= value <= high:
            raise BadRequest(f"{name} must be between {low} and {high}")
        return int(value)

    def minutes(self, name: str, default: int, low: int = 0, high: int = 7 * 24 * 60) -> timedelta:
        return timedelta(minutes=self.number(name, default, low, high))

    def emails(self, name: str, *, required: bool = False) -> tuple[str, ...]:
        value = self.get(name, list, [], required=required)
        if not all(isinstance(v, str) and "@" in v and len(v) <= 320 for v in value):
            raise BadRequest(f"{name} must be a list of email addresses")
        if required and not value:
            raise BadRequest(f"{name} must not be empty")
        if len(value) > MAX_ATTENDEES:
            raise BadRequest(f"at most {MAX_ATTENDEES} addresses in {name}")
        return tuple(dict.fromkeys(v.strip() for v in value))

    def text(self, name: str, *, required: bool = False, limit: int = 10_000) -> str | None:
        value = self.get(name, str, None, required=required)
        if value is not None and (len(value) > limit or (required and not value.strip())):
            raise BadRequest(f"{name} must be a non-empty text of at most {limit} characters")
        return value


def _window(ctx: ServerContext, start: str | None, end: str | None) -> Window:
    begin = ctx.parse_time(start, "start") if start else ctx.default_window(0, _DEFAULT_DAYS).start
    finish = ctx.parse_time(end, "end") if end else begin + timedelta(days=_DEFAULT_DAYS)
    return ctx.window(begin, finish)


def _find_request(ctx: ServerContext, body: _Body) -> tuple[scheduling.MeetingRequest, tzinfo]:
    """The search, and the zone to answer in: the one the client wrote ``start`` in."""
    start = ctx.parse_time(body.text("start", required=True, limit=60) or "", "start")
    end = ctx.parse_time(body.text("end", required=True, limit=60) or "", "end")
    query = scheduling.MeetingRequest(
        organizer=body.text("organizer", required=True, limit=320) or "",
        required=body.emails("required"),
        optional=body.emails("optional"),
        duration=body.minutes("duration", 30, 1, 24 * 60),
        window=ctx.window(start, end),
        granularity=body.minutes("granularity", 30, 5, 24 * 60),
        buffer_before=body.minutes("buffer_before", 0, 0, 240),
        buffer_after=body.minutes("buffer_after", 0, 0, 240),
        minimum_notice=body.minutes("minimum_notice", 0),
        max_candidates=body.number("max_candidates", 10, 1, 100),
    )
    return query, start.tzinfo or ctx.zone


_FIND_FIELDS = {"organizer", "required", "optional", "duration", "start", "end", "granularity", "buffer_before",
                "buffer_after", "minimum_notice", "max_candidates"}
_BOOK_FIELDS = {"organizer", "required", "optional", "start", "duration", "summary", "location", "description",
                "buffer_before", "buffer_after"}


def routes(ctx: ServerContext) -> list[BaseRoute]:
    async def find_time(request: Request) -> Response:
        if ctx.user(request) is None:
            return unauthorized()
        try:
            query, zone = _find_request(ctx, _Body(await request.body(), _FIND_FIELDS))
            found = await run_in_threadpool(scheduling.find_time, ctx.hub, query, now=datetime.now(UTC))
        except BadRequest as exc:
            return problem(exc.status, "Bad Request", exc.detail)
        except scheduling.SchedulingError as exc:
            return problem(400, "Bad Request", str(exc))
        return JSONResponse(scheduling.search_json(found, zone))

    async def book(request: Request) -> Response:
        user = ctx.user(request)
        if user is None:
            return unauthorized()
        try:
            body = _Body(await request.body(), _BOOK_FIELDS)
            organizer = body.text("organizer", required=True, limit=320) or ""
            if not ctx.hub.directory.matches(organizer, user.sees_details_of):
                return problem(403, "Forbidden", f"{user.name} may not book for {organizer} "
                                                 "(needs sees_details_of covering the organiser)")
            start = ctx.parse_time(body.text("start", required=True, limit=60) or "", "start")
            booking_request = scheduling.BookingRequest(
                organizer, body.emails("required"), start, start + body.minutes("duration", 30, 1, 24 * 60),
                body.text("summary", required=True, limit=1000) or "", body.emails("optional"),
                body.text("description"), body.text("location", limit=1000),
                body.minutes("buffer_before", 0, 0, 240), body.minutes("buffer_after", 0, 0, 240))
            booking = await run_in_threadpool(scheduling.book, ctx.hub, booking_request, now=datetime.now(UTC))
        except BadRequest as exc:
            return problem(exc.status, "Bad Request", exc.detail)
        except scheduling.SlotTaken as exc:
            return problem(409, "Conflict", str(exc))
        except scheduling.SchedulingError as exc:
            return problem(400, "Bad Request", str(exc))
        except ConnectorError as exc:
            return problem(502, "Bad Gateway", f"could not create the event: {exc}")
        return JSONResponse(scheduling.booking_json(booking), status_code=201)

    def scope(request: Request, user: User) -> tuple[list[str], Window, Callable[[str], bool]]:
        """Who (``person``, default everyone), when, and whose titles the user may see."""
        params = request.query_params
        unknown = set(params) - {"person", "start", "end"}
        if unknown:
            raise BadRequest(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        window = _window(ctx, params.get("start"), params.get("end"))
        try:
            people = ctx.hub.directory.select(params.getlist("person") or ["*"])
        except UnknownPerson as exc:
            raise BadRequest(str(exc), 404) from None
        return [p.email for p in people], window, ctx.details_for(user)

    async def analysis(request: Request, render: Callable[..., dict[str, Any]]) -> Response:
        user = ctx.user(request)
        if user is None:
            return unauthorized()
        try:
            emails, window, details = scope(request, user)
        except BadRequest as exc:
            return problem(exc.status, "Not Found" if exc.status == 404 else "Bad Request", exc.detail)
        analyses = await run_in_threadpool(detection.analyse_people, ctx.hub, emails, window)
        return JSONResponse({"start": window.start.isoformat(), "end": window.end.isoformat(),
                             "people": [render(a, ctx.zone, details(a.email)) for a in analyses]})

    async def conflicts(request: Request) -> Response:
        return await analysis(request, detection.conflicts_json)

    async def duplicates(request: Request) -> Response:
        return await analysis(request, detection.duplicates_json)

    return [
        Route("/api/v1/find-time", find_time, methods=["POST"]),
        Route("/api/v1/book", book, methods=["POST"]),
        Route("/api/v1/conflicts", conflicts, methods=["GET"]),
        Route("/api/v1/duplicates", duplicates, methods=["GET"]),
    ]
