"""IANA <-> Windows time zone names, and helpers for zones found in calendar data.

Exchange and Outlook speak Windows zone names ("Romance Standard Time"); CalDAV and everything
else speak IANA ("Europe/Paris"). The CLDR windowsZones mapping is the authority: exchangelib ships
it (``exchangelib.winzone``), so we use that table rather than keeping a copy of our own.
"""

from __future__ import annotations

import os
from calendar import isleap
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones
from zoneinfo._common import (  # zoneinfo's TZif reader: a zone's listed transitions
    load_data,
    load_tzdata,
)

from calmesh.vtimezone_rules import IndexedDefinition

# Names seen in the wild that neither table carries.
_ALIASES = {
    "utc": "UTC",
    "z": "UTC",
    "gmt": "UTC",
    "etc/utc": "UTC",
    "coordinated universal time": "UTC",
    "(utc) coordinated universal time": "UTC",
}


@lru_cache(maxsize=1)
def _iana_names() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


_NOT_LISTED = ("right/", "posix/")
"""Folders of the zone database that ``available_timezones()`` leaves out (and ``posixrules``)."""


@lru_cache(maxsize=4096)
def is_iana_name(name: str) -> bool:
    """Whether ``name``, spelled exactly so, is a zone ``zoneinfo.available_timezones()`` lists.

    Asked of the database one name at a time: listing it opens every file under
    /usr/share/zoneinfo (~25 ms), which a command meeting a handful of zone names should not pay
    at every start. ``ZoneInfo`` refuses paths that leave the database, folders and files that are
    not zones; what is left is what the listing holds but its three exclusions."""
    if name == "posixrules" or name.startswith(_NOT_LISTED):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


@lru_cache(maxsize=1)
def _windows_tables() -> tuple[dict[str, str], dict[str, Any]]:
    """exchangelib's CLDR tables (Windows -> IANA, IANA -> Windows names), imported on first need:
    importing exchangelib takes ~0.3 s, which a process that only meets IANA names (CalDAV, ICS,
    Google) should not pay on every start."""
    from exchangelib.winzone import IANA_TO_MS_TIMEZONE_MAP, MS_TIMEZONE_TO_IANA_MAP

    return MS_TIMEZONE_TO_IANA_MAP, IANA_TO_MS_TIMEZONE_MAP


@lru_cache(maxsize=4096)
def to_iana(name: str | None) -> str | None:
    """An IANA name for an IANA name, a Windows name, or a common alias; None if unknown.

    Also accepts the Outlook-style TZIDs some clients write into iCalendar files, such as
    ``"W. Europe Standard Time"`` or ``"/freeassociation.sourceforge.net/Europe/Paris"``.
    """
    if not name:
        return None
    raw = name.strip().strip('"')
    lowered = raw.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    if is_iana_name(raw):  # the usual case, answered without listing the database
        return raw
    if lowered in _iana_names():
        return _iana_names()[lowered]
    to_iana_map = _windows_tables()[0]
    if raw in to_iana_map:
        return to_iana_map[raw]
    for windows, iana in to_iana_map.items():
        if windows.lower() == lowered:
            return iana
    # prefixed TZIDs: "/mozilla.org/20050126_1/Europe/Paris", "/citadel.org/.../Europe/Paris"
    parts = raw.split("/")
    for i in range(len(parts) - 1):
        candidate = "/".join(parts[i:]).lower()
        if candidate in _iana_names():
            return _iana_names()[candidate]
    return None


def to_windows(name: str) -> str:
    """The Windows zone name Exchange expects for an IANA (or already Windows) name."""
    to_iana_map, to_windows_map = _windows_tables()
    if name in to_iana_map:
        return name
    iana = to_iana(name) or name
    if iana in to_windows_map:
        return str(to_windows_map[iana][0])
    if iana == "UTC":
        return "UTC"
    raise KeyError(f"no Windows time zone for {name!r}")


def zoneinfo(name: str | None, default: str = "UTC") -> ZoneInfo:
    """A ZoneInfo for any accepted name, falling back to ``default`` when unknown."""
    iana = to_iana(name) or default
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(default)


