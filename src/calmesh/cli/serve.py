"""``calmesh serve`` (the hub server) and ``calmesh hash-password`` (hashes for its users)."""

from __future__ import annotations

from typing import Annotated

import typer

from calmesh.cli.app import ConfigOption, app, console, fail, get_config


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
) -> None:
    """Serve everyone's free/busy: JSON API, VFREEBUSY URLs, busy feeds, EWS availability and
    CalDAV scheduling."""
    from calmesh.config import ConfigError
    from calmesh.server.app import PortInUse, bind
    from calmesh.server.app import serve as run

    cfg = get_config(config)
    host = host or cfg.server.host
    port = cfg.server.port if port is None else port
    try:
        sock = bind(host, port)
    except PortInUse as exc:
        fail(str(exc))
    console.print(f"calmesh serving {len(cfg.people)} people at http://{host}:{sock.getsockname()[1]}", highlight=False)
    try:
        run(cfg, host, port, sock=sock)
    except ConfigError as exc:
        fail(str(exc), 2)
    except KeyboardInterrupt:
        pass


@app.command("hash-password")
def hash_password(
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="The password or token to hash (prompted when omitted).")],
) -> None:
    """Print a password/token hash for server.users (password_hash or token_hash)."""
    from calmesh.server.auth import hash_password as make

    console.print(make(password), highlight=False, soft_wrap=True)
