"""The server in front of an Exchange platform: the protocol-faithful EWS fake
(``calmesh.fakes.ews``, no real Exchange is reachable here) read through calmesh's EWS connector.

Exchange's native free/busy volunteers subjects; the server must drop them for askers who are
not granted details, and keep them for those who are.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from calmesh.config import parse_config
from calmesh.demo.data import build_week
from calmesh.fakes import serve
from calmesh.server.app import create_app
from calmesh.server.auth import hash_password
from calmesh.services.hub import Hub

from .conftest import FAST_HASH

ews_fake = pytest.importorskip("calmesh.fakes.ews")
pytest.importorskip("calmesh.connectors.ews")

DAVID = "david@agency.example"
WEEK = {"start": "2026-11-23T00:00:00+00:00", "end": "2026-11-28T00:00:00+00:00"}


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    fake = ews_fake.EWSFake(users={"svc": "svc-pw"})
    for (platform, owner), items in build_week(date(2026, 11, 23)).items.items():
        if platform == "exchange":
            if owner not in fake.mailboxes:
                fake.add_mailbox(owner, "Europe/London")
            for item in items:
                fake.add_item(owner, item)
    fake.start()
    monkeypatch.setenv("CALMESH_TEST_EWS_PW", "svc-pw")
    text = f"""
[server]
[[server.users]]
name = "plain"
password_hash = "{hash_password('plain-pw', **FAST_HASH)}"
[[server.users]]
name = "boss"
password_hash = "{hash_password('boss-pw', **FAST_HASH)}"
sees_details_of = ["team:sales"]
[platforms.exchange]
kind = "ews"
service_endpoint = "{fake.ews_url}"
auth = "basic"
username = "svc"
password_env = "CALMESH_TEST_EWS_PW"
server_version = "Exchange2016"
mailboxes = ["{DAVID}"]
[[people]]
email = "{DAVID}"
team = "sales"
platform = "exchange"
"""
    hub = Hub(parse_config(text, tmp_path / "calmesh.toml"))
    running = serve(create_app(hub))
    yield running.url
    running.stop()
    hub.close()
    fake.stop()


def test_exchange_subjects_only_for_granted_askers(url: str) -> None:
    def busy(auth: tuple[str, str]) -> list[dict[str, str]]:
        response = httpx.post(f"{url}/api/v1/freebusy", json={"attendees": [DAVID], **WEEK}, auth=auth, timeout=30)
        assert response.status_code == 200
        (person,) = response.json()["people"]
        assert person["error"] is None
        return person["busy"]

    plain = busy(("plain", "plain-pw"))
    assert plain and all("summary" not in b and "location" not in b for b in plain)
    assert any(b["type"] == "tentative" for b in plain)  # the Globex call
    boss = busy(("boss", "boss-pw"))
    assert "Pitch: ACME rebrand" in {b.get("summary") for b in boss}
