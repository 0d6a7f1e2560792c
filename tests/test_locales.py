"""Issue 17 item 9: the first day of the week and the way dates are written come from a locale,
through Babel's CLDR data (:mod:`calmesh.locales`)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from calmesh.config import ConfigError, parse_config
from calmesh.locales import (
    DEFAULT_STYLE,
    DateStyle,
    accept_language_locale,
    environment_locale,
    parse_locale,
    week_words,
)

THURSDAY = date(2026, 12, 3)
US, FRANCE = DateStyle.choose("en_US", None), DateStyle.choose(None, "fr_FR.UTF-8")


def test_weeks_start_where_the_locale_says() -> None:
    assert US.week_start(THURSDAY) == date(2026, 11, 29)  # Sunday
    assert FRANCE.week_start(THURSDAY) == date(2026, 11, 30)  # Monday
    assert US.week_start(THURSDAY, work_week=True) == FRANCE.week_start(THURSDAY, work_week=True) == date(2026, 11, 30)
    israel = DateStyle.choose("he_IL", None)  # weekend Friday-Saturday: the work week starts on Sunday
    assert israel.week_start(THURSDAY, work_week=True) == date(2026, 11, 29)
    assert US.week_start(date(2026, 11, 29)) == date(2026, 11, 29)  # a Sunday is its own week's start


def test_dates_are_written_the_locale_s_way() -> None:
    assert (DEFAULT_STYLE.day(THURSDAY), US.day(THURSDAY), FRANCE.day(THURSDAY)) == (
        "Thu 3 Dec", "Thu, Dec 3", "jeu. 3 déc.")
    # CLDR puts thin spaces around the range's dash
    assert FRANCE.days(date(2026, 11, 30), date(2026, 12, 4)) == "lun. 30 nov.\u2009–\u2009ven. 4 déc. 2026"
    assert US.span(datetime(2026, 12, 3, 14), datetime(2026, 12, 3, 15, 30)) == "Thu, Dec 3 14:00–15:30"
    assert DEFAULT_STYLE.span(datetime(2026, 12, 3, 23), datetime(2026, 12, 4, 1)) == "Thu 3 Dec 23:00–Fri 4 Dec 01:00"
    assert (US.tag, FRANCE.tag) == ("en-US", "fr-FR")


def test_which_locale() -> None:
    # the config's choice first, then the person's, then the default (what calmesh always printed)
    assert DateStyle.choose("fr_FR", "en_US.UTF-8") == FRANCE
    assert DateStyle.choose(None, "C.UTF-8") == DateStyle.choose(None, None) == DEFAULT_STYLE
    assert parse_locale("xx_YY") is None and parse_locale("POSIX") is None and parse_locale("de-AT") is not None
    # POSIX order: LC_ALL over LC_TIME over LANG
    assert environment_locale({"LANG": "en_US.UTF-8", "LC_TIME": "fr_FR.UTF-8"}) == "fr_FR.UTF-8"
    assert environment_locale({"LANG": "en_US.UTF-8", "LC_TIME": "fr_FR", "LC_ALL": "de_DE"}) == "de_DE"
    assert environment_locale({}) is None
    # the browser's most preferred language calmesh knows
    assert accept_language_locale("fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7") == "fr-FR"
    assert accept_language_locale("xx;q=1, en-US;q=0.5, de;q=0.6") == "de"
    assert accept_language_locale("") is None and accept_language_locale("*") is None


def test_week_words_start_on_the_locale_s_first_day() -> None:
    assert week_words("next week", THURSDAY, US) == datetime(2026, 12, 6)
    assert week_words("Next  Week", THURSDAY, FRANCE) == datetime(2026, 12, 7)
    assert week_words("this week", THURSDAY, FRANCE) == datetime(2026, 11, 30)
    assert week_words("last week", THURSDAY, US) == datetime(2026, 11, 22)
    assert week_words("next monday", THURSDAY, US) is None


def test_an_unknown_locale_in_the_config_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config('[hub]\nlocale = "fr_XX_nonsense"\n')
    assert "hub.locale" in str(caught.value) and "unknown locale 'fr_XX_nonsense'" in str(caught.value)
    assert parse_config('[hub]\nlocale = "fr_FR"\n').hub.locale == "fr_FR"
