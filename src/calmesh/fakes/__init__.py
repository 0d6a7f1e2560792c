"""Protocol-faithful fakes of vendor calendar services, for tests and the demo.

No internet reaches this project's test machines, so each vendor the connectors talk to is
reproduced here from its published request/response shapes (SOAP envelopes for EWS, JSON for
Microsoft Graph) and served on 127.0.0.1 by uvicorn. The connectors under test use their real
client code paths (exchangelib, httpx) against these servers.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from calmesh.server.listen import bind


@dataclass
class RunningServer:
    """A uvicorn server running an ASGI app in a background thread."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
    """Run ``app`` on ``port`` of ``host``, a free one by default (bound before uvicorn starts,
    so no race), and return once it accepts connections. The hub's own kind of socket
    (:func:`bind`)."""
    sock = bind(host, port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake server did not start")
        time.sleep(0.01)
    return RunningServer(f"http://{host}:{port}", server, thread)


class FakeService:
    """Base of the vendor fakes: in-memory state served as ASGI on loopback, one request at a
    time (a lock, like a single mailbox server), with every request's method and path recorded
    for tests to inspect. Subclasses implement :meth:`_dispatch`."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._server: RunningServer | None = None
        self.base_url = ""
        self.requests: list[str] = []
        """``"METHOD /path"`` of every request served, in order."""

    def start(self) -> str:
        """Serve on a free port, or where it served before (a platform back after an outage:
        clients configured with its address find it again)."""
        port = int(self.base_url.rsplit(":", 1)[1]) if self.base_url else 0
        self._server = serve(self, port=port)
        self.base_url = self._server.url
        return self._server.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        with self._lock:
            self.requests.append(f"{request.method} {request.url.path}")
            response = self._dispatch(request, body)
        await response(scope, receive, send)

    def _dispatch(self, request: Request, body: bytes) -> Response:
        raise NotImplementedError
