"""``calmesh check``: validate the config, reach every platform, and read a little of each person's
time there; "ok" only when both worked.

Reaching alone proves little: an Exchange connector configured with ``server_version`` makes no
request to list nothing, so a platform whose server is down looked fine. Each person is therefore
asked for one day of free/busy through the same path ``calmesh freebusy`` takes, and a platform
is ok only when it answered for every person on it.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from calmesh.cli.app import ConfigOption, app, console, fail, get_config, say

if TYPE_CHECKING:
    from calmesh.config import Config
    from calmesh.services.hub import Hub


@dataclass
class PlatformCheck:
    name: str
    kind: str
    reached: bool
    details: list[str]
    people: list[dict[str, Any]] = field(default_factory=list)
    """Per person on the platform: email, name, the calendars the config gives them there (the
    last part of each id: whose each listed calendar is), ok, and the error line when not ok."""

    @property
    def ok(self) -> bool:
        return self.reached and all(p["ok"] for p in self.people)


def _reach(hub: Hub, platform: str) -> tuple[bool, list[str]]:
    from calmesh.cli.errors import error_line

    try:
        return True, hub.connector(platform).check()
    except Exception as exc:  # noqa: BLE001 - report any failure of one platform, check the others
        line = error_line(hub.config, exc)
        return False, [line or f"internal error ({type(exc).__name__}), a calmesh bug"]


def _read_people(hub: Hub) -> dict[tuple[str, str], str | None]:
    """(platform, email) -> None when a day of that person's time there was read, else the error."""
    from calmesh.cli.errors import problem_line
    from calmesh.model import Window
    from calmesh.services import availability

    cfg = hub.config
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    answers = availability.freebusy(hub, [p.email for p in cfg.people], Window(start, start + timedelta(days=1)))
    read: dict[tuple[str, str], str | None] = {}
    for person, answer in zip(cfg.people, answers, strict=True):
        for source in person.sources:
            errors = [problem_line(cfg, e) for e in answer.errors if e.platform == source.platform]
            read[(source.platform, person.email)] = "; ".join(errors) or None
    return read


def run_checks(cfg: Config) -> list[PlatformCheck]:
    from calmesh.services.hub import Hub

    with Hub(cfg) as hub, cf.ThreadPoolExecutor(max_workers=max(1, len(cfg.platforms))) as pool:
        futures = {name: pool.submit(_reach, hub, name) for name in cfg.platforms}
        reached_all = {name: future.result() for name, future in futures.items()}
        # then the people, once each connector has logged in alone (a CalDAV client's first
        # requests negotiate the authentication scheme: not something to race)
        read = _read_people(hub) if cfg.people else {}
        checks = []
        for name, (reached, lines) in reached_all.items():
            check = PlatformCheck(name, cfg.platforms[name]["kind"], reached, lines)
            for person in cfg.people:
                if (name, person.email) in read:
                    error = read[(name, person.email)]
                    calendars = [c.rstrip("/").rsplit("/", 1)[-1] for s in person.sources if s.platform == name
                                 for c in s.calendars]
                    check.people.append({"email": person.email, "name": person.name, "calendars": calendars,
                                         "ok": error is None, "error": error})
            checks.append(check)
    return checks


def _details(check: PlatformCheck) -> Text:
    text = Text("\n".join(check.details))
    if not check.people:
        text.append("\nnobody in the directory lives here: only reaching it was checked")
    for person in check.people:
        who = person["name"] or person["email"]
        if person["calendars"]:  # which of the calendars listed above are whose
            who += f" ({', '.join(person['calendars'])})"
        if person["ok"]:
            text.append(f"\n{who}: read today's free/busy", style="green")
        else:
            text.append(f"\n{who}: not read: {person['error']}", style="red")
    return text


@app.command()
def check(
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    config: ConfigOption = None,
) -> None:
    """Validate the config file, reach every configured platform and read a day of each person's
    free/busy there. Exit code 3 when a platform or a person could not be read."""
    if fmt not in ("table", "json"):
        fail("--format must be table or json", 2)
    cfg = get_config(config)
    checks = run_checks(cfg)
    if fmt == "json":
        typer.echo(json.dumps({
            "config": str(cfg.path), "ok": all(c.ok for c in checks),
            "platforms": [{"name": c.name, "kind": c.kind, "ok": c.ok, "reached": c.reached, "details": c.details,
                           "people": c.people} for c in checks]}, indent=2, ensure_ascii=False))
    else:
        say(("✓", "green"), f" config {cfg.path}: {len(cfg.platforms)} platform(s), {len(cfg.people)} people, "
                            f"{len(cfg.sync.groups)} sync group(s)")
        table = Table("Platform", "Kind", "Status", "Details")
        for c in checks:
            table.add_row(Text(c.name), Text(c.kind), Text("ok", "green") if c.ok else Text("failed", "red"),
                          _details(c))
        console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(3)
