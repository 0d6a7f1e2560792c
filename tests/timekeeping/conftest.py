"""The peers of this folder's sync round trips: one fresh calendar on the session's Radicale and
one on its Xandikos (both started by tests/conftest.py), each behind a real CalDAV connector."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from sync.peers import Peer

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the servers


@pytest.fixture
def rad(radicale: CalDAVServer) -> Peer:
    return Peer("rad", radicale.connector("rad"), radicale.new_calendar())


@pytest.fixture
def xan(xandikos: CalDAVServer) -> Peer:
    return Peer("xan", xandikos.connector("xan"), xandikos.new_calendar())
