"""Issue 17 item 2: every platform failure reaches the command line as one line naming the
platform, the cause in plain words and the setting to fix; no traceback, no library text.
Lines are matched whole, on real peers (Radicale, the EWS fake) and on a port nothing listens on."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from calmesh.cli import app
from calmesh.fakes.ews import EWSFake

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers

runner = CliRunner()
WIDE = {"COLUMNS": "300"}
PASSWORD_ENV = "CALMESH_TEST_ERRORS_PASSWORD"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ews() -> Iterator[EWSFake]:
    fake = EWSFake(users={"svc": "svc-pw"})
    fake.add_mailbox("carla@agency.example", "America/New_York")
    fake.start()
    yield fake
    fake.stop()


def write_config(tmp_path: Path, platform: str) -> Path:
    path = tmp_path / "calmesh.toml"
    path.write_text(f"""
[hub]
timezone = "Europe/Paris"
state = "sqlite:///state.sqlite"
{platform}
[[people]]
email = "carla@agency.example"
name = "Carla Jones"
platform = "exchange"
""")
    return path


def ews_platform(endpoint: str, **extra: str) -> str:
    lines = "".join(f'{k} = "{v}"\n' for k, v in extra.items())
    return f"""[platforms.exchange]
kind = "ews"
service_endpoint = "{endpoint}"
auth = "basic"
username = "svc"
password_env = "{PASSWORD_ENV}"
retries = 1
{lines}"""


def problem_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("! ")]


def freebusy(config: Path, env: dict[str, str]) -> tuple[int, str]:
    result = runner.invoke(app, ["freebusy", "carla@agency.example", "--start", "2026-12-01", "--end", "2026-12-02",
                                 "-c", str(config)], env={**WIDE, **env})
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.output


def test_missing_exchange_password_variable(tmp_path: Path, ews: EWSFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    code, output = freebusy(write_config(tmp_path, ews_platform(ews.ews_url)), {})
    assert code == 3
    assert problem_lines(output) == [
        f"! Carla Jones: no data from exchange (ews): environment variable {PASSWORD_ENV} is not set; "
        "check platforms.exchange.password_env"]


def test_refused_exchange_connection(tmp_path: Path, closed_port: int) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}/EWS/Exchange.asmx"
    code, output = freebusy(write_config(tmp_path, ews_platform(endpoint)), {PASSWORD_ENV: "svc-pw"})
    assert code == 3
    assert problem_lines(output) == [
        f"! Carla Jones: no data from exchange (ews): cannot reach {endpoint}: connection refused "
        "(nothing listens there); check platforms.exchange.service_endpoint"]


def test_wrong_exchange_password(tmp_path: Path, ews: EWSFake) -> None:
    code, output = freebusy(write_config(tmp_path, ews_platform(ews.ews_url)), {PASSWORD_ENV: "wrong"})
    assert code == 3
    assert problem_lines(output) == [
        "! Carla Jones: no data from exchange (ews): credentials refused for svc by the server (HTTP 401); "
        "check platforms.exchange.username and platforms.exchange.password_env"]


def test_unreachable_caldav_server(tmp_path: Path, closed_port: int) -> None:
    platform = f"""[platforms.exchange]
kind = "caldav"
url = "http://127.0.0.1:{closed_port}/dav/"
username = "svc"
password_env = "{PASSWORD_ENV}"
"""
    code, output = freebusy(write_config(tmp_path, platform), {PASSWORD_ENV: "x"})
    assert code == 3
    assert problem_lines(output) == [
        f"! Carla Jones: no data from exchange (caldav): unreachable at http://127.0.0.1:{closed_port}: "
        "connection refused (nothing listens there); check platforms.exchange.url"]


def test_wrong_caldav_password(tmp_path: Path, radicale: CalDAVServer) -> None:
    calendar = radicale.new_calendar()
    platform = f"""[platforms.exchange]
kind = "caldav"
url = "{radicale.url}"
username = "{radicale.username}"
password_env = "{PASSWORD_ENV}"
"""
    config = write_config(tmp_path, platform)
    config.write_text(config.read_text() + f'calendars = ["{calendar}"]\n')
    code, output = freebusy(config, {PASSWORD_ENV: "wrong"})
    assert code == 3
    assert problem_lines(output) == [
        f"! Carla Jones: no data from exchange (caldav): credentials refused for {radicale.username} by "
        f"{calendar} (HTTP 401); check platforms.exchange.username and platforms.exchange.password_env"]


def test_check_fails_where_nothing_listens_even_with_server_version(tmp_path: Path, closed_port: int) -> None:
    """Issue 17 item 6: with server_version set exchangelib asks nothing to list nothing; check reads
    a day of each person's time and so reports the dead endpoint."""
    endpoint = f"http://127.0.0.1:{closed_port}/EWS/Exchange.asmx"
    config = write_config(tmp_path, ews_platform(endpoint, server_version="Exchange2016"))
    result = runner.invoke(app, ["check", "--format", "json", "-c", str(config)], env={**WIDE, PASSWORD_ENV: "pw"})
    assert result.exit_code == 3, result.output
    [platform] = json.loads(result.output)["platforms"]
    assert platform["ok"] is False and platform["people"][0]["ok"] is False
    assert platform["people"][0]["error"] == (
        f"exchange (ews): cannot reach {endpoint}: connection refused (nothing listens there); "
        "check platforms.exchange.service_endpoint")


