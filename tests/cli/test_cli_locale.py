"""Issue 17 item 9: the command line writes dates and starts weeks the way the locale does: the
terminal's ``LC_TIME``/``LANG``, or ``[hub] locale`` in the config (which wins), on a config of
iCalendar folders holding the demo week (the ICS connector, real files)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.cli.app import console
from conftest import ICS_PLATFORMS_TOML, seed_ics
from server.conftest import people_toml

runner = CliRunner()
MONDAY = date(2026, 11, 23)


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's console took its width from the environment when first imported (by whichever
    test came first in this process): wide enough here that no date is wrapped inside its cell."""
    monkeypatch.setattr(console, "width", 250)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    seed_ics(tmp_path, MONDAY)
    path = tmp_path / "calmesh.toml"
    path.write_text(f'[hub]\ntimezone = "Europe/Paris"\n{ICS_PLATFORMS_TOML}{people_toml(MONDAY)}')
    return path


def run(config: Path, *args: str, **env: str) -> str:
    result = runner.invoke(app, [*args, "-c", str(config)],
                           env={"COLUMNS": "250", "LC_ALL": "", "LC_TIME": "", "LANG": "C.UTF-8", **env})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("lang", "first_weekday", "first_column", "last_column"), [
    ("en_US.UTF-8", 6, "{day} Sun", "{day} Sat"), ("fr_FR.UTF-8", 0, "lun. {day}", "dim. {day}")])
def test_next_week_starts_on_the_locale_s_first_day(config: Path, lang: str, first_weekday: int,
                                                    first_column: str, last_column: str) -> None:
    """``--start "next week"``: from Sunday in the United States, from Monday in France, the
    table's days in each one's words."""
    today = date.today()
    first = today - timedelta(days=(today.weekday() - first_weekday) % 7) + timedelta(weeks=1)
    output = run(config, "freebusy", "alice@agency.example", "--start", "next week", LANG=lang)
    header = next(line for line in output.splitlines() if "Person" in line).split("┃")
    assert header[3].strip() == first_column.format(day=first.day)
    assert header[-2].strip() == last_column.format(day=(first + timedelta(days=6)).day)


def test_conflicts_and_suggestions_in_the_locale_s_words(config: Path) -> None:
    french = run(config, "conflicts", "--person", "david@agency.example", "--start", "2026-11-23", LC_TIME="fr_FR.UTF-8")
    assert "jeu. 26 nov. 14:00–15:00" in french  # the Q1 forecast against the Atlas review, Paris time
    american = run(config, "duplicates", "--start", "2026-11-23", LANG="en_US.UTF-8")
    assert "Thu, Nov 26 11:00–11:45" in american  # David's follow-up and its copy


def test_the_config_s_locale_wins_over_the_terminal_s(config: Path) -> None:
    config.write_text(config.read_text().replace("[hub]\n", '[hub]\nlocale = "fr_FR"\n', 1))
    output = run(config, "freebusy", "emma@agency.example", "--start", "2026-11-23", "--end", "2026-11-28",
                 LANG="en_US.UTF-8")
    assert "Free/busy, lun. 23\u2009–\u2009ven. 27 nov. 2026" in output
