"""CalDAV (RFC 4791) as a platform: Zoho Calendar, Nextcloud, iCloud, Fastmail, Radicale, Xandikos...

Transport, authentication negotiation and multistatus parsing come from the ``caldav`` library
(``DAVClient`` and its XML elements); what this module adds is the calmesh contract on top:

* Reading asks for whole calendar objects with a ``calendar-query`` time-range REPORT and expands
  recurrences locally with :func:`calmesh.ical.expand`: server-side ``<expand>`` differs between
  servers (overrides, EXDATE, DST), local expansion does not. Each object is parsed on its own,
  so one malformed object is a :class:`~calmesh.model.Problem` naming it, not a failed calendar.
* Free/busy is computed from the events by default (:func:`calmesh.core.freebusy.busy_from_events`),
  because the server's ``free-busy-query`` REPORT (RFC 4791 7.10) only knows STATUS and TRANSP: it
  counts a declined invitation as busy and an unanswered one as firmly busy. The REPORT is used
  for calendars shared "free/busy only", or first when ``freebusy_source = "server"``.
* Changes use ``sync-collection`` (RFC 6578); servers without it get an ETag-map token (see
  :func:`_etag_token`). Only changed objects are fetched, with ``calendar-multiget`` (the next
  batch is on its way while one is parsed). On first contact the objects are asked for within
  the sync-collection REPORT itself, where the server sends them (Radicale does, Xandikos not).
  That answer holds the whole calendar, so sync-collection answers are read as a stream, page
  by page, each object read as its page arrives (:mod:`.caldav_stream`), through the library's
  own HTTP session and auth.
* Writes are conditional: ``If-None-Match: *`` to create, ``If-Match`` to replace or delete, so a
  concurrent edit is a :class:`PreconditionFailed`, never a silent overwrite.

Server quirks handled here rather than in callers: Radicale answers ``calendar-user-address-set``
with its principal path and Xandikos leaves it empty (the owner then falls back to the login when
it is an email); Xandikos answers ``free-busy-query`` with a non-calendar content type (the body
is parsed whatever the type says).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, unquote, urljoin, urlsplit

from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.elements import ical as ical_elements
from caldav.elements.base import BaseElement, ValuedBaseElement
from caldav.lib import error as dav_error
from caldav.response import CalendarQueryResult, DAVResponse, SyncCollectionResult
from lxml import etree

from calmesh import ical
from calmesh.config import SecretUnavailable
from calmesh.connectors.base import (
    AuthenticationError,
    Capabilities,
    Connector,
    ConnectorError,
    ConnectorSettings,
    FreeBusyRequest,
    InvalidDataError,
    InvalidTokenError,
    NotFoundError,
    PreconditionFailed,
    RetryPolicy,
    TransientError,
    bounded_map,
    plain_cause,
    read_ahead,
    with_retries,
)
from calmesh.connectors.caldav_stream import (
    MalformedAnswer,
    OversizedAnswer,
    UnreadableAnswer,
    read_multistatus,
)
from calmesh.connectors.settings import CalDAVSettings
from calmesh.core.freebusy import busy_from_events, clip, merge_busy, unknown
from calmesh.model import (
    BusyPeriod,
    BusyType,
    CalendarInfo,
    CalendarItem,
    ChangeSet,
    Event,
    ItemRef,
    PersonFreeBusy,
    Problem,
    ProblemCode,
    Window,
    normalize_email,
)
from calmesh.timezones import zoneinfo

log = logging.getLogger(__name__)
_P = TypeVar("_P")

_CALDAV = "urn:ietf:params:xml:ns:caldav"
_WIDEN = 86400
"""Seconds a server-side time-range is widened each side: servers place all-day and floating
events in their own zone (usually UTC), calmesh in the owner's; local expansion filters exactly."""
_MULTIGET_BATCH = 500
"""Hrefs per calendar-multiget: fewer, larger requests cost a server less (Radicale serves 10,000
objects in 1.8 s in batches of 500, 2.3 s in batches of 100); one it cannot serve is halved."""
_CHUNK = 64 * 1024
"""Bytes read from the wire at a time by a streamed answer (see :mod:`.caldav_stream`)."""
_KNOWN_MAX = 100_000
"""Objects remembered by href and ETag (see ``CalDAVConnector._known``) before the memory is reset."""
_BUILDING_CLIENT = threading.Lock()
"""One DAVClient built at a time in the process: the caldav library (3.6) fills a class-wide
table of server features on the first build, publishing it empty before filling it, so two
connectors reaching their servers first on two threads (a first sync of two CalDAV platforms,
read side by side) failed with a KeyError from inside the library."""
_CALENDARS_TTL = 300.0
"""Seconds a discovered calendar list is reused (free/busy asks ``calendars_of`` per person)."""
_MAX_MAP_TOKEN = 64 * 1024
"""Above this size the ETag-map token becomes a bare hash (see :func:`_etag_token`)."""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
_HREF_SAFE = "/@:+,;=~!$&'()*"
_UNSUPPORTED = (400, 403, 405, 415, 422, 501)
"""Statuses by which servers say "I do not do this REPORT" (Depth/REPORT support varies)."""


def _resource_name(uid: str) -> str:
    """The object's file name on create: the UID when it is a safe path segment, else its hash
    (UIDs may hold ``/``, spaces or be very long; the name only has to be unique and stable)."""
    if _SAFE_NAME.match(uid) and not uid.endswith("."):
        return f"{uid}.ics"
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()[:40] + ".ics"


def _body(element: BaseElement) -> str:
    return etree.tostring(element.xmlelement(), encoding="utf-8", xml_declaration=True).decode("utf-8")


@lru_cache(maxsize=64)
def _calendar_query(window: Window | None) -> str:
    """The calendar-query for the whole objects (and ETags) of the VEVENTs touching ``window``
    widened by ``_WIDEN`` each side, all of them when None.

    Why kept: a free/busy fan-out sends the same query to every person's calendar, and building
    it through caldav's elements each time was a tenth of a REPORT's client CPU (bench/freebusy.py
    --profile)."""
    event_filter: BaseElement = cdav.CompFilter("VEVENT")
    if window is not None:
        widen = timedelta(seconds=_WIDEN)
        event_filter += cdav.TimeRange(window.start - widen, window.end + widen)
    return _body(cdav.CalendarQuery() + [dav.Prop() + [dav.GetEtag(), cdav.CalendarData()],
                                         cdav.Filter() + (cdav.CompFilter("VCALENDAR") + event_filter)])


def _etag_token(etags: dict[str, str | None]) -> str:
    """The change token of a server without sync-collection.

    It carries the whole ``href -> ETag`` map (sorted JSON, zlib, base64) so the next call can say
    exactly which objects were added, changed or removed and fetch only those. A calendar so large
    that the map exceeds ``_MAX_MAP_TOKEN`` gets a bare hash instead: any change then yields a
    complete listing, which the sync engine diffs itself (correct, just more traffic).
    """
    data = json.dumps(sorted(etags.items()), separators=(",", ":")).encode("utf-8")
    packed = base64.urlsafe_b64encode(zlib.compress(data, 9)).decode("ascii")
    if len(packed) <= _MAX_MAP_TOKEN:
        return "etags:" + packed
    return "etaghash:" + hashlib.sha256(data).hexdigest()


class _GetContentLength(ValuedBaseElement):
    """An object's size in bytes (RFC 4918 15.4), listed with its ETag: what tells an object a
    server will not serve for its size (see ``CalDAVConnector._withheld``)."""

    tag: ClassVar[str] = "{DAV:}getcontentlength"


@dataclass(frozen=True)
class _Member:
    """One object a collection's PROPFIND (Depth 1) lists: its ETag and size, as far as told."""

    etag: str | None
    size: int | None


