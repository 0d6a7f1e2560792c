"""``calmesh serve`` (the hub server) and ``calmesh hash-password`` (hashes for its users)."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from calmesh.cli.app import ConfigOption, app, fail, get_config, say


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
) -> None:
    """Serve everyone's free/busy: JSON API, VFREEBUSY URLs, busy feeds, EWS availability and
    CalDAV scheduling."""
    from calmesh.config import ConfigError
    from calmesh.server.app import check_servable
    from calmesh.server.app import serve as run
    from calmesh.server.listen import PortInUse, bind

    cfg = get_config(config)
    try:
        check_servable(cfg)
    except ConfigError as exc:
        fail(str(exc), 2)
    host = host or cfg.server.host
    port = cfg.server.port if port is None else port
    try:
        sock = bind(host, port)
    except PortInUse as exc:
        fail(str(exc))
    say(f"calmesh serving {len(cfg.people)} people at http://{host}:{sock.getsockname()[1]}")
    try:
        run(cfg, host, port, sock=sock)
    except ConfigError as exc:
        fail(str(exc), 2)
    except KeyboardInterrupt:
        pass


@app.command("hash-password")
def hash_password() -> None:
    """Print a password/token hash (Argon2id) for server.users (password_hash or token_hash).

    The secret is asked twice without echo, or read from standard input when that is not a
    terminal (``calmesh hash-password < file``): never from the command line, where other users
    of the machine and the shell history would see it."""
    from calmesh.server.auth import hash_password as make

    if sys.stdin.isatty():
        secret = getpass.getpass("Password or token: ")
        if getpass.getpass("Again: ") != secret:
            fail("the two entries differ; nothing was hashed")
    else:
        secret = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not secret:
        fail("the password is empty; nothing was hashed")
    say(make(secret))
