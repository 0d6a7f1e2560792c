"""The one interface every calendar platform implements, its errors, and the retry helper.

Modelled on vdirsyncer's storage interface: a connector lists calendars, reads items, reports
changes since a token, and writes with If-Match so that nothing is overwritten blindly. Connectors
are synchronous (the libraries behind them, ``caldav`` and ``exchangelib``, are); services fan out
across platforms on threads with a per-platform timeout.

A connector never imports a door (server, CLI) and never decides anything: it translates.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from calmesh import cancel
from calmesh.model import (
    CalendarInfo,
    CalendarItem,
    ChangeSet,
    Event,
    ItemRef,
    PersonFreeBusy,
    Problem,
    Window,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


# --------------------------------------------------------------------------------------- errors
class ConnectorError(Exception):
    """Base of every error a connector raises; always names the platform."""

    def __init__(self, platform: str, message: str, *, item: str | None = None, setting: str | None = None) -> None:
        self.platform = platform
        self.message = message
        self.item = item
        self.setting = setting
        """The ``[platforms.NAME]`` setting to fix (``url``, ``password_env``...), when one is to blame:
        the CLI names it (``calmesh.cli.errors``); the server doors do not show it."""
        where = f"{platform}: {item}: " if item else f"{platform}: "
        super().__init__(where + message)

    def problem(self) -> Problem:
        return Problem(self.platform, self.message, self.item, setting=self.setting)


# Library failures as plain words. Transport errors reach us wrapped by requests, urllib3, niquests
# and exchangelib, each adding its own text ("HTTPConnectionPool(...): Max retries exceeded ...
# NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f...>')"); what a person can
# act on is the root cause, found in the chain of causes or, when a library re-raised it as text
# (exchangelib's "Reraised from ConnectionError(...)"), in that text. First match wins.
_CAUSES: tuple[tuple[type[BaseException] | None, tuple[str, ...], str], ...] = (
    (ConnectionRefusedError, ("connection refused", "errno 111", "errno 61"), "connection refused (nothing listens there)"),
    (None, ("name or service not known", "nodename nor servname", "getaddrinfo failed",
            "temporary failure in name resolution", "no address associated", "failed to resolve"),
     "host name not found"),
    (None, ("certificate verify failed", "certificate_verify_failed", "sslcertverificationerror"),
     "TLS certificate not trusted"),
    (None, ("wrong version number", "ssl:", "sslerror"), "TLS handshake failed (https to a plain http port?)"),
    (ConnectionResetError, ("connection reset", "errno 104", "remotedisconnected", "connection aborted"),
     "connection closed by the server"),
    (TimeoutError, ("timed out", "timeout", "errno 110"), "no answer in time"),
    (None, ("network is unreachable", "no route to host", "errno 101", "errno 113"), "network unreachable"),
)


def plain_cause(exc: BaseException) -> str | None:
    """The root cause of a transport failure in plain words (``"connection refused (nothing listens
    there)"``), or None when it is none of the known ones. Never library text: callers show it."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 12:
        seen.append(current)
        current = current.__cause__ or current.__context__
    for kind, _, words in _CAUSES:  # a typed cause anywhere in the chain is the surest sign
        if kind is not None and any(isinstance(e, kind) for e in seen):
            return words
    text = " ".join(f"{type(e).__name__} {e}" for e in seen).lower()
    for _, needles, words in _CAUSES:
        if any(n in text for n in needles):
            return words
    return None


class AuthenticationError(ConnectorError):
    """Credentials refused or missing: retrying will not help."""


class NotFoundError(ConnectorError):
    """The calendar, item or mailbox does not exist on the platform."""


class PreconditionFailed(ConnectorError):
    """If-Match / ChangeKey mismatch: somebody changed the item since we read it."""


class UnsupportedOperation(ConnectorError):
    """The platform (or this connector) cannot do this: e.g. writing to a read-only ICS feed."""


