"""The JSON API: ``POST /api/v1/freebusy``, ``GET /api/v1/people`` and their OpenAPI document.

The OpenAPI document is written by hand, next to the code it describes, and the tests run
schemathesis against it: what it promises is what the handlers answer.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from datetime import datetime, timedelta, tzinfo
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from calmesh.model import PersonFreeBusy
from calmesh.server.context import MAX_ATTENDEES, BadRequest, ServerContext, problem, unauthorized
from calmesh.services.answer_json import person_json_bytes


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
    if name not in body:
        if required:
            raise BadRequest(f"missing field {name!r}")
        return None
    value = body[name]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise BadRequest(f"field {name!r} has the wrong type")
    return value


def _parse_request(ctx: ServerContext, raw: bytes) -> tuple[list[str], datetime, datetime, int]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = set(body) - {"attendees", "start", "end", "interval"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    attendees = _field(body, "attendees", list)
    if not attendees or not all(isinstance(a, str) and a.strip() for a in attendees):
        raise BadRequest("attendees must be a non-empty list of email addresses")
    if len(attendees) > MAX_ATTENDEES:
        raise BadRequest(f"at most {MAX_ATTENDEES} attendees per request")
    start = ctx.parse_time(_field(body, "start", str), "start")
    end = ctx.parse_time(_field(body, "end", str), "end")
    interval = _field(body, "interval", int, required=False)
    if interval is None:
        interval = 30
    if not 1 <= interval <= 1440:
        raise BadRequest("interval must be between 1 and 1440 minutes")
    return list(dict.fromkeys(a.strip() for a in attendees)), start, end, interval


class _Rendered:
    """Each person's JSON, as bytes, kept while their cached answer lives.

    Why: measured under ``wrk`` (bench/warm_wrk.py), rendering a cached answer (the busy list,
    the availability-view digits, JSON encoding) was over half of a warm request's time. A
    cached answer is one object for as long as its entry lives, so its rendering for a window,
    zone and interval is kept beside it (and dropped with it: the object is held and compared, not
    only its id). Answers with errors are never cached, so never kept here either."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._memo: OrderedDict[tuple[int, Any, tzinfo, timedelta, bool], tuple[PersonFreeBusy, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def person(self, cached: PersonFreeBusy, shown: PersonFreeBusy, zone: tzinfo, step: timedelta,
               details: bool) -> bytes:
        """``shown`` (``cached`` cut to the window asked) as JSON, for an asker who may see its
        details or not (warnings are rendered per asker: the flag is part of the key)."""
        key = (id(cached), shown.window, zone, step, details)
        with self._lock:
            hit = self._memo.get(key)
            if hit is not None and hit[0] is cached:
                self._memo.move_to_end(key)
                return hit[1]
        data = person_json_bytes(shown, zone, step, details)
        if not cached.errors:
            with self._lock:
                self._memo[key] = (cached, data)
                while len(self._memo) > self._size:
                    self._memo.popitem(last=False)
        return data


