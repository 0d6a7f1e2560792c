"""Where the corpus comes from: the public test calendars of other iCalendar libraries.

icalendar and recurring-ical-events ship their test calendars inside their wheels, so those are
read from the installed packages at test time (whatever version is installed, nothing copied).
libical, ical.js, ical.net and ics-parser ship none in any package we can install, so a few dozen
of their files are kept under ``calendars/<source>/`` next to the project's licence file, as
they were published. Every file is one corpus entry, named ``<source>/<path>``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CURATED = Path(__file__).parent / "calendars"

_INSTALLED = {
    "icalendar": ("icalendar", "tests"),
    "recurring-ical-events": ("recurring_ical_events", "test/calendars"),
}
"""Source name -> (importable package, folder inside it holding the .ics files)."""


@dataclass(frozen=True, slots=True)
class CorpusFile:
    source: str
    name: str
    """The path inside its source, as its project publishes it."""
    path: Path

    @property
    def id(self) -> str:
        return f"{self.source}/{self.name}"

    def data(self) -> bytes:
        return self.path.read_bytes()


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def corpus() -> tuple[CorpusFile, ...]:
    """Every corpus file, sorted by id."""
    found: list[CorpusFile] = []
    for source, (package, folder) in _INSTALLED.items():
        root = _package_dir(package)
        if root is None or not (root / folder).is_dir():
            continue
        base = root / folder
        found.extend(CorpusFile(source, str(p.relative_to(base)), p) for p in base.rglob("*.ics"))
    for folder in sorted(p for p in CURATED.iterdir() if p.is_dir()):
        found.extend(CorpusFile(folder.name, str(p.relative_to(folder)), p) for p in folder.rglob("*.ics"))
    return tuple(sorted(found, key=lambda f: f.id))


def by_id(file_id: str) -> CorpusFile:
    return next(f for f in corpus() if f.id == file_id)
