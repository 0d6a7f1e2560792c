"""``calmesh sync --watch`` end to end: the real command in its own process, looping every second
over a two-way group between a real Radicale and a real Xandikos calendar (both started by
tests/conftest.py). Events are written the way another CalDAV client would (raw iCalendar PUT with
httpx, If-Match on edits) and read back through the connector; the process is then stopped by a
signal, as systemd or Ctrl-C would, and ``calmesh status`` must show its runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import httpx
import icalendar
import pytest
from typer.testing import CliRunner

from calmesh.cli import app

from .peers import Peer

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the fixtures

T = TypeVar("T")
CALMESH = [sys.executable, "-c", "from calmesh.cli import main; main()"]
DEADLINE = 60.0
"""Seconds a change may take to cross: generous, since CI machines run other suites meanwhile."""


def eventually(check: Callable[[], T | None], what: str, process: subprocess.Popen[bytes]) -> T:
    """Poll ``check`` until it returns something, failing early if the watcher died."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = check()
        if found is not None:
            return found
        assert process.poll() is None, f"calmesh sync --watch exited ({process.returncode}) before {what}"
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {DEADLINE}s")


def put(server: CalDAVServer, href: str, body: bytes, **headers: str) -> None:
    response = httpx.put(href, content=body, auth=(server.username, server.password),
                         headers={"Content-Type": "text/calendar; charset=utf-8", **headers})
    assert response.status_code in (201, 204), (response.status_code, response.text)


def new_event(uid: str, summary: str) -> bytes:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    event = icalendar.Event()
    for key, value in {"uid": uid, "dtstamp": start, "dtstart": start, "dtend": start + timedelta(minutes=45),
                       "summary": summary, "sequence": 0}.items():
        event.add(key, value)
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//another client//EN")
    calendar.add("version", "2.0")
    calendar.add_component(event)
    return calendar.to_ical()


@pytest.fixture
def config(tmp_path: Path, radicale: CalDAVServer, xandikos: CalDAVServer, rad: Peer, xan: Peer) -> Path:
    platforms = "".join(
        f'[platforms.{name}]\nkind = "caldav"\nurl = "{server.url}"\nusername = "{server.username}"\n'
        f'password_env = "{server.password_env}"\n'
        for name, server in (("rad", radicale), ("xan", xandikos)))
    path = tmp_path / "calmesh.toml"
    path.write_text(f'[hub]\nstate = "sqlite:///state.sqlite"\n{platforms}'
                    '[sync.groups.team]\ncalendars = ['
                    f'{{platform = "rad", calendar = "{rad.calendar}"}}, '
                    f'{{platform = "xan", calendar = "{xan.calendar}"}}]\n')
    return path


@pytest.fixture
def watcher(config: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``calmesh sync --watch --interval 1s``; output in files (a full pipe would block it)."""
    with (tmp_path / "out.txt").open("wb") as out, (tmp_path / "err.txt").open("wb") as err:
        process = subprocess.Popen([*CALMESH, "sync", "--watch", "--interval", "1s", "-c", str(config)],
                                   stdout=out, stderr=err, cwd=tmp_path)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_watch_syncs_both_ways_until_stopped(stop: signal.Signals, watcher: subprocess.Popen[bytes],
                                              config: Path, tmp_path: Path, radicale: CalDAVServer,
                                              xandikos: CalDAVServer, rad: Peer, xan: Peer) -> None:
    uid = f"watched-{uuid.uuid4().hex[:8]}@test"
    put(radicale, f"{rad.calendar}{uid}.ics", new_event(uid, "Planning"), **{"If-None-Match": "*"})

    copy = eventually(lambda: xan.by_uid().get(uid), "copy on Xandikos", watcher)
    assert copy.ref is not None and copy.ref.etag
    href = str(httpx.URL(xan.calendar).join(copy.ref.id))
    edited = icalendar.Calendar.from_ical(httpx.get(href, auth=(xandikos.username, xandikos.password)).content)
    for event in edited.walk("VEVENT"):
        event["summary"] = icalendar.vText("Planning (moved room)")
        event["sequence"] = int(event.get("sequence", 0)) + 1
    put(xandikos, href, edited.to_ical(), **{"If-Match": copy.ref.etag})

    eventually(lambda: True if rad.master(uid).summary == "Planning (moved room)" else None,
               "edit back on Radicale", watcher)

    watcher.send_signal(stop)
    assert watcher.wait(timeout=DEADLINE) == 0
    out, err = (tmp_path / "out.txt").read_text(), (tmp_path / "err.txt").read_text()
    assert "Traceback" not in out + err, out + err
    assert "watching team" in out and out.rstrip().endswith("stopped"), out
    assert "sync team: ok" in out, out

    status = CliRunner().invoke(app, ["status", "--json", "-c", str(config)])
    assert status.exit_code == 0, status.output
    [state] = json.loads(status.stdout)["groups"]
    assert state["last_run"]["status"] == "ok" and state["last_run"]["errors"] == []
    assert state["items"]["items"] == 1
    assert set(state["tokens"]) == {f"rad/{rad.calendar}", f"xan/{xan.calendar}"}
