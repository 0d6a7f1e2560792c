"""Thunderbird (Debian's ``thunderbird``, headless) adds calmesh as a CalDAV calendar and looks up
attendees' free/busy, driven through Marionette (the ``marionette_driver`` package).

The script runs in Thunderbird's chrome, as its own dialogs do: the password goes into the login
manager (what "remember password" stores), the calendar is created and registered as the "New
Calendar" dialog does, and the lookup goes through ``cal.freeBusyService``, the service the
attendees dialog asks. What Thunderbird itself decided along the way (the calendar is CalDAV and
read-only, its outbox and ``mailto:`` address) is checked too: issue 15 saw it give up with
``DAV_DAV_NOT_CALDAV`` and never ask.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .conftest import ATTENDEES, EMAIL, USER, WINDOW, Busy, Hub, free_port, need_program, stop

pytestmark = [pytest.mark.interop, pytest.mark.xdist_group("thunderbird")]

PREFS = {
    "mail.provider.suppress_dialog_on_startup": True,  # no account wizard
    "mail.shell.checkDefaultClient": False,
    "mailnews.start_page.enabled": False,
    "app.update.disabledForTesting": True,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "calendar.debug.log": True,
}

SCRIPT = r"""
const [calendarUrl, origin, user, password, attendees, start, end, resolve] = arguments;
(async () => {
  const { cal } = ChromeUtils.importESModule("resource:///modules/calendar/calUtils.sys.mjs");
  const login = Cc["@mozilla.org/login-manager/loginInfo;1"].createInstance(Ci.nsILoginInfo);
  login.init(origin, null, "calmesh", user, password, "", "");
  await Services.logins.addLoginAsync(login);
  const calendar = cal.manager.createCalendar("caldav", Services.io.newURI(calendarUrl));
  calendar.name = "calmesh";
  cal.manager.registerCalendar(calendar);
  const caldav = calendar.wrappedJSObject;
  const since = Date.now();
  while (!(caldav.outboxUrl && caldav.mCalendarUserAddresses.length) && Date.now() - since < 60000) {
    await new Promise(r => setTimeout(r, 200));
  }
  const names = {};
  for (const name of ["UNKNOWN", "FREE", "BUSY", "BUSY_UNAVAILABLE", "BUSY_TENTATIVE"]) {
    names[Ci.calIFreeBusyInterval[name]] = name.replace("_", "-");
  }
  const busy = {};
  for (const attendee of attendees) {
    const intervals = await new Promise(done => cal.freeBusyService.getFreeBusyIntervals(
      "mailto:" + attendee, cal.createDateTime(start), cal.createDateTime(end),
      Ci.calIFreeBusyInterval.BUSY_ALL, { onResult: (_request, result) => done(result) }));
    busy[attendee] = (intervals || []).map(i => [
      i.interval.start.getInTimezone(cal.dtz.UTC).icalString,
      i.interval.end.getInTimezone(cal.dtz.UTC).icalString, names[i.freeBusyType]]);
  }
  return {
    outbox: caldav.outboxUrl ? caldav.outboxUrl.spec : null,
    addresses: caldav.mCalendarUserAddresses,
    readOnly: calendar.readOnly,
    status: calendar.getProperty("currentStatus"),
    busy,
  };
})().then(resolve, e => resolve({ error: String(e) + "\n" + e.stack }));
"""


@pytest.fixture(scope="module")
def thunderbird(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A headless Thunderbird with a fresh profile, and a Marionette session in its chrome."""
    binary = need_program("thunderbird", "thunderbird")
    marionette = pytest.importorskip("marionette_driver.marionette", reason="`make interop` installs "
                                     "marionette-driver (the `interop` extra)")
    profile = tmp_path_factory.mktemp("thunderbird-profile")
    port = free_port()
    prefs = {**PREFS, "marionette.port": port}
    (profile / "user.js").write_text("".join(
        f"user_pref({_js(k)}, {_js(v)});\n" for k, v in prefs.items()), encoding="utf-8")
    log = (profile / "thunderbird.log").open("wb")
    process = subprocess.Popen(
        [binary, "--headless", "--marionette", "-remote-allow-system-access", "--no-remote", "--profile", str(profile)],
        env={**os.environ, "MOZ_HEADLESS": "1"}, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, profile / "thunderbird.log")
        client = marionette.Marionette(host="127.0.0.1", port=port)
        client.start_session()
        client.set_context(client.CONTEXT_CHROME)
        client.timeout.script = 180
        yield client
        client.delete_session()
    finally:
        stop(process)
        log.close()


def _js(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-1500:]
                pytest.fail(f"Thunderbird's Marionette did not open port {port}: {tail}")
            time.sleep(0.3)


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def test_thunderbird_adds_the_calendar_and_sees_the_same_busy_time(thunderbird: Any, hub: Hub) -> None:
    answer = thunderbird.execute_async_script(SCRIPT, script_args=[
        f"{hub.url}/dav/calendars/{USER[0]}/freebusy/", hub.url, *USER, list(ATTENDEES),
        f"{WINDOW[0]:%Y%m%dT%H%M%SZ}", f"{WINDOW[1]:%Y%m%dT%H%M%SZ}"])
    assert "error" not in answer, answer.get("error")
    assert answer["status"] == 0  # Thunderbird found a CalDAV calendar (not DAV_DAV_NOT_CALDAV)
    assert answer["readOnly"] is True
    assert answer["outbox"] == f"{hub.url}/dav/calendars/{USER[0]}/outbox/"
    assert answer["addresses"] == [f"mailto:{EMAIL}"]
    for attendee in ATTENDEES:
        seen: Busy = {(_utc(s), _utc(e), kind) for s, e, kind in answer["busy"][attendee] if kind != "FREE"}
        assert seen == hub.json_busy(attendee), attendee
        assert seen, f"{attendee} has meetings that week"


DETECT = r"""
const [user, password, locations, resolve] = arguments;
(async () => {
  const { cal } = ChromeUtils.importESModule("resource:///modules/calendar/calUtils.sys.mjs");
  const found = {};
  for (const location of locations) {
    try {
      const byProvider = await cal.provider.detection.detect(user, password, location, false, [], {});
      const calendars = [...byProvider].filter(([provider]) => provider.type == "caldav").flatMap(([, c]) => c);
      found[location] = calendars.map(c => [c.name, c.uri.spec, c.readOnly]);
    } catch (e) {
      found[location] = String(e);
    }
  }
  return found;
})().then(resolve, e => resolve({ error: String(e) + "\n" + e.stack }));
"""


def test_thunderbird_new_calendar_dialog_finds_the_calendar(thunderbird: Any, hub: Hub) -> None:
    """Steps 2-5 of docs/server.md: *On the Network*, a location, *Find Calendars*. The dialog's
    detection finds calmesh's calendar, read-only, from its URL and from the server's address
    alone (through ``/.well-known/caldav``, ``current-user-principal`` and ``calendar-home-set``)."""
    calendar = f"{hub.url}/dav/calendars/{USER[0]}/freebusy/"
    found = thunderbird.execute_async_script(DETECT, script_args=[*USER, [calendar, hub.url]])
    assert "error" not in found, found.get("error")
    for location in (calendar, hub.url):
        assert found[location] == [["calmesh free/busy", calendar, True]], (location, found[location])
