"""Date formats and the first day of the week, from a locale (Babel's CLDR data).

Why a library: which day a week starts on (Sunday in the United States, Monday in France), how a
day is written ("Mon 23 Nov", "Mon, Nov 23", "lun. 23 nov.") and which days are the weekend are
facts about each locale that CLDR keeps and Babel ships; hand-written tables would cover a few and
be wrong for the rest.

Which locale: the config's ``[hub] locale`` when set (the organisation chose one), else the
person's own: ``LC_ALL``, ``LC_TIME`` or ``LANG`` on the command line (the first one set, as POSIX
reads them), the browser's ``Accept-Language`` on the web page. ``C``, ``POSIX`` or anything Babel
does not know falls back to :data:`DEFAULT_LOCALE`, whose formats are the ones calmesh always
printed. Times of day stay on the 24-hour clock everywhere: only dates follow the locale.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from babel import Locale, UnknownLocaleError
from babel.dates import format_interval, format_skeleton

DEFAULT_LOCALE = "en_GB"
"""English with weeks from Monday and "Mon 23 Nov": what calmesh showed before it read locales."""
ENVIRONMENT = ("LC_ALL", "LC_TIME", "LANG")
"""The variables POSIX reads for date formats, strongest first."""


def parse_locale(name: str | None) -> Locale | None:
    """``fr_FR``, ``fr-FR``, ``fr_FR.UTF-8@euro`` or ``fr`` as a Babel locale; None for ``C``,
    ``POSIX``, an empty value or a name Babel does not know."""
    if not name:
        return None
    bare = name.split(".")[0].split("@")[0].strip().replace("-", "_")
    if not bare or bare.upper() in ("C", "POSIX"):
        return None
    try:
        return Locale.parse(bare)
    except (ValueError, TypeError, UnknownLocaleError):
        return None


def check_locale(name: str) -> str:
    """``name`` when Babel knows it, else a ValueError saying what is expected (config check)."""
    if parse_locale(name) is None:
        raise ValueError(f"unknown locale {name!r}: use a language and territory such as en_US, fr_FR or de_DE")
    return name


def environment_locale(environ: Mapping[str, str] | None = None) -> str | None:
    """The locale the command line runs in: the first of ``LC_ALL``, ``LC_TIME``, ``LANG`` set."""
    env = os.environ if environ is None else environ
    return next((env[var] for var in ENVIRONMENT if env.get(var)), None)


def accept_language_locale(header: str | None) -> str | None:
    """The browser's most preferred language Babel knows, from an ``Accept-Language`` header."""
    ranked = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and tag != "*" and weight > 0:
            ranked.append((-weight, position, tag))
    return next((tag for _, _, tag in sorted(ranked) if parse_locale(tag) is not None), None)


@dataclass(frozen=True, slots=True)
class DateStyle:
    """How one locale writes dates, and where its weeks start."""

    locale: Locale

    @classmethod
    def choose(cls, setting: str | None, personal: str | None) -> DateStyle:
        """The config's locale when set, else the person's, else :data:`DEFAULT_LOCALE`."""
        found = parse_locale(setting) or parse_locale(personal) or Locale.parse(DEFAULT_LOCALE)
        return cls(found)

    @property
    def tag(self) -> str:
        """The BCP 47 tag (``fr-FR``), for HTML's ``lang`` and the browser's ``Intl`` formats."""
        return str(self.locale).replace("_", "-")

    @property
    def first_weekday(self) -> int:
        """0 for Monday ... 6 for Sunday, as ``date.weekday()`` counts."""
        return int(self.locale.first_week_day)

    @property
    def first_workday(self) -> int:
        """The day after the weekend (Monday in most places, Sunday where Friday and Saturday are
        the weekend): where a work week starts."""
        return (int(self.locale.weekend_end) + 1) % 7

    def week_start(self, day: date, *, work_week: bool = False) -> date:
        """The first day of the (work) week holding ``day``."""
        first = self.first_workday if work_week else self.first_weekday
        return day - timedelta(days=(day.weekday() - first) % 7)

    def day(self, value: date) -> str:
        """Weekday, day and month: ``Mon 23 Nov`` (en_GB), ``Mon, Nov 23`` (en_US), ``lun. 23 nov.``"""
        return format_skeleton("MMMEd", value, locale=self.locale)

    def day_short(self, value: date) -> str:
        """Weekday and day of the month, for a column heading: ``Mon 23``, ``23 Mon``, ``lun. 23``."""
        return format_skeleton("Ed", value, locale=self.locale)

    def day_year(self, value: date) -> str:
        return format_skeleton("yMMMEd", value, locale=self.locale)

    def days(self, first: date, last: date) -> str:
        """A range of days with its year: ``lun. 23 – ven. 27 nov. 2026``."""
        if first == last:
            return self.day_year(first)
        return format_interval(first, last, "yMMMEd", locale=self.locale)

    def moment(self, value: datetime) -> str:
        """A day and a 24-hour time: ``Mon 23 Nov 14:00``."""
        return f"{self.day(value.date())} {value:%H:%M}"

    def span(self, start: datetime, end: datetime) -> str:
        """``Mon 23 Nov 14:00–16:00``; the end's day is repeated when it is another day."""
        tail = f"{end:%H:%M}" if end.date() == start.date() else self.moment(end)
        return f"{self.moment(start)}–{tail}"


WEEK_WORDS = {"last week": -1, "this week": 0, "next week": 1}
"""Words that name a whole week: they start on the locale's first day of the week."""


def week_words(value: str, today: date, style: DateStyle) -> datetime | None:
    """Midnight of the first day of the week ``value`` names (``this week``, ``next week``,
    ``last week``), or None when it names no week."""
    weeks = WEEK_WORDS.get(" ".join(value.lower().split()))
    if weeks is None:
        return None
    return datetime.combine(style.week_start(today) + timedelta(weeks=weeks), time(0))


DEFAULT_STYLE = DateStyle(Locale.parse(DEFAULT_LOCALE))
"""The style when nobody chose a locale."""
