"""The Typer application and what every command shares: loading the config, printing errors.

Building the CLI must stay cheap: ``calmesh sync --once`` run from cron pays for every module
imported before its first request. So the command modules import only Typer, Rich and the
standard library at top level (the names used in option annotations, which Typer evaluates when
the command is registered), and import the config, services, store and connectors inside the
command functions. ``tests/cli/test_cli_imports.py`` checks this.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from calmesh.config import Config

app = typer.Typer(
    name="calmesh",
    help="Make an organisation's calendar platforms work as one.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $CALMESH_CONFIG or ./calmesh.toml)."),
]


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def get_config(path: Path | None) -> Config:
    from calmesh.config import ConfigError, default_config_path, load_config

    path = path or default_config_path()
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc), 2)


# Command modules register themselves on `app` when imported. Each lives in its own module so
# features can grow without touching one another.
for _module in ("freebusy", "check", "demo", "serve", "detect", "schedule", "sync", "feeds"):
    importlib.import_module(f"calmesh.cli.{_module}")