class DefinedZone(tzinfo):
    """A zone known only from the VTIMEZONE of the object that uses it (RFC 5545 3.2.19: a TZID
    names the definition in its own object), kept with that definition so a copy can carry it.

    ``key`` is the TZID as read (``"Customized Time Zone"``), ``definition`` the VTIMEZONE text as
    read, ``rules`` a tzinfo built from it. Two zones with the same name and text are equal:
    equality is by content, never by name alone, so one calendar's ``Customized Time Zone`` is
    never another's."""

    def __init__(self, key: str, definition: bytes, rules: tzinfo) -> None:
        self.key = key
        self.definition = definition
        self._rules = rules

    def __getinitargs__(self) -> tuple[str, bytes, tzinfo]:
        """What pickle builds it again from (``tzinfo.__reduce__`` asks): a first sync made in
        parts keeps the items it read in a file (:mod:`calmesh.services.spool`)."""
        return self.key, self.definition, self._rules

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return self._rules.utcoffset(dt)

    def dst(self, dt: datetime | None) -> timedelta | None:
        return self._rules.dst(dt)

    def tzname(self, dt: datetime | None) -> str | None:
        return self._rules.tzname(dt)

    def fromutc(self, dt: datetime) -> datetime:
        return self._rules.fromutc(dt.replace(tzinfo=self._rules)).replace(tzinfo=self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DefinedZone) and (self.key, self.definition) == (other.key, other.definition)

    def __hash__(self) -> int:
        return hash((self.key, self.definition))

    def __repr__(self) -> str:
        return f"DefinedZone({self.key!r})"


def _offset_at(zone: tzinfo, instant: datetime) -> timedelta | None:
    return instant.astimezone(zone).utcoffset()


def _changes(zone: ZoneInfo, first_year: int, last_year: int) -> list[datetime]:
    """The UTC instants (to the hour) at which ``zone`` changes offset in these years; hourly is
    fine enough here, since every rule a VTIMEZONE can state changes on a whole hour or less often
    than a candidate zone does, and a half-hour difference shows at the hour after.

    One scan over the years, a year at a time (:func:`_year_changes`, which carries the scan's
    state from a year to the next), so that the overlapping spans a calendar over many years asks
    about (2015-2024, 2016-2025...) scan each year once."""
    out: list[datetime] = []
    before = _offset_at(zone, datetime(first_year, 1, 1, tzinfo=UTC))
    for year in range(first_year, last_year + 1):
        found, before = _year_changes(zone, year, before)
        out.extend(found)
    return out


@lru_cache(maxsize=4096)
def _year_changes(zone: ZoneInfo, year: int,
                  before: timedelta | None) -> tuple[tuple[datetime, ...], timedelta | None]:
    """:func:`_changes`'s scan through one year, by day, then by hour within a day that changes:
    the changes found and the offset it then compares with, given the one it came in with."""
    out = []
    cursor = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    while cursor < end:
        step = cursor + timedelta(days=1)
        if _offset_at(zone, step) != before:
            hour = cursor
            while _offset_at(zone, hour) == before:
                hour += timedelta(hours=1)
            out.append(hour)
            before = _offset_at(zone, hour)
        cursor = step
    return tuple(out), before


@lru_cache(maxsize=1024)
def _listed_until(key: str) -> int:
    """The year of the last change the zone's TZif file lists; after it, the file's footer (a
    POSIX TZ rule, RFC 8536 3.3) gives every change, each year's by its kind (the weekday of 1
    January, leap or not). Files installed "fat" list changes up to 2037, "slim" ones up to where
    the footer takes over; a zone with changes planned further (Casablanca's, to 2087) lists
    them. Read with zoneinfo's own TZif reader, from where ``ZoneInfo`` finds the file."""
    for root in TZPATH:
        path = os.path.join(root, key)
        if os.path.isfile(path):
            with open(path, "rb") as tzif:
                transitions = load_data(tzif)[1]
            break
    else:
        with load_tzdata(key) as tzif:
            transitions = load_data(tzif)[1]
    return datetime.fromtimestamp(transitions[-1], UTC).year if len(transitions) else 1970


def _every_kind_of_year(after: int) -> int:
    """The last year of the run of years after ``after`` holding each of the 14 kinds of year
    (the weekday of 1 January, leap or not): zones whose changes depend only on the kind of
    year agree for ever if they agree through it."""
    kinds: set[tuple[int, bool]] = set()
    year = after
    while len(kinds) < 14:
        year += 1
        kinds.add((date(year, 1, 1).weekday(), isleap(year)))
    return year


