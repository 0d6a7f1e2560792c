"""The Typer application and what every command shares: loading the config, printing errors."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from calmesh.config import Config, ConfigError, default_config_path, load_config

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
    path = path or default_config_path()
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc), 2)


# Command modules register themselves on `app` when imported. Each lives in its own module so
# features can grow without touching one another.
for _module in ("freebusy", "check", "demo", "serve", "detect", "schedule", "sync"):
    importlib.import_module(f"calmesh.cli.{_module}")
