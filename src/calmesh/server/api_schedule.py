"""The scheduling part of the JSON API: find a time, book, conflicts and duplicates.

- ``POST /api/v1/find-time``: ranked suggestions (any authenticated user: free/busy only).
- ``POST /api/v1/book``: 201 with the booking; 409 naming who became busy since the suggestion.
  A user may book for an organiser whose details they are granted (``sees_details_of``), since
  booking writes into that person's calendar.
- ``PATCH /api/v1/bookings/{uid}`` (``organizer``, ``start``, ``end``; without ``end`` the meeting
  keeps its length) moves a booked meeting and ``POST /api/v1/bookings/{uid}/cancel``
  (``organizer``, ``reason``) cancels it, under the same grant, and only when ``organizer`` is the
  meeting's organiser (who booked it, as the identity record says; an attendee's copy never makes
  them one): 403 no grant over ``organizer`` or not its organiser, 404 unknown UID, 409 slot taken
  or not changeable, 412 the organiser's copy changed meanwhile (calmesh's own If-Match write
  failed; nothing was changed or sent). Cancelling is a POST with a JSON body rather than a DELETE,
  because the API takes only JSON bodies on writes (:mod:`calmesh.server.csrf`) and bodies on DELETE
  are dropped by some clients and proxies.
- ``GET /api/v1/conflicts`` and ``GET /api/v1/duplicates`` (``person``, ``start``, ``end``): event
  titles only for people the user is granted, never for private events.

Errors are RFC 9457 problem details (the helpers of :mod:`calmesh.server.context`); the OpenAPI
fragment :data:`OPENAPI_PATHS` / :data:`OPENAPI_SCHEMAS` is merged into the served document.
"""

from __future__ import annotations

import json
import logging
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
from calmesh.services.public_errors import log_failures, public_text, publicise

log = logging.getLogger(__name__)
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
_MOVE_FIELDS = {"organizer", "start", "end"}
_CANCEL_FIELDS = {"organizer", "reason"}
_BOOK_FIELDS = {"organizer", "required", "optional", "start", "duration", "summary", "location", "description",
                "buffer_before", "buffer_after"}


def _refusal(exc: BadRequest | scheduling.SchedulingError | ConnectorError, doing: str) -> Response:
    """The answer to a scheduling call that raised: one mapping for every route, most specific
    error first (the booking errors are SchedulingErrors)."""
    if isinstance(exc, BadRequest):
        return problem(exc.status, "Bad Request", exc.detail)
    if isinstance(exc, ConnectorError):
        log.warning("could not %s: %s", doing, exc)
        return problem(502, "Bad Gateway", f"could not {doing}: {public_text(exc)}")
    if isinstance(exc, scheduling.NotOrganiser):
        return problem(403, "Forbidden", str(exc))
    if isinstance(exc, scheduling.BookingNotFound):
        return problem(404, "Not Found", str(exc))
    if isinstance(exc, scheduling.SlotTaken | scheduling.Unchangeable):
        return problem(409, "Conflict", str(exc))
    if isinstance(exc, scheduling.ChangedMeanwhile):
        return problem(412, "Precondition Failed", str(exc))
    return problem(400, "Bad Request", str(exc))


