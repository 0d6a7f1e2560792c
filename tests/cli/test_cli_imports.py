"""Building the CLI stays light (see calmesh.cli.app): a cron-run ``calmesh sync --once`` pays for
every import before its first request, so the command modules import the server, detection,
scheduling, Exchange and migration code only inside the commands that use them. Checked by module
names in a fresh interpreter, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

HEAVY = ("starlette", "uvicorn", "exchangelib", "alembic", "calmesh.server", "calmesh.services.detection",
         "calmesh.services.scheduling", "calmesh.services.itip", "calmesh.connectors")
"""Modules no command needs before it runs (the connectors are loaded per configured platform)."""
MARK = "MODULES:"


def run_fresh(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, list[str]]:
    """``calmesh ARGV`` in a fresh interpreter: its exit code, its output before the module list,
    and the modules loaded once it has finished."""
    code = ("import json, sys\nfrom calmesh.cli import main\n"
            f"sys.argv = ['calmesh', *{argv!r}]\n"
            "try:\n    main()\n    status = 0\nexcept SystemExit as exc:\n    status = exc.code or 0\n"
            f"print({MARK!r} + json.dumps([status, sorted(sys.modules)]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"COLUMNS": "120", "PATH": "", **(env or {})})
    output, _, line = done.stdout.rpartition(MARK)
    status, loaded = json.loads(line)
    return status, output, loaded


def modules_after(argv: list[str]) -> list[str]:
    """The modules loaded once ``calmesh ARGV`` has finished, in a fresh interpreter."""
    return run_fresh(argv)[2]


@pytest.mark.parametrize("argv", [["--help"], ["sync", "--help"], ["status", "--help"]])
def test_building_the_cli_imports_nothing_heavy(argv: list[str]) -> None:
    loaded = modules_after(argv)
    assert [m for m in loaded if m.startswith(HEAVY)] == []
    assert "calmesh.cli.sync" in loaded and "calmesh.cli.freebusy" in loaded  # every command registered


def test_help_still_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-c", "from calmesh.cli import main; main()", "--help"],
                          capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert done.returncode == 0, done.stderr
    for command in ("freebusy", "check", "demo", "serve", "hash-password", "conflicts", "duplicates",
                    "find-time", "book", "inbox", "sync", "status", "worker"):
        assert f" {command} " in done.stdout, (command, done.stdout)


CONNECTORS = ("calmesh.connectors.caldav", "calmesh.connectors.ews", "calmesh.connectors.graph",
              "calmesh.connectors.google", "calmesh.connectors.sql", "calmesh.connectors.ics")
LIBRARIES = ("exchangelib", "caldav", "niquests", "cryptography.hazmat.primitives.asymmetric", "sqlalchemy")
"""What the connectors bring in (EWS, CalDAV, Google's JWT signing, the SQL connector)."""


def two_platform_config(tmp_path: Path) -> Path:
    """An ICS folder holding Alice's week, and an Exchange server nobody in the test asks."""
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "alice.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a1\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART:20261102T090000Z\r\nDTEND:20261102T100000Z\r\n"
        "SUMMARY:Call\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    config = tmp_path / "calmesh.toml"
    config.write_text('[hub]\ntimezone = "UTC"\n'
                      '[platforms.files]\nkind = "ics"\npath = "cal"\n'
                      '[platforms.exchange]\nkind = "ews"\nservice_endpoint = "https://mail.example.test/EWS/Exchange.asmx"\n'
                      'auth = "basic"\nusername = "u"\npassword_env = "CALMESH_TEST_NOT_SET"\n'
                      '[platforms.graph]\nkind = "graph"\ntenant_id = "t"\nclient_id = "c"\nclient_secret_env = "S"\n'
                      '[[people]]\nemail = "alice@example.test"\nplatform = "files"\ncalendars = ["alice.ics"]\n'
                      '[[people]]\nemail = "bob@example.test"\nplatform = "exchange"\n')
    return config


def test_freebusy_imports_only_the_connectors_it_asks(tmp_path: Path) -> None:
    """``calmesh freebusy`` for a person on the ICS platform of a config that also names Exchange
    and Graph: the config is validated (every platform's settings) from the light schema module,
    and only the ICS connector is loaded."""
    config = two_platform_config(tmp_path)
    loaded = modules_after(["freebusy", "alice@example.test", "--start", "2026-11-02", "--format", "json",
                            "--config", str(config)])
    assert "calmesh.connectors.ics" in loaded and "calmesh.connectors.settings" in loaded
    assert [m for m in loaded if m.startswith(CONNECTORS) and m != "calmesh.connectors.ics"] == []
    assert [m for m in loaded if m.startswith(LIBRARIES)] == []


def test_loading_a_config_validates_every_kind_without_importing_a_connector(tmp_path: Path) -> None:
    code = (f"import json, sys\nfrom calmesh.config import load_config\nload_config({str(two_platform_config(tmp_path))!r})\n"
            f"print({MARK!r} + json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    [line] = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    loaded = json.loads(line.removeprefix(MARK))
    assert [m for m in loaded if m.startswith((*CONNECTORS, *LIBRARIES))] == []


def test_a_bad_setting_of_an_unloaded_connector_is_still_reported(tmp_path: Path) -> None:
    from calmesh.config import ConfigError, load_config

    config = two_platform_config(tmp_path)
    config.write_text(config.read_text().replace('auth = "basic"', 'auth = "kerberos"'))
    with pytest.raises(ConfigError, match=r"platforms\.exchange\.auth"):
        load_config(config)


def test_a_caldav_only_config_loads_no_other_platform_code(tmp_path: Path, radicale: CalDAVServer) -> None:
    """``calmesh freebusy`` for a person on a real CalDAV server (Radicale), with an event in a
    named IANA zone to read: the answer is served (exit 0) and nothing of Exchange (exchangelib,
    its NTLM and Kerberos stacks), Graph, Google (its JWT signing), SQL or the ICS feeds' HTTP
    client is loaded. Each of those costs a CalDAV-only organisation start-up time on every run
    of the command (issue 16); they are imported only by their own connectors, and the zone tables
    of exchangelib only for a Windows zone name."""
    calendar = radicale.new_calendar()
    httpx.put(calendar + "standup.ics", auth=(radicale.username, radicale.password),
              headers={"Content-Type": "text/calendar"}, content=(
                  "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTIMEZONE\r\n"
                  "TZID:Europe/Paris\r\nBEGIN:STANDARD\r\nDTSTART:19701025T030000\r\n"
                  "TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
                  "BEGIN:VEVENT\r\nUID:standup-1\r\nDTSTAMP:20261101T000000Z\r\n"
                  "DTSTART;TZID=Europe/Paris:20261102T090000\r\nDTEND;TZID=Europe/Paris:20261102T093000\r\n"
                  "RRULE:FREQ=DAILY;COUNT=5\r\nSUMMARY:Stand-up\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"),
              ).raise_for_status()
    config = tmp_path / "calmesh.toml"
    config.write_text('[hub]\ntimezone = "Europe/Paris"\n'
                      f'[platforms.dav]\nkind = "caldav"\nurl = "{radicale.url}"\n'
                      f'username = "{radicale.username}"\npassword_env = "{radicale.password_env}"\n'
                      f'[[people]]\nemail = "alice@example.test"\nplatform = "dav"\ncalendars = ["{calendar}"]\n')
    status, output, loaded = run_fresh(
        ["freebusy", "alice@example.test", "--start", "2026-11-02", "--format", "json", "--config", str(config)],
        {radicale.password_env: radicale.password})
    assert status == 0, output
    [alice] = json.loads(output)["people"]
    assert alice["busy"][0]["start"] == "2026-11-02T09:00:00+01:00" and alice["error"] is None
    assert "calmesh.connectors.caldav" in loaded
    assert [m for m in loaded if m.startswith(OTHER_PLATFORMS)] == []


OTHER_PLATFORMS = ("calmesh.connectors.ews", "calmesh.connectors.graph", "calmesh.connectors.google",
                   "calmesh.connectors.sql", "calmesh.connectors.ics", "calmesh.connectors._exchange_common",
                   "exchangelib", "requests_ntlm", "spnego", "oauthlib", "cryptography", "sqlalchemy", "httpx")
"""What a CalDAV-only config must never load: the other connectors and their libraries."""