class TransientError(ConnectorError):
    """A failure worth retrying: timeouts, 5xx, throttling. ``retry_after`` in seconds if known."""

    def __init__(self, platform: str, message: str, *, retry_after: float | None = None, item: str | None = None,
                 setting: str | None = None) -> None:
        super().__init__(platform, message, item=item, setting=setting)
        self.retry_after = retry_after


class InvalidTokenError(ConnectorError):
    """The change token is no longer accepted (expired sync-token, invalid SyncState, delta 410):
    the caller falls back to a full listing."""


class InvalidDataError(ConnectorError):
    """One item could not be parsed or written: quarantine it and carry on with the rest."""


class CannotHold(InvalidDataError):
    """The platform has no faithful form for a feature of this item (``feature``): it is not
    written, rather than written changed (an endless series whose rule the platform lacks)."""

    def __init__(self, platform: str, feature: str, message: str, *, item: str | None = None) -> None:
        super().__init__(platform, message, item=item)
        self.feature = feature


@dataclass(frozen=True, slots=True)
class Adaptation:
    """A feature of an item its platform cannot hold as it is, and the form written instead
    (``feature`` names it the iCalendar way: ``RRULE``, ``RANGE=THISANDFUTURE``, ``VALARM``,
    ``VTIMEZONE``): same occurrences, said aloud, never a silent change."""

    feature: str
    detail: str


# --------------------------------------------------------------------------------------- retry
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter that honours a server's Retry-After."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        return min(self.base_delay * (2**attempt) * (0.5 + random.random() / 2), self.max_delay)


class RetryBudgetSpent(TransientError):
    """The run's retry budget for this platform is spent: give up on it until the next run.
    Transient (the next run tries again), so callers that fall back on other requests only for
    lasting refusals do not; :func:`with_retries` never retries it."""


class RetryBudget:
    """The transient failures one sync run accepts from each platform, whatever retry loop
    meets them. Loops nest (the engine retries a connector call that retries its own HTTP
    requests), so per-loop attempts multiply: a hanging server with a 5 s timeout cost 16
    attempts and 95-100 s. Every :func:`with_retries` running under :func:`retry_budget` charges
    the same budget, so a platform costs at most ``failures`` timeouts per run."""

    def __init__(self, failures: int = 3) -> None:
        self.failures = max(1, failures)
        self._spent: dict[str, int] = {}
        self._lock = threading.Lock()

    def exhausted(self, platform: str) -> bool:
        with self._lock:
            return self._spent.get(platform, 0) >= self.failures

    def charge(self, platform: str) -> bool:
        """Count one failure of ``platform``; whether a retry is still allowed."""
        with self._lock:
            self._spent[platform] = self._spent.get(platform, 0) + 1
            return self._spent[platform] < self.failures

    def check(self, platform: str) -> None:
        """Fail fast, without a request, once ``platform``'s budget is spent."""
        if self.exhausted(platform):
            raise RetryBudgetSpent(platform, f"gave up for this run after {self.failures} failed attempts")


_BUDGET: ContextVar[RetryBudget | None] = ContextVar("calmesh_retry_budget", default=None)


@contextmanager
def retry_budget(budget: RetryBudget) -> Iterator[None]:
    """Charge every :func:`with_retries` in this context (and in contexts copied from it, see
    :func:`contextvars.copy_context`) to ``budget``."""
    token = _BUDGET.set(budget)
    try:
        yield
    finally:
        _BUDGET.reset(token)


