"""What the loopback DAV servers of the connector tests share: handlers that answer with an empty
body or a 207 Multi-Status and log nothing, and a threaded server on a free port (they stand in
where no real server can be made to answer that way: hostile documents, requests held in
flight, writes refused or held)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class QuietHandler(http.server.BaseHTTPRequestHandler):
    def send_empty(self, status: int, etag: str | None = None) -> None:
        """An answer with no body, with ``etag`` when given (a stored PUT)."""
        self.send_response(status)
        if etag is not None:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


class MultistatusHandler(QuietHandler):
    def send_multistatus(self, body: bytes) -> None:
        self.send_response(207)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served by threads on a free loopback port until the block ends; yields the URL
    of a calendar there (``/cal/``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/cal/"
    finally:
        server.shutdown()
        server.server_close()
