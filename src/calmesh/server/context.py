"""What every door shares: the hub, the cache, the authenticator, privacy, and error answers.

Each door (JSON API, VFREEBUSY URLs, EWS, CalDAV scheduling, web page) only translates its
protocol to one call, :meth:`ServerContext.freebusy`, so caching, privacy and metrics behave the
same whatever protocol a client speaks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from calmesh.directory import UnknownPerson
from calmesh.model import PersonFreeBusy, Window, normalize_email
from calmesh.server.auth import CHALLENGES, SCOPE_KEY, Authenticator, User
from calmesh.server.metrics import Metrics
from calmesh.services import availability, detection
from calmesh.services.cache import (
    Cached,
    CacheKey,
    FreeBusyCache,
    SharedStore,
    block_cover,
    narrowed,
)
from calmesh.services.health import Check, PlatformHealth
from calmesh.services.hub import Hub
from calmesh.services.public_errors import log_failures, publicise
from calmesh.store.checks import PlatformChecks
from calmesh.store.db import StoreError, open_store
from calmesh.timezones import zoneinfo

log = logging.getLogger(__name__)

MAX_ATTENDEES = 100
"""Per request, as Exchange's GetUserAvailability: beyond this a client should split its query."""


MIN_YEAR, MAX_YEAR = 1900, 2500
"""Calendar arithmetic near datetime's limits overflows; no calendar needs times outside these."""


