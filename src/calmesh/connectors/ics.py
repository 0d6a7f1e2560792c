"""iCalendar files and feeds as a platform: a file, a folder of files, or an http(s) URL.

This is how in-house systems that can export (or import) ``.ics`` join the hub. A folder holds one
calendar per ``*.ics`` file; a file named after a person (``alice@agency.example.ics``) is that
person's calendar. Local files are writable, atomically, so they can be sync and booking targets;
URL feeds are read-only and fetched with conditional GET (ETag / Last-Modified).

Change detection is by content hash: the token is the hash of the calendar text, and a changed
text is reported as a complete listing, which the sync engine diffs against its per-item hashes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from calmesh import ical
from calmesh.config import SecretUnavailable
from calmesh.connectors.base import (
    AuthenticationError,
    Capabilities,
    Connector,
    ConnectorSettings,
    InvalidDataError,
    NotFoundError,
    PreconditionFailed,
    TransientError,
    UnsupportedOperation,
    parse_retry_after,
    with_retries,
)
from calmesh.connectors.settings import ICSSettings
from calmesh.model import CalendarInfo, CalendarItem, ChangeSet, Event, ItemRef, Problem, Window
from calmesh.timezones import zoneinfo

if TYPE_CHECKING:
    import httpx

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FEED_BYTES = 50 * 1024 * 1024
"""A feed larger than this is refused rather than read into memory."""


@dataclass(slots=True)
class _Cached:
    etag: str | None
    last_modified: str | None
    body: bytes


def item_etag(item: CalendarItem) -> str:
    """An item's version in a file: the hash of its serialised components (DTSTAMP excluded)."""
    digest = hashlib.sha256()
    for event in item.components:
        digest.update(ical.event_to_component(event, stamp=_EPOCH).to_ical())
    return digest.hexdigest()[:32]


