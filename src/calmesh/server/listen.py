"""The hub's listening socket, made before uvicorn starts (``calmesh serve``, the vendor fakes)."""

from __future__ import annotations

import errno
import socket


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, bound before uvicorn starts so a taken port is reported clearly.

    Made as a TCP socket by name (``IPPROTO_TCP``, not the default 0): asyncio turns Nagle's
    algorithm off (``TCP_NODELAY``) only on connections whose socket says TCP. Left on, every
    answer after a connection's first waited ~40 ms: uvicorn writes the headers and the body
    apart, the body waited for the client to acknowledge the headers, and the client delays
    that acknowledgement by 40 ms. Keep-alive clients (browsers, Outlook, CalDAV clients) paid
    it on every request after their first."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # from here connections queue until uvicorn accepts them: "ready" is true
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(f"port {port} on {host} is already in use; pick another with --port") from None
        raise
    return sock


class PortInUse(OSError):
    pass
