"""People and calendars by the names a person knows them by, never by internal ids.

A calendar id is a URL on CalDAV, a mailbox (and folder id) on Exchange, a file name on an ICS
folder; a sync member key is ``platform/calendar``. What a reader of ``calmesh`` output acts on
is whose calendar it is and where: "Bruno Keller's calendar on zoho".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from calmesh.config import Config


def person_label(cfg: Config, email: str) -> str:
    person = cfg.person(email) if "@" in email else None
    return (person.name or person.email) if person is not None else email


def calendar_label(cfg: Config, platform: str, calendar: str) -> str:
    """``"Bruno Keller's calendar on zoho"``; the calendar's last path segment when nobody in the
    directory names it."""
    owners = [p.name or p.email for p in cfg.people for s in p.sources
              if s.platform == platform and calendar in s.calendars]
    if not owners:
        mailbox = calendar.partition("/")[0]
        owners = [person_label(cfg, mailbox)] if cfg.person(mailbox) is not None else []
    if owners:
        return f"{' and '.join(owners)}'s calendar on {platform}"
    tail = calendar.rstrip("/").rsplit("/", 1)[-1] or calendar
    return f"calendar {tail} on {platform}"


def name_members(cfg: Config, text: str) -> str:
    """``text`` with every sync member key of ``cfg`` in it (``zoho/https://.../bruno/``, also as
    the prefix of a logical id) replaced by :func:`member_label`'s words."""
    keys = {f"{m.platform}/{m.calendar}" for g in cfg.sync.groups.values() for m in g.calendars}
    for key in sorted(keys, key=len, reverse=True):  # a longer key may contain a shorter one
        text = text.replace(key, member_label(cfg, key))
    return text


def member_label(cfg: Config, key: str) -> str:
    """A sync member key (``platform/calendar``) as :func:`calendar_label` words it."""
    platform, _, calendar = key.partition("/")
    return calendar_label(cfg, platform, calendar) if platform in cfg.platforms else key
