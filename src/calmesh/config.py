"""The calmesh configuration file (TOML), validated with pydantic, with errors that point at a line.

Why line numbers: an operator who mistypes ``kind = "caldv"`` in a 200-line file should be sent to
line 17, not handed a pydantic location tuple. Secrets are never inline: fields ending in ``_env``
name an environment variable, read by :func:`secret` when the connector starts.

Layout (see ``examples/calmesh.toml``)::

    [hub]              default time zone, state database URL
    [server]           listen address, users, cache, limits
    [privacy]          free/busy only by default; grants of details
    [platforms.NAME]   one per platform: kind = "caldav" | "ics" | "ews" | "graph" | ... + its settings
    [[people]]         the directory: email, name, team, home platform and calendars, working hours
    [sync.groups.NAME] calendars kept in step (see calmesh.services.sync)
    [smtp]             outgoing mail for iMIP invitations
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable
from datetime import time
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from calmesh.model import WorkingHours, WorkingPeriod, normalize_email


class ConfigError(Exception):
    """A configuration problem, with the file and line where it can be fixed."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None) -> None:
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)
        self.problems: list[ConfigError] = [self]
        """Every mistake found (this one first): a file is reported whole, not one fix at a time."""

    @classmethod
    def several(cls, problems: list[ConfigError]) -> ConfigError:
        """One error for all ``problems``: the first's file, line and message, one line each."""
        combined = cls(problems[0].message, problems[0].path, problems[0].line)
        combined.problems = list(problems)
        combined.args = ("\n".join(str(p) for p in problems),)
        return combined


class SecretUnavailable(ConfigError):
    """A secret could not be read. ``what`` is the dotted name of the setting that names its
    source (``platforms.zoho.password_env``), so a door can say which line to fix; ``detail`` says
    why in plain words, without the setting."""

    def __init__(self, what: str, detail: str) -> None:
        self.what, self.detail = what, detail
        super().__init__(f"{what}: {detail}")

    @property
    def setting(self) -> str:
        """The setting's own name (``password_env``)."""
        return self.what.rsplit(".", 1)[-1]


class MissingSecret(SecretUnavailable):
    """The environment variable a ``*_env`` setting names is not set."""

    def __init__(self, env_name: str, what: str) -> None:
        self.env_name = env_name
        super().__init__(what, f"environment variable {env_name} is not set")


def secret(env_name: str | None, what: str, *, command: str | None = None, keyring: str | None = None,
           user: str | None = None) -> str | None:
    """Read a secret, from the first source configured: the environment variable ``env_name``
    (when set), the first line ``command`` prints (run without a shell, as vdirsyncer's and
    khal's ``password_command`` users expect: ``pass show calmesh/zoho``), the system keyring entry
    of service ``keyring`` and ``user`` (the optional ``keyring`` package). None if none is
    configured; :class:`SecretUnavailable` when a configured source gives nothing."""
    if env_name and env_name in os.environ:
        return os.environ[env_name]
    where = what.rsplit(".", 1)[0]
    if command:
        return _secret_from_command(command, f"{where}.password_command")
    if keyring:
        return _secret_from_keyring(keyring, user or "calmesh", f"{where}.keyring")
    if env_name:
        raise MissingSecret(env_name, what)
    return None


def _secret_from_command(command: str, what: str) -> str:
    import shlex
    import subprocess

    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, check=False)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise SecretUnavailable(what, f"cannot run {command!r}: {getattr(exc, 'strerror', None) or exc}") from exc
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines or not lines[0]:
        said = (done.stderr.strip().splitlines() or ["no output"])[0][:200]
        raise SecretUnavailable(what, f"{command!r} gave no password (exit {done.returncode}: {said})")
    return lines[0]


def _secret_from_keyring(service: str, user: str, what: str) -> str:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        raise SecretUnavailable(what, "the keyring package is not installed (pip install 'calmesh[keyring]')") from None
    try:
        value = keyring.get_password(service, user)
    except KeyringError as exc:
        raise SecretUnavailable(what, f"the system keyring cannot be read ({type(exc).__name__})") from exc
    if value is None:
        raise SecretUnavailable(what, f"no password for {user!r} under service {service!r} in the system keyring")
    return str(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_zone(value: str | None) -> str | None:
    if value is None:
        return None
    from calmesh.timezones import to_iana

    iana = to_iana(value)
    if iana is None:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)")
    return iana