def routes(ctx: ServerContext) -> list[BaseRoute]:
    async def find_time(request: Request) -> Response:
        if ctx.user(request) is None:
            return unauthorized()
        try:
            query, zone = _find_request(ctx, _Body(await request.body(), _FIND_FIELDS))
            found = await run_in_threadpool(scheduling.find_time, ctx.hub, query, now=datetime.now(UTC))
            log_failures((e for p in found.people for e in p.errors), "find-time")
            for person in found.people:
                person.errors = publicise(person.errors)
        except (BadRequest, scheduling.SchedulingError) as exc:
            return _refusal(exc, "search")
        return JSONResponse(scheduling.search_json(found, zone, ctx.details_for(ctx.user(request))))

    async def book(request: Request) -> Response:
        user = ctx.user(request)
        if user is None:
            return unauthorized()
        try:
            body = _Body(await request.body(), _BOOK_FIELDS)
            organizer = body.text("organizer", required=True, limit=320) or ""
            if not ctx.details_for(user)(organizer):
                return problem(403, "Forbidden", f"{user.name} may not book for {organizer} "
                                                 "(needs sees_details_of covering the organiser)")
            start = ctx.parse_time(body.text("start", required=True, limit=60) or "", "start")
            booking_request = scheduling.BookingRequest(
                organizer, body.emails("required"), start, start + body.minutes("duration", 30, 1, 24 * 60),
                body.text("summary", required=True, limit=1000) or "", body.emails("optional"),
                body.text("description"), body.text("location", limit=1000),
                body.minutes("buffer_before", 0, 0, 240), body.minutes("buffer_after", 0, 0, 240))
            booking = await run_in_threadpool(scheduling.book, ctx.hub, booking_request, now=datetime.now(UTC))
        except (BadRequest, scheduling.SchedulingError, ConnectorError) as exc:
            return _refusal(exc, "create the event")
        ctx.cache.forget([booking_request.organizer, *booking_request.required, *booking_request.optional])
        return JSONResponse(scheduling.booking_json(booking), status_code=201)

    async def change(request: Request, fields: set[str],
                     apply: Callable[[str, str, _Body], scheduling.Booking]) -> Response:
        """Move or cancel: the caller needs the same grant over the organiser as for booking."""
        user = ctx.user(request)
        if user is None:
            return unauthorized()
        uid = request.path_params["uid"]
        try:
            if len(uid) > 1000:
                raise BadRequest("the UID is longer than 1000 characters")
            body = _Body(await request.body(), fields)
            organizer = body.text("organizer", required=True, limit=320) or ""
            if not ctx.details_for(user)(organizer):
                return problem(403, "Forbidden", f"{user.name} may not change bookings of {organizer} "
                                                 "(needs sees_details_of covering the organiser)")
            booking = await run_in_threadpool(apply, uid, organizer, body)
        except (BadRequest, scheduling.SchedulingError, ConnectorError) as exc:
            return _refusal(exc, "change the event")
        ctx.cache.forget([d.email for d in booking.deliveries])
        return JSONResponse(scheduling.booking_json(booking))

    def _move(uid: str, organizer: str, body: _Body) -> scheduling.Booking:
        start = ctx.parse_time(body.text("start", required=True, limit=60) or "", "start")
        end_text = body.text("end", limit=60)
        end = ctx.parse_time(end_text, "end") if end_text else None
        return scheduling.move_booking(ctx.hub, uid, organizer, start, end, now=datetime.now(UTC))

    def _cancel(uid: str, organizer: str, body: _Body) -> scheduling.Booking:
        return scheduling.cancel_booking(ctx.hub, uid, organizer, now=datetime.now(UTC),
                                         reason=body.text("reason", limit=1000))

    async def move(request: Request) -> Response:
        return await change(request, _MOVE_FIELDS, _move)

    async def cancel(request: Request) -> Response:
        return await change(request, _CANCEL_FIELDS, _cancel)

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
        analyses = await run_in_threadpool(ctx.analyse, emails, window)
        return JSONResponse({"start": window.start.isoformat(), "end": window.end.isoformat(),
                             "people": [render(a, ctx.zone, details(a.email)) for a in analyses]})

    async def conflicts(request: Request) -> Response:
        return await analysis(request, detection.conflicts_json)

    async def duplicates(request: Request) -> Response:
        return await analysis(request, detection.duplicates_json)

    return [
        Route("/api/v1/find-time", find_time, methods=["POST"]),
        Route("/api/v1/book", book, methods=["POST"]),
        Route("/api/v1/bookings/{uid}", move, methods=["PATCH"]),
        Route("/api/v1/bookings/{uid}/cancel", cancel, methods=["POST"]),
        Route("/api/v1/conflicts", conflicts, methods=["GET"]),
        Route("/api/v1/duplicates", duplicates, methods=["GET"]),
    ]


