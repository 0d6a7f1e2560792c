"""Run by Debian's python3 (python3-gi) inside ``dbus-run-session``: Evolution's data server adds a
CalDAV calendar and asks its backend for free/busy, as Evolution's meeting editor does.

Arguments: calendar URL, user, password, the user's email (what Evolution's account set-up reads
from ``calendar-user-address-set``), start and end (Unix seconds), attendees. Prints JSON:
``{attendee: [[start, end, fbtype], ...]}`` read by libical (libical_freebusy.py) from the
VFREEBUSYs the backend returned. Not a test module itself: tests/interop/test_evolution_caldav.py runs it.
"""

import json
import sys
import time

import gi

gi.require_version("EDataServer", "1.2")
gi.require_version("ECal", "2.0")
gi.require_version("ICalGLib", "3.0")
from gi.repository import ECal, EDataServer, GLib, ICalGLib  # noqa: E402
from libical_freebusy import periods  # noqa: E402  (beside this script: its directory is on sys.path)


def main() -> None:
    url, user, password, email, start, end, *attendees = sys.argv[1:]
    parsed = GLib.Uri.parse(url, GLib.UriFlags.NONE)
    registry = EDataServer.SourceRegistry.new_sync(None)
    source = EDataServer.Source.new(None, None)
    source.set_display_name("calmesh")
    source.get_extension(EDataServer.SOURCE_EXTENSION_CALENDAR).set_backend_name("caldav")
    webdav = source.get_extension(EDataServer.SOURCE_EXTENSION_WEBDAV_BACKEND)
    webdav.set_uri(parsed)
    webdav.set_email_address(email)
    auth = source.get_extension(EDataServer.SOURCE_EXTENSION_AUTHENTICATION)
    auth.set_host(parsed.get_host())
    auth.set_port(parsed.get_port())
    auth.set_user(user)
    credentials = EDataServer.NamedParameters.new()
    credentials.set(EDataServer.SOURCE_CREDENTIAL_USERNAME, user)
    credentials.set(EDataServer.SOURCE_CREDENTIAL_PASSWORD, password)
    # what the CalDAV page's "Find Calendars" button does: the calendars, and the user's addresses
    # Evolution then offers as the account's Email
    found = EDataServer.webdav_discover_sources_sync(
        source, f"{parsed.get_scheme()}://{parsed.get_host()}:{parsed.get_port()}/",
        EDataServer.WebDAVDiscoverSupports.EVENTS, credentials, None)
    discovered = {"calendars": [[d.href, d.display_name] for d in found[3]], "addresses": list(found[4])}
    registry.commit_source_sync(source, None)
    source = registry.ref_source(source.get_uid())

    client = ECal.Client.connect_sync(source, ECal.ClientSourceType.EVENTS, 5, None)
    if source.get_connection_status() != EDataServer.SourceConnectionStatus.CONNECTED:
        # what Evolution's password prompt does once the user typed the password
        source.invoke_authenticate_sync(credentials, None)
        context, deadline = GLib.MainContext.default(), time.monotonic() + 60
        while source.get_connection_status() != EDataServer.SourceConnectionStatus.CONNECTED:
            if time.monotonic() > deadline:
                raise SystemExit(f"the CalDAV backend did not connect: {source.get_connection_status()}")
            context.iteration(False)
            time.sleep(0.05)

    _, components = client.get_free_busy_sync(int(start), int(end), attendees, None)
    busy: dict[str, list[list[str]]] = {}
    for component in components:
        vfreebusy = ICalGLib.Component.new_from_string(component.get_as_string())
        attendee = vfreebusy.get_first_property(ICalGLib.PropertyKind.ATTENDEE_PROPERTY).get_attendee()
        busy.setdefault(attendee.lower().removeprefix("mailto:"), []).extend(periods(vfreebusy))
    print(json.dumps({"discovered": discovered, "busy": busy}))


if __name__ == "__main__":
    main()
