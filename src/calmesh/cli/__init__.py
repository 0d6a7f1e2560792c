"""The ``calmesh`` command line (Typer + Rich). One module per command group, registered here."""

from __future__ import annotations

import gc
import sys

from calmesh.cli.app import app


def main() -> None:
    try:
        app()
    finally:
        # Interpreter shutdown garbage-collects the objects the imports created (SQLAlchemy, caldav,
        # pydantic...) over and over as it clears modules: ~0.1 s of CPU even for `calmesh freebusy`,
        # ~0.2 s of a small `calmesh sync --once`. Freezing them spares shutdown those passes.
        # Where SQLAlchemy was imported (a state store or the SQL connector), one collection comes
        # first: it closes the connections the command left, so SQLite checkpoints its WAL. Other
        # commands have no such connections, and the collection would cost them ~20 ms.
        if "sqlalchemy" in sys.modules:
            gc.collect()
        gc.freeze()


__all__ = ["app", "main"]