_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def parse_days(spec: str) -> frozenset[int]:
    """``"Mon-Fri"``, ``"Mon,Wed,Fri"`` or ``"Sat-Sun"`` -> weekday numbers (Monday = 0)."""
    days: set[int] = set()
    for part in spec.replace(" ", "").lower().split(","):
        if not part:
            continue
        if "-" in part:
            first, last = (_DAYS.get(p[:3]) for p in part.split("-", 1))
            if first is None or last is None:
                raise ValueError(f"bad day range {part!r}")
            day = first
            while True:
                days.add(day)
                if day == last:
                    break
                day = (day + 1) % 7
        else:
            if part[:3] not in _DAYS:
                raise ValueError(f"bad day {part!r}")
            days.add(_DAYS[part[:3]])
    return frozenset(days)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float) -> float:
    """``"60s"``, ``"5m"``, ``"1h"``, ``"90d"`` or a number of seconds -> seconds (> 0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _DURATION.match(str(value).lower())
        if m is None:
            raise ValueError(f"bad duration {value!r} (use seconds, or 60s, 5m, 1h, 90d)")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"duration must be positive, got {value!r}")
    return seconds


class WorkingHoursConfig(_Strict):
    days: str = "Mon-Fri"
    start: time = time(9)
    end: time = time(17)

    @model_validator(mode="after")
    def _order(self) -> WorkingHoursConfig:
        parse_days(self.days)
        if self.end <= self.start:
            raise ValueError("working hours end must be after start")
        return self


class SourceConfig(_Strict):
    platform: str
    calendars: list[str] = Field(default_factory=list)
    """Calendar ids on that platform; empty means the person's default calendar(s)."""
    mailbox: str | None = None
    """The person's address on that platform when it differs from their directory email."""


def _check_email(value: str) -> str:
    value = normalize_email(value)
    if not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise ValueError(f"{value!r} is not an email address")
    return value


class PersonConfig(_Strict):
    email: str
    name: str | None = None
    team: str | None = None
    platform: str
    """Home platform: where their meetings are booked and invitations land."""
    calendars: list[str] = Field(default_factory=list)
    mailbox: str | None = None
    also: list[SourceConfig] = Field(default_factory=list)
    """Further platforms holding part of this person's time (e.g. the in-house project system)."""
    timezone: str | None = None
    working_hours: WorkingHoursConfig | None = None
    availability: str | None = None
    """A VAVAILABILITY (RFC 7953) ``.ics`` path (relative to the config file) or http(s) URL that
    publishes this person's working hours; used by scheduling before ``working_hours``."""
    invite: Literal["auto", "calendar", "email"] = "auto"
    """How a booking reaches this person when they are not the organiser: ``calendar`` writes the
    invitation into their home calendar, ``email`` sends iMIP, ``auto`` writes when their home
    platform's connector can write and mails otherwise (see docs/scheduling.md)."""

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _check_zone(v)))

    _email = field_validator("email")(classmethod(lambda cls, v: _check_email(v)))

    @property
    def sources(self) -> list[SourceConfig]:
        home = SourceConfig(platform=self.platform, calendars=self.calendars, mailbox=self.mailbox)
        return [home, *self.also]

    def hours(self, default_zone: str) -> WorkingHours | None:
        if self.working_hours is None:
            return None
        wh = self.working_hours
        return WorkingHours(
            self.timezone or default_zone,
            (WorkingPeriod(parse_days(wh.days), wh.start, wh.end),),
        )