# ------------------------------------------------------------------------------------ OpenAPI
_PROBLEM = {"description": "Problem details (RFC 9457)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_STR = {"type": "string"}
_NULLABLE_STR = {"type": ["string", "null"]}
_EMAILS = {"type": "array", "maxItems": MAX_ATTENDEES, "items": {"type": "string", "format": "email"}}
_TIME = {"type": "string", "format": "date-time", "description": "ISO-8601; without an offset, the hub's time zone"}
_STRINGS = {"type": "array", "items": _STR}


def _minutes(default: int, low: int, high: int, what: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "default": default, "description": what}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_SCOPE_PARAMETERS = [
    {"name": "person", "in": "query", "required": False, "description": "Email, team:NAME or * (repeatable)",
     "schema": {"type": "array", "items": _STR}, "style": "form", "explode": True},
    {"name": "start", "in": "query", "required": False, "schema": _TIME},
    {"name": "end", "in": "query", "required": False, "schema": _TIME},
]

_UID = {"name": "uid", "in": "path", "required": True, "description": "The meeting's UID (as booking answered)",
        "schema": {"type": "string", "minLength": 1, "maxLength": 1000}}
_CHANGE_ERRORS = {"400": _PROBLEM, "401": _PROBLEM,
                  "403": {**_PROBLEM, "description": "No grant over the organiser named, or the person named is "
                                                     "not the meeting's organiser (an attendee, say)"},
                  "404": {**_PROBLEM, "description": "No meeting with this UID in the organiser's calendar"},
                  "412": {**_PROBLEM, "description": "The organiser's copy changed meanwhile; nothing was sent"},
                  "413": _PROBLEM, "415": _PROBLEM, "429": _PROBLEM, "502": _PROBLEM}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/v1/find-time": {"post": {
        "summary": "Ranked meeting times for attendees on any platform (like Graph findMeetingTimes)",
        "operationId": "findTime",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/FindTimeRequest"}}}},
        "responses": {"200": _json("FindTimeAnswer", "Suggestions, best first"),
                      "400": _PROBLEM, "401": _PROBLEM, "413": _PROBLEM, "429": _PROBLEM},
    }},
    "/api/v1/book": {"post": {
        "summary": "Book on the organiser's platform and invite everyone (one UID everywhere)",
        "operationId": "book",
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/BookRequest"}}}},
        "responses": {"201": _json("Booking", "Booked; how each attendee was reached"),
                      "400": _PROBLEM, "401": _PROBLEM, "403": _PROBLEM,
                      "409": {**_PROBLEM, "description": "The slot became busy for a required attendee"},
                      "413": _PROBLEM, "429": _PROBLEM, "502": _PROBLEM},
    }},
    "/api/v1/bookings/{uid}": {"patch": {
        "summary": "Move a booked meeting: re-checked like a booking, SEQUENCE+1, everyone asked again",
        "operationId": "moveBooking", "parameters": [_UID],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/MoveRequest"}}}},
        "responses": {"200": _json("Booking", "Moved; how each attendee was told"), **_CHANGE_ERRORS,
                      "409": {**_PROBLEM, "description": "The new slot is busy for a required attendee, or the "
                                                         "meeting is cancelled or a recurring series"}},
    }},
    "/api/v1/bookings/{uid}/cancel": {"post": {
        "summary": "Cancel a booked meeting: every copy marked cancelled, iTIP CANCEL to the others",
        "operationId": "cancelBooking", "parameters": [_UID],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CancelRequest"}}}},
        "responses": {"200": _json("Booking", "Cancelled; how each attendee was told"), **_CHANGE_ERRORS,
                      "409": {**_PROBLEM, "description": "Already cancelled"}},
    }},
    "/api/v1/conflicts": {"get": {
        "summary": "Overlapping events of each person across all their platforms",
        "operationId": "conflicts", "parameters": _SCOPE_PARAMETERS,
        "responses": {"200": _json("ConflictsAnswer", "One entry per person"),
                      "400": _PROBLEM, "401": _PROBLEM, "404": _PROBLEM, "429": _PROBLEM},
    }},
    "/api/v1/duplicates": {"get": {
        "summary": "The same meeting present in several calendars, with score and reason",
        "operationId": "duplicates", "parameters": _SCOPE_PARAMETERS,
        "responses": {"200": _json("DuplicatesAnswer", "One entry per person"),
                      "400": _PROBLEM, "401": _PROBLEM, "404": _PROBLEM, "429": _PROBLEM},
    }},
}

_COPY = {"type": "object", "required": ["platform", "calendar", "uid", "summary", "start", "end", "organizer"],
         "properties": {"platform": _STR, "calendar": _STR,
                        "uid": {"type": ["string", "null"],
                                "description": "Only where details are granted; never for private events"},
                        "summary": {"type": ["string", "null"],
                                    "description": "Only where details are granted; never for private events"},
                        "start": _STR, "end": _STR,
                        "organizer": {"type": ["string", "null"],
                                      "description": "Only where details are granted; never for private events"},
                        "remove": {"type": "boolean"}, "reason": _STR}}


