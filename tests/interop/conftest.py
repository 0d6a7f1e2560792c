"""The interop suite: real client programs, headless, against ``calmesh serve`` on loopback.

``calmesh serve`` runs as its own process (as users run it) over the demo agency's week in ICS
folders, with users for the clients to sign in as. Every test compares what its client shows
with the JSON API for the same people and window (:func:`json_busy`).

The programs come from Debian packages that ``make interop`` installs (as root with apt-get);
where one is missing the test skips with :func:`need_program`'s reason, which says how to get it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from calmesh.server.auth import hash_password
from conftest import ICS_PLATFORMS_TOML
from server.conftest import FAST_HASH, MONDAY, people_toml, seed_ics

USER = ("emma", "emma-secret")
EMAIL = "emma@agency.example"
"""The signed-in user's address (her principal's ``mailto:``): Emma of the projects team."""
ATTENDEES = ("alice@agency.example", "carla@agency.example", "farid@agency.example")
"""One person per demo platform (Zoho, Exchange, the project system), in three time zones."""
WINDOW = (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
FBTYPES = {"busy": "BUSY", "tentative": "BUSY-TENTATIVE", "oof": "BUSY-UNAVAILABLE"}

Busy = set[tuple[datetime, datetime, str]]
"""(start UTC, end UTC, FBTYPE) of each busy period."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stop(process: subprocess.Popen[bytes]) -> None:
    """End a program a fixture started: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def need_program(path: str, package: str) -> str:
    """``path`` when installed, else skip saying which Debian package ``make interop`` installs."""
    found = shutil.which(path) if "/" not in path else (path if os.path.exists(path) else None)
    if found is None:
        pytest.skip(f"{path} is not installed: `make interop` installs the Debian package {package} "
                    "(as root with apt-get)")
    return found


def system_python_with(module: str, package: str) -> str:
    """Debian's python3 (where python3-gi lives) when it can import ``module`` (a typelib through
    ``gi``), else skip naming the package that provides it."""
    python = need_program("/usr/bin/python3", "python3")
    check = subprocess.run([python, "-c", module], capture_output=True, text=True, timeout=60)
    if check.returncode != 0:
        last = (check.stderr.strip().splitlines() or ["?"])[-1]
        pytest.skip(f"{module!r} fails with Debian's python3 ({last}): `make interop` installs {package}")
    return python


def eds_session(script: Path, *args: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with Debian's python3 in a private D-Bus session (``dbus-run-session``) and
    a fresh ``HOME``, so Evolution's data server (registry and calendar factory, started by D-Bus
    activation) sees only the sources the script adds. Skips when a piece is missing."""
    need_program("dbus-run-session", "dbus-daemon")
    need_program("/usr/libexec/evolution-calendar-factory", "evolution-data-server")
    python = system_python_with("import gi; gi.require_version('ECal', '2.0'); "
                                "gi.require_version('ICalGLib', '3.0'); from gi.repository import ECal, ICalGLib",
                                "gir1.2-ecal-2.0 and python3-gi")
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
           "XDG_CACHE_HOME": str(home / ".cache"), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(["dbus-run-session", "--", python, str(script), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@dataclass(frozen=True)
class Hub:
    """A running ``calmesh serve``."""

    url: str
    config: Path

    def json_busy(self, email: str) -> Busy:
        return json_busy(self.url, email)


def json_busy(url: str, email: str) -> Busy:
    """What the JSON API answers for ``email`` over :data:`WINDOW`: the reference every client
    is compared with."""
    answer = httpx.post(f"{url}/api/v1/freebusy", auth=USER, timeout=30, json={
        "attendees": [email], "start": WINDOW[0].isoformat(), "end": WINDOW[1].isoformat()})
    answer.raise_for_status()
    (person,) = answer.json()["people"]
    assert person["error"] is None, person["error"]
    return {(datetime.fromisoformat(b["start"]).astimezone(UTC), datetime.fromisoformat(b["end"]).astimezone(UTC),
             FBTYPES[b["type"]]) for b in person["busy"]}


def config_text() -> str:
    return f"""[hub]
timezone = "Europe/Paris"
[server]
watch_sync = false
[[server.users]]
name = "{USER[0]}"
email = "{EMAIL}"
password_hash = "{hash_password(USER[1], **FAST_HASH)}"
{ICS_PLATFORMS_TOML}{people_toml(MONDAY)}
"""


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """``calmesh serve`` on 127.0.0.1 (a free port) over the demo week, for the whole session."""
    root = tmp_path_factory.mktemp("interop-hub")
    seed_ics(root, MONDAY)
    config = root / "calmesh.toml"
    config.write_text(config_text(), encoding="utf-8")
    port = free_port()
    calmesh = str(Path(sys.executable).parent / "calmesh")
    log = (root / "serve.log").open("wb")
    process = subprocess.Popen([calmesh, "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"calmesh serve did not start: {(root / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield Hub(url, config)
    finally:
        stop(process)
        log.close()
