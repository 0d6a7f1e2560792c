"""Fixtures for the vendor connector tests: ``vendor`` (a started fake, see :mod:`.vendors`),
``fake`` and ``conn`` (a connector to it). ``test_vendor_contract.py`` parametrises ``vendor``
over the three kinds; a vendor's own test module names its kind in ``VENDOR``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from calmesh.fakes import FakeService

from .vendors import VENDORS, Vendor


@pytest.fixture
def vendor(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Vendor]:
    """The started fake of the kind the test is parametrised with, or its module's ``VENDOR``."""
    kind = getattr(request, "param", None) or request.module.VENDOR
    started = VENDORS[kind](monkeypatch)
    started.fake.start()
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def fake(vendor: Vendor) -> FakeService:
    return vendor.fake  # type: ignore[no-any-return]


@pytest.fixture
def conn(vendor: Vendor) -> Any:
    """A connector to the fake with the default settings."""
    return vendor.connect()
