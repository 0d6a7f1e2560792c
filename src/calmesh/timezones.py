"""IANA <-> Windows time zone names, and helpers for zones found in calendar data.

Exchange and Outlook speak Windows zone names ("Romance Standard Time"); CalDAV and everything
else speak IANA ("Europe/Paris"). The CLDR windowsZones mapping is the authority: exchangelib ships
it (``exchangelib.winzone``), so we use that table rather than keeping a copy of our own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

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