class HubConfig(_Strict):
    timezone: str = "UTC"
    state: str = "sqlite:///calmesh-state.sqlite"
    """SQLAlchemy URL of the state store; a relative SQLite path is relative to the config file."""
    freebusy_timeout: float = 20.0
    """Seconds a free/busy fan-out waits for a platform before reporting it as failing."""
    sync_write_workers: int = Field(default=1, ge=1, le=32)
    """Writes a sync run makes at once. 1 writes strictly in plan order; more makes a large first
    copy bound by the servers rather than by one round trip after another."""
    queue: str | None = None
    """Redis URL (``redis://host:6379/0``): the server's watch loop then enqueues sync group runs
    for ``calmesh worker`` processes instead of running them itself (see docs/sync.md)."""
    cache: str | None = None
    """Where free/busy answers are cached: unset keeps them in each process; a Redis URL
    (``redis://host:6379/1``) shares them between ``calmesh serve`` processes and hosts, and lets a
    ``calmesh worker`` that sees a calendar change drop its people's answers everywhere."""

    @field_validator("cache")
    @classmethod
    def _cache_url(cls, v: str | None) -> str | None:
        if v is not None and urlsplit(v).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"cache must be a redis://, rediss:// or unix:// URL, got {v!r}")
        return v

    locale: str | None = None
    """Date formats and the first day of the week (``en_US``: weeks from Sunday, "Mon, Nov 23";
    ``fr_FR``: from Monday, "lun. 23 nov."), for the command line and the web page alike. Unset,
    each person's own applies: ``LC_ALL``/``LC_TIME``/``LANG`` on the command line, the browser's
    language on the web page (see :mod:`calmesh.locales`)."""

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _check_zone(v)))

    @field_validator("locale")
    @classmethod
    def _locale(cls, v: str | None) -> str | None:
        from calmesh.locales import check_locale

        return None if v is None else check_locale(v)


class UserConfig(_Strict):
    name: str
    password_hash: str | None = None
    """An Argon2id hash as printed by ``calmesh hash-password`` (earlier ``pbkdf2_sha256$...``
    hashes are still accepted)."""
    password_env: str | None = None
    token_hash: str | None = None
    """Hash of a bearer token (same format), for API clients."""
    sees_details_of: list[str] = Field(default_factory=list)
    """Emails, ``team:NAME`` or ``*`` whose event titles and locations this user may see."""
    email: str | None = None
    """The user's own address: their CalDAV principal's ``mailto:`` calendar-user address, which
    the ORGANIZER of their free/busy requests must match. Defaults to ``name`` when the name is
    an email address."""

    _email = field_validator("email")(classmethod(lambda cls, v: None if v is None else _check_email(v)))
    rate_limit_per_minute: int | None = Field(default=None, ge=1)
    """This user's own request budget, instead of ``server.rate_limit_per_minute``: a service
    account asking for a whole organisation (an Exchange availability address space) needs one
    sized for everyone it asks for."""


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = 8765
    public_url: str | None = None
    """The URL clients reach calmesh at (``https://calmesh.example.org``), through any proxy.
    Autodiscover hands out URLs built from it and is refused without it."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses of reverse proxies whose ``X-Forwarded-For`` names the client: sign-in and rate
    limits then count the real client, not the proxy."""
    auth_workers: int = Field(default=2, ge=1, le=64)
    """Threads that verify password hashes (each Argon2 check takes ~64 MiB)."""
    cache_ttl: float = 60.0
    max_request_bytes: int = 1_000_000
    max_window_days: int = 366
    rate_limit_per_minute: int = 600
    """Requests per minute per signed-in user (``server.users[].rate_limit_per_minute`` overrides
    it per user) and per client address for requests without a valid sign-in."""
    body_timeout: float = Field(default=30.0, gt=0)
    """Seconds a request may take to send its body once its headers are in: a client that
    announces a body and never sends it gets 408 instead of holding a worker."""
    anonymous_freebusy: bool = False
    """Serve VFREEBUSY URLs and feeds of *everyone* without authentication. This makes every
    person's free/busy public and the directory enumerable; prefer the secret, revocable URLs of
    ``calmesh feeds issue``."""
    monitoring_users: list[str] = Field(default_factory=list)
    """Users (names from ``users``) who may read ``/metrics`` and the details of ``/healthz``."""
    monitoring_addresses: list[str] = Field(default_factory=list)
    """Client addresses or networks (``10.0.0.5``, ``10.0.0.0/24``) that may read ``/metrics`` and the
    details of ``/healthz`` without signing in (a Prometheus scraper)."""
    users: list[UserConfig] = Field(default_factory=list)
    watch_sync: bool = True
    """Run the sync watch loop in-process while serving."""

    @field_validator("monitoring_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry[:80]!r} is not an IP address or network (10.0.0.0/24)") from None
        return value

    @model_validator(mode="after")
    def _monitoring_users(self) -> ServerConfig:
        unknown = set(self.monitoring_users) - {u.name for u in self.users}
        if unknown:
            raise ValueError(f"monitoring_users names no configured user: {', '.join(sorted(unknown))}")
        return self

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"public_url must be an absolute http(s) URL such as "
                             f"https://calmesh.example.org, not {value[:80]!r}")
        return value.rstrip("/")


