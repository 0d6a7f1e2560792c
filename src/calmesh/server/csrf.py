"""Cross-site request forgery guard for the JSON API.

Browsers keep HTTP Basic credentials and send them with any request to the hub, including a form
another website submits. A form can only send ``application/x-www-form-urlencoded``,
``multipart/form-data`` or ``text/plain`` without a CORS preflight (which calmesh never grants),
so requiring ``application/json`` on every state-changing API call is enough to keep another site
from booking meetings in a user's name. Non-browser clients send JSON anyway.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = frozenset({"application/json", "application/problem+json"})


class JSONOnlyAPIMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE and scope["path"].startswith(self.prefix):
            headers = dict(scope["headers"])
            content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
            if content_type not in JSON_TYPES:
                body = json.dumps({"type": "about:blank", "title": "Unsupported Media Type", "status": 415,
                                   "detail": "send the request body as JSON with Content-Type: application/json"})
                await send({"type": "http.response.start", "status": 415,
                            "headers": [(b"content-type", b"application/problem+json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body.encode()})
                return
        await self.app(scope, receive, send)
