"""Issue 17 item 9: ``calmesh init`` discovers a real CalDAV server's calendars (Radicale started
by the suite) and writes a config that ``calmesh check`` accepts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from typer.testing import CliRunner

from calmesh.cli import app

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

runner = CliRunner()


def test_init_discovers_caldav_calendars_and_writes_a_working_config(tmp_path: Path, radicale: CalDAVServer) -> None:
    calendar = radicale.new_calendar(name="Team Atlas")
    output = tmp_path / "calmesh.toml"
    # the kind, name and password variable are asked; the rest is given as options
    result = runner.invoke(app, ["init", "--output", str(output), "--url", radicale.url, "--username",
                                 radicale.username, "--timezone", "Europe/Paris"],
                           input=f"caldav\nzoho\n{radicale.password_env}\n", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"wrote {output}; next: calmesh check -c {output}" in result.output.splitlines()
    text = output.read_text()
    assert f'url = "{radicale.url}"' in text and f'password_env = "{radicale.password_env}"' in text
    assert calendar in text and "Team Atlas" in text
    assert "password = " not in text  # the password itself is never written
    check = runner.invoke(app, ["check", "-c", str(output)], env={"COLUMNS": "200"})
    assert check.exit_code == 0, check.output


def test_init_refuses_to_overwrite_and_reports_a_refused_login(tmp_path: Path, radicale: CalDAVServer,
                                                              monkeypatch: object) -> None:
    output = tmp_path / "calmesh.toml"
    output.write_text("[hub]\n")
    result = runner.invoke(app, ["init", "--output", str(output), "--kind", "caldav"])
    assert result.exit_code == 2 and result.output.strip() == (
        f"error: {output} exists; pass --force to overwrite it, or --output to write elsewhere")
    result = runner.invoke(app, ["init", "--output", str(output), "--force", "--kind", "caldav", "--name", "zoho",
                                 "--url", radicale.url, "--username", radicale.username,
                                 "--password-env", "CALMESH_TEST_INIT_WRONG"],
                           env={"CALMESH_TEST_INIT_WRONG": "wrong", "COLUMNS": "300"})
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: zoho: credentials refused for ")
    assert result.output.strip().endswith("(HTTP 401); check platforms.zoho.username and platforms.zoho.password_env")
    assert output.read_text() == "[hub]\n"
