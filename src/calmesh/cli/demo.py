"""``calmesh demo``: the demo agency on real local platforms, its merged free/busy, and the hub."""

from __future__ import annotations

import importlib.util
import tempfile
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from calmesh.cli.app import app, console, say


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the hub server.")] = 8765,
    directory: Annotated[Path | None, typer.Option("--dir", help="Where to keep the demo data (default: a temp dir).")] = None,
    serve: Annotated[bool, typer.Option(help="Start the hub server after printing the table.")] = True,
) -> None:
    """Start demo platforms (Radicale as Zoho, an EWS fake as Exchange, an ICS folder as the
    in-house system), print everyone's merged free/busy, then serve the hub."""
    from calmesh.cli.freebusy import render_table
    from calmesh.demo import run
    from calmesh.model import Window
    from calmesh.services import availability
    from calmesh.services.hub import Hub

    with tempfile.TemporaryDirectory(prefix="calmesh-demo-") as tmp:
        root = directory or Path(tmp)
        with console.status("Starting the demo platforms and seeding a week of meetings..."):
            env = run.start(root, port=port)
        try:
            config = env.config()
            zone = ZoneInfo(config.hub.timezone)
            start = datetime.combine(env.monday, time(0), tzinfo=zone)
            window = Window(start, start + timedelta(days=5))
            with Hub(config) as hub:
                answers = availability.freebusy(hub, [p.email for p in config.people], window)
            render_table(answers, window, zone, console, cfg=config)
            say(f"config: {env.config_path} (hub port {port}; sync group {run.SYNC_GROUP}; David's ACME follow-up "
                "copied into two platforms: see `calmesh duplicates`)")
            say("Its platforms and users read their password from ", (run.PASSWORD_ENV, "bold"),
                ". To run the README's commands against the demo, in another terminal:")
            say(f"  export {run.PASSWORD_ENV}={run.DEMO_PASSWORD} CALMESH_CONFIG={env.config_path}")
            if not serve:
                return
            if importlib.util.find_spec("calmesh.server.app") is None:
                say("(the hub server is not part of this build; stopping)")
                return
            from calmesh.server.app import serve_demo

            serve_demo(config, port, run.DEMO_USER, run.DEMO_PASSWORD, console)
        finally:
            env.close()
