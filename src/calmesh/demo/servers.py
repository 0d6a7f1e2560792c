"""Real CalDAV servers (Radicale, Xandikos) on 127.0.0.1, for the demo and the test-suite.

Each server runs as a subprocess in its own process group on a free port, with its storage and
its log under a folder the caller owns, so parallel test workers never share anything. Stopping
kills the whole group: no stray server outlives the test or the demo that started it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from calmesh.model import CalendarItem

_START_TIMEOUT = 30.0
_PORT_ATTEMPTS = 3
"""A free port found by binding port 0 can be taken again before the server binds it: retry."""


class ServerStartError(RuntimeError):
    """The server process exited or did not answer in time; the message holds its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RunningServer:
    """A server subprocess: ``url`` is its root (``http://127.0.0.1:PORT/``)."""

    def __init__(self, name: str, url: str, process: subprocess.Popen[bytes], log_path: Path,
                 log_file: IO[bytes]) -> None:
        self.name, self.url, self.process, self.log_path = name, url, process, log_path
        self._log_file = log_file

    def stop(self) -> None:
        """Terminate the process group, then kill it if it lingers."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
            except ProcessLookupError:
                pass
        self._log_file.close()

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _launch(name: str, root: Path, command: list[str], port: int) -> RunningServer:
    log_path = root / f"{name}.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=root, start_new_session=True)
    server = RunningServer(name, f"http://127.0.0.1:{port}/", process, log_path, log_file)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise ServerStartError(f"{name} exited with code {process.returncode}:\n{server.log_tail()}")
        try:
            # any HTTP answer (even 401) means it is serving
            httpx.request("OPTIONS", server.url, timeout=1.0)
            return server
        except httpx.TransportError:
            time.sleep(0.05)
    server.stop()
    raise ServerStartError(f"{name} did not answer on {server.url} within {_START_TIMEOUT:g}s:\n{server.log_tail()}")


def _with_port_retries(name: str, start: Callable[[int], RunningServer]) -> RunningServer:
    last: ServerStartError | None = None
    for _ in range(_PORT_ATTEMPTS):
        try:
            return start(free_port())
        except ServerStartError as exc:
            if "address already in use" not in str(exc).lower():
                raise
            last = exc
    raise ServerStartError(f"{name}: no free port after {_PORT_ATTEMPTS} attempts") from last


def radicale_object_name(uid: str) -> str:
    """The file (and href) name the benchmarks give an object in a Radicale (or Xandikos) calendar."""
    return uid.replace("@", "_") + ".ics"


def seed_radicale_calendar(root: Path, user: str, calendar: str, items: Iterable[CalendarItem]) -> None:
    """A calendar collection holding ``items``, written into the storage folder of a Radicale
    that :func:`start_radicale` will start on ``root`` (its multifilesystem layout:
    ``collection-root/<user>/<calendar>/`` with ``.Radicale.props`` and one ``.ics`` per object):
    far faster than PUT by PUT for the benchmarks' thousands of objects."""
    # only the benchmarks seed calendars: the demo's start-up does not load the writer for it
    from calmesh import ical

    folder = root / "collections" / "collection-root" / user / calendar
    folder.mkdir(parents=True)
    (folder / ".Radicale.props").write_text(json.dumps(
        {"tag": "VCALENDAR", "C:supported-calendar-component-set": "VEVENT", "D:displayname": calendar}),
        encoding="utf-8")
    for item in items:
        (folder / radicale_object_name(item.uid)).write_bytes(ical.item_to_ical(item))


