"""The parsers people's programs use read calmesh's published VFREEBUSY documents (the ``.vfb``
URL and the schedule outbox's reply) as the same busy time the JSON API gives: libical (C, through
GObject introspection: Evolution, GNOME Calendar and Thunderbird's own libical code base), ical.js
(npm: web calendars and Thunderbird's JavaScript) and vobject (PyPI: Radicale-era Python tools).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from .conftest import ATTENDEES, EMAIL, USER, WINDOW, Busy, Hub, system_python_with

pytestmark = pytest.mark.interop

ICALJS = Path(sys.prefix) / "node" / "node_modules" / "ical.js" / "dist" / "ical.js"
"""Where `make interop` installs ical.js (``npm install --prefix $(VENV)/node``)."""


def documents(hub: Hub, email: str) -> dict[str, str]:
    """The two VFREEBUSY documents calmesh publishes for ``email`` over the window."""
    vfb = httpx.get(f"{hub.url}/freebusy/{email}.vfb", auth=USER, timeout=30,
                    params={"start": WINDOW[0].isoformat(), "end": WINDOW[1].isoformat()})
    vfb.raise_for_status()
    request = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calmesh tests//EN", "METHOD:REQUEST", "BEGIN:VFREEBUSY",
        "UID:parsers-1", "DTSTAMP:20261120T000000Z", f"DTSTART:{WINDOW[0]:%Y%m%dT%H%M%SZ}",
        f"DTEND:{WINDOW[1]:%Y%m%dT%H%M%SZ}", f"ORGANIZER:mailto:{EMAIL}", f"ATTENDEE:mailto:{email}",
        "END:VFREEBUSY", "END:VCALENDAR", ""]).encode()
    reply = httpx.post(f"{hub.url}/dav/calendars/{USER[0]}/outbox/", content=request, auth=USER, timeout=30,
                       headers={"Content-Type": "text/calendar"})
    reply.raise_for_status()
    data = ET.fromstring(reply.content).findtext(".//{urn:ietf:params:xml:ns:caldav}calendar-data") or ""
    return {"vfb": vfb.text, "outbox": data}


def _busy(rows: list[list[str]]) -> Busy:
    return {(datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
             datetime.strptime(e, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC), kind) for s, e, kind in rows}


@pytest.mark.parametrize("email", ATTENDEES)
def test_libical_reads_the_published_documents(hub: Hub, email: str) -> None:
    python = system_python_with("import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib",
                                "gir1.2-ical-3.0 and python3-gi")
    for name, text in documents(hub, email).items():
        done = subprocess.run([python, str(Path(__file__).with_name("libical_freebusy.py"))], input=text, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert _busy(json.loads(done.stdout)) == hub.json_busy(email), name


@pytest.mark.parametrize("email", ATTENDEES)
def test_icaljs_reads_the_published_documents(hub: Hub, email: str) -> None:
    node = shutil.which("node")
    if node is None or not ICALJS.exists():
        pytest.skip("node or ical.js missing: `make interop` installs ical.js with npm into $(VENV)/node "
                    "(node and npm come from Debian's nodejs and npm packages)")
    for name, text in documents(hub, email).items():
        done = subprocess.run([node, str(Path(__file__).with_name("icaljs_freebusy.mjs")), str(ICALJS)],
                              input=text, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert _busy(json.loads(done.stdout)) == hub.json_busy(email), name


@pytest.mark.parametrize("email", ATTENDEES)
def test_vobject_reads_the_published_documents(hub: Hub, email: str) -> None:
    vobject = pytest.importorskip("vobject", reason="`make interop` installs vobject (the `interop` extra)")
    for name, text in documents(hub, email).items():
        busy: Busy = set()
        for vfreebusy in vobject.readOne(text).vfreebusy_list:
            for prop in vfreebusy.contents.get("freebusy", []):
                kind = prop.params.get("FBTYPE", ["BUSY"])[0]
                for start, end in prop.value:
                    busy.add((start.astimezone(UTC), end.astimezone(UTC), kind))
        assert busy == hub.json_busy(email), name
