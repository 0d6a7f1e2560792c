"""Issue 17 item 9: ``calmesh init`` discovers a platform's calendars and writes a config that
loads and that ``calmesh check`` accepts: on a real CalDAV server (Radicale started by the suite),
and on the Microsoft Graph and Google Calendar fakes on loopback (no vendor service is reachable
from the test machines; the fakes follow the vendors' documented shapes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.config import load_config
from calmesh.fakes.google import GoogleFake
from calmesh.fakes.graph import GraphFake

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


GRAPH_SECRET_ENV, GOOGLE_KEY_ENV = "CALMESH_TEST_INIT_GRAPH_SECRET", "CALMESH_TEST_INIT_GOOGLE_KEY"


@pytest.fixture
def graph() -> Iterator[GraphFake]:
    """Microsoft Graph's protocol-faithful fake (calmesh.fakes.graph, from Microsoft's documented
    calendar and getSchedule shapes) on loopback: no Microsoft 365 tenant is reachable from here."""
    fake = GraphFake()
    fake.add_mailbox("alice@sales.test", "Europe/Paris", extra_calendars=("Team Atlas",), name="Alice Martin")
    fake.add_mailbox("bob@sales.test", "America/New_York", name="Bob Stone")
    fake.start()
    yield fake
    fake.stop()


def test_init_discovers_graph_calendars_and_writes_a_working_config(tmp_path: Path, graph: GraphFake,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GRAPH_SECRET_ENV, graph.client_secret)
    output = tmp_path / "calmesh.toml"
    # the tenant, client, secret variable and mailboxes are asked; the fake's addresses are options
    result = runner.invoke(app, ["init", "--output", str(output), "--kind", "graph", "--name", "m365",
                                 "--url", graph.graph_url, "--token-url", graph.token_url],
                           input=f"contoso\n{graph.client_id}\n{GRAPH_SECRET_ENV}\nalice@sales.test, Bob@sales.test\n",
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "m365: 3 calendar(s): Calendar, Team Atlas, Calendar" in result.output
    text = output.read_text()
    assert f'client_secret_env = "{GRAPH_SECRET_ENV}"' in text and graph.client_secret not in text
    assert 'mailboxes = ["alice@sales.test", "bob@sales.test"]' in text
    config = load_config(output)
    (team,) = [c.id for c in graph.mailboxes["alice@sales.test"].calendars.values() if not c.default]
    assert {p.email: p.calendars for p in config.people} == {
        "alice@sales.test": ["alice@sales.test", f"alice@sales.test/{team}"], "bob@sales.test": ["bob@sales.test"]}
    assert "GET /v1.0/users/alice@sales.test/calendars" in graph.requests  # List calendars, as the app itself
    check = runner.invoke(app, ["check", "-c", str(output)], env={"COLUMNS": "200"})
    assert check.exit_code == 0, check.output


def test_init_asks_graph_for_a_mailbox(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", "--output", str(tmp_path / "c.toml"), "--kind", "graph", "--name", "m365",
                                 "--tenant-id", "contoso", "--client-id", "app", "--password-env", "X",
                                 "--mailbox", ""], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "pass --mailbox" in result.output


@pytest.fixture
def google() -> Iterator[GoogleFake]:
    """Google Calendar API v3's protocol-faithful fake (calmesh.fakes.google, from Google's
    documented calendarList, events and freeBusy shapes, with the service-account JWT grant) on
    loopback: no Workspace domain is reachable from here."""
    fake = GoogleFake(domain="sales.test")
    fake.add_user("alice@sales.test", "Europe/Paris", extra_calendars=("Team",))
    fake.add_user("bob@sales.test", "America/New_York")
    fake.start()
    yield fake
    fake.stop()


def test_init_discovers_google_calendars_and_writes_a_working_config(tmp_path: Path, google: GoogleFake,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GOOGLE_KEY_ENV, google.credentials_json())
    output = tmp_path / "calmesh.toml"
    result = runner.invoke(app, ["init", "--output", str(output), "--kind", "google", "--name", "workspace",
                                 "--url", google.api_url, "--token-url", google.token_url,
                                 "--mailbox", "alice@sales.test", "--mailbox", "bob@sales.test"],
                           input=f"{GOOGLE_KEY_ENV}\n", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = output.read_text()
    assert f'credentials_env = "{GOOGLE_KEY_ENV}"' in text and "impersonate = true" in text
    assert "PRIVATE KEY" not in text  # the key itself is never written
    config = load_config(output)
    people = {p.email: p.calendars for p in config.people}
    assert set(people) == {"alice@sales.test", "bob@sales.test"}
    assert people["alice@sales.test"][0] == "alice@sales.test" and len(people["alice@sales.test"]) == 2
    assert people["alice@sales.test"][1].startswith("alice@sales.test/")  # her "Team" calendar, as herself
    check = runner.invoke(app, ["check", "-c", str(output)], env={"COLUMNS": "200"})
    assert check.exit_code == 0, check.output
