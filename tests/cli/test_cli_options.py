"""Issue 17 items 4, 5, 7, 8, 9: what the command line prints and how it exits, whole lines.

Brackets survive (Rich markup is never applied to messages), bad option values all exit with
code 2 in one ``error:`` line, dates may be words, ranges are capped like the server's."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.cli.freebusy import parse_when

runner = CliRunner()
WIDE = {"COLUMNS": "300"}
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "projects").mkdir()
    path = tmp_path / "calmesh.toml"
    path.write_text('[hub]\ntimezone = "Europe/Paris"\nstate = "sqlite:///state.sqlite"\n'
                    '[platforms.projects]\nkind = "ics"\npath = "projects"\n'
                    '[[people]]\nemail = "emma@agency.example"\nname = "Emma [Projects] Dubois"\nplatform = "projects"\n')
    return path


def run(*args: str) -> tuple[int, list[str]]:
    result = runner.invoke(app, list(args), env=WIDE)
    return result.exit_code, result.output.splitlines()


def test_bracketed_text_is_printed_as_it_is(config: Path) -> None:
    assert run("sync", "--once", "-c", str(config)) == (
        1, ["error: no sync groups configured (add a [sync.groups.NAME] table)"])
    code, lines = run("freebusy", "*", "--start", "2026-11-23", "-c", str(config))
    assert code == 3 and any(line.startswith("│ Emma [Projects] Dubois ") for line in lines)
    assert lines[-1] == ("! Emma [Projects] Dubois: no data from projects (ics): no calendar owned by "
                         "emma@agency.example; list its calendars in the config")


def test_help_keeps_bracketed_table_names() -> None:
    code, lines = run("worker", "--help")
    assert code == 0 and "queue named by [hub] queue (Redis)" in " ".join(line.strip() for line in lines)


@pytest.mark.parametrize(("args", "line"), [
    (["--start", "2026-13-01"], "error: '2026-13-01' is not a date: use YYYY-MM-DD, an ISO-8601 date-time, "
                                "or words such as 'tomorrow', 'next monday' or 'next week'"),
    (["--start", "the day after never"], "error: 'the day after never' is not a date: use YYYY-MM-DD, an "
                                         "ISO-8601 date-time, or words such as 'tomorrow', 'next monday' or 'next week'"),
    (["--tz", "Mars/Olympus"], "error: unknown time zone 'Mars/Olympus' (use an IANA name like Europe/Paris, "
                               "or a Windows name)"),
    (["--format", "xml"], "error: --format must be table, json or ics"),
    (["--start", "2026-01-01", "--end", "2028-01-01"], "error: --start to --end spans 730 days; at most 366 "
                                                       "(the server's limit too): ask for a shorter range"),
    (["--start", "2026-12-02", "--end", "2026-12-01"], "error: --end (2026-12-01 00:00) must be after --start "
                                                       "(2026-12-02 00:00), both in Europe/Paris"),
])
def test_bad_option_values_exit_2_with_one_line(config: Path, args: list[str], line: str) -> None:
    assert run("freebusy", "*", *args, "-c", str(config)) == (2, [line])


def test_natural_dates() -> None:
    now = datetime(2026, 12, 3, 10, 30, tzinfo=PARIS)  # a Thursday
    assert parse_when("tomorrow", PARIS, now=now) == datetime(2026, 12, 4, tzinfo=PARIS)
    assert parse_when("next monday", PARIS, now=now) == datetime(2026, 12, 7, tzinfo=PARIS)
    assert parse_when("friday 9am", PARIS, now=now) == datetime(2026, 12, 4, 9, tzinfo=PARIS)
    assert parse_when("2026-12-01", PARIS, now=now) == datetime(2026, 12, 1, tzinfo=PARIS)


def test_version() -> None:
    from importlib.metadata import version

    assert run("--version") == (0, [f"calmesh {version('calmesh')}"])


@pytest.mark.parametrize(("command", "shown"), [
    ("conflicts", "--person PERSON"), ("sync", "--group GROUP"), ("init", "--mailbox MAILBOX"),
    ("find-time", "--format FORMAT")])
def test_help_names_option_values_in_words(command: str, shown: str) -> None:
    """``--person PERSON``, never the Python type Typer would print (``--person <list[str]>``)."""
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    options = result.output.split("Options:")[1]
    assert shown in options and "<str>" not in options and "<list[str]>" not in options
