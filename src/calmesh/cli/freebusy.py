"""``calmesh freebusy``: the merged availability of people, whatever platform they live on."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from calmesh.cli.app import ConfigOption, app, console, fail, get_config, say
from calmesh.model import BusyType, PersonFreeBusy, Window

if TYPE_CHECKING:
    from calmesh.config import Config

CELL = {
    BusyType.FREE: ("·", "grey50"),
    BusyType.BUSY_TENTATIVE: ("▒", "yellow"),
    BusyType.BUSY: ("█", "red"),
    BusyType.BUSY_UNAVAILABLE: ("▓", "magenta"),
    BusyType.UNKNOWN: ("?", "bright_black"),
}


def parse_when(value: str, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """``2026-12-01`` (local midnight in ``zone``) or a full ISO-8601 date-time."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=zone)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD) or ISO-8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def resolve_window(start: str | None, end: str | None, zone: ZoneInfo) -> Window:
    today = datetime.now(zone).date()
    begin = parse_when(start, zone) if start else datetime.combine(today, time(0), tzinfo=zone)
    finish = parse_when(end, zone) if end else begin + timedelta(days=7)
    try:
        return Window(begin, finish)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def as_json(answers: list[PersonFreeBusy], zone: ZoneInfo) -> list[dict[str, Any]]:
    return [
        {
            "email": a.email,
            "name": a.name,
            "platform": a.platform,
            "busy": [{"start": p.start.astimezone(zone).isoformat(), "end": p.end.astimezone(zone).isoformat(),
                      "type": p.type.fbtype, "source": p.source,
                      **({"summary": p.summary} if p.summary else {})} for p in a.busy],
            "errors": [str(e) for e in a.errors],
            "warnings": [str(w) for w in a.warnings],
        }
        for a in answers
    ]


def render_table(answers: list[PersonFreeBusy], window: Window, zone: ZoneInfo, out: Console,
                 day_start: int = 8, day_end: int = 20, cfg: Config | None = None) -> None:
    """One row per person, one column per day; each cell a strip of time slots from 08:00 to
    20:00, half-hours when the terminal is wide enough, else hours or two-hour slots."""
    from calmesh.core.freebusy import status_in

    days = []
    day = window.start.astimezone(zone).date()
    while datetime.combine(day, time(0), tzinfo=zone) < window.end:
        days.append(day)
        day += timedelta(days=1)
    name_width = max((len(a.name or a.email) for a in answers), default=6)
    platform_width = max((len(a.platform or "?") for a in answers), default=8)
    per_day = (out.width - name_width - platform_width - 10) // max(1, len(days)) - 3
    hours = day_end - day_start
    step_minutes = 30 if hours * 2 <= per_day else 60  # coarser than an hour says nothing useful
    needed = name_width + platform_width + 10 + len(days) * (hours * 60 // step_minutes + 3)
    table = Table(title=f"Free/busy, {days[0]:%a %d %b} – {days[-1]:%a %d %b %Y} ({zone.key}), "
                        f"{day_start:02d}:00–{day_end:02d}:00, one mark per {step_minutes} min", show_lines=False)
    table.add_column("Person", no_wrap=True, min_width=name_width)
    table.add_column("Platform", no_wrap=True, min_width=platform_width)
    for d in days:
        table.add_column(f"{d:%a %d}", no_wrap=True, min_width=hours * 60 // step_minutes)
    step = timedelta(minutes=step_minutes)
    for answer in answers:
        cells = []
        for d in days:
            strip = Text()
            cursor = datetime.combine(d, time(day_start), tzinfo=zone)
            stop = datetime.combine(d, time(day_end), tzinfo=zone)
            while cursor < stop:
                kind = status_in(answer.busy, cursor, cursor + step)
                char, style = CELL[kind]
                strip.append(char, style=style)
                cursor += step
            cells.append(strip)
        table.add_row(answer.name or answer.email, answer.platform or "?", *cells)
    out.print(table, width=max(out.width, needed), crop=False)
    legend = Text("  ")
    for kind in (BusyType.FREE, BusyType.BUSY_TENTATIVE, BusyType.BUSY, BusyType.BUSY_UNAVAILABLE, BusyType.UNKNOWN):
        char, style = CELL[kind]
        legend.append(char, style=style)
        legend.append(f" {kind.label}   ")
    out.print(legend)
    print_problems(answers, out, cfg)


def print_problems(answers: list[PersonFreeBusy], out: Console, cfg: Config | None = None) -> None:
    """One line per missing part of an answer (platform, cause, setting to fix), then warnings."""
    from calmesh.cli.errors import problem_line

    for answer in answers:
        who = answer.name or answer.email
        for problem in answer.errors:
            say(("!", "bold red"), f" {who}: no data from {problem_line(cfg, problem)}", out=out)
        for problem in answer.warnings:
            say(("!", "yellow"), f" {who}: {problem_line(cfg, problem)}", out=out)


@app.command()
def freebusy(
    people: Annotated[list[str], typer.Argument(help="Emails, team:NAME, platform:NAME or '*'.")],
    start: Annotated[str | None, typer.Option(help="Start date (YYYY-MM-DD) or ISO date-time.")] = None,
    end: Annotated[str | None, typer.Option(help="End date (exclusive), default start + 7 days.")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Time zone to show (IANA or Windows name).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or ics.")] = "table",
    working_hours: Annotated[bool, typer.Option(help="Mark time outside working hours as unavailable.")] = False,
    config: ConfigOption = None,
) -> None:
    """Show the merged free/busy of people across every platform that holds their time."""
    from calmesh import ical
    from calmesh.directory import UnknownPerson
    from calmesh.services import availability
    from calmesh.services.hub import Hub
    from calmesh.timezones import to_iana

    cfg = get_config(config)
    iana = to_iana(tz or cfg.hub.timezone)
    if iana is None:
        fail(f"unknown time zone {tz!r}")
    zone = ZoneInfo(iana)
    window = resolve_window(start, end, zone)
    if fmt not in ("table", "json", "ics"):
        fail("--format must be table, json or ics")
    with Hub(cfg) as hub:
        try:
            emails = [p.email for p in hub.directory.select(people)]
        except UnknownPerson as exc:
            fail(str(exc))
        if not emails:
            fail("nobody matches " + " ".join(people))
        answers = availability.freebusy(hub, emails, window, working_hours=working_hours)
    if fmt == "json":
        typer.echo(json.dumps({"start": window.start.isoformat(), "end": window.end.isoformat(),
                               "people": as_json(answers, zone)}, indent=2, ensure_ascii=False))
    elif fmt == "ics":
        for answer in answers:
            typer.echo(ical.vfreebusy(answer.busy, window, attendee=answer.email).to_ical().decode(), nl=False)
    else:
        render_table(answers, window, zone, console, cfg=cfg)
    if any(a.errors for a in answers):
        raise typer.Exit(3)
