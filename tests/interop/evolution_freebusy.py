"""Ask evolution-ews for free/busy the way Evolution does: ``ECal.Client.get_free_busy_sync``.

Run by tests/interop/test_ews_clients.py with Debian's python3 (PyGObject and the
evolution-data-server introspection data are system packages) inside ``dbus-run-session``, with
HOME and the XDG directories pointing at a temporary directory. It writes an EWS calendar source
for the calmesh door, starts the registry and the calendar factory (D-Bus activation), answers
the backend's credentials request with the password as Evolution's prompt would, and prints the
VFREEBUSY components it gets back as a JSON list. It runs a GLib main loop as Evolution does:
without one, the client never heard that the backend had connected (``connect_sync`` waited its
full 60 s), and authenticating a second time afterwards made the backend drop and rebuild its
connection while the free/busy request was on its way, which hung it or crashed it
(``e_ews_connection_ref_settings: assertion 'E_IS_EWS_CONNECTION (cnc)' failed``) now and then.

Usage: evolution_freebusy.py EWS_URL USER PASSWORD START_EPOCH END_EPOCH EMAIL...
"""

import json
import os
import sys

import gi

gi.require_version("ECal", "2.0")
gi.require_version("EDataServer", "1.2")
from gi.repository import ECal, EDataServer, GLib  # noqa: E402

SOURCE = """[Data Source]
DisplayName=calmesh
Enabled=true
Parent=

[Calendar]
BackendName=ews
Selected=true

[Authentication]
Host=127.0.0.1
Method=PLAIN
Port=0
RememberPassword=false
User={user}

[Ews Backend]
Email={user}@calmesh.invalid
Hosturl={url}
Timeout=30

[Ews Folder]
Id=calendar
Foreign=false
Public=false

[Offline]
StaySynchronized=false

[Security]
Method=none
"""


def main() -> None:
    url, user, password, start, end, *emails = sys.argv[1:]
    sources = os.path.join(os.environ["XDG_CONFIG_HOME"], "evolution", "sources")
    os.makedirs(sources, exist_ok=True)
    with open(os.path.join(sources, "calmesh-ews.source"), "w") as f:
        f.write(SOURCE.format(url=url, user=user))  # Method=PLAIN: HTTP Basic, what calmesh offers
    registry = EDataServer.SourceRegistry.new_sync(None)
    source = registry.ref_source("calmesh-ews")
    if source is None:
        sys.exit("the source registry did not load the calmesh source")
    credentials = EDataServer.NamedParameters.new()
    credentials.set(EDataServer.SOURCE_CREDENTIAL_USERNAME, user)
    credentials.set(EDataServer.SOURCE_CREDENTIAL_PASSWORD, password)
    loop = GLib.MainLoop()
    outcome: dict[str, object] = {}

    def fail(error: GLib.Error) -> None:
        outcome["error"] = error.message
        loop.quit()

    def answer(src, reason, pem, errors, op_error):  # what Evolution's password prompt does
        src.invoke_authenticate(credentials, None, authenticated)

    def authenticated(src, result):
        try:
            src.invoke_authenticate_finish(result)
        except GLib.Error as error:
            fail(error)

    def connected(_source, result):
        try:
            client = ECal.Client.connect_finish(result)
        except GLib.Error as error:
            return fail(error)
        client.get_free_busy(int(start), int(end), emails, None, answered)

    def answered(client, result):
        try:
            _, outcome["components"] = client.get_free_busy_finish(result)
        except GLib.Error as error:
            return fail(error)
        loop.quit()

    # Everything runs in the main loop, as in Evolution: the registry's notices (the source's
    # connection status, its credentials requests) are dispatched there, so the client knows it
    # is connected as soon as the backend is, and the credentials are given once.
    source.connect("credentials-required", answer)
    ECal.Client.connect(source, ECal.ClientSourceType.EVENTS, 60, None, connected)
    loop.run()
    if "error" in outcome:
        sys.exit(f"evolution-ews: {outcome['error']}")
    print(json.dumps([c.get_as_string() for c in outcome["components"]]))

if __name__ == "__main__":
    main()