class PrivacyConfig(_Strict):
    default: Literal["freebusy", "details"] = "freebusy"
    busy_title: str = "Busy"


class SyncMember(_Strict):
    platform: str
    calendar: str
    direction: Literal["both", "in", "out"] = "both"
    """``in``: receives only; ``out``: source only; ``both``: two-way."""
    owner: str | None = None
    """Whose calendar this is (an address). Found from ``[[people]]`` when a person lists this
    calendar (or, on Exchange and Graph, names it by their mailbox or address); set it for a
    calendar found by discovery. Sync needs it to know an attendee's copy of a meeting from its
    organiser's: only the organiser's edits and deletions change a meeting."""
    _owner = field_validator("owner")(classmethod(lambda cls, v: None if v is None else _check_email(v)))


class SyncGroupConfig(_Strict):
    calendars: list[SyncMember]
    mode: Literal["mirror", "busy"] = "mirror"
    busy_title: str = "Busy"
    attendees: Literal["copy", "omit"] = "omit"
    """Mirror mode: ``copy`` the organizer and attendees to the copies (platforms without a
    "send none" switch, Microsoft Graph, then mail them), or ``omit`` them: copies are plain
    events and originals keep their own. Busy placeholders never carry people."""
    conflict: str = "newest"
    """``newest`` (SEQUENCE then LAST-MODIFIED), ``keep-both``, or a platform name that wins."""
    max_delete_share: float = 0.25
    """Deleting more than this share of a calendar within ``delete_window`` waits for confirmation."""
    delete_window: float = 86400.0
    """Seconds over which the bulk-delete guard adds up deletions (``"24h"``, ``"30m"``...): a
    calendar losing a little on every run is judged by what it lost in all of them."""
    keep_deletions: float = 90 * 86400.0
    """Seconds a deleted event is remembered once it is gone from every calendar (``"90d"``): until
    then the deleted object turning up again where calmesh deleted it (an offline client pushing
    it back) is deleted again. After, the record is dropped, so the state a run loads grows with
    the recent deletions, not with every deletion ever made. calmesh's own copies still name
    their original by their marker and are removed when they turn up; an unmarked object turning
    up after that is a new event."""
    window_past_days: int = 30
    window_future_days: int = 365
    interval: float = 60.0
    """Seconds between watch-loop runs; ``"60s"``, ``"5m"`` and ``"1h"`` are accepted too."""
    reconcile_every: int = 10
    """Every Nth run compares everything even when change tokens look valid."""

    _interval = field_validator("interval", "delete_window", "keep_deletions", mode="before")(
        classmethod(lambda cls, v: parse_duration(v)))

    @model_validator(mode="after")
    def _members(self) -> SyncGroupConfig:
        if len(self.calendars) < 2:
            raise ValueError("a sync group needs at least two calendars")
        return self


class SyncConfig(_Strict):
    groups: dict[str, SyncGroupConfig] = Field(default_factory=dict)


class SmtpConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password_env: str | None = None
    starttls: bool = False
    sender: str = "calmesh@localhost"


