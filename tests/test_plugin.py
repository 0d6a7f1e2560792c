"""Connector plugins: an in-house system joins through the ``calmesh.connectors`` entry points.

The example plugin in examples/plugin is made discoverable the way pip would install it (a
dist-info folder with entry_points.txt on sys.path) and queried against a real HTTP server.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from calmesh.config import ConfigError, parse_config
from calmesh.connectors import registry
from calmesh.model import BusyType, Window
from calmesh.services import availability
from calmesh.services.hub import Hub

PLUGIN = Path(__file__).parent.parent / "examples" / "plugin"


class _ProjectTool(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        url = urlparse(self.path)
        if self.headers.get("Authorization") != "Bearer t0ken":
            self._send(401, {"error": "unauthorized"})
        elif url.path == "/api/people":
            self._send(200, {"people": [{"email": "emma@agency.example", "name": "Emma"}]})
        elif url.path == "/api/meetings":
            person = parse_qs(url.query)["person"][0]
            meetings = [
                {"id": "m1", "title": "Atlas review", "start": "2026-12-01T14:00:00+01:00",
                 "end": "2026-12-01T15:00:00+01:00", "status": "confirmed", "people": [person]},
                {"id": "m2", "title": "Dropped", "start": "2026-12-02T14:00:00+01:00",
                 "end": "2026-12-02T15:00:00+01:00", "status": "cancelled", "people": [person]},
                {"id": "m3", "title": "Broken", "start": "tomorrow"},
            ]
            self._send(200, {"meetings": meetings})
        else:
            self._send(404, {})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dist = tmp_path / "calmesh_inhouse-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: calmesh-inhouse\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[calmesh.connectors]\ninhouse = calmesh_inhouse:InHouseConnector\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(PLUGIN))


@pytest.fixture
def project_tool() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ProjectTool)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api"
    server.shutdown()


def test_plugin_is_discovered_and_answers(installed_plugin: None, project_tool: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert "inhouse" in registry.kinds()
    monkeypatch.setenv("PROJECTS_TOKEN", "t0ken")
    config = parse_config(f"""
[platforms.projects]
kind = "inhouse"
url = "{project_tool}"
token_env = "PROJECTS_TOKEN"
[[people]]
email = "emma@agency.example"
platform = "projects"
""")
    window = Window(datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC))
    with Hub(config) as hub:
        (emma,) = availability.freebusy(hub, ["emma@agency.example"], window)
    assert [(p.start, p.end, p.type) for p in emma.busy] == [
        (datetime(2026, 12, 1, 13, tzinfo=UTC), datetime(2026, 12, 1, 14, tzinfo=UTC), BusyType.BUSY)]
    assert [w.item for w in emma.warnings] == ["m3"]  # the broken row is reported, not dropped silently


def test_plugin_settings_are_validated_with_lines(installed_plugin: None) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[platforms.projects]\nkind = "inhouse"\ntoken_env = "X"\n')
    assert "url" in str(info.value) and info.value.line == 1