def _per_person(key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["start", "end", "people"], "properties": {
        "start": _STR, "end": _STR,
        "people": {"type": "array", "items": {
            "type": "object", "required": ["email", "name", key, "errors", "warnings"],
            "properties": {"email": _STR, "name": _NULLABLE_STR, key: {"type": "array", "items": item},
                           "errors": _STRINGS, "warnings": _STRINGS}}}}}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "FindTimeRequest": {
        "type": "object", "additionalProperties": False, "required": ["organizer", "start", "end"],
        "properties": {
            "organizer": {"type": "string", "format": "email", "description": "Always a required attendee"},
            "required": _EMAILS, "optional": _EMAILS, "start": _TIME, "end": _TIME,
            "duration": _minutes(30, 1, 1440, "Meeting length in minutes"),
            "granularity": _minutes(30, 5, 1440, "Minutes between candidate starts"),
            "buffer_before": _minutes(0, 0, 240, "Minutes kept free before"),
            "buffer_after": _minutes(0, 0, 240, "Minutes kept free after"),
            "minimum_notice": _minutes(0, 0, 10080, "Minutes from now before the earliest start"),
            "max_candidates": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
        },
    },
    "FindTimeAnswer": {
        "type": "object", "required": ["suggestions", "empty_reason", "people"],
        "properties": {
            "suggestions": {"type": "array", "items": {
                "type": "object", "required": ["start", "end", "confidence", "attendees"],
                "properties": {
                    "start": _STR, "end": _STR, "confidence": {"type": "number", "minimum": 0, "maximum": 100},
                    "attendees": {"type": "array", "items": {
                        "type": "object", "required": ["email", "required", "availability", "outside_working_hours"],
                        "properties": {"email": _STR, "required": {"type": "boolean"},
                                       "availability": {"enum": ["free", "tentative", "busy", "oof", "unknown"]},
                                       "outside_working_hours": {"type": "boolean"}}}}}}},
            "empty_reason": _NULLABLE_STR,
            "people": {"type": "array", "items": {
                "type": "object", "required": ["email", "errors", "warnings"],
                "properties": {"email": _STR, "name": _NULLABLE_STR, "platform": _NULLABLE_STR,
                               "timezone": _NULLABLE_STR, "errors": _STRINGS, "warnings": _STRINGS}}},
        },
    },
    "BookRequest": {
        "type": "object", "additionalProperties": False, "required": ["organizer", "start", "summary"],
        "properties": {
            "organizer": {"type": "string", "format": "email"}, "required": _EMAILS, "optional": _EMAILS,
            "start": _TIME, "duration": _minutes(30, 1, 1440, "Meeting length in minutes"),
            "summary": {"type": "string", "minLength": 1, "maxLength": 1000},
            "location": {"type": "string", "maxLength": 1000}, "description": {"type": "string", "maxLength": 10000},
            "buffer_before": _minutes(0, 0, 240, "Minutes that must be free before (re-checked)"),
            "buffer_after": _minutes(0, 0, 240, "Minutes that must be free after (re-checked)"),
        },
    },
    "MoveRequest": {
        "type": "object", "additionalProperties": False, "required": ["organizer", "start"],
        "properties": {"organizer": {"type": "string", "format": "email"}, "start": _TIME,
                       "end": {**_TIME, "description": _TIME["description"] + "; default: the meeting keeps its length"}},
    },
    "CancelRequest": {
        "type": "object", "additionalProperties": False, "required": ["organizer"],
        "properties": {"organizer": {"type": "string", "format": "email"},
                       "reason": {"type": "string", "maxLength": 1000,
                                  "description": "Sent to attendees (COMMENT of the iTIP CANCEL, mail text)"}},
    },
    "Booking": {
        "type": "object", "required": ["uid", "calendar", "id", "deliveries", "warnings", "notices", "adapted"],
        "properties": {
            "uid": _STR, "calendar": _STR, "id": _STR, "warnings": _STRINGS,
            "notices": {**_STRINGS, "description": "What a calendar written to holds another way than asked "
                                                   "(or cannot hold), as a sync run reports it"},
            "adapted": {"type": "array", "items": {
                "type": "object", "required": ["member", "item", "uid", "feature", "detail", "written"],
                "properties": {"member": _STR, "item": _STR, "uid": _STR, "feature": _STR, "detail": _STR,
                               "written": {"type": "boolean"}}}},
            "deliveries": {"type": "array", "items": {
                "type": "object", "required": ["email", "method"],
                "properties": {"email": _STR, "method": {"enum": ["organizer", "calendar", "email", "failed"]},
                               "platform": _NULLABLE_STR, "calendar": _NULLABLE_STR, "detail": _NULLABLE_STR,
                               "owed": {"type": "boolean",
                                        "description": "The write into the attendee's calendar failed and is made "
                                                       "again once its platform answers"}}}},
        },
    },
    "ConflictsAnswer": _per_person("conflicts", {
        "type": "object", "required": ["start", "end", "platforms", "cross_platform", "events"],
        "properties": {"start": _STR, "end": _STR, "platforms": _STRINGS, "cross_platform": {"type": "boolean"},
                       "events": {"type": "array", "items": _COPY, "minItems": 2, "maxItems": 2}}}),
    "DuplicatesAnswer": _per_person("duplicates", {
        "type": "object", "required": ["score", "reason", "platforms", "same_uid", "copies"],
        "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1}, "reason": _STR,
                       "platforms": _STRINGS, "same_uid": {"type": "boolean"},
                       "copies": {"type": "array", "items": _COPY}, "decisions": {"type": "array", "items": _COPY}}}),
}
