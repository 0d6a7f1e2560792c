"""The ``calmesh`` command line (Typer + Rich). One module per command group, registered here."""

from __future__ import annotations

from calmesh.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
