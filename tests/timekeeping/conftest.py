"""The peers of this folder's sync round trips: one fresh calendar on the session's Radicale and
one on its Xandikos (both started by tests/conftest.py), each behind a real CalDAV connector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from calmesh.demo.servers import start_radicale
from sync.peers import Peer

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers


@pytest.fixture
def rad(radicale: CalDAVServer) -> Peer:
    return Peer("rad", radicale.connector("rad"), radicale.new_calendar())


@pytest.fixture
def xan(xandikos: CalDAVServer) -> Peer:
    return Peer("xan", xandikos.connector("xan"), xandikos.new_calendar())


@pytest.fixture
def own_radicale(tmp_path_factory: pytest.TempPathFactory, radicale: CalDAVServer) -> Iterator[CalDAVServer]:
    """A Radicale server of the test's own, for tests that read Radicale's own expansion (its
    free/busy): Radicale keeps the first VTIMEZONE it reads for a TZID for as long as it runs, so
    on the session's server the zone a test checks could be one another test's calendar defined
    first (the outcome would depend on test order: a clean clone's run found none of a series'
    four instants busy)."""
    from conftest import CALDAV_PASSWORD, CALDAV_USER, CalDAVServer

    with start_radicale(tmp_path_factory.mktemp("radicale-own"), {CALDAV_USER: CALDAV_PASSWORD}) as server:
        yield CalDAVServer("radicale", server, f"{server.url}{CALDAV_USER}/")