def _size(value: object) -> int | None:
    """A byte count as a property gives it (a string of digits), None if it is not one."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


class _GetCTag(ValuedBaseElement):
    """The calendar's CTag (CalendarServer's ``getctag``, offered by Radicale, Xandikos, SabreDAV/
    Nextcloud, iCloud...): a value that changes whenever any object of the calendar does."""

    tag: ClassVar[str] = "{http://calendarserver.org/ns/}getctag"


def _with_ctag(ctag: str, token: str) -> str:
    """A change token that also carries the calendar's CTag as it was before and after the
    listing that made the token (see ``CalDAVConnector.unchanged_since``)."""
    return "ctag:" + base64.urlsafe_b64encode(ctag.encode("utf-8")).decode("ascii") + ":" + token


def _split_ctag(token: str | None) -> tuple[str | None, str | None]:
    """(CTag carried, the change token proper) of a stored token."""
    if token is None or not token.startswith("ctag:"):
        return None, token
    packed, sep, inner = token.removeprefix("ctag:").partition(":")
    try:
        return (base64.urlsafe_b64decode(packed).decode("utf-8") if sep else None), inner if sep else token
    except ValueError:
        return None, token  # garbled: the inner token (the whole) is judged by changes_skipping


def _read_etag_token(token: str) -> dict[str, str | None] | None:
    """The map in an ``etags:`` token; None for an ``etaghash:`` token. ValueError when garbled."""
    if token.startswith("etaghash:"):
        return None
    try:
        data = zlib.decompress(base64.urlsafe_b64decode(token.removeprefix("etags:")))
        return {str(href): etag for href, etag in json.loads(data)}
    except (ValueError, TypeError, zlib.error) as exc:
        raise ValueError(f"garbled change token: {exc}") from exc


def _missing(hrefs: Iterable[str], items: Iterable[CalendarItem],
             unreadable: Iterable[tuple[ItemRef, Problem]]) -> list[str]:
    """Of ``hrefs`` asked for, those neither read nor reported unreadable: not returned."""
    returned = {i.ref.id for i in items if i.ref} | {ref.id for ref, _ in unreadable}
    return [h for h in hrefs if h not in returned]


def _unknown_in(window: Window, problems: Iterable[Problem]) -> list[Problem]:
    """Problems of objects nothing of which was read: they could be at any time of ``window``."""
    return [replace(problem, unknown=(window.start, window.end)) for problem in problems]


def _split_known(calendar: str, listed: Mapping[str, str | None], known: Mapping[str, str]
                 ) -> tuple[list[ItemRef], list[str]]:
    """Listed hrefs (with their ETags) split into those at the ETag the caller knows, reported
    unfetched (see ``changes_skipping``), and the sorted hrefs to fetch."""
    unchanged, wanted = [], []
    for href, etag in sorted(listed.items()):
        if etag is not None and known.get(href) == etag:
            unchanged.append(ItemRef(calendar, href, etag))
        else:
            wanted.append(href)
    return unchanged, wanted


@dataclass(frozen=True)
class _Answer:
    """A sync-collection REPORT's answer: its status, its pages (read as they are iterated) and,
    when it refused, the preconditions it named."""

    status: int
    pages: Iterable[SyncCollectionResult]
    preconditions: list[str] = field(default_factory=list)


@dataclass
class _Listing:
    """What a sync-collection listing said, page after page: the changed hrefs with their ETags,
    the objects the server sent with it, read as each page arrived (so their text is not kept),
    the deleted hrefs, and the token it ended with."""

    changed: dict[str, str | None] = field(default_factory=dict)
    read: dict[str, tuple[list[CalendarItem], list[Problem]]] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    token: str = ""
    take: Callable[[CalendarItem], None] | None = None
    """Where the objects read go as they arrive, instead of :attr:`read` (:meth:`CalDAVConnector.listing`)."""
    taken: dict[str, str | None] = field(default_factory=dict)
    """The hrefs whose objects went to :attr:`take`, with the ETags they went at."""
    retaken: bool = False
    """An object taken was listed again at another ETag on a later page (changed meanwhile)."""

    def add(self, page: SyncCollectionResult, calendar_path: str,
            to_items: Callable[[list[CalendarQueryResult]], tuple[list[CalendarItem], list[Problem]]]) -> None:
        """One more page: an href changed on one page and deleted on a later one is deleted."""
        for entry in page.changed:
            if entry.href.rstrip("/") == calendar_path:
                continue  # some servers list the collection itself
            self.deleted.discard(entry.href)
            if (take := self.take) is None or not entry.calendar_data:
                self.changed[entry.href] = entry.etag
                if entry.calendar_data:
                    self.read[entry.href] = to_items([entry])
            elif entry.href in self.taken:
                self.retaken = self.retaken or self.taken[entry.href] != entry.etag
            else:  # taken, or else read again by its href (and says why there): not both kept
                items, problems = to_items([entry])
                if items and not problems:
                    for item in items:
                        take(item)
                    self.taken[entry.href] = entry.etag
                else:
                    self.changed[entry.href] = entry.etag
        for href in page.deleted:
            self.changed.pop(href, None)
            self.read.pop(href, None)
            self.deleted.add(href)
        self.token = page.sync_token or self.token


class Locked(TransientError):
    """423 Locked (RFC 4918 11.3): a WebDAV lock, or the server's own lock while it stores another
    write (Xandikos refuses a PUT so while a concurrent one commits). Released later: retried."""


class CalDAVConnector(Connector):
    kind: ClassVar[str] = "caldav"
    Settings = CalDAVSettings
    capabilities: ClassVar[Capabilities] = Capabilities(write=True, changes=True, native_freebusy=True)

    settings: CalDAVSettings

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        super().__init__(name, settings)
        self.retry = RetryPolicy()
        """Backoff for idempotent reads; tests shorten it."""
        self.sleep: Callable[[float], None] = time.sleep
        self._zone = zoneinfo(self.settings.timezone)
        self._client: DAVClient | None = None
        self._client_lock = threading.Lock()
        self._negotiation_lock = threading.Lock()
        self._asks_no_login = False
        """The server answered a request without asking for credentials (see :meth:`_request`)."""
        self._first_writes: dict[str, threading.Event] = {}
        """Per calendar: set once the connector's first write there has ended (see :meth:`_write`)."""
        self._write_turn = threading.Lock()
        self._writes = threading.Condition()
        self._writes_together = 0
        """Writes in flight that were sent together, not in turn (see :meth:`_write`)."""
        self._writes_in_turn = False
        """The server refused a write while another was being stored (see :meth:`_write`)."""
        self._calendars_cache: tuple[float, list[CalendarInfo]] | None = None
        self._freebusy_query: dict[str, bool] = {}
        """Per calendar: does free-busy-query answer there (learned on first use)?"""
        self._ctag_before: dict[str, str] = {}
        """Per calendar: the CTag :meth:`unchanged_since` just read, for the listing that follows."""
        self._no_ctag: set[str] = set()
        """Calendars whose server showed no CTag: not asked again by this connector."""
        self._size_limits: dict[str, int | None] = {}
        """Per calendar: the largest object the server says it keeps (CALDAV:max-resource-size)."""
        self._oversized: dict[str, tuple[float, dict[str, _Member]]] = {}
        """Per calendar: when it was listed, and its objects over the server's size limit (see
        :meth:`_withheld_from_query`)."""
        self._known: dict[str, tuple[str, CalendarItem]] = {}
        """href -> (ETag, parsed object) of objects this connector read or wrote. A change feed that
        lists an href with the same ETag is served from here instead of a multiget and a parse:
        the same ETag is the same stored bytes (RFC 4791 5.3.4: a server that alters a PUT body
        returns no ETag). It pays off in a long-running process (``calmesh sync --watch``), where
        a calendar listed in full again (e.g. after receiving copies) costs one ETag listing."""

    # ---------------------------------------------------------------------------- transport
    def _dav(self) -> DAVClient:
        with self._client_lock:
            if self._client is None:
                try:
                    password = self.settings.password(self.name)
                except SecretUnavailable as exc:
                    raise AuthenticationError(self.name, exc.detail, setting=exc.setting) from exc
                with _BUILDING_CLIENT:
                    self._client = DAVClient(
                        url=self.settings.url, username=self.settings.username, password=password,
                        # niquests takes float seconds; caldav's hint says int
                        timeout=self.settings.timeout,  # type: ignore[arg-type]
                        ssl_verify_cert=self.settings.verify_tls,
                        huge_tree=True, enable_rfc6764=False)
            return self._client

    def _request(self, url: str, method: str, body: str, headers: dict[str, str]) -> DAVResponse:
        """The request through the shared client; until the client has learnt the server's auth
        scheme (from its first 401), one request at a time. The caldav library refuses a 401 once
        it holds a scheme, so a request sent before the first one taught it and answered after
        would fail as a refused login with the right password.

        A server that answers without asking for credentials (Xandikos, a server behind a proxy
        that logs in for it) would keep every request waiting for a 401 that never comes: once one
        answer came without it, requests go out together. Should a later one meet a login after
        all (a server asking on some paths only), a request refused because another learnt the
        scheme meanwhile is asked once more, with it: a 401 means the server did nothing."""
        client = self._dav()
        if client.auth is not None or not self.settings.username:
            return client.request(url, method, body, headers)
        if self._asks_no_login:
            try:
                return client.request(url, method, body, headers)
            except dav_error.AuthorizationError as exc:
                if client.auth is None or exc.status != 401:
                    raise
            return client.request(url, method, body, headers)
        with self._negotiation_lock:
            response = client.request(url, method, body, headers)
            self._asks_no_login = client.auth is None
            return response

    def _url(self, href: str) -> str:
        """An absolute URL for a server href. Hrefs come back unquoted from the multistatus parser
        but raw inside some properties, so they are unquoted then quoted once, the same way."""
        if "://" in href:
            return href
        return urljoin(self.settings.url, quote(unquote(href), safe=_HREF_SAFE))

    def _path(self, url: str) -> str:
        """The unquoted path of a URL or href: the spelling the multistatus parser gives hrefs in."""
        return unquote(urlsplit(self._url(url)).path)

    def _send(self, method: str, url: str, body: str = "", headers: dict[str, str] | None = None, *,
              ok: Iterable[int] = (200, 201, 204, 207), item: str | None = None) -> DAVResponse:
        """One HTTP exchange, with every failure mapped onto the connector errors."""
        try:
            response = self._request(url, method, body, headers or {})
        except dav_error.AuthorizationError as exc:
            raise self._refusal(exc, url, item) from exc
        except dav_error.RateLimitError as exc:
            raise TransientError(self.name, f"{method} {url}: throttled (HTTP {exc.status})",
                                 retry_after=exc.retry_after_seconds, item=item) from exc
        except dav_error.DAVError as exc:
            raise ConnectorError(self.name, f"{method} {url}: {exc}", item=item) from exc
        except etree.XMLSyntaxError as exc:
            raise TransientError(self.name, f"{method} {url}: the server answered malformed XML ({exc})",
                                 item=item) from exc
        except OSError as exc:  # niquests/requests transport errors are OSErrors
            raise self._unreachable(exc, url, item) from exc
        if response.status in ok:
            return response
        raise self._status_error(method, url, response, item)

    def _unreachable(self, exc: OSError, url: str, item: str | None = None) -> TransientError:
        """A transport failure (refused, reset, timed out) as the error that names the server."""
        cause = plain_cause(exc) or type(exc).__name__
        what = "timed out" if "timeout" in type(exc).__name__.lower() else "unreachable"
        server = "{0.scheme}://{0.netloc}".format(urlsplit(self._url(url)))
        return TransientError(self.name, f"{what} at {server}: {cause}", item=item, setting="url")

    @contextmanager
    def _streamed(self, method: str, url: str, body: str, headers: dict[str, str]) -> Iterator[Iterator[bytes] | None]:
        """The body of a 200/207 answer as chunks read from the wire (decompressed), through the
        shared client's session with its auth, timeout, TLS and proxy settings; the connection
        is released on leaving. None, and nothing held, for any other answer, a 401 included (the
        client has not learnt the server's auth scheme yet: see :meth:`_request`): the caller then
        asks again through :meth:`_send`, which negotiates and maps every other answer."""
        client = self._dav()
        target = self._url(url)
        sent: dict[str, str] = {**dict(client.headers), **headers}
        try:
            response = client.session.request(
                method, target, data=body.encode("utf-8"), headers=sent,
                auth=client.auth, timeout=client.timeout, verify=client.ssl_verify_cert, cert=client.ssl_cert,
                proxies={urlsplit(target).scheme: client.proxy} if client.proxy else None, stream=True)
        except OSError as exc:
            raise self._unreachable(exc, url) from exc
        try:
            yield self._chunks(response, url) if response.status_code in (200, 207) else None
        finally:
            response.close()

    def _chunks(self, response: Any, url: str) -> Iterator[bytes]:
        """The streamed body's chunks; a connection failing part way is a :class:`TransientError`."""
        try:
            yield from response.iter_content(_CHUNK)
        except OSError as exc:  # the connection failed part way through
            raise self._unreachable(exc, url) from exc

    def _refusal(self, exc: dav_error.AuthorizationError, url: str, item: str | None) -> ConnectorError:
        """401/403 from the library: a stale sync-token, a refused precondition, or credentials."""
        preconditions = [p.rsplit("}", 1)[-1] for p in exc.preconditions]
        if "valid-sync-token" in preconditions:
            return InvalidTokenError(self.name, "the server no longer accepts the sync token", item=item)
        if preconditions:
            return self._precondition_error(preconditions, url, item)
        if exc.status == 403:
            return AuthenticationError(self.name, f"access to {url} is forbidden (HTTP 403)", item=item)
        return AuthenticationError(self.name, f"credentials refused for {self.settings.username or '(no user)'} by "
                                              f"{url} (HTTP 401)", item=item, setting="username, password_env")

    def _precondition_error(self, preconditions: Sequence[str], url: str, item: str | None) -> ConnectorError:
        names = ", ".join(preconditions)
        if "need-privileges" in preconditions:  # RFC 3744: the account may not do this here
            return AuthenticationError(self.name, f"the account lacks the privileges for {url}", item=item)
        if "no-uid-conflict" in preconditions:
            return PreconditionFailed(self.name, f"another object on {url} already has this UID", item=item)
        if any(p in preconditions for p in ("valid-calendar-data", "valid-calendar-object-resource",
                                            "supported-calendar-component", "max-resource-size",
                                            "supported-calendar-data")):
            return InvalidDataError(self.name, f"the server refused the object ({names})", item=item)
        return ConnectorError(self.name, f"{url}: precondition failed on the server ({names})", item=item)

    def _status_error(self, method: str, url: str, response: DAVResponse, item: str | None) -> ConnectorError:
        status = response.status
        text = f"{method} {url}: HTTP {status} {response.reason}".rstrip()
        if status in (404, 410):
            return NotFoundError(self.name, f"{url} does not exist (HTTP {status})", item=item)
        if status == 423:
            return Locked(self.name, text, item=item)
        if status in (408, 429) or status >= 500:
            return TransientError(self.name, text, item=item)
        preconditions = [p.rsplit("}", 1)[-1] for p in dav_error.parse_preconditions(response.raw)]
        if preconditions:  # before 412: Xandikos refuses invalid data with 412 + valid-calendar-data
            return self._precondition_error(preconditions, url, item)
        if status == 412:
            return PreconditionFailed(self.name, f"{url} changed on the server since it was read (HTTP 412)",
                                      item=item)
        if method == "PUT" and status in (400, 409, 413, 415, 422):
            return InvalidDataError(self.name, f"the server refused the object: {text}", item=item)
        return ConnectorError(self.name, text, item=item)

    def _read(self, method: str, url: str, body: str = "", headers: dict[str, str] | None = None, *,
              ok: Iterable[int] = (200, 207), item: str | None = None) -> DAVResponse:
        """An idempotent request (PROPFIND, REPORT, GET), retried on transient failures."""
        oks = tuple(ok)
        return with_retries(lambda: self._send(method, url, body, headers, ok=oks, item=item),
                            policy=self.retry, sleep=self.sleep)

    def _propfind(self, url: str, props: Sequence[BaseElement], depth: int) -> list[Any]:
        response = self._read("PROPFIND", url, _body(dav.Propfind() + (dav.Prop() + list(props))),
                              {"Depth": str(depth)})
        return self._propfind_results(url, response)

    def _propfind_results(self, url: str, response: DAVResponse) -> list[Any]:
        try:
            return response.parse_propfind()
        except dav_error.DAVError as exc:
            raise ConnectorError(self.name, f"PROPFIND {url}: unreadable answer ({exc})") from exc

    def _report(self, url: str, query: BaseElement | str, depth: int | None = 1, *,
                ok: Iterable[int] = (200, 207)) -> DAVResponse:
        headers = {"Depth": str(depth)} if depth is not None else {}
        return self._read("REPORT", url, query if isinstance(query, str) else _body(query), headers, ok=ok)

    def _objects(self, response: DAVResponse, url: str) -> list[CalendarQueryResult]:
        try:
            return response.parse_calendar_query()
        except dav_error.DAVError as exc:
            raise ConnectorError(self.name, f"REPORT {url}: unreadable answer ({exc})") from exc

    # ---------------------------------------------------------------------------- discovery
    def _principal(self) -> tuple[str | None, str | None, str | None]:
        """(principal href, calendar-home href, owner email) of the logged-in user, as far as the
        server tells; the owner falls back to the username when that is an email address."""
        base = self.settings.url
        found = self._propfind(base, [dav.CurrentUserPrincipal()], 0)
        principal = next((r.properties.get(dav.CurrentUserPrincipal.tag) for r in found
                          if r.properties.get(dav.CurrentUserPrincipal.tag)), None)
        home: str | None = None
        addresses: list[str] = []
        if principal:
            props = self._propfind(self._url(principal), [cdav.CalendarHomeSet(), cdav.CalendarUserAddressSet()], 0)
            for result in props:
                value = result.properties.get(cdav.CalendarHomeSet.tag)
                home = value[0] if isinstance(value, list) and value else (value or home)
                addresses = result.properties.get(cdav.CalendarUserAddressSet.tag) or addresses
        if isinstance(addresses, str):
            addresses = [addresses]
        owner = next((normalize_email(a) for a in addresses if a.lower().startswith("mailto:")), None)
        if owner is None and self.settings.username and "@" in self.settings.username:
            owner = normalize_email(self.settings.username)
        return principal, home, owner

    def calendars(self) -> list[CalendarInfo]:
        cached = self._calendars_cache
        if cached and time.monotonic() - cached[0] < _CALENDARS_TTL:
            return list(cached[1])
        principal, home, owner = self._principal()
        props = [dav.ResourceType(), dav.DisplayName(), cdav.SupportedCalendarComponentSet(),
                 dav.CurrentUserPrivilegeSet(), ical_elements.CalendarColor(), cdav.CalendarTimeZone()]
        if self.settings.calendars:
            found = [r for url in self.settings.calendars for r in self._propfind(url, props, 0)]
        else:
            # no calendar-home-set (some servers): the principal, else the configured URL, holds them
            where = self._url(home or principal or self.settings.url)
            found = self._propfind(where, props, 1)
        home_path = self._path(home) if home else None
        out = []
        for result in found:
            info = self._calendar_info(result, owner if home_path is None or result.href.startswith(home_path)
                                       else None)
            if info is not None:
                out.append(info)
        self._calendars_cache = (time.monotonic(), out)
        return list(out)

    def _calendar_info(self, result: Any, owner: str | None) -> CalendarInfo | None:
        props = result.properties
        if f"{{{_CALDAV}}}calendar" not in (props.get(dav.ResourceType.tag) or []):
            return None
        components = props.get(cdav.SupportedCalendarComponentSet.tag)
        if isinstance(components, str):
            components = [components]
        if components and "VEVENT" not in components:
            return None  # a task list
        privileges = [p.rsplit("}", 1)[-1] for p in props.get(dav.CurrentUserPrivilegeSet.tag) or []]
        read_only = bool(privileges) and not ({"write", "write-content", "all", "bind"} & set(privileges))
        url = self._url(result.href)
        name = props.get(dav.DisplayName.tag) or url.rstrip("/").rsplit("/", 1)[-1]
        zone = None
        tz_text = props.get(cdav.CalendarTimeZone.tag)
        if isinstance(tz_text, str) and "TZID:" in tz_text:
            zone = tz_text.split("TZID:", 1)[1].splitlines()[0].strip() or None
        color = props.get(ical_elements.CalendarColor.tag)
        return CalendarInfo(id=url, name=str(name), platform=self.name, owner=owner, read_only=read_only,
                            color=color if isinstance(color, str) else None, timezone=zone)

    def calendars_of(self, email: str) -> list[str]:
        """Calendars the server says ``email`` owns; when it says nothing but we log in as that
        person, all the calendars we see are theirs."""
        email = normalize_email(email)
        calendars = self.calendars()
        owned = [c.id for c in calendars if c.owner == email]
        if not owned and self.settings.username and normalize_email(self.settings.username) == email:
            owned = [c.id for c in calendars]
        if not owned:
            raise NotFoundError(self.name, f"no calendar owned by {email}; list its calendars in the config")
        return owned

    # ---------------------------------------------------------------------------- reading
    def _query(self, calendar: str, window: Window | None) -> tuple[list[CalendarQueryResult], bool]:
        """Whole objects of ``calendar`` (all, or those touching ``window``) with their ETags, and
        whether the server did the window filtering.

        One object whose dates a server cannot evaluate makes some servers (Xandikos) fail the whole
        time-range query with a 500; then every object is fetched by name instead, so the damaged
        one becomes a problem and the others still count.
        """
        response = self._report(calendar, _calendar_query(window), ok=(200, 207, 500))
        if response.status != 500:
            return self._objects(response, calendar), True
        log.warning("%s: calendar-query on %s failed on the server (HTTP 500); fetching objects one by one",
                    self.name, calendar)
        return self._multiget(calendar, sorted(self._members(calendar))), False

    def _named(self, problems: Iterable[Problem], href: str) -> list[Problem]:
        """Problems of one stored object, each naming the object (its UID/summary and its href)."""
        out = []
        for problem in problems:
            item = f"{problem.item} in {href}" if problem.item else href
            # one object is one item: even its unreadable text is a problem of that item
            out.append(replace(problem, platform=self.name, item=item, code=problem.code or ProblemCode.UNREADABLE))
        return out

    def _unreadable(self, result: CalendarQueryResult) -> Problem | None:
        if result.status >= 400:
            return Problem(self.name, f"the server could not return this object (HTTP {result.status})", result.href,
                           code=ProblemCode.NO_DATA, private=True)  # nothing of it read: assume the worst
        if not result.calendar_data:
            return Problem(self.name, "the server sent no calendar data", result.href, code=ProblemCode.NO_DATA,
                           private=True)
        return None

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        """The events of ``calendar`` in ``window``; an object the server holds but does not
        return (nothing of it read, so it could be at any time) leaves the whole window unknown."""
        events: list[Event] = []
        problems: list[Problem] = []
        results = self._query(calendar, window)[0]
        for result in results:
            if result.status == 404:
                continue  # deleted while we were reading
            if (problem := self._unreadable(result)) is not None:
                problems += _unknown_in(window, [problem])
                continue
            found, issues = ical.expand(result.calendar_data or "", window, self.name, self._zone)
            events.extend(found)
            problems.extend(self._named(issues, result.href))
        return events, problems + _unknown_in(window, self._withheld_from_query(calendar, {r.href for r in results}))

    def _to_items(self, calendar: str, results: Iterable[CalendarQueryResult]) -> tuple[list[CalendarItem], list[Problem]]:
        items: list[CalendarItem] = []
        problems: list[Problem] = []
        for result in results:
            if result.status == 404:
                continue
            if (problem := self._unreadable(result)) is not None:
                problems.append(problem)
                continue
            parsed, issues = ical.parse_object(result.calendar_data or "", self.name)
            problems.extend(self._named(issues, result.href))
            if len(parsed) > 1:
                problems.append(Problem(self.name, f"one object holds {len(parsed)} UIDs (RFC 4791 allows one)",
                                        result.href, code=ProblemCode.SEVERAL_UIDS))
            for item in parsed:
                item.ref = ItemRef(calendar, result.href, result.etag)
                items.append(item)
        return items, problems

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        results, filtered = self._query(calendar, window)
        items, problems = self._to_items(calendar, results)
        problems += self._withheld_from_query(calendar, {r.href for r in results})
        if window is not None and not filtered:
            items = [i for i in items if ical.expand_items([i], window, self.name, self._zone)[0]]
        return items, problems

    def _withheld_from_query(self, calendar: str, returned: set[str]) -> list[Problem]:
        """Objects a calendar-query (or free-busy-query) answer may lack because the server will
        not serve them: those the collection lists over the size limit the server states (Radicale
        leaves them out of every answer but PROPFIND), which the answer did not hold (``returned``).
        Nothing is asked of a server that states no limit; the list of oversized objects is kept
        ``_CALENDARS_TTL`` seconds (listing the collection at each free/busy question would double
        the server's work)."""
        try:
            limit = self._size_limit(calendar)
            if limit is None:
                return []
            cached = self._oversized.get(calendar)
            if cached is None or time.monotonic() - cached[0] >= _CALENDARS_TTL:
                oversized = {h: m for h, m in self._members(calendar).items() if m.size is not None and m.size > limit}
                cached = self._oversized[calendar] = (time.monotonic(), oversized)
        except AuthenticationError:
            return []  # a calendar shared "free/busy only" lists nothing of its objects
        seen = {self._path(h) for h in returned}
        withheld = [h for h in cached[1] if self._path(h) not in seen]
        return [problem for _ref, problem in self._withheld(calendar, withheld, cached[1])]

    def fetch(self, calendar: str, ids: Sequence[str]) -> tuple[list[CalendarItem], list[Problem]]:
        """The objects at these hrefs, by calendar-multiget (those gone are left out)."""
        return self._multiget_items(calendar, list(ids))

    def _multiget_items(self, calendar: str, hrefs: Sequence[str]) -> tuple[list[CalendarItem], list[Problem]]:
        """The objects at ``hrefs``, read: while one batch is parsed the server is already
        answering the next (one after the other, the server and the parser would each wait for
        the other half of the time)."""
        batches = [hrefs[start:start + _MULTIGET_BATCH] for start in range(0, len(hrefs), _MULTIGET_BATCH)]
        if len(batches) <= 1:
            return self._to_items(calendar, self._multiget(calendar, hrefs))
        items: list[CalendarItem] = []
        problems: list[Problem] = []
        for _batch, results in read_ahead(partial(self._multiget_batch, calendar), batches):
            found, issues = self._to_items(calendar, results)
            items += found
            problems += issues
        return items, problems

    def _multiget(self, calendar: str, hrefs: Sequence[str]) -> list[CalendarQueryResult]:
        out: list[CalendarQueryResult] = []
        for start in range(0, len(hrefs), _MULTIGET_BATCH):
            out.extend(self._multiget_batch(calendar, hrefs[start:start + _MULTIGET_BATCH]))
        return out

    def _multiget_batch(self, calendar: str, hrefs: Sequence[str]) -> list[CalendarQueryResult]:
        """calendar-multiget; a batch the server fails on (500) is halved down to single GETs so
        one object it cannot serve costs only that object."""
        query = cdav.CalendarMultiGet() + [dav.Prop() + [dav.GetEtag(), cdav.CalendarData()],
                                           *(dav.Href(value=quote(h, safe=_HREF_SAFE)) for h in hrefs)]
        response = self._report(calendar, query, depth=1, ok=(200, 207, 413, 500))
        if response.status not in (413, 500):  # 413: more hrefs than this server takes at once
            results = self._objects(response, calendar)
            # an href the answer leaves out (a server may, for an object too large to send in a
            # REPORT) is asked for alone: its own answer holds it or says why not
            answered = {self._path(r.href) for r in results}
            return results + [self._get_alone(h) for h in hrefs if self._path(h) not in answered]
        if len(hrefs) > 1:
            middle = len(hrefs) // 2
            return self._multiget_batch(calendar, hrefs[:middle]) + self._multiget_batch(calendar, hrefs[middle:])
        return [self._get_alone(hrefs[0])]

    def _get_alone(self, href: str) -> CalendarQueryResult:
        """One object by GET, as a multiget would have answered for it."""
        response = self._read("GET", self._url(href), ok=(200, 404, 410, 500), item=href)
        if response.status != 200:
            return CalendarQueryResult(href, status=response.status)
        return CalendarQueryResult(href, response.headers.get("ETag"), response.raw)

    # ---------------------------------------------------------------------------- free/busy
    def freebusy(self, people: Sequence[FreeBusyRequest], window: Window) -> list[PersonFreeBusy]:
        """Per person, per calendar, busy time from the source ``freebusy_source`` prefers (see
        :meth:`_calendar_busy`). A failing calendar is an error naming it (its time UNKNOWN); the
        person's other calendars still count. CalDAV has no batch free/busy, so the REPORTs of
        different people are in flight together (``parallel_requests`` at once)."""
        return bounded_map(partial(self._person_freebusy, window=window), people, self.gate)

    def _person_freebusy(self, person: FreeBusyRequest, window: Window) -> PersonFreeBusy:
        answer = PersonFreeBusy(normalize_email(person.email), window, platform=self.name)
        try:
            calendars = list(person.calendars) or self.calendars_of(person.email)
        except ConnectorError as exc:
            answer.errors.append(exc.problem())
            answer.busy = unknown(window, self.name)
            return answer
        for calendar in calendars:
            try:
                busy, warnings = self._calendar_busy(calendar, answer.email, window)
            except ConnectorError as exc:
                # a setting to blame means the whole platform failed: the calendar adds nothing
                answer.errors.append(exc.problem() if exc.setting else
                                     Problem(self.name, f"calendar {calendar}: {exc.message}", exc.item))
                answer.busy.extend(unknown(window, self.name))
                continue
            answer.busy.extend(busy)
            for problem in warnings:  # time a problem leaves unknown is never free
                if problem.unknown is None:
                    answer.warnings.append(problem)
                else:
                    answer.errors.append(problem)
                    answer.busy.append(BusyPeriod(*problem.unknown, BusyType.UNKNOWN, self.name))
        answer.busy = merge_busy(answer.busy)
        return answer

    def _calendar_busy(self, calendar: str, owner: str, window: Window) -> tuple[list[Any], list[Problem]]:
        """Busy time of one calendar, from the source the settings prefer, else the other one."""
        if self.settings.freebusy_source == "server" and self._freebusy_query.get(calendar, True):
            busy = self._free_busy_query(calendar, window)
            if busy is not None:
                return busy, _unknown_in(window, self._withheld_from_query(calendar, set()))
        try:
            events, problems = self.events(calendar, window)
        except AuthenticationError:
            # a calendar shared "free/busy only" (CALDAV:read-free-busy) refuses calendar-query
            busy = self._free_busy_query(calendar, window)
            if busy is None:
                raise
            return busy, []
        return busy_from_events(events, window, owner=owner, source=self.name, default_tz=self._zone), problems

    def _free_busy_query(self, calendar: str, window: Window) -> list[Any] | None:
        """Busy periods from the server, or None when it does not do free-busy-query here."""
        query = cdav.FreeBusyQuery() + cdav.TimeRange(window.start, window.end)
        response = self._report(calendar, query, ok=(200, 207, 500, *_UNSUPPORTED))
        if response.status == 500:  # e.g. one object with dates the server cannot evaluate
            log.warning("%s: free-busy-query on %s failed on the server (HTTP 500); using events",
                        self.name, calendar)
            return None
        text = response.raw  # Xandikos labels it generically; the body is what counts
        if response.status in _UNSUPPORTED or "BEGIN:VCALENDAR" not in text:
            log.info("%s: no free-busy-query on %s (HTTP %s); using events", self.name, calendar, response.status)
            self._freebusy_query[calendar] = False
            return None
        self._freebusy_query[calendar] = True
        try:
            periods = ical.parse_vfreebusy(text, self.name)
        except ical.ICalError as exc:
            raise ConnectorError(self.name, f"unreadable free/busy answer: {exc}") from exc
        return clip(periods, window)

    # ---------------------------------------------------------------------------- changes
    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        """Objects changed since ``token``.

        Tokens are ``sync:<server token>`` (RFC 6578) or, for servers without sync-collection,
        ``etags:``/``etaghash:`` (see :func:`_etag_token`). A token of the other kind, a garbled
        one or one the server refuses raises :class:`InvalidTokenError`.
        """
        return self.changes_skipping(calendar, token, {})

    def unchanged_since(self, calendar: str, token: str) -> bool | None:
        """Whether the calendar's CTag is the one ``token`` carries: one PROPFIND of one property,
        where a sync-collection REPORT makes a server like Radicale work out every object's
        history. The CTag read is kept for the listing that follows when it differs (see
        :meth:`changes_skipping`); None where the server has no CTag."""
        stored, _inner = _split_ctag(token)
        now = self._ctag(calendar)
        if now is None:
            return None
        if stored == now:
            self._ctag_before.pop(calendar, None)
            return True
        self._ctag_before[calendar] = now
        return False

    def _ctag(self, calendar: str) -> str | None:
        """The calendar's CTag now; None where the server has none (remembered)."""
        if calendar in self._no_ctag:
            return None
        found = self._propfind(self._url(calendar), [_GetCTag()], 0)
        now = next((r.properties.get(_GetCTag.tag) for r in found if r.properties.get(_GetCTag.tag)), None)
        if isinstance(now, str) and now:
            return now
        self._no_ctag.add(calendar)
        return None

    def changes_skipping(self, calendar: str, token: str | None, known: Mapping[str, str]) -> ChangeSet:
        """:meth:`changes`; objects listed at the ETag ``known`` gives for their href are reported
        in ``unchanged`` instead of being fetched (the same ETag is the same stored bytes).

        The calendar's CTag is read before the listing (or taken from :meth:`unchanged_since`
        just before) and again after it, on first contact and when ``token`` carries one; the
        same both times, the new token carries it: nothing changed while the listing was made,
        so that CTag stands for what the token covers (one read before alone would let a change
        made during the listing and undone after it go unseen)."""
        stored, inner = _split_ctag(token)
        before = self._ctag_before.pop(calendar, None)
        if before is None and (token is None or stored is not None):
            before = self._ctag(calendar)
        changes = self._changes(calendar, inner, known)
        if before is not None and changes.token is not None and self._ctag(calendar) == before:
            return replace(changes, token=_with_ctag(before, changes.token))
        return changes

    def listing(self, calendar: str, take: Callable[[CalendarItem], None]) -> tuple[list[ItemRef], str]:
        """A first listing whose objects go to ``take`` as the answer arrives, page by page: the
        sync-collection REPORT with the objects in it (its token is the one to keep), joined with
        the collection's PROPFIND, which names the objects a server leaves out of its REPORTs
        (Radicale, those over its size limit: :meth:`_recheck`). What did not come with the
        REPORT (a server that will not send objects with it or without sync-collection, an
        object left out, one that did not read cleanly) is returned by href and ETag, for the
        caller to fetch. The CTag read before and after goes into the token as
        :meth:`changes_skipping` does. Not read again after a failure part way (``take`` has
        had part of the objects): the failure is the caller's to handle."""
        before = self._ctag(calendar)
        listing: _Listing | None = None
        if self.settings.sync_collection:
            handed = 0

            def counted(item: CalendarItem) -> None:
                nonlocal handed
                handed += 1
                take(item)

            listing = self._read_listing(calendar, None, True, counted)
            if listing is None and handed:
                raise TransientError(self.name, f"the listing of {calendar} with its objects broke off", item=calendar)
            listing = listing or self._listing(calendar, None, with_data=False)
        if listing is None:
            etags = {href: member.etag for href, member in self._members(calendar).items()}
            token = _etag_token(etags)
        else:
            if listing.retaken or not listing.deleted.isdisjoint(listing.taken):  # changed or deleted on a later page
                raise TransientError(self.name, f"{calendar} changed while it was listed", item=calendar)
            taken = listing.taken
            etags = {href: member.etag for href, member in self._members(calendar, lambda h: h not in taken).items()}
            etags.update(listing.changed)
            token = "sync:" + listing.token
        if before is not None and self._ctag(calendar) == before:
            token = _with_ctag(before, token)
        return [ItemRef(calendar, href, etag) for href, etag in sorted(etags.items())], token

    def _changes(self, calendar: str, token: str | None, known: Mapping[str, str]) -> ChangeSet:
        if token is not None and not token.startswith(("sync:", "etags:", "etaghash:")):
            raise InvalidTokenError(self.name, f"not a CalDAV change token: {token[:40]!r}", item=calendar)
        use_sync = self.settings.sync_collection and (token is None or token.startswith("sync:"))
        if use_sync:
            result = self._sync_collection(calendar, token.removeprefix("sync:") if token else None, known)
            if result is not None:
                return result
            if token is not None:  # the server stopped doing sync-collection: start over
                raise InvalidTokenError(self.name, "sync-collection is not available any more", item=calendar)
        elif token is not None and token.startswith("sync:"):
            raise InvalidTokenError(self.name, "sync-collection is disabled for this platform", item=calendar)
        return self._etag_changes(calendar, token, known)

    def _sync_collection(self, calendar: str, token: str | None, known: Mapping[str, str]) -> ChangeSet | None:
        """RFC 6578 changes, or None when the server does not do sync-collection."""
        first = token is None
        listing = None
        if first and not known:
            # First contact: the objects are asked for with the listing, in the same REPORT (RFC
            # 6578 allows any property), instead of listing and then downloading them in multigets.
            listing = self._listing(calendar, None, with_data=True)
        if listing is None:
            listing = self._listing(calendar, token, with_data=False)
        if listing is None:
            return None
        unchanged, wanted = _split_known(calendar, listing.changed, known)
        items, unreadable = self._fetch_changed(calendar, wanted, listing.changed, listing.read)
        # listed as changed but not returned (404: deleted meanwhile?), or listed as deleted
        absent = set(_missing(wanted, items, unreadable)) | (set() if first else listing.deleted)
        if first or absent or self._size_limit(calendar) is not None:
            more, withheld, absent = self._recheck(calendar, absent, listing.changed, None if first else known)
            items, unreadable = items + more, unreadable + withheld
        refs = [ItemRef(calendar, h) for h in sorted(absent)]
        return ChangeSet(items, [] if first else refs, "sync:" + listing.token, complete=first,
                         unreadable=unreadable, unchanged=unchanged)

    def _recheck(self, calendar: str, absent: set[str], listed: Mapping[str, object],
                 known: Mapping[str, str] | None) -> tuple[list[CalendarItem], list[tuple[ItemRef, Problem]], set[str]]:
        """What a sync-collection listing and its fetch left out, checked against what the
        collection holds (PROPFIND Depth 1, answered from the stored names): a server may leave
        out of its REPORTs, and even refuse by GET, an object it will not serve (Radicale, one over
        its ``max_resource_size``), which a sync would take for deleted, and delete its copies;
        from a token, Radicale reports such an object neither changed nor deleted.

        ``absent``: the hrefs not returned or listed as deleted; ``listed``: every href the listing
        named as changed. ``known`` (None on a first listing, where every object the listing left
        out is missing from it): the ETags the caller holds, by href; from a token, the listing
        left out an object over the server's size limit that the caller does not hold at its
        ETag. Those the collection holds are asked for again; what still cannot be read is
        unreadable, with why. Returns (read, unreadable, the hrefs really gone)."""
        members = self._members(calendar)
        limit = self._size_limit(calendar)

        def left_out(href: str, member: _Member) -> bool:
            if href in listed:
                return False
            if known is None:
                return True
            oversized = limit is not None and member.size is not None and member.size > limit
            return oversized and known.get(href) != member.etag

        again = sorted(h for h, member in members.items() if h in absent or left_out(h, member))
        items, unreadable = self._fetch_changed(calendar, again, {h: members[h].etag for h in again})
        unreadable += self._withheld(calendar, _missing(again, items, unreadable), members)
        return items, unreadable, {h for h in absent if h not in members}

    def _withheld(self, calendar: str, hrefs: Iterable[str], members: Mapping[str, _Member]
                  ) -> list[tuple[ItemRef, Problem]]:
        """The objects at ``hrefs``, which the collection lists (``members``) but the server did not
        return when asked, as unreadable, with why: over the size limit the server states
        (CALDAV:max-resource-size), when it is."""
        out = []
        limit = self._size_limit(calendar)
        for href in sorted(hrefs):
            member = members[href]
            why, code = "the server lists this object but does not return it", ProblemCode.NO_DATA
            if member.size is not None and limit is not None and member.size > limit:
                why += (f": at {_megabytes(member.size)} it is over the server's limit of {_megabytes(limit)}"
                        " (max-resource-size); the server's administrator can raise it, or the object can be"
                        " made smaller")
                code = ProblemCode.TOO_LARGE
            # nothing of it read: it may be private (its href alone may name it)
            out.append((ItemRef(calendar, href, member.etag), Problem(self.name, why, href, code=code, private=True)))
        return out

    def _size_limit(self, calendar: str) -> int | None:
        """The largest object the server says ``calendar`` keeps (RFC 4791 5.2.5), None if it says
        nothing; asked once per calendar."""
        if calendar not in self._size_limits:
            found = self._propfind(self._url(calendar), [cdav.MaxResourceSize()], 0)
            self._size_limits[calendar] = next((s for r in found if (s := _size(r.properties.get(
                cdav.MaxResourceSize.tag))) is not None), None)
        return self._size_limits[calendar]

    def _listing(self, calendar: str, token: str | None, *, with_data: bool) -> _Listing | None:
        """What sync-collection says changed since ``token``, read again from its start after a
        transient failure (a streamed answer cut off part way cannot be resumed); None when the
        server does not do sync-collection, or, ``with_data``, will not send the objects in it."""
        return with_retries(partial(self._read_listing, calendar, token, with_data),
                            policy=self.retry, sleep=self.sleep)

    def _read_listing(self, calendar: str, token: str | None, with_data: bool,
                      take: Callable[[CalendarItem], None] | None = None) -> _Listing | None:
        listing = _Listing(take=take)
        calendar_path = self._path(calendar).rstrip("/")
        while True:
            with ExitStack() as stack:
                try:
                    answer = stack.enter_context(self._sync_report(calendar, token, with_data=with_data))
                except ConnectorError as exc:
                    if not with_data or isinstance(exc, TransientError):
                        raise
                    log.info("%s: sync-collection with data refused on %s (%s); listing first",
                             self.name, calendar, exc.message)
                    return None
                if answer.status not in (200, 207):
                    if with_data:  # a server that will not send data with a sync-collection: list, then fetch
                        return None
                    # RFC 6578 3.2 says 403 + DAV:valid-sync-token; Radicale does that, Xandikos answers 412
                    if token is not None and ("valid-sync-token" in answer.preconditions
                                              or answer.status in (403, 409, 412)):
                        raise InvalidTokenError(self.name, f"the server refused the sync token (HTTP {answer.status})",
                                                item=calendar)
                    log.info("%s: sync-collection not supported on %s (HTTP %s)", self.name, calendar, answer.status)
                    return None
                truncated = False
                try:
                    for page in answer.pages:
                        listing.add(page, calendar_path, partial(self._to_items, calendar))
                        truncated = truncated or page.truncated
                except OversizedAnswer as exc:
                    if not with_data:
                        raise ConnectorError(self.name, f"sync-collection on {calendar}: unreadable answer "
                                                        f"({exc})") from exc
                    log.info("%s: objects too large to read inline from %s (%s); listing first",
                             self.name, calendar, exc)
                    return None
            if not listing.token:
                raise ConnectorError(self.name, f"sync-collection on {calendar} returned no sync token")
            if not truncated:
                return listing
            token = listing.token

    @contextmanager
    def _sync_report(self, calendar: str, token: str | None, *, with_data: bool = False) -> Iterator[_Answer]:
        """One sync-collection REPORT asking for ETags (and the objects, ``with_data``), its answer
        read page by page as it arrives (:mod:`.caldav_stream`); refusals come back for the caller.
        Not retried here (see :meth:`_listing`)."""
        props: list[BaseElement] = [dav.GetEtag(), cdav.CalendarData()] if with_data else [dav.GetEtag()]
        body = _body(dav.SyncCollection() + [dav.SyncToken(value=token or ""), dav.SyncLevel(value="1"),
                                             dav.Prop() + props])
        with self._streamed("REPORT", calendar, body, {}) as chunks:
            if chunks is not None:
                yield _Answer(207, self._sync_pages(calendar, chunks))
                return
        # not a 207 at first sight (a refusal, or a 401 before the auth scheme is learnt): asked
        # again the usual way
        response = self._send("REPORT", calendar, body, {}, ok=(200, 207, *_UNSUPPORTED, 409, 412))
        if response.status in (200, 207):
            yield _Answer(response.status, [self._sync_page(calendar, response)])
        else:
            preconditions = [p.rsplit("}", 1)[-1] for p in dav_error.parse_preconditions(response.raw)]
            yield _Answer(response.status, [], preconditions)

    def _sync_pages(self, calendar: str, chunks: Iterable[bytes]) -> Iterator[SyncCollectionResult]:
        return self._pages(f"sync-collection on {calendar}", chunks, partial(self._sync_page, calendar))

    def _pages(self, what: str, chunks: Iterable[bytes], parse: Callable[[DAVResponse], _P]) -> Iterator[_P]:
        """``parse`` of each page of a multistatus answer streamed in ``chunks``, by the caldav
        library's own parsing (:func:`.caldav_stream.read_multistatus`). An element over the
        reader's limits raises :class:`OversizedAnswer` for the caller to decide."""
        def read(page: etree._Element) -> _P:
            response = DAVResponse.from_bytes(b"")  # a DAVResponse around the page, for the library's parsing
            response.tree, response.davclient = page, self._dav()
            return parse(response)

        try:
            yield from read_multistatus(chunks, read)
        except OversizedAnswer:
            raise  # an UnreadableAnswer too, but the caller decides (a listing asks for the objects apart)
        except MalformedAnswer as exc:  # as :meth:`_send` takes a whole malformed answer: asked again
            raise TransientError(self.name, f"{what}: the server answered {exc}") from exc
        except UnreadableAnswer as exc:
            raise ConnectorError(self.name, f"{what}: unreadable answer ({exc})") from exc

    def _sync_page(self, calendar: str, response: DAVResponse) -> SyncCollectionResult:
        try:
            return response.parse_sync_collection()
        except dav_error.DAVError as exc:
            raise ConnectorError(self.name, f"sync-collection on {calendar}: unreadable answer ({exc})") from exc

    def _etag_changes(self, calendar: str, token: str | None, known: Mapping[str, str]) -> ChangeSet:
        """Changes by comparing the ``href -> ETag`` map with the one the token carries."""
        members = self._members(calendar)
        now = {href: member.etag for href, member in members.items()}
        new_token = _etag_token(now)
        if token is not None and token == new_token:
            return ChangeSet([], [], new_token)
        try:
            before = _read_etag_token(token) if token is not None else None
        except ValueError as exc:
            raise InvalidTokenError(self.name, str(exc), item=calendar) from exc
        if before is None:  # first listing, or a hash-only token: everything, consumer diffs
            unchanged, wanted = _split_known(calendar, now, known)
            items, unreadable = self._fetch_changed(calendar, wanted, now)
            unreadable += self._withheld(calendar, _missing(wanted, items, unreadable), members)
            return ChangeSet(items, [], new_token, complete=True, unreadable=unreadable, unchanged=unchanged)
        moved = {h: etag for h, etag in now.items() if before.get(h) != etag or h not in before}
        unchanged, wanted = _split_known(calendar, moved, known)
        items, unreadable = self._fetch_changed(calendar, wanted, now)
        # listed, then not returned: withheld (see :meth:`_recheck`), or deleted since the listing
        # (the next listing says so)
        unreadable += self._withheld(calendar, _missing(wanted, items, unreadable), members)
        deleted = [ItemRef(calendar, h, before[h]) for h in sorted(set(before) - set(now))]
        return ChangeSet(items, deleted, new_token, unreadable=unreadable, unchanged=unchanged)

    def _members(self, calendar: str, keep: Callable[[str], bool] | None = None) -> dict[str, _Member]:
        """The objects the collection holds, by href, as its PROPFIND (Depth 1) lists them. The
        answer is read page by page as it arrives, as a first listing's REPORT is: every full
        listing asks for it too (:meth:`_recheck`), and read whole, its document and tree were the
        largest thing held while a 10,000-object calendar was read. Read again from its start
        after a transient failure (a streamed answer cut off part way cannot be resumed).
        ``keep``: only the hrefs it accepts are kept (those not read already)."""
        return with_retries(partial(self._read_members, calendar, keep), policy=self.retry, sleep=self.sleep)

    def _read_members(self, calendar: str, keep: Callable[[str], bool] | None = None) -> dict[str, _Member]:
        calendar_path = self._path(calendar).rstrip("/")
        found = self._listed(calendar, [dav.GetEtag(), _GetContentLength(), dav.ResourceType()])
        return {r.href: _Member(r.properties.get(dav.GetEtag.tag), _size(r.properties.get(_GetContentLength.tag)))
                for r in found if r.href.rstrip("/") != calendar_path and (keep is None or keep(r.href))
                and dav.Collection.tag not in (r.properties.get(dav.ResourceType.tag) or [])}

    def _listed(self, calendar: str, props: list[BaseElement]) -> Iterator[Any]:
        """The results of a PROPFIND (Depth 1) of ``calendar`` for ``props``, read page by page
        as the answer arrives. Not retried here (see :meth:`_members`)."""
        body, what = _body(dav.Propfind() + (dav.Prop() + props)), f"PROPFIND {calendar}"
        with self._streamed("PROPFIND", calendar, body, {"Depth": "1"}) as chunks:
            if chunks is not None:
                try:
                    for page in self._pages(what, chunks, partial(self._propfind_results, calendar)):
                        yield from page
                except OversizedAnswer as exc:
                    raise ConnectorError(self.name, f"{what}: unreadable answer ({exc})") from exc
                return
        # not a 207 at first sight (a refusal, or a 401 before the auth scheme is learnt): asked
        # again the usual way, whole
        yield from self._propfind_results(calendar, self._send("PROPFIND", calendar, body, {"Depth": "1"}))

    def _fetch_changed(self, calendar: str, hrefs: Sequence[str], etags: Mapping[str, str | None],
                       sent: Mapping[str, tuple[list[CalendarItem], list[Problem]]] | None = None,
                       ) -> tuple[list[CalendarItem], list[tuple[ItemRef, Problem]]]:
        """The objects at ``hrefs`` (``etags`` says the server's current ETag of each), and those
        that exist but cannot be read (with why), so that sync quarantines them instead of
        mistaking them for deletions. Objects known at their current ETag are not fetched again,
        nor those the listing ``sent`` with their data (read already, as it arrived)."""
        sent = sent or {}
        known = [self._known_item(calendar, h, etags.get(h)) for h in hrefs]
        wanted = [h for h, item in zip(hrefs, known, strict=True) if item is None]
        items, problems = self._multiget_items(calendar, [h for h in wanted if h not in sent])
        for href in wanted:
            if href in sent:
                items += sent[href][0]
                problems += sent[href][1]
        self._remember(items, problems)
        if len(wanted) < len(hrefs) or sent:
            order = {h: n for n, h in enumerate(hrefs)}
            cached = [item for item in known if item is not None]
            items = sorted(cached + items, key=lambda i: order.get(i.ref.id if i.ref else "", len(order)))
        fetched = {i.ref.id for i in items if i.ref}
        unreadable = []
        for href in wanted:
            about = [p for p in problems if p.about(href)]
            if href not in fetched and about:
                unreadable.append((ItemRef(calendar, href), about[0]))
        for problem in problems:
            log.warning("%s", problem)
        return items, unreadable

    def _known_item(self, calendar: str, href: str, etag: str | None) -> CalendarItem | None:
        known = self._known.get(href)
        if etag is None or known is None or known[0] != etag:
            return None
        return replace(known[1], ref=ItemRef(calendar, href, etag))

    def _remember(self, items: Iterable[CalendarItem], problems: Iterable[Problem] = ()) -> None:
        """Keep cleanly parsed single-object resources by href and ETag (see ``_known``)."""
        if len(self._known) > _KNOWN_MAX:
            self._known.clear()
        troubled = {(p.item or "").rsplit(" in ", 1)[-1] for p in problems}
        by_href: dict[str, list[CalendarItem]] = {}
        for item in items:
            if item.ref is not None and item.ref.etag:
                by_href.setdefault(item.ref.id, []).append(item)
        for href, found in by_href.items():
            if len(found) == 1 and href not in troubled and found[0].ref is not None and found[0].ref.etag:
                self._known[href] = (found[0].ref.etag, found[0])

    # ---------------------------------------------------------------------------- writing
    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        """Create (``If-None-Match: *`` at ``<uid>.ics``) or replace (``If-Match``) one object."""
        body = ical.item_to_ical(item).decode("utf-8")
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if item.ref is None:
            href = self.planned_id(calendar, item)
            headers["If-None-Match"] = "*"
        else:
            href = item.ref.id
            if if_match:
                headers["If-Match"] = if_match
                if self._known_item(calendar, href, if_match) is None:  # not known to be read whole
                    body = self._keeping(href, item, if_match) or body
        url = self._url(href)
        try:
            response = self._write(calendar, "PUT", url, body, headers, ok=(200, 201, 204), item=item.uid)
        except PreconditionFailed as exc:
            if item.ref is None and "HTTP 412" in exc.message:
                raise PreconditionFailed(self.name, f"{url} exists already (an object with UID {item.uid})",
                                         item=item.uid) from exc
            raise
        etag = response.headers.get("ETag")
        path = self._path(href)
        self._known.pop(path, None)
        if not etag:  # the server changed the data or just did not say: ask
            found = self._propfind(url, [dav.GetEtag()], 0)
            etag = next((r.properties.get(dav.GetEtag.tag) for r in found), None)
        else:  # an ETag on PUT means the server stored these very bytes (RFC 4791 5.3.4), so the
            # item they were made from stands for what a read at this ETag returns (not parsed again)
            self._remember([replace(item, ref=ItemRef(calendar, path, etag))])
        return ItemRef(calendar, path, etag)

    def _keeping(self, href: str, item: CalendarItem, etag: str) -> str | None:
        """The object at ``href`` with ``item`` in place of what calmesh read of it, and what it
        could not read (a change to one occurrence it cannot place, the object's own properties,
        an X- component) kept as it is (:func:`calmesh.ical.replace_in_text`): replacing an
        object must not lose them. None when the object is no longer at ``etag`` (the PUT's
        If-Match then fails) or cannot be edited so (one object could not hold both): the item's
        own text is written then."""
        response = self._read("GET", self._url(href), ok=(200, 404), item=item.uid)
        if response.status != 200 or response.headers.get("ETag") != etag:
            return None
        try:
            return ical.replace_in_text(response.raw.encode(), item.uid, item, present=True, one_object=True).decode()
        except ical.ICalError:
            return None

    def planned_id(self, calendar: str, item: CalendarItem) -> str:
        """The href a new object gets: ``<calendar>/<name from its UID>`` (see :func:`_resource_name`)."""
        return self._path(self._path(calendar).rstrip("/") + "/" + _resource_name(item.uid))

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        headers = {"If-Match": if_match} if if_match else {}
        self._known.pop(self._path(ref.id), None)
        self._write(calendar, "DELETE", self._url(ref.id), "", headers, ok=(200, 204), item=ref.id)

    def _write(self, calendar: str, method: str, url: str, body: str, headers: dict[str, str], *,
               ok: Iterable[int], item: str) -> DAVResponse:
        """A PUT or DELETE in ``calendar``. The connector's first there goes alone: a server's first
        write to a calendar can cost far more than the next (Xandikos reads every object of the
        calendar for its UIDs then: 0.85 s at 1,000 objects, against 0.04 s for the next), and
        each write sent beside it paid that again (four first writes at once took 3.6 s each).
        Then writes go together, as many as the caller makes (``[hub] sync_write_workers``),
        until the server refuses one (see :meth:`_write_in_turn_once_refused`)."""
        with self._writes:
            mine = calendar not in self._first_writes
            first = self._first_writes.setdefault(calendar, threading.Event())
        if mine:
            try:
                return self._write_in_turn_once_refused(method, url, body, headers, ok=ok, item=item)
            finally:
                first.set()
        first.wait()
        return self._write_in_turn_once_refused(method, url, body, headers, ok=ok, item=item)

    def _write_in_turn_once_refused(self, method: str, url: str, body: str, headers: dict[str, str], *,
                                    ok: Iterable[int], item: str) -> DAVResponse:
        """A write; one at a time once the server has refused one with 423 Locked while another
        was being stored. Some servers store one write at a time and refuse the others meanwhile
        (Xandikos, which commits each to Git under one lock): writes made together each met a
        423, and the run's retry budget for the platform was spent in a moment. The write refused
        so is asked again, in turn, once the writes already sent together have ended; a 423 then
        is a lock held by someone else (a client's WebDAV LOCK, another program writing), retried
        later like any transient failure, and since the connector's own writes were not the cause,
        they go together again: one user's lock does not make every later write wait in line."""
        with self._writes:
            together = not self._writes_in_turn
            self._writes_together += together
        if together:
            try:
                return self._send(method, url, body, headers, ok=ok, item=item)
            except Locked:
                with self._writes:
                    if not self._writes_in_turn:
                        self._writes_in_turn = True
                        log.info("%s: the server refused a write while storing another (423 Locked): "
                                 "writing one at a time from now on", self.name)
            finally:
                with self._writes:
                    self._writes_together -= 1
                    self._writes.notify_all()
        with self._write_turn:
            with self._writes:
                self._writes.wait_for(lambda: self._writes_together == 0)
            try:
                return self._send(method, url, body, headers, ok=ok, item=item)
            except Locked:
                with self._writes:
                    if self._writes_in_turn:
                        self._writes_in_turn = False
                        log.info("%s: a write sent alone was refused (423 Locked): the lock is someone "
                                 "else's, writing together again", self.name)
                raise

    # ---------------------------------------------------------------------------- lifecycle
    def check(self) -> list[str]:
        """Reach, authenticate, list calendars, and say which optional REPORTs work."""
        calendars = self.calendars()
        lines = [f"reachable at {self.settings.url}, logged in as {self.settings.username or '(anonymous)'}",
                 f"{len(calendars)} calendar(s): " + ", ".join(f"{c.name} ({c.owner or 'owner unknown'})"
                                                               for c in calendars[:10])]
        if not calendars:
            return lines
        first = calendars[0].id
        start = datetime.now(UTC)
        window = Window(start, start + timedelta(days=1))
        fbq = self._free_busy_query(first, window) is not None
        lines.append("free-busy-query: " + ("answered by the server" if fbq else "not supported, computed from events"))
        with self._sync_report(first, None) as answer:
            sync = answer.status in (200, 207)
        lines.append("sync-collection: " + ("supported" if sync else "not supported, ETag comparison is used"))
        return lines


    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