def test_check_ok_reads_each_person(tmp_path: Path, ews: EWSFake) -> None:
    config = write_config(tmp_path, ews_platform(ews.ews_url, server_version="Exchange2016"))
    result = runner.invoke(app, ["check", "-c", str(config)], env={**WIDE, PASSWORD_ENV: "svc-pw"})
    assert result.exit_code == 0, result.output
    assert "Carla Jones: read today's free/busy" in result.output


def test_a_bug_is_one_line_not_a_traceback(tmp_path: Path, ews: EWSFake, monkeypatch: pytest.MonkeyPatch) -> None:
    from calmesh.services import availability

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(availability, "freebusy", broken)
    monkeypatch.delenv("CALMESH_DEBUG", raising=False)
    result = runner.invoke(app, ["freebusy", "carla@agency.example", "-c",
                                 str(write_config(tmp_path, ews_platform(ews.ews_url)))], env=WIDE)
    assert result.exit_code == 70
    assert result.output.strip() == ("error: internal error (RuntimeError): a calmesh bug; run again with "
                                     "CALMESH_DEBUG=1 for the traceback and report it")


def test_config_mistakes_are_all_printed_one_line_each(tmp_path: Path) -> None:
    path = tmp_path / "calmesh.toml"
    path.write_text('[hub]\ntimezon = "UTC"\n\n[[people]]\nemail = "alice@agency.example"\nplatfrom = "zoho"\n')
    result = runner.invoke(app, ["check", "-c", str(path)], env=WIDE)
    assert result.exit_code == 2
    where = path.resolve()
    assert result.output.splitlines() == [
        f"error: {where}:2: hub.timezon: unknown setting 'timezon' (did you mean 'timezone'?)",
        f"error: {where}:6: people.0.platfrom: unknown setting 'platfrom' (did you mean 'platform'?)"]


def test_no_config_anywhere_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALMESH_CONFIG", raising=False)
    result = runner.invoke(app, ["check"], env={**WIDE, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"error: no config file found (looked for calmesh.toml, {tmp_path / 'xdg'}/calmesh/calmesh.toml, "
        "/etc/calmesh/calmesh.toml); write one with `calmesh init`, or pass --config")


def test_config_found_in_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALMESH_CONFIG", raising=False)
    (tmp_path / "xdg" / "calmesh").mkdir(parents=True)
    (tmp_path / "xdg" / "calmesh" / "calmesh.toml").write_text("[hub]\n")
    result = runner.invoke(app, ["check", "--format", "json"], env={**WIDE, "XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["config"] == str((tmp_path / "xdg" / "calmesh" / "calmesh.toml").resolve())


def caldav_config(tmp_path: Path, radicale: CalDAVServer, secret_lines: str) -> Path:
    """Carla on a Radicale calendar, the password read as ``secret_lines`` say."""
    config = write_config(tmp_path, f"""[platforms.exchange]
kind = "caldav"
url = "{radicale.url}"
username = "{radicale.username}"
{secret_lines}
""")
    config.write_text(config.read_text() + f'calendars = ["{radicale.new_calendar()}"]\n')
    return config


def test_password_from_a_command(tmp_path: Path, radicale: CalDAVServer) -> None:
    """Issue 17 item 9: vdirsyncer/khal users keep passwords in `pass` and friends."""
    import shlex
    import sys

    command = shlex.join([sys.executable, "-c", f"print({radicale.password!r})"])
    code, output = freebusy(caldav_config(tmp_path, radicale, f"password_command = {json.dumps(command)}"), {})
    assert code == 0, output
    failing = shlex.join([sys.executable, "-c", "import sys; sys.exit('vault locked')"])
    code, output = freebusy(caldav_config(tmp_path, radicale, f"password_command = {json.dumps(failing)}"), {})
    assert code == 3 and problem_lines(output) == [
        f"! Carla Jones: no data from exchange (caldav): {failing!r} gave no password (exit 1: vault locked); "
        "check platforms.exchange.password_command"]


def test_password_from_the_system_keyring(tmp_path: Path, radicale: CalDAVServer) -> None:
    keyring = pytest.importorskip("keyring", reason="the optional keyring package is not installed")
    from keyring.backend import KeyringBackend

    class Memory(KeyringBackend):
        """A keyring backend of the keyring package's own interface, holding entries in memory."""

        priority = 1  # type: ignore[assignment]
        entries: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.entries.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.entries[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.entries.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(Memory())
    try:
        config = caldav_config(tmp_path, radicale, 'keyring = "calmesh-zoho"')
        code, output = freebusy(config, {})
        assert code == 3 and problem_lines(output) == [
            f"! Carla Jones: no data from exchange (caldav): no password for {radicale.username!r} under service "
            "'calmesh-zoho' in the system keyring; check platforms.exchange.keyring"]
        keyring.set_password("calmesh-zoho", radicale.username, radicale.password)
        code, output = freebusy(config, {})
        assert code == 0, output
    finally:
        keyring.set_keyring(previous)