def routes(ctx: ServerContext) -> list[BaseRoute]:
    rendered = _Rendered()

    async def freebusy(request: Request) -> Response:
        user = ctx.user(request)
        if user is None:
            return unauthorized()
        try:
            attendees, start, end, interval = _parse_request(ctx, await request.body())
            window = ctx.window(start, end)
            if window.duration // timedelta(minutes=interval) > 100_000:
                raise BadRequest("interval too small for this window (more than 100000 intervals)")
        except BadRequest as exc:
            return problem(exc.status, "Bad Request", exc.detail)
        answer = ctx.cached_freebusy(user, attendees, window)
        if answer is None:  # something to fetch: off the event loop
            answer = await run_in_threadpool(ctx.freebusy, user, attendees, window)
        zone = start.tzinfo or ctx.zone
        step = timedelta(minutes=interval)
        details = ctx.details_for(user)
        people = b",".join(rendered.person(e.answer, p, zone, step, details(p.email))
                           for e, p in zip(answer.entries, answer.people, strict=True))
        return Response(b'{"people":[' + people + b"]}", media_type="application/json",
                        headers=answer.freshness_headers())

    async def people(request: Request) -> Response:
        if ctx.user(request) is None:
            return unauthorized()
        return JSONResponse({"people": [{"email": p.email, "name": p.name, "platform": p.platform, "team": p.team}
                                        for p in ctx.hub.directory]})

    async def openapi(_request: Request) -> Response:
        return JSONResponse(OPENAPI)

    return [
        Route("/api/v1/freebusy", freebusy, methods=["POST"]),
        Route("/api/v1/people", people, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
    ]


_PROBLEM = {"description": "Problem details (RFC 9457)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
_NULLABLE_STR = {"type": ["string", "null"]}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "calmesh hub", "version": "1",
             "description": "Free/busy of everyone in the directory, whatever platform holds their calendar."},
    "security": [{"basic": []}, {"bearer": []}],
    "paths": {
        "/api/v1/freebusy": {"post": {
            "summary": "Merged free/busy of some people over a window",
            "operationId": "freebusy",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/FreeBusyRequest"}}}},
            "responses": {
                "200": {"description": "One entry per attendee, in the order asked",
                        "headers": {"Age": {"schema": {"type": "string"}},
                                    "X-Calmesh-Fetched-At": {"schema": {"type": "string"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FreeBusyAnswer"}}}},
                "400": _PROBLEM, "401": _PROBLEM, "413": _PROBLEM, "429": _PROBLEM,
            },
        }},
        "/api/v1/people": {"get": {
            "summary": "The people directory",
            "operationId": "people",
            "responses": {
                "200": {"description": "Everyone calmesh answers for",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/People"}}}},
                "401": _PROBLEM, "429": _PROBLEM,
            },
        }},
    },
    "components": {
        "securitySchemes": {"basic": {"type": "http", "scheme": "basic"},
                            "bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "FreeBusyRequest": {
                "type": "object", "additionalProperties": False,
                "required": ["attendees", "start", "end"],
                "properties": {
                    "attendees": {"type": "array", "minItems": 1, "maxItems": MAX_ATTENDEES,
                                  "items": {"type": "string", "minLength": 1, "format": "email"}},
                    "start": {"type": "string", "format": "date-time",
                              "description": "ISO-8601; without an offset, the hub's time zone"},
                    "end": {"type": "string", "format": "date-time"},
                    "interval": {"type": "integer", "minimum": 1, "maximum": 1440, "default": 30,
                                 "description": "Minutes per availability_view digit"},
                },
            },
            "Busy": {
                "type": "object", "required": ["start", "end", "type"],
                "properties": {
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                    "type": {"type": "string", "enum": ["tentative", "busy", "oof", "unknown"]},
                    "summary": {"type": "string", "description": "Only where details are granted; never for private events"},
                    "location": {"type": "string"},
                },
            },
            "WorkingHours": {
                "type": ["object", "null"], "required": ["timezone", "periods"],
                "properties": {
                    "timezone": {"type": "string"},
                    "periods": {"type": "array", "items": {
                        "type": "object", "required": ["days", "start", "end"],
                        "properties": {"days": {"type": "array", "items": {"type": "string"}},
                                       "start": {"type": "string"}, "end": {"type": "string"}}}},
                },
            },
            "PersonFreeBusy": {
                "type": "object",
                "required": ["email", "name", "platform", "busy", "availability_view", "working_hours", "error"],
                "properties": {
                    "email": {"type": "string"},
                    "name": _NULLABLE_STR,
                    "platform": _NULLABLE_STR,
                    "busy": {"type": "array", "items": {"$ref": "#/components/schemas/Busy"}},
                    "availability_view": {"type": "string", "pattern": "^[0-4]*$",
                                          "description": "0 free, 1 tentative, 2 busy, 3 out of office, 4 no data"},
                    "working_hours": {"$ref": "#/components/schemas/WorkingHours"},
                    "error": {"type": ["string", "null"], "description": "Why this person's data is missing"},
                    "warnings": {"type": "array", "items": {"type": "string"},
                                 "description": "Items that could not be fully read: named only where details "
                                                "are granted (never a private event), else counted"},
                },
            },
            "FreeBusyAnswer": {
                "type": "object", "required": ["people"],
                "description": "Also what `calmesh freebusy --format json` prints, with the window asked "
                               "(`start`, `end`): one schema for both doors.",
                "properties": {"people": {"type": "array", "items": {"$ref": "#/components/schemas/PersonFreeBusy"}},
                               "start": {"type": "string", "format": "date-time",
                                         "description": "Command line only: the window's start"},
                               "end": {"type": "string", "format": "date-time",
                                       "description": "Command line only: the window's end"}},
            },
            "People": {
                "type": "object", "required": ["people"],
                "properties": {"people": {"type": "array", "items": {
                    "type": "object", "required": ["email", "name", "platform"],
                    "properties": {"email": {"type": "string"}, "name": _NULLABLE_STR,
                                   "platform": {"type": "string"}, "team": _NULLABLE_STR}}}},
            },
            "Problem": {
                "type": "object", "required": ["title", "status"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                               "status": {"type": "integer"}, "detail": {"type": "string"}},
            },
        },
    },
}

# The scheduling door (find-time, book, conflicts, duplicates) documents its own operations.
from calmesh.server.api_schedule import OPENAPI_PATHS, OPENAPI_SCHEMAS  # noqa: E402

OPENAPI["paths"].update(OPENAPI_PATHS)
OPENAPI["components"]["schemas"].update(OPENAPI_SCHEMAS)
