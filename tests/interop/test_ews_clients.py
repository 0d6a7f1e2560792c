"""Real EWS clients against calmesh's EWS door: evolution-ews and DavMail, headless.

- **evolution-ews** (Debian ``evolution-ews``, ``evolution-data-server``, ``gir1.2-ecal-2.0``):
  the calendar factory's EWS backend, asked through ``ECal.Client.get_free_busy_sync`` as
  Evolution's meeting editor asks it (tests/interop/evolution_freebusy.py, run with the system
  python inside ``dbus-run-session``). Issue 15 item 1: it sends UTC as Month 0, which calmesh
  used to refuse with 400.
- **DavMail** (Debian ``davmail``) in EWS mode, headless, driven through its CalDAV side: a
  CalDAV free/busy POST makes it log in to calmesh (GetFolder, ConvertId, GetFolder with
  AdditionalProperties: issue 15 item 4) and ask GetUserAvailability.

Each compares what the client shows with the JSON API for the same people and window. The
programs come from ``make interop`` (the ``INTEROP_EWS_PKGS`` packages, apt-get as root); where
they are absent the tests skip saying so.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import icalendar
import pytest

from server.conftest import DEMO, Served, make_server  # noqa: F401  (make_server: the fixture)
from server.ews_checks import json_busy, json_merged

WEEK = (datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC))
PEOPLE = ["alice@agency.example", "david@agency.example"]
FBTYPES = {"BUSY": "busy", "BUSY-TENTATIVE": "tentative", "BUSY-UNAVAILABLE": "oof"}
SYSTEM_PYTHON = "/usr/bin/python3"
INSTALL = "install them with `make interop` (apt-get, as root)"


@functools.cache
def _evolution_missing() -> str | None:
    backend = "evolution-data-server/calendar-backends/libecalbackendews.so"
    if not glob.glob(f"/usr/lib/{backend}") + glob.glob(f"/usr/lib/*/{backend}"):
        return f"evolution-ews is not installed (Debian packages evolution-ews, evolution-data-server): {INSTALL}"
    if shutil.which("dbus-run-session") is None:
        return f"dbus-run-session is missing (Debian package dbus): {INSTALL}"
    probe = ("import gi; gi.require_version('ECal', '2.0'); gi.require_version('EDataServer', '1.2'); "
             "from gi.repository import ECal, EDataServer")
    if not Path(SYSTEM_PYTHON).exists() or subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode:
        return f"the system python cannot load ECal 2.0 (Debian packages python3-gi, gir1.2-ecal-2.0): {INSTALL}"
    return None


def _davmail_missing() -> str | None:
    if not Path("/usr/share/davmail/davmail.jar").exists() or shutil.which("java") is None:
        return f"DavMail is not installed (Debian package davmail, with a Java runtime): {INSTALL}"
    return None


def _periods(vfreebusy: icalendar.cal.Component) -> set[tuple[datetime, datetime, str]]:
    """FREEBUSY values as UTC spans (icalendar gives one vPeriod per comma-separated period)."""
    props = vfreebusy.get("FREEBUSY", [])
    out = set()
    for prop in props if isinstance(props, list) else [props]:
        start, end = prop.dt
        end = start + end if isinstance(end, timedelta) else end
        out.add((start.astimezone(UTC), end.astimezone(UTC), FBTYPES[prop.params.get("FBTYPE", "BUSY")]))
    return out


# ------------------------------------------------------------------------------ evolution-ews
@pytest.mark.skipif(_evolution_missing() is not None, reason=_evolution_missing() or "")
def test_evolution_ews_free_busy_matches_the_json_api(make_server) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    server: Served = make_server()
    # a short HOME: gnome-keyring and D-Bus put Unix sockets under it (108-byte path limit)
    home = Path(tempfile.mkdtemp(prefix="cm-evo-", dir="/tmp"))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
           "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    script = Path(__file__).with_name("evolution_freebusy.py")
    expected = json_busy(server.url, PEOPLE, *WEEK, DEMO)
    run = subprocess.run(
        ["dbus-run-session", "--", SYSTEM_PYTHON, str(script), f"{server.url}/EWS/Exchange.asmx", *DEMO,
         str(int(WEEK[0].timestamp())), str(int(WEEK[1].timestamp())), *PEOPLE],
        env=env, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr[-3000:]
    texts = json.loads(run.stdout.strip().splitlines()[-1])
    got = {}
    for text in texts:
        (vfreebusy,) = icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\r\n{text}\r\nEND:VCALENDAR\r\n").walk("VFREEBUSY")
        got[str(vfreebusy["ATTENDEE"]).removeprefix("mailto:")] = _periods(vfreebusy)
    assert set(got) == set(PEOPLE)
    for email in PEOPLE:
        assert got[email] == expected[email] and expected[email], email
    shutil.rmtree(home, ignore_errors=True)


# ------------------------------------------------------------------------------------ DavMail
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def davmail(make_server, tmp_path: Path) -> Iterator[tuple[Served, str]]:  # type: ignore[no-untyped-def]  # noqa: F811
    """DavMail in EWS mode against a calmesh server: (the server, DavMail's CalDAV URL)."""
    missing = _davmail_missing()
    if missing:
        pytest.skip(missing)
    server: Served = make_server()
    port = _free_port()
    settings = tmp_path / "davmail.properties"
    settings.write_text(f"""davmail.server=true
davmail.mode=EWS
davmail.url={server.url}/EWS/Exchange.asmx
davmail.caldavPort={port}
davmail.imapPort=
davmail.smtpPort=
davmail.popPort=
davmail.ldapPort=
davmail.allowRemote=false
davmail.bindAddress=127.0.0.1
davmail.disableUpdateCheck=true
davmail.logFilePath={tmp_path / "davmail.log"}
log4j.rootLogger=WARN
log4j.logger.davmail=INFO
""")
    log = (tmp_path / "davmail.out").open("w")
    process = subprocess.Popen(["java", "-Djava.awt.headless=true", "-jar", "/usr/share/davmail/davmail.jar",
                                str(settings)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120  # JVM start-up on a loaded machine: a bound, not a timing check
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"DavMail did not start: {(tmp_path / 'davmail.out').read_text()[-2000:]}")
                time.sleep(0.2)
        yield server, f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_davmail_logs_in_and_its_caldav_free_busy_matches_the_json_api(davmail: tuple[Served, str]) -> None:
    server, caldav = davmail
    attendees = "".join(f"ATTENDEE:mailto:{e}\r\n" for e in PEOPLE)
    request = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calmesh tests//EN\r\nMETHOD:REQUEST\r\n"
               "BEGIN:VFREEBUSY\r\nUID:calmesh-davmail-1\r\nDTSTAMP:20261101T000000Z\r\n"
               "DTSTART:20261123T000000Z\r\nDTEND:20261128T000000Z\r\n"
               f"ORGANIZER:mailto:demo@calmesh.invalid\r\n{attendees}END:VFREEBUSY\r\nEND:VCALENDAR\r\n")
    response = httpx.post(f"{caldav}/users/demo@calmesh.invalid/outbox", auth=DEMO, content=request,
                          headers={"Content-Type": "text/calendar"}, timeout=120)
    assert response.status_code == 200, response.text
    caldav_ns = "{urn:ietf:params:xml:ns:caldav}"
    got = {}
    for item in ET.fromstring(response.content).iter(f"{caldav_ns}response"):
        who = item.findtext(f"{caldav_ns}recipient/{{DAV:}}href", "").removeprefix("mailto:")
        (vfreebusy,) = icalendar.Calendar.from_ical(item.findtext(f"{caldav_ns}calendar-data", "")).walk("VFREEBUSY")
        got[who] = _periods(vfreebusy)
    merged = json_merged(server.url, PEOPLE, *WEEK, 15, DEMO)
    assert set(got) == set(PEOPLE), response.text  # DavMail drops people it got no data for
    for email in PEOPLE:
        assert got[email] == _runs(merged[email], WEEK[0], timedelta(minutes=15)) and got[email], email


def _runs(view: str, start: datetime, step: timedelta) -> set[tuple[datetime, datetime, str]]:
    """An availability view as the periods DavMail makes of it: runs of one busy digit."""
    names = {"1": "tentative", "2": "busy", "3": "oof"}
    out, i = set(), 0
    while i < len(view):
        j = i
        while j < len(view) and view[j] == view[i]:
            j += 1
        if view[i] in names:
            out.add((start + i * step, start + j * step, names[view[i]]))
        i = j
    return out