class BadRequest(ValueError):
    """Input a door refuses with a 4xx and a message saying what to fix."""

    def __init__(self, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def problem(status: int, title: str, detail: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """An RFC 9457 problem-details answer."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def unauthorized(detail: str = "authentication required") -> Response:
    response = problem(401, "Unauthorized", detail)
    for challenge in CHALLENGES:
        response.headers.append("WWW-Authenticate", challenge)
    return response


@dataclass(frozen=True, slots=True)
class Answer:
    """People's free/busy plus how fresh it is."""

    people: list[PersonFreeBusy]
    entries: list[Cached]
    cache: FreeBusyCache

    @property
    def fetched_at(self) -> datetime:
        return min(e.fetched_at for e in self.entries)

    def freshness_headers(self) -> dict[str, str]:
        """``Cache-Control`` (how long it stays fresh), ``Age`` and ``X-Calmesh-Fetched-At``."""
        if not self.entries:
            return {"Cache-Control": "private, no-cache"}
        age = max(self.cache.age(e) for e in self.entries)
        remaining = min(self.cache.remaining(e) for e in self.entries)
        return {
            "Cache-Control": f"private, max-age={int(remaining)}",
            "Age": str(int(age)),
            "X-Calmesh-Fetched-At": self.fetched_at.isoformat(timespec="seconds"),
        }


class ServerContext:
    def __init__(self, hub: Hub, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.hub = hub
        self.config = hub.config
        self.auth = Authenticator(self.config.server.users)
        shared = SharedStore(self.config.hub.cache) if self.config.hub.cache else None
        self.cache = FreeBusyCache(self.config.server.cache_ttl, clock=clock, shared=shared)
        hub.on_change(self.cache.forget)
        self.metrics = Metrics()
        self.health = PlatformHealth(self._keep_check)
        self._checks: list[PlatformChecks] = []

    # --------------------------------------------------------------------------- who and what
    def user(self, request: Request) -> User | None:
        """Who the request's ``Authorization`` proved: checked once, off the event loop and within
        the sign-in limits, by :class:`calmesh.server.limits.LimitsMiddleware`."""
        return request.scope.get(SCOPE_KEY)

    def details_for(self, user: User | None) -> Callable[[str], bool]:
        """Whether ``user`` may see titles/locations of a person (never for private events:
        ``busy_from_events`` strips those whatever this says)."""
        if user is None:
            return lambda _email: False
        if self.config.privacy.default == "details":
            return lambda _email: True
        grants = user.sees_details_of
        directory = self.hub.directory
        return lambda email: bool(grants) and directory.matches(email, grants)

    @property
    def zone(self) -> tzinfo:
        return zoneinfo(self.config.hub.timezone)

    # --------------------------------------------------------------------------- windows
    def parse_time(self, text: str, what: str) -> datetime:
        """ISO-8601 date or date-time; a time without offset is read in the hub's zone."""
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            try:
                day = date.fromisoformat(text.strip())
            except ValueError:
                raise BadRequest(f"{what} {text[:60]!r} is not an ISO-8601 date or date-time") from None
            value = datetime(day.year, day.month, day.day)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        try:
            year = value.astimezone(UTC).year
        except (OverflowError, ValueError):
            year = 0
        if not MIN_YEAR <= year <= MAX_YEAR:
            raise BadRequest(f"{what} {text[:60]!r} is outside the years {MIN_YEAR}-{MAX_YEAR}")
        return value

    def window(self, start: datetime, end: datetime) -> Window:
        if end <= start:
            raise BadRequest("end must be after start")
        limit = self.config.server.max_window_days
        if end - start > timedelta(days=limit):
            raise BadRequest(f"the window is longer than {limit} days (server.max_window_days)")
        try:
            return Window(start, end)
        except (OverflowError, ValueError) as exc:
            raise BadRequest(str(exc)) from None

    def default_window(self, past_days: int, future_days: int) -> Window:
        """From local midnight ``past_days`` ago, ``future_days`` ahead (bounded by max_window_days)."""
        today = datetime.now(self.zone).date()
        start = datetime.combine(today - timedelta(days=past_days), datetime.min.time(), tzinfo=self.zone)
        days = min(past_days + future_days, self.config.server.max_window_days)
        return Window(start, start + timedelta(days=days))

    # --------------------------------------------------------------------------- the one query
    def freebusy(self, user: User | None, emails: Sequence[str], window: Window, *,
                 working_hours: bool = False, details: bool = True) -> Answer:
        """Free/busy for ``emails`` as ``user`` may see it, through the cache. Blocking (the
        fan-out runs on threads): doors call it with ``run_in_threadpool``."""
        allowed, cover, keys = self._keys(user, emails, window, working_hours, details)

        def fetch(missing: list[str]) -> list[PersonFreeBusy]:
            started = time.perf_counter()
            answers = availability.freebusy(self.hub, missing, cover, working_hours=working_hours,
                                            details_for=allowed)
            self.metrics.upstream(time.perf_counter() - started, answers)
            self.health.record(self._platforms_of(missing), answers)
            log_failures((e for a in answers for e in a.errors), "free/busy")
            for answer in answers:  # what is cached is what every door may show
                answer.errors = publicise(answer.errors)
            return answers

        return self._answer(self.cache.get_many(keys, fetch), window)

    def cached_freebusy(self, user: User | None, emails: Sequence[str], window: Window, *,
                        working_hours: bool = False, details: bool = True) -> Answer | None:
        """:meth:`freebusy` when every answer is fresh in this process's cache, else None: never
        blocks, so a door answers a warm request on its event loop without a thread hop."""
        entries = self.cache.peek(self._keys(user, emails, window, working_hours, details)[2])
        return None if entries is None else self._answer(entries, window)

    def _keys(self, user: User | None, emails: Sequence[str], window: Window, working_hours: bool,
              details: bool) -> tuple[Callable[[str], bool], Window, list[CacheKey]]:
        allowed = self.details_for(user) if details else self.details_for(None)
        cover = block_cover(window)  # whole days: nearby windows share one fetch and one entry
        return allowed, cover, [CacheKey(normalize_email(e), cover, working_hours, allowed(e)) for e in emails]

    def _answer(self, entries: list[Cached], window: Window) -> Answer:
        self.metrics.cache(sum(e.hit for e in entries), sum(not e.hit for e in entries))
        return Answer([narrowed(e.answer, window) for e in entries], entries, self.cache)

    def analyse(self, emails: Sequence[str], window: Window) -> list[detection.PersonAnalysis]:
        """Conflicts and duplicates of ``emails`` (blocking), with platform failures in public words
        and their causes logged, as :meth:`freebusy` does."""
        analyses = detection.analyse_people(self.hub, emails, window)
        log_failures((e for a in analyses for e in a.errors), "conflicts")
        for analysis in analyses:
            analysis.errors = publicise(analysis.errors)
        return analyses

    def _keep_check(self, platform: str, check: Check) -> None:
        """A platform's new state, in the state store for ``calmesh status`` (on the fan-out's
        thread; a store that cannot be written is logged, never fails the answer)."""
        try:
            if not self._checks:
                self._checks.append(PlatformChecks(open_store(self.config.state_url())))
            self._checks[0].save(platform, check.at, check.error)
        except (StoreError, SQLAlchemyError) as exc:
            log.error("the state store cannot record %s's state: %s", platform, exc)

    def _platforms_of(self, emails: Sequence[str]) -> set[str]:
        platforms: set[str] = set()
        for email in emails:
            try:
                platforms.update(s.platform for s in self.hub.directory.get(email).sources)
            except UnknownPerson:
                continue
        return platforms
