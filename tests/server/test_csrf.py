"""A page on another site cannot make a logged-in browser book meetings: the JSON API refuses
bodies that a cross-site form could send (the browser would need a CORS preflight for JSON)."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from calmesh.server.csrf import JSONOnlyAPIMiddleware


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"got": (await request.body()).decode()})


def _client() -> TestClient:
    app = Starlette(routes=[Route("/api/v1/book", _echo, methods=["POST"]), Route("/page", _echo, methods=["POST"])],
                    middleware=[Middleware(JSONOnlyAPIMiddleware)])
    return TestClient(app)


def test_form_shaped_posts_are_refused() -> None:
    client = _client()
    payload = json.dumps({"title": "forged"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.post("/api/v1/book", content=payload, headers=headers)
        assert response.status_code == 415, content_type
        assert response.headers["content-type"] == "application/problem+json"
        assert "application/json" in response.json()["detail"]


def test_json_passes_and_other_paths_are_untouched() -> None:
    client = _client()
    ok = client.post("/api/v1/book", content="{}", headers={"Content-Type": "application/json; charset=utf-8"})
    assert ok.status_code == 200 and ok.json() == {"got": "{}"}
    assert client.post("/page", content="x", headers={"Content-Type": "text/plain"}).status_code == 200