def check_budget(platform: str) -> None:
    """Raise :class:`RetryBudgetSpent` when the current retry budget for ``platform`` is spent:
    a call to a platform the run has given up on fails before it is sent."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.check(platform)


def with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, TransientError, float], None] | None = None,
) -> T:
    """Run ``call``; on :class:`TransientError` wait and retry, at most ``policy.attempts`` times,
    and never beyond the current :class:`RetryBudget` (if any) for the failing platform."""
    budget = _BUDGET.get()
    for attempt in range(policy.attempts):
        try:
            return call()
        except RetryBudgetSpent:
            raise
        except TransientError as exc:
            if budget is not None and not budget.charge(exc.platform):
                raise RetryBudgetSpent(exc.platform, f"gave up for this run after {budget.failures} "
                                                     f"failed attempts: {exc.message}", item=exc.item,
                                       setting=exc.setting) from exc
            if attempt == policy.attempts - 1:
                raise
            wait = policy.delay(attempt, exc.retry_after)
            log.info("%s; retry %d/%d in %.2fs", exc, attempt + 1, policy.attempts - 1, wait)
            if on_retry is not None:
                on_retry(attempt, exc, wait)
            sleep(wait)
    raise AssertionError("unreachable")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from an HTTP Retry-After header (delta-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


# --------------------------------------------------------------------------------------- tokens
class AccessTokens:
    """OAuth2 access tokens per subject (the user acted as; None for plain client credentials),
    fetched lazily and refreshed a minute before they expire, or on demand after a 401."""

    def __init__(self, fetch: Callable[[str | None], tuple[str, float]], *, margin: float = 60.0) -> None:
        self._fetch = fetch
        self._margin = margin
        self._cache: dict[str | None, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, subject: str | None = None, force: bool = False, *, rejected: str | None = None) -> str:
        """A valid token; ``fetch(subject)`` returns ``(token, lifetime in seconds)``.

        ``rejected``: the token a service just refused (401). A new one is fetched only if that is
        still the cached one: when several writer threads meet the same expiry, one fetches and
        the others take its token instead of each asking the token endpoint again."""
        with self._lock:
            cached = self._cache.get(subject)
            stale = rejected is not None and cached is not None and cached[0] == rejected
            if force or stale or cached is None or time.monotonic() > cached[1] - self._margin:
                value, lifetime = self._fetch(subject)
                cached = (value, time.monotonic() + lifetime)
                self._cache[subject] = cached
            return cached[0]


# --------------------------------------------------------------------------------- parallel calls
class RequestGate:
    """At most ``limit`` upstream calls of one platform in flight at once in this process, whichever
    answer makes them (each connector holds one: :attr:`Connector.gate`).

    Why per platform and not per answer: a vendor's throttling budget counts the hub's account,
    not the answer asking (``EWSMaxConcurrency``, by default 10 concurrent requests of an account
    on Exchange 2010 and 27 on Exchange Online; Graph and Google throttle per application).
    Bounded per answer, ten answers computed together (a burst of clients, a 1,000-person request
    sent as ten) had ten times the bound in flight; sharing the slots, they queue for them instead. A call
    holding a slot must not wait for another slot of the same gate (it would wait for itself):
    gate the calls that reach the platform, never a call that maps over more of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._free = limit
        self._waiting: OrderedDict[object, deque[threading.Event]] = OrderedDict()
        """Per asker, its calls waiting for a slot, oldest first; the askers in their turn order."""

    @contextmanager
    def slot(self, asker: object) -> Iterator[None]:
        """A slot for one call of ``asker`` (one answer's map over its calls); one whose asker
        gave up while it waited is not made (:class:`calmesh.cancel.Abandoned`).

        A freed slot is handed to the waiting askers in turn, one call each, never taken back by
        whoever freed it. With a plain semaphore the thread that had just freed a slot asked
        again at once and won it before the woken waiter ran: a two-person answer asked while
        ten answers of a hundred were under way waited for nearly all of their calls (1.4 s on
        the 1,000-person bench, against 12 ms alone). In the order asked, it still waited behind
        every call already in line (0.5 s). In turn, it waits for one call of each answer."""
        self._acquire(asker)
        try:
            cancel.check()
            yield
        finally:
            self._release()

    def _acquire(self, asker: object) -> None:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            turn = threading.Event()
            self._waiting.setdefault(asker, deque()).append(turn)
        turn.wait()

    def _release(self) -> None:
        with self._lock:
            if not self._waiting:
                self._free += 1
                return
            asker, line = self._waiting.popitem(last=False)
            line.popleft().set()
            if line:  # to the back of the turn order
                self._waiting[asker] = line


