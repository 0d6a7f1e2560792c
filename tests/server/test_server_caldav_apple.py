"""Apple Calendar's requests, replayed byte for byte, and calmesh's answers, compared byte for byte.

Apple Calendar (macOS CalendarAgent) cannot run here. The requests in
fixtures/apple_calendar/*.request are the sequence it sends when an account is added and when an
attendee's availability is looked up, written from its observed behaviour (the request bodies and
order recorded by Apple's own CalendarServer load-test profiles, ``Originator``/``Recipient``
headers and the ``X-CALENDARSERVER-MASK-UID`` busy request included), with this suite's user
``emma`` and its demo week. Each ``.response`` file is calmesh's expected answer: status line,
the headers a client acts on, then the body exactly (``DTSTAMP``, the time of answering, masked).

After a deliberate change of an answer, rewrite them with ``CALMESH_REWRITE_FIXTURES=1`` and read
the diff as a reviewer would: it is the wire change Apple Calendar will see.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import httpx
import pytest

from .conftest import Served
from .test_server_caldav import EMMA, EMMA_USER

FIXTURES = Path(__file__).with_name("fixtures") / "apple_calendar"
HEADERS = ("content-type", "location", "dav", "allow")
"""The headers in a recorded answer: those a CalDAV client acts on."""
_STAMP = re.compile(rb"DTSTAMP:\d{8}T\d{6}Z")


def replay(server: Served, request: bytes) -> bytes:
    """Send one recorded request (``METHOD PATH``, header lines, a blank line, the body bytes)
    as Emma, and render the answer as a ``.response`` file holds it."""
    head, _, body = request.partition(b"\n\n")
    first, *lines = head.decode().split("\n")
    method, path = first.split(" ", 1)
    headers = dict(line.split(": ", 1) for line in lines)
    headers["Authorization"] = "Basic " + base64.b64encode(f"{EMMA[0]}:{EMMA[1]}".encode()).decode()
    answer = httpx.request(method, server.url + path, headers=headers, content=body, timeout=30)
    shown = [f"{name}: {answer.headers[name]}" for name in HEADERS if name in answer.headers]
    status = f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}"
    return _STAMP.sub(b"DTSTAMP:(masked)", "\n".join([status, *shown, "", ""]).encode() + answer.content)


def test_apple_calendar_account_setup_and_availability_lookup(make_server) -> None:  # type: ignore[no-untyped-def]
    server = make_server(EMMA_USER)
    requests = sorted(FIXTURES.glob("*.request"))
    assert len(requests) == 9
    rewrite = os.environ.get("CALMESH_REWRITE_FIXTURES") == "1"
    for path in requests:
        answer = replay(server, path.read_bytes())
        expected = path.with_suffix(".response")
        if rewrite:
            expected.write_bytes(answer)
        assert answer == expected.read_bytes(), f"{path.name}: the answer changed (see the module docstring)"
    if rewrite:
        pytest.fail("fixtures rewritten: review the diff and run again without CALMESH_REWRITE_FIXTURES")