class Config(_Strict):
    hub: HubConfig = Field(default_factory=HubConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    platforms: dict[str, dict[str, Any]] = Field(default_factory=dict)
    people: list[PersonConfig] = Field(default_factory=list)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    smtp: SmtpConfig | None = None

    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _cross_refs(self) -> Config:
        """Every dangling reference, one ``location: message`` line each."""
        mistakes: list[str] = []
        seen: set[str] = set()
        known = ", ".join(self.platforms) or "none"
        for i, person in enumerate(self.people):
            if person.email in seen:
                mistakes.append(f"people.{i}.email: {person.email} is listed twice")
            seen.add(person.email)
            for n, source in enumerate(person.sources):
                if source.platform not in self.platforms:
                    where = f"people.{i}.platform" if n == 0 else f"people.{i}.also"
                    mistakes.append(f"{where}: {person.email} names platform {source.platform!r}, "
                                    f"which is not configured (known: {known}{_did_you_mean(source.platform, self.platforms)})")
        for name, group in self.sync.groups.items():
            for member in group.calendars:
                if member.platform not in self.platforms:
                    mistakes.append(f"sync.groups.{name}.calendars: unknown platform {member.platform!r}"
                                    f"{_did_you_mean(member.platform, self.platforms, ' (did you mean {}?)')}")
        if mistakes:
            raise ValueError("\n".join(mistakes))
        for group in self.sync.groups.values():
            for member in group.calendars:
                member.owner = member.owner or self._owner_of(member.platform, member.calendar)
        return self

    def _owner_of(self, platform: str, calendar: str) -> str | None:
        """The person whose calendar ``calendar`` on ``platform`` is, if the config says so."""
        for person in self.people:
            for source in person.sources:
                if source.platform != platform:
                    continue
                named = source.calendars or [c for c in (source.mailbox, person.mailbox, person.email) if c]
                if calendar in named:
                    return person.email
        return None

    def person(self, email: str) -> PersonConfig | None:
        email = normalize_email(email)
        return next((p for p in self.people if p.email == email), None)

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    def state_url(self) -> str:
        url = self.hub.state
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
            return prefix + str(self.resolve_path(url[len(prefix):]))
        return url


# ------------------------------------------------------------------------------------- loading
def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best line for a pydantic error location in a TOML text (table header, then the key)."""
    lines = text.splitlines()
    tables: list[str] = []
    keys: list[str] = []
    index: int | None = None
    for part in loc:
        if isinstance(part, int):
            index = part
            continue
        if index is not None and tables:
            keys.append(str(part))
        elif not keys:
            tables.append(str(part))
        else:
            keys.append(str(part))
    # locate the table: [a.b] or the n-th [[a]]
    start = 0
    found_table = False
    for depth in range(len(tables), 0, -1):
        header = ".".join(tables[:depth])
        if index is not None and depth == len(tables):
            count = -1
            for n, line in enumerate(lines):
                if line.strip() == f"[[{header}]]":
                    count += 1
                    if count == index:
                        start, found_table = n, True
                        break
        else:
            for n, line in enumerate(lines):
                stripped = line.strip()
                if stripped == f"[{header}]":
                    start, found_table = n, True
                    break
        if found_table:
            if depth < len(tables):
                keys = tables[depth:] + keys
            break
    if not found_table and tables:
        keys = tables + keys
    for key in reversed(keys):
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for n in range(start, len(lines)):
            if n > start and lines[n].lstrip().startswith("[") and found_table:
                break
            if pattern.match(lines[n]):
                return n + 1
    return start + 1 if found_table else None


def _did_you_mean(word: str, known: Iterable[str], template: str = "; did you mean {}?") -> str:
    """``"; did you mean 'platform'?"`` when ``word`` is a likely typo of one of ``known``."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.7)
    return template.format(repr(close[0])) if close else ""


def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (inside ``list[...]``, ``dict[str, ...]``, ``... | None``), and
    whether it is under a dict (whose key then comes next in an error location)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    for arg in get_args(annotation):
        model, keyed = _models_in(arg)
        if model is not None:
            return model, keyed or get_origin(annotation) is dict
    return None, False


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The settings a table at ``loc`` accepts (for "did you mean")."""
    parts = [p for p in loc if not isinstance(p, int)]
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        inner, keyed = _models_in(field.annotation) if field is not None else (None, False)
        if inner is None:
            return []
        if keyed and parts:
            parts.pop(0)
        model = inner
    return list(model.model_fields)


def _format_validation(exc: ValidationError, text: str, path: Path | None, prefix: tuple[Any, ...] = (),
                       model: type[BaseModel] | None = None) -> list[ConfigError]:
    """Every error pydantic found, each with its line. An unknown key close to a known one is
    named with a "did you mean", and the "Field required" its typo caused is left out."""
    model = model or Config
    errors = exc.errors()
    suggested: set[tuple[Any, ...]] = set()
    for err in errors:
        if err.get("type") == "extra_forbidden":
            loc = tuple(err.get("loc", ()))
            close = difflib.get_close_matches(str(loc[-1]), _keys_at(model, loc[:-1]), n=1, cutoff=0.7)
            if close:
                suggested.add((*loc[:-1], close[0]))
    found: list[ConfigError] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "missing" and loc in suggested:
            continue
        for msg in err.get("msg", "invalid value").removeprefix("Value error, ").split("\n"):
            where = prefix + loc
            # model-level checks name their own location as a dotted prefix: "people.3.platform: ..."
            m = re.match(r"^([a-z_]+(?:\.[\w-]+)+): ", msg)
            if m:
                msg = msg[m.end():]
                where = prefix + tuple(int(p) if p.isdigit() else p for p in m.group(1).split("."))
            if err.get("type") == "extra_forbidden":
                msg = f"unknown setting {loc[-1]!r}" + _did_you_mean(
                    str(loc[-1]), _keys_at(model, loc[:-1]), " (did you mean {}?)")
            dotted = ".".join(str(p) for p in where)
            found.append(ConfigError(f"{dotted}: {msg}" if dotted else msg, path, _line_of(text, where)))
    return found


def parse_config(text: str, path: Path | None = None) -> Config:
    """Parse and validate a config text; platform settings are validated by their connector.
    Every mistake is reported at once (:attr:`ConfigError.problems`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(f"not valid TOML: {exc}", path, int(m.group(1)) if m else None) from exc
    problems: list[ConfigError] = []
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems += _format_validation(exc, text, path)
        # the platform tables are still checked below, so one run reports every mistake
        platforms = data.get("platforms")
        config = Config.model_construct(platforms=platforms if isinstance(platforms, dict) else {})
    from calmesh.connectors import registry  # late: the registry imports connectors

    for name, raw in config.platforms.items():
        try:
            registry.settings_for(raw)
        except ValidationError as exc:
            problems += _format_validation(exc, text, path, ("platforms", name),
                                           registry.connector_class(raw["kind"]).Settings)
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(ConfigError(f"platforms.{name}: {exc.args[0] if exc.args else exc}", path,
                                        _line_of(text, ("platforms", name, "kind"))))
    if problems:
        raise ConfigError.several(sorted(problems, key=lambda p: p.line or len(text)))
    config.path = path
    return config


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", path) from exc
    return parse_config(text, path.resolve())


def config_candidates() -> list[Path]:
    """Where a config is looked for, in order: ``$CALMESH_CONFIG``; ``./calmesh.toml``;
    ``$XDG_CONFIG_HOME/calmesh/calmesh.toml`` (``~/.config`` when unset, as khal and vdirsyncer
    do); ``/etc/calmesh/calmesh.toml`` for a system-wide hub."""
    if os.environ.get("CALMESH_CONFIG"):
        return [Path(os.environ["CALMESH_CONFIG"])]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path("calmesh.toml"), Path(xdg) / "calmesh" / "calmesh.toml", Path("/etc/calmesh/calmesh.toml")]


def find_config() -> Path:
    """The first existing :func:`config_candidates` path."""
    candidates = config_candidates()
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise ConfigError("no config file found (looked for " + ", ".join(map(str, candidates))
                          + "); write one with `calmesh init`, or pass --config")
    return found


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"unknown time zone {name!r}") from exc