def bounded_map(call: Callable[[T], R], items: Sequence[T], gate: RequestGate) -> list[R]:
    """``[call(item) for item in items]``, each call inside a slot of ``gate`` (at most
    ``gate.limit`` in flight on the platform, this map's and any other's), results in order.

    Why: a free/busy answer for many people is a handful of batched vendor calls (EWS chunks of
    100, Graph 20, Google 50) or one REPORT per CalDAV calendar; made one after another their
    round trips add up, made all at once they trip the vendor's throttling. Each call runs in a
    copy of the caller's context, so cooperative cancellation (:mod:`calmesh.cancel`) reaches it.
    The first exception (in item order) is raised once every started call has ended.
    """
    asker = object()

    def gated(item: T) -> R:
        with gate.slot(asker):
            return call(item)

    if gate.limit <= 1 or len(items) <= 1:
        return [gated(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(gate.limit, len(items)), thread_name_prefix="calmesh-call") as pool:
        futures = [pool.submit(copy_context().run, gated, item) for item in items]
        return [future.result() for future in futures]


def read_ahead(read: Callable[[T], R], chunks: Sequence[T]) -> Iterator[tuple[T, R]]:
    """Each of ``chunks`` with ``read(chunk)``, in order, the next chunk read on a worker thread
    while the caller takes in this one: one after the other, the server and the parser would
    each wait for the other half of the time. Reads run one at a time (a connector need not be
    safe for two at once), in the caller's context, so their retries charge the caller's retry
    budget; what is not read yet when the caller stops is not read."""
    if not chunks:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="calmesh-ahead") as ahead:
        pending = ahead.submit(copy_context().run, read, chunks[0])
        for n, chunk in enumerate(chunks):
            answer = pending.result()
            if n + 1 < len(chunks):
                pending = ahead.submit(copy_context().run, read, chunks[n + 1])
            yield chunk, answer


# --------------------------------------------------------------------------------------- config
class ConnectorSettings(BaseModel):
    """Base of every connector's own settings block in the TOML config (``[platforms.NAME]``).

    Secrets are never inline: a connector reads ``password_env`` / ``token_env`` style fields
    naming an environment variable (see :func:`calmesh.config.secret`).
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    timeout: float = 20.0
    """Seconds one upstream call may take before this platform is reported as failing."""
    timezone: str | None = None
    """Zone for floating times and all-day events when the platform does not say."""
    parallel_requests: int = Field(default=4, ge=1, le=32)
    """Free/busy requests in flight at once on this platform from this process, all answers
    together (batches, or one CalDAV REPORT per person): bounded so that the hub stays within the
    platform's throttling budget (EWS and Graph count concurrent requests per account or app)
    whatever the number of askers (see :class:`RequestGate`)."""
    base_dir: str | None = None
    """Folder that relative paths in these settings are relative to: the config file's folder
    (filled in by the hub, not written by users)."""
    password_command: str | None = None
    """A command printing the password on its first line (``pass show calmesh/zoho``), used when
    ``password_env`` is not set in the environment."""
    keyring: str | None = None
    """The system keyring service holding the password (user: ``username``); needs the optional
    ``keyring`` package (``pip install 'calmesh[keyring]'``)."""

    def password(self, platform: str) -> str | None:
        """The platform's password from ``password_env``, ``password_command`` or ``keyring``."""
        from calmesh.config import secret

        return secret(getattr(self, "password_env", None), f"platforms.{platform}.password_env",
                      command=self.password_command, keyring=self.keyring, user=getattr(self, "username", None))


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a connector can do natively, so services pick the best path."""

    read: bool = True
    write: bool = False
    changes: bool = False
    """Incremental change feed (sync-collection, SyncFolderItems, delta)."""
    native_freebusy: bool = False
    """The platform computes free/busy itself (free-busy-query, GetUserAvailability, getSchedule)."""
    freebusy_batch: int = 1
    """How many people one native free/busy call may carry (EWS 100, Graph 20, Google 50)."""
    max_freebusy_days: int | None = None
    """Longest window one native free/busy call may cover (Graph < 62, Zoho 31, Google ~90)."""
    working_hours: bool = False
    people: bool = True
    """The platform keeps the ORGANIZER and ATTENDEEs of what is written (an in-house table
    usually does not: the identity record then keeps them for the meetings calmesh books)."""
    sequence: bool = True
    """The platform keeps an event's SEQUENCE as written. Exchange (EWS and Graph) keeps none for
    an appointment, and an in-house table usually has no column for it: their events read as
    SEQUENCE 0 however often they were edited, so a conflict is not judged by it (see
    :func:`calmesh.core.syncplan.newest`)."""
    answers: bool = True
    """The platform keeps each attendee's answer (PARTSTAT) as written. Exchange (EWS and Graph)
    does not: it sets them only from the response messages its own mailboxes process, so an iTIP
    REPLY calmesh receives is kept in the identity record instead."""


CLOCK_SKEW = timedelta(minutes=5)
"""How far a server's clock may be behind calmesh's when a copy's creation time (the server's)
is compared with the time calmesh noted before writing it (Kerberos tolerates as much)."""


@dataclass(slots=True)
class FreeBusyRequest:
    """A person to look up on a platform: the address, plus the calendars configured for them."""

    email: str
    calendars: Sequence[str] = ()
    """Platform calendar ids that hold this person's time; empty means "the person's default"."""


