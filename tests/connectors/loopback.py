"""What the loopback DAV servers of the connector tests share: a handler that answers 207
Multi-Status with a body and logs nothing (they stand in where no real server can be made to
answer that way: hostile documents, requests held in flight)."""

from __future__ import annotations

import http.server
from typing import Any


class MultistatusHandler(http.server.BaseHTTPRequestHandler):
    def send_multistatus(self, body: bytes) -> None:
        self.send_response(207)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass
