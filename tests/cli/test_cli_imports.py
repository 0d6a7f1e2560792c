"""Building the CLI stays light (see calmesh.cli.app): a cron-run ``calmesh sync --once`` pays for
every import before its first request, so the command modules import the server, detection,
scheduling, Exchange and migration code only inside the commands that use them. Checked by module
names in a fresh interpreter, not by timing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("starlette", "uvicorn", "exchangelib", "alembic", "calmesh.server", "calmesh.services.detection",
         "calmesh.services.scheduling", "calmesh.services.itip", "calmesh.connectors")
"""Modules no command needs before it runs (the connectors are loaded per configured platform)."""
MARK = "MODULES:"


def modules_after(argv: list[str]) -> list[str]:
    """The modules loaded once ``calmesh ARGV`` has finished, in a fresh interpreter."""
    code = ("import json, sys\nfrom calmesh.cli import main\n"
            f"sys.argv = ['calmesh', *{argv!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print({MARK!r} + json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"COLUMNS": "120", "PATH": ""})
    [line] = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    return json.loads(line.removeprefix(MARK))


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
