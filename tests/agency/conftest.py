"""The peers an agency test module shares: the session's Radicale and Xandikos (tests/conftest.py)
and the EWS and Graph fakes, started once per module; and a machine to drive step by step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .ids import repeatable_ids
from .machine import AgencyMachine
from .world import Peers, exchange_fakes

if TYPE_CHECKING:
    from conftest import CalDAVServer  # tests/conftest.py, which provides the CalDAV servers


@pytest.fixture(scope="module")
def peers(radicale: CalDAVServer, xandikos: CalDAVServer) -> Iterator[Peers]:
    with exchange_fakes() as (ews, graph):
        yield Peers(radicale, xandikos, ews, graph)


@pytest.fixture(autouse=True)
def _repeatable_ids() -> Iterator[None]:
    """Every agency test runs on ids.py's ids: the same example takes the same path in any process."""
    with repeatable_ids():
        yield


@pytest.fixture
def agency(peers: Peers, tmp_path: Path) -> Iterator[AgencyMachine]:
    """A fresh agency machine whose rules and invariant a test calls itself, in a fixed order."""
    AgencyMachine.peers, AgencyMachine.root = peers, tmp_path
    machine = AgencyMachine()
    yield machine
    machine.teardown()
