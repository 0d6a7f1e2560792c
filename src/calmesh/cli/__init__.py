"""The ``calmesh`` command line (Typer + Rich). One module per command group, registered here."""

from __future__ import annotations

import gc
import sys

from calmesh.cli.app import app


def main() -> None:
    # A command begins by importing what it needs (SQLAlchemy, caldav, pydantic...): some 300,000
    # objects that live as long as the process. At the collector's default pace (a collection
    # every 700 new objects) they are walked again and again as they pile up: 0.07 s of the 0.73 s
    # of CPU of a quiet `calmesh sync --once` (measured: docs/benchmarks.md, issue 16). Every
    # 10,000 still collects what a long-running `calmesh serve` or `sync --watch` leaves in cycles.
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    try:
        app()
    finally:
        # Interpreter shutdown garbage-collects the objects the imports created (SQLAlchemy, caldav,
        # pydantic...) over and over as it clears modules: ~0.1 s of CPU even for `calmesh freebusy`,
        # ~0.2 s of a small `calmesh sync --once`. Freezing them spares shutdown those passes.
        # The state store's connections are closed first, so SQLite checkpoints its WAL: by the
        # engines themselves (a collection would find them too, but walks every object the
        # imports made to do so: 0.04 to 0.2 s, longer than a quiet sync's own work).
        store = sys.modules.get("calmesh.store.db")
        if store is not None:
            store.close_engines()
        gc.freeze()


__all__ = ["app", "main"]
