"""The corpus round trip's peers: a calendar on the session's Radicale and Xandikos (started by
tests/conftest.py), and a calendar on a second Radicale server of this module's own, so that a
copy goes from one Radicale server to another as between two organisations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from calmesh.demo.servers import start_radicale

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers


@pytest.fixture(scope="session")
def radicale_b(tmp_path_factory: pytest.TempPathFactory, radicale: CalDAVServer) -> Iterator[CalDAVServer]:
    from conftest import CALDAV_PASSWORD, CALDAV_USER, CalDAVServer

    with start_radicale(tmp_path_factory.mktemp("radicale-b"), {CALDAV_USER: CALDAV_PASSWORD}) as server:
        yield CalDAVServer("radicale", server, f"{server.url}{CALDAV_USER}/")
