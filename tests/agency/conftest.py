"""The peers an agency test module shares: the session's Radicale and Xandikos (tests/conftest.py)
and the EWS and Graph fakes, started once per module; and a machine to drive step by step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .machine import AgencyMachine
from .world import Peers, exchange_fakes

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the CalDAV servers


@pytest.fixture(scope="module")
def peers(radicale: CalDAVServer, xandikos: CalDAVServer) -> Iterator[Peers]:
    with exchange_fakes() as (ews, graph):
        yield Peers(radicale, xandikos, ews, graph)


@pytest.fixture
def agency(peers: Peers, tmp_path: Path) -> Iterator[AgencyMachine]:
    """A fresh agency machine whose rules and invariant a test calls itself, in a fixed order."""
    AgencyMachine.peers, AgencyMachine.root = peers, tmp_path
    machine = AgencyMachine()
    yield machine
    machine.teardown()
