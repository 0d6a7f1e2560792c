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
from rich.text import Text

from calmesh.cli.errors import CalmeshGroup

if TYPE_CHECKING:
    from calmesh.config import Config

EXIT_CODES = ("Exit codes: 0 done; 1 refused (an unknown person or sync group, a booking or change refused, a "
              "platform error); 2 bad usage (an unknown option or a bad value: date, --tz, --format, a range over "
              "366 days, options that exclude each other) or a config mistake; 3 done, but a platform could not "
              "be read (its part is shown as unknown); 4 done, but some writes or invitations failed; 70 "
              "internal error (a bug).")
"""Every command keeps to these; `calmesh --help` shows them."""

app = typer.Typer(
    name="calmesh",
    help="Make an organisation's calendar platforms work as one.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help texts name config tables such as [hub] queue: Rich markup would swallow them.
    rich_markup_mode=None,
    cls=CalmeshGroup,
    epilog=EXIT_CODES,
)
console = Console()
err_console = Console(stderr=True)


def say(*parts: str | tuple[str, str], out: Console | None = None) -> None:
    """Print one line from plain strings and ``(text, style)`` pairs. No part is read as Rich
    markup, so text from a config, a calendar or a server is printed as it is ("add a
    [sync.groups.NAME] table" keeps its brackets), and the line is never wrapped."""
    (out or console).print(Text.assemble(*parts), highlight=False, soft_wrap=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Config file (default: $CALMESH_CONFIG, ./calmesh.toml, $XDG_CONFIG_HOME/calmesh/calmesh.toml or /etc/calmesh/calmesh.toml)."),
]


def fail(message: str, code: int = 1) -> NoReturn:
    say(("error:", "bold red"), " ", message, out=err_console)
    raise typer.Exit(code)


def get_config(path: Path | None) -> Config:
    from calmesh.config import ConfigError, find_config, load_config

    try:
        return load_config(path or find_config())
    except ConfigError as exc:
        for problem in exc.problems[:-1]:  # every mistake at once, one line each
            say(("error:", "bold red"), " ", str(problem), out=err_console)
        fail(str(exc.problems[-1]), 2)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"calmesh {version('calmesh')}")
        except PackageNotFoundError:
            typer.echo("calmesh (not installed)")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """The options of ``calmesh`` itself (before the command)."""


# Command modules register themselves on `app` when imported. Each lives in its own module so
# features can grow without touching one another.
for _module in ("freebusy", "check", "init", "demo", "serve", "detect", "schedule", "sync", "feeds"):
    importlib.import_module(f"calmesh.cli.{_module}")
