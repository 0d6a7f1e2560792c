"""Evolution's CalDAV backend (Debian's evolution-data-server, through GObject introspection)
adds calmesh as a CalDAV calendar and gets attendees' free/busy: ``ECal.Client.get_free_busy_sync``,
what Evolution's meeting editor calls. The backend finds the outbox through the calendar's
``DAV:owner`` and POSTs with ``ORGANIZER`` set to the account's address. Before that, the CalDAV
page's *Find Calendars* (``webdav_discover_sources_sync``) finds the calendar and the address from
the server's address alone."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from .conftest import ATTENDEES, EMAIL, USER, WINDOW, Hub, eds_session

pytestmark = [pytest.mark.interop, pytest.mark.xdist_group("evolution")]

SCRIPT = Path(__file__).with_name("eds_caldav_freebusy.py")


def test_evolution_caldav_backend_sees_the_same_busy_time(hub: Hub, tmp_path: Path) -> None:
    done = eds_session(SCRIPT, f"{hub.url}/dav/calendars/{USER[0]}/freebusy/", *USER, EMAIL,
                       str(int(WINDOW[0].timestamp())), str(int(WINDOW[1].timestamp())), *ATTENDEES, home=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    # "Find Calendars" from the server's address: the calendar, and the address Evolution offers as Email
    assert answer["discovered"] == {"calendars": [[f"{hub.url}/dav/calendars/{USER[0]}/freebusy/", "calmesh free/busy"]],
                                    "addresses": [EMAIL]}
    busy = answer["busy"]
    assert sorted(busy) == sorted(ATTENDEES)
    for attendee in ATTENDEES:
        seen = {(datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
                 datetime.strptime(e, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC), kind) for s, e, kind in busy[attendee]}
        assert seen == hub.json_busy(attendee), attendee
        assert seen