class ICSConnector(Connector):
    kind: ClassVar[str] = "ics"
    Settings: ClassVar[type[ConnectorSettings]] = ICSSettings
    capabilities: ClassVar[Capabilities] = Capabilities(write=True, changes=True)

    def __init__(self, name: str, settings: ConnectorSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, ICSSettings)
        self.cfg = settings
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.RLock()
        self._http: httpx.Client | None = None
        self._zone = zoneinfo(settings.timezone)

    # ------------------------------------------------------------------ locating calendars
    @property
    def _root(self) -> Path | None:
        if self.cfg.path is None:
            return None
        p = Path(self.cfg.path).expanduser()
        if not p.is_absolute() and self.cfg.base_dir:
            p = Path(self.cfg.base_dir) / p
        return p

    def _file(self, calendar: str) -> Path:
        root = self._root
        assert root is not None
        if root.is_file() or root.suffix == ".ics":
            return root
        candidate = (root / calendar).resolve()
        if root.resolve() not in candidate.parents:
            raise NotFoundError(self.name, f"calendar {calendar!r} is outside {root}")
        return candidate

    def calendars(self) -> list[CalendarInfo]:
        if self.cfg.url:
            return [CalendarInfo(self.cfg.url, self.name, self.name, read_only=True)]
        root = self._root
        assert root is not None
        if root.suffix == ".ics" or root.is_file():
            return [self._info(root.name, root)]
        if not root.is_dir():
            raise NotFoundError(self.name, f"folder {root} does not exist")
        return [self._info(p.name, p) for p in sorted(root.glob("*.ics"))]

    def _info(self, calendar_id: str, path: Path) -> CalendarInfo:
        stem = path.stem
        return CalendarInfo(
            id=calendar_id,
            name=stem,
            platform=self.name,
            owner=stem.lower() if "@" in stem else None,
            read_only=not self.cfg.writable,
        )

    def calendars_of(self, email: str) -> list[str]:
        if self.cfg.url:
            return [self.cfg.url]
        return super().calendars_of(email)

    # ------------------------------------------------------------------ reading
    def _client(self) -> httpx.Client:
        import httpx  # only URL feeds need it: a folder of files should not pay ~0.1 s to import it

        if self._http is None:
            try:
                password = self.cfg.password(self.name)
            except SecretUnavailable as exc:
                raise AuthenticationError(self.name, exc.detail, setting=exc.setting) from exc
            auth = (self.cfg.username, password) if self.cfg.username and password else None
            self._http = httpx.Client(timeout=self.cfg.timeout, verify=self.cfg.verify_tls, auth=auth,
                                      follow_redirects=True, headers={"User-Agent": "calmesh"})
        return self._http

    def _fetch_url(self, url: str) -> bytes:
        cached = self._cache.get(url)
        headers = {}
        if cached and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified

        import httpx

        def call() -> bytes:
            try:
                with self._client().stream("GET", url, headers=headers) as response:
                    if response.status_code == 304 and cached:
                        return cached.body
                    if response.status_code in (401, 403):
                        raise AuthenticationError(self.name, f"feed refused access ({response.status_code})")
                    if response.status_code == 404:
                        raise NotFoundError(self.name, f"feed not found: {url}")
                    if response.status_code == 429 or response.status_code >= 500:
                        raise TransientError(self.name, f"feed answered {response.status_code}",
                                             retry_after=parse_retry_after(response.headers.get("Retry-After")))
                    if response.status_code >= 400:
                        raise NotFoundError(self.name, f"feed answered {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) > MAX_FEED_BYTES:
                            raise InvalidDataError(self.name, f"feed is larger than {MAX_FEED_BYTES // 2**20} MB")
                    self._cache[url] = _Cached(response.headers.get("ETag"),
                                               response.headers.get("Last-Modified"), bytes(body))
                    return bytes(body)
            except httpx.TimeoutException as exc:
                raise TransientError(self.name, f"feed timed out: {exc}") from exc
            except httpx.TransportError as exc:
                raise TransientError(self.name, f"feed unreachable: {exc}") from exc

        return with_retries(call)

    def _read(self, calendar: str) -> bytes:
        if self.cfg.url:
            return self._fetch_url(self.cfg.url)
        path = self._file(calendar)
        try:
            if path.stat().st_size > MAX_FEED_BYTES:
                raise InvalidDataError(self.name, f"{path.name} is larger than {MAX_FEED_BYTES // 2**20} MB")
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(self.name, f"calendar file {path} does not exist") from None
        except OSError as exc:
            raise TransientError(self.name, f"cannot read {path}: {exc.strerror}") from exc

    def events(self, calendar: str, window: Window) -> tuple[list[Event], list[Problem]]:
        events, problems = ical.expand(self._read(calendar), window, self.name, self._zone)
        return events, [replace(p, item=p.item or calendar) for p in problems]  # name the file

    def _parse(self, calendar: str, data: bytes) -> tuple[list[CalendarItem], list[Problem]]:
        """The items of a calendar text; raises when nothing of it could be read (garbage, binary,
        an empty or cut file): such a file is not an empty calendar, and taken for one a sync
        would delete every copy of its events."""
        items, problems = ical.parse_items(data, self.name)
        damage = [p for p in problems if p.item is None]
        if damage and not items:
            raise InvalidDataError(self.name, damage[0].message, item=calendar)
        return items, problems

    def items(self, calendar: str, window: Window | None = None) -> tuple[list[CalendarItem], list[Problem]]:
        data = self._read(calendar)
        items, problems = self._parse(calendar, data)
        for item in items:
            item.ref = ItemRef(calendar, item.uid, item_etag(item))
        if window is not None:
            occurrences, _ = ical.expand(data, window, self.name, self._zone)
            touching = {e.uid for e in occurrences}
            items = [i for i in items if i.uid in touching]
        return items, problems

    def changes(self, calendar: str, token: str | None) -> ChangeSet:
        data = self._read(calendar)
        digest = hashlib.sha256(data).hexdigest()
        if token == digest:
            return ChangeSet([], [], digest)
        items, problems = self.items(calendar)
        # events lost in a damaged file are not deletions: no listing is complete without them
        return ChangeSet(items, [], digest, complete=not any(p.item is None for p in problems))

    # ------------------------------------------------------------------ writing
    def _writable_file(self, calendar: str) -> Path:
        if self.cfg.url or not self.cfg.writable:
            raise UnsupportedOperation(self.name, "this ics platform is read-only")
        return self._file(calendar)

    def _rewrite(self, calendar: str, uid: str, change: Callable[[CalendarItem | None], CalendarItem | None]) -> None:
        """Replace the item ``uid`` of a calendar file by ``change(current)`` (None: remove it),
        leaving every other byte of the file as it was (:func:`calmesh.ical.replace_in_text`):
        what calmesh could not read of a file is never lost by writing to it."""
        path = self._writable_file(calendar)
        with self._lock:
            existing = path.read_bytes() if path.exists() else b""
            items, _problems = ical.parse_items(existing, self.name) if existing.strip() else ([], [])
            current = next((i for i in items if i.uid == uid), None)
            new = change(current)
            if not existing.strip():
                data = ical.to_calendar([new] if new is not None else []).to_ical()
            else:
                try:
                    data = ical.replace_in_text(existing, uid, new, present=current is not None)
                except ical.ICalError as exc:  # the file's, never an event's words (it may be private)
                    raise InvalidDataError(self.name, f"{path.name} is damaged; not rewriting it: {exc}") from exc
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def put(self, calendar: str, item: CalendarItem, if_match: str | None = None) -> ItemRef:
        def change(current: CalendarItem | None) -> CalendarItem:
            if item.ref is None and current is not None and if_match is None:
                raise PreconditionFailed(self.name, "an event with this UID already exists", item=item.uid)
            if if_match is not None and (current is None or item_etag(current) != if_match):
                raise PreconditionFailed(self.name, "changed since it was read", item=item.uid)
            return CalendarItem(item.uid, item.components)

        self._rewrite(calendar, item.uid, change)
        return ItemRef(calendar, item.uid, item_etag(item))

    def delete(self, calendar: str, ref: ItemRef, if_match: str | None = None) -> None:
        def change(current: CalendarItem | None) -> None:
            if current is None:
                raise NotFoundError(self.name, "no such event", item=ref.id)
            if if_match is not None and item_etag(current) != if_match:
                raise PreconditionFailed(self.name, "changed since it was read", item=ref.id)

        self._rewrite(calendar, ref.id, change)

    def check(self) -> list[str]:
        """Also read every calendar: a damaged file fails the check (its time answers unknown)."""
        lines = super().check()
        for info in self.calendars():
            _items, problems = self._parse(info.id, self._read(info.id))
            damage = [p for p in problems if p.item is None]
            if damage:
                raise InvalidDataError(self.name, damage[0].message, item=info.id)
        lines.append("read-only feed" if self.cfg.url or not self.cfg.writable else "writable files")
        return lines

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