class Connector(ABC):
    """A calendar platform. Subclasses declare ``kind``, ``Settings`` and ``capabilities``.

    Every method may raise :class:`ConnectorError` subclasses; anything else escaping a connector
    is a bug in the connector. Methods the platform cannot do raise :class:`UnsupportedOperation`.
    """

    kind: ClassVar[str]
    Settings: ClassVar[type[ConnectorSettings]] = ConnectorSettings
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        self.name = name
        self.settings = settings
        self.gate = RequestGate(settings.parallel_requests)
        """The slots of this platform's free/busy requests (``parallel_requests``), shared by
        every answer the process computes: pass it to :func:`bounded_map`."""

    # ---- reading
    @abstractmethod
    def calendars(self) -> list[CalendarInfo]:
        """The calendars this connector can see."""

    @abstractmethod
    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        """Events of ``calendar`` overlapping ``window``, recurrences expanded into occurrences.

        Items that cannot be read are returned as problems naming the item; the others still count.
        """

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        """Whole stored objects (masters with overrides), optionally only those touching ``window``."""
        raise UnsupportedOperation(self.name, f"{self.kind} connector cannot list items")

    @property
    def keeps_uids(self) -> bool:
        """Whether an item written here is read back under the UID it was written with. An item
        found at a recorded id under another UID is then another item (an in-house table gives a
        deleted row's id to the next one). Microsoft Graph mints its own UIDs; a table without a
        UID column makes one from the row id."""
        return True

    def calendars_of(self, email: str) -> list[str]:
        """The calendars holding ``email``'s time when the directory names none: by default the
        calendars this connector sees that the person owns."""
        email = email.lower()
        owned = [c.id for c in self.calendars() if c.owner and c.owner.lower() == email]
        if not owned:
            raise NotFoundError(self.name, f"no calendar owned by {email}; list its calendars in the config")
        return owned

    def freebusy(self, people: Sequence[FreeBusyRequest], window: Window) -> list[PersonFreeBusy]:
        """Native free/busy; only called when ``capabilities.native_freebusy`` is set."""
        raise UnsupportedOperation(self.name, f"{self.kind} connector has no native free/busy")

    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        """Items changed since ``token`` (None: everything). Raises :class:`InvalidTokenError`
        when the platform no longer accepts the token."""
        raise UnsupportedOperation(self.name, f"{self.kind} connector has no change feed")

    def changes_skipping(self, calendar: str, token: str | None, known: Mapping[str, str]) -> ChangeSet:
        """:meth:`changes`, told which versions the caller holds already (``known``: item id ->
        ETag/ChangeKey it recorded). An item listed at exactly that version may be reported in
        :attr:`ChangeSet.unchanged` by reference instead of being fetched and parsed: a fresh
        process re-listing a calendar it synced before then reads only what changed, as
        vdirsyncer does with its status file. The default fetches everything (always correct)."""
        return self.changes(calendar, token)

    def unchanged_since(self, calendar: str, token: str) -> bool | None:
        """Whether nothing in the calendar changed since ``token`` was made, where the platform
        can say so more cheaply than :meth:`changes` (CalDAV's CTag): True, nothing did (``token``
        stays valid, :meth:`changes` need not be asked); False, something may have (or ``token``
        carries nothing to compare with): ask :meth:`changes`, which may use what this call read;
        None, the platform cannot tell (the default): only :meth:`changes` can."""
        return None

    def listing(self, calendar: str, take: Callable[[CalendarItem], None]) -> tuple[list[ItemRef], str] | None:
        """A first listing that hands each item to ``take`` as it is read, holding none: a first
        comparison of a large group keeps them on disk and plans a part at a time, instead of
        holding every item of every member at once. Returns the change token :meth:`changes` from
        None would end with, and the items listed whose content did not come (by reference, for
        the caller to :meth:`fetch`). None where the platform cannot list so (the default): the
        caller lists with :meth:`changes`."""
        return None

    def fetch(self, calendar: str, ids: Sequence[str]) -> tuple[list[CalendarItem], list[Problem]]:
        """The items at ``ids`` (those that no longer exist are left out). The default lists the
        whole calendar; connectors that can read single items override it."""
        wanted = set(ids)
        found, problems = self.items(calendar)
        return [i for i in found if i.ref is not None and i.ref.id in wanted], problems

    # ---- writing
    def fit(self, item: CalendarItem) -> tuple[CalendarItem, list[Adaptation]]:
        """``item`` in the form :meth:`put` writes it on this platform, with what that form
        changes (see :class:`Adaptation`); :class:`CannotHold` when there is no faithful form.
        Pure, and idempotent on its own result, so that :meth:`put` may apply it again. The
        default: platforms holding iCalendar as it is change nothing."""
        return item, []

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        """Create (``item.ref`` is None) or replace an item; ``if_match`` guards against lost edits.
        Returns where it now lives with its new ETag/ChangeKey."""
        raise UnsupportedOperation(self.name, f"{self.kind} connector is read-only")

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        raise UnsupportedOperation(self.name, f"{self.kind} connector is read-only")

    def planned_id(self, calendar: str, item: CalendarItem) -> str | None:
        """The id :meth:`put` will give ``item`` when it creates it, if the client chooses it
        (CalDAV: the href), else None (the server assigns ids). Sync records a copy under this id
        *before* writing it, so a run killed while the write is in flight leaves a trace to check."""
        return None

    def deleted_since(self, calendar: str, copies: Mapping[str, str], since: datetime) -> set[str]:
        """Of ``copies`` (UID -> calmesh marker), written into ``calendar`` after ``since`` at
        ids the server chose, the UIDs the platform shows as deleted since then (Exchange's
        Deleted Items folder, Google's cancelled events). It is the evidence a pending copy
        without a planned id (see :meth:`planned_id`) can have: a run killed between the
        server storing a copy and calmesh recording it, followed by the person deleting that
        copy, must not bring it back. The default knows of none (no evidence either way)."""
        return set()

    # ---- lifecycle
    def check(self) -> list[str]:
        """Reach the platform and report what works, one line each (for ``calmesh check``)."""
        cals = self.calendars()
        return [f"reachable, {len(cals)} calendar(s): "
                + ", ".join(f"{c.name} ({c.owner})" if c.owner else c.name for c in cals[:10])]

    def close(self) -> None:  # noqa: B027 - most connectors hold nothing to release
        """Release connections."""

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextmanager
def translate_errors(platform: str, item: str | None = None) -> Iterator[None]:
    """Turn the common transport failures of ``httpx``/``requests`` into connector errors."""
    try:
        yield
    except ConnectorError:
        raise
    except TimeoutError as exc:
        raise TransientError(platform, "timed out: no answer in time", item=item) from exc
    except OSError as exc:
        raise TransientError(platform, f"unreachable: {plain_cause(exc) or type(exc).__name__}", item=item) from exc