def _agree(rules: IndexedDefinition, zone: ZoneInfo, first_year: int, last_year: int) -> bool:
    """Whether ``rules`` and ``zone`` have the same offset at every instant of these years."""
    return all(_agree_in(rules, zone, year) for year in range(first_year, last_year + 1))


@lru_cache(maxsize=8192)
def _agree_in(rules: IndexedDefinition, zone: ZoneInfo, year: int) -> bool:
    """Whether ``rules`` and ``zone`` have the same offset at every instant of ``year``: at its
    start, at each change of ``zone`` (:func:`_changes`), and at each onset of ``rules`` and the
    second before it; between two of those neither changes, so no instant differs. By the year
    and kept: a calendar over twelve years asks from each of them, up to the same last year."""
    points = [datetime(year, 1, 1, tzinfo=UTC), *_changes(zone, year, year)]
    for onset in rules.onsets(year, year):
        points += [onset - timedelta(seconds=1), onset]
    return all(_offset_at(rules, i) == _offset_at(zone, i) for i in points)


@lru_cache(maxsize=1)
def _main_zones() -> tuple[str, ...]:
    """The main IANA zone of each Windows zone, the widest first (by how many IANA zones share
    its Windows zone): of zones with equal offsets, a made-up name gets the best known
    (``America/New_York`` rather than ``America/Grand_Turk``)."""
    to_iana_map, to_windows_map = _windows_tables()
    width: dict[str, int] = {}
    for windows, _territory in to_windows_map.values():
        width[windows] = width.get(windows, 0) + 1
    ranked = sorted(to_iana_map.items(), key=lambda pair: (-width.get(pair[0], 0), pair[1]))
    return tuple(dict.fromkeys(iana for _windows, iana in ranked))


def matching_iana(name: str, rules: tzinfo, year: int) -> str | None:
    """The IANA zone whose offsets equal those of ``rules`` (a zone built from a VTIMEZONE) at
    every instant from ``year`` on, for ever, or None.

    Proved, not sampled: both sides are compared at every instant either can change at, up to
    the later of the last change each gives by a date of its own (the definition's DTSTART,
    RDATE, UNTIL: :meth:`IndexedDefinition.settled_after`; the zone's last listed transition:
    :func:`_listed_until`), and then through a run of years holding every kind of year
    (:func:`_every_kind_of_year`), after which both follow yearly rules that repeat with the
    kind of year. A definition whose rules never settle so (an endless rule every other year)
    matches nothing. Ten years of agreement were taken for a match before: an IANA zone planning
    a change in its table, or a definition whose summer time ends in 2040, was mapped to a zone
    it left later, and a copy's instances from then on moved by an hour.

    Tried first: the zone the name itself means (an IANA name, a Windows name through the CLDR
    table, a ``/vendor/Area/City`` name); then the main zone of every Windows zone, which is how
    Outlook's ``Customized Time Zone`` and other made-up names find theirs. A definition that
    differs from the zone its name means (old rules, a zone edited by hand) matches nothing by its
    name: its own offsets are what its author saw."""
    if not isinstance(rules, IndexedDefinition) or (settled := rules.settled_after()) is None:
        return None
    candidates = [to_iana(name), *_main_zones()]
    quick = [datetime(y, month, 15, 12, tzinfo=UTC)
             for y in (year, _every_kind_of_year(max(year, settled))) for month in (1, 7)]
    for candidate in dict.fromkeys(c for c in candidates if c):
        try:
            zone = ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        if any(_offset_at(rules, i) != _offset_at(zone, i) for i in quick):
            continue  # most candidates fail here, before their file is read or their changes computed
        if _agree(rules, zone, year, _every_kind_of_year(max(year, settled, _listed_until(candidate)))):
            return candidate
    return None


def fixed_zone(offset: timedelta, first_year: int, last_year: int) -> ZoneInfo | None:
    """A zone every platform knows (the main zone of a Windows zone, so Exchange has its name
    too) whose offset is ``offset`` throughout these years, or None: the nearest a platform that
    takes only known zone names can come to a zone of an object's own, whose other offsets are
    then written as moved occurrences."""
    instants = [datetime(y, m, 15, 12, tzinfo=UTC) for y in range(first_year, last_year + 1) for m in range(1, 13)]
    for name in _main_zones():
        zone = ZoneInfo(name)
        if all(_offset_at(zone, i) == offset for i in instants) \
                and all(_offset_at(zone, c) == offset for c in _changes(zone, first_year, last_year)):
            return zone
    return None