def start_radicale(root: Path, users: dict[str, str], *, extra_config: str = "",
                   max_resource_size: int | None = None) -> RunningServer:
    """Radicale with htpasswd users (plain passwords: no extra dependency, fine on loopback),
    no delay after a wrong password (tests check refusals), owner-only rights, storage in ``root``.
    ``extra_config``: more sections of Radicale's config file, appended as given.
    ``max_resource_size``: Radicale's limit on one object in bytes (its default: 10 MB), which it
    applies on PUT and, to objects already stored, by leaving them out of its answers."""
    root.mkdir(parents=True, exist_ok=True)
    htpasswd = root / "users.htpasswd"
    htpasswd.write_text("".join(f"{user}:{password}\n" for user, password in users.items()), encoding="utf-8")

    def start(port: int) -> RunningServer:
        config = root / "radicale.conf"
        config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{port}\n"
            "delay_on_error = 0\n"
            + (f"max_resource_size = {max_resource_size}\n" if max_resource_size else "")
            + "[auth]\n"
            "type = htpasswd\n"
            f"htpasswd_filename = {htpasswd}\n"
            "htpasswd_encryption = plain\n"
            "delay = 0\n"
            "[rights]\n"
            "type = owner_only\n"
            "[storage]\n"
            f"filesystem_folder = {root / 'collections'}\n"
            "[web]\n"
            "type = none\n"
            "[logging]\n"
            "level = warning\n"
            "mask_passwords = True\n" + extra_config,
            encoding="utf-8",
        )
        return _launch("radicale", root, [sys.executable, "-m", "radicale", "--config", str(config)], port)

    return _with_port_retries("radicale", start)


XANDIKOS_PRINCIPAL = "/user/"
"""Xandikos serves one user; ``--defaults`` creates ``/user/calendars/calendar/``."""


def start_xandikos(root: Path) -> RunningServer:
    """Xandikos with its default principal and calendar, storage and state in ``root``.

    Xandikos only does HTTP Basic auth over TLS (``--htpasswd`` requires ``--autocert``), so this
    loopback instance accepts any credentials: tests of refused passwords run against Radicale.
    """
    root.mkdir(parents=True, exist_ok=True)
    executable = Path(sys.executable).with_name("xandikos")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "xandikos"]

    def start(port: int) -> RunningServer:
        return _launch("xandikos", root, [
            *command, "serve", "--defaults", "-d", str(root / "data"), "--state-dir", str(root / "state"),
            "-l", "127.0.0.1", "-p", str(port), "--current-user-principal", XANDIKOS_PRINCIPAL,
            "--no-detect-systemd",
        ], port)

    return _with_port_retries("xandikos", start)


def seed_xandikos_calendar(root: Path, items: Iterable[CalendarItem]) -> None:
    """The default calendar of a Xandikos on ``root`` (:func:`start_xandikos`) holding ``items``,
    in one Git commit. Through PUTs, each object is a commit of the whole calendar's tree, so
    seeding 10,000 objects that way costs O(n^2); this writes the objects into the calendar's
    work tree and index as Xandikos's own ``TreeGitStore`` does for one, then commits once.
    Xandikos is started and stopped once first, to create its default collections."""
    from dulwich.index import index_entry_from_stat
    from dulwich.objects import Blob
    from dulwich.repo import Repo

    from calmesh import ical

    start_xandikos(root).stop()
    folder = root / "data" / XANDIKOS_PRINCIPAL.strip("/") / "calendars" / "calendar"
    repo = Repo(str(folder))
    try:
        index = repo.open_index()
        for item in items:
            path = folder / radicale_object_name(item.uid)
            data = ical.item_to_ical(item)
            path.write_bytes(data)
            blob = Blob.from_string(data)
            repo.object_store.add_object(blob)
            index[path.name.encode()] = index_entry_from_stat(os.lstat(path), blob.id)
        index.write()
        repo.get_worktree().commit(message=b"seeded by calmesh's benchmark", tree=index.commit(repo.object_store))
    finally:
        repo.close()


def make_calendar(url: str, username: str = "", password: str = "", name: str | None = None) -> str:
    """Create the calendar collection at ``url`` (MKCALENDAR through the caldav library) and
    return its URL; an existing collection is left as it is."""
    from caldav.collection import Calendar, CalendarSet
    from caldav.davclient import DAVClient
    from caldav.lib import error

    url = url.rstrip("/") + "/"
    parent, _, cal_id = url.rstrip("/").rpartition("/")
    with DAVClient(url=parent + "/", username=username or None, password=password or None,
                          enable_rfc6764=False) as client:
        try:
            CalendarSet(client=client, url=parent + "/").make_calendar(name=name, cal_id=cal_id)
        except error.MkcalendarError:
            Calendar(client=client, url=url).get_properties()  # exists already: fine if it answers
    return url
