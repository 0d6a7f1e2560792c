"""The ``calmesh`` command line (Typer + Rich). One module per command group, registered here."""

from __future__ import annotations

import gc

from calmesh.cli.app import app


def main() -> None:
    try:
        app()
    finally:
        # Interpreter shutdown garbage-collects the objects the imports created (SQLAlchemy, caldav,
        # pydantic...) over and over as it clears modules: ~0.2 s, a fifth of a small `calmesh sync
        # --once`. One collection here still closes what the command left (state store
        # connections, so SQLite checkpoints its WAL); freezing the rest spares shutdown the passes.
        gc.collect()
        gc.freeze()


__all__ = ["app", "main"]
