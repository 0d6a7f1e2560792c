"""``calmesh conflicts`` and ``calmesh duplicates``: double bookings and copied meetings that no
single platform can see, and (``duplicates --resolve``) cleaning up the copies, reversibly."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from rich.text import Text

from calmesh.cli.app import ConfigOption, app, console, fail, get_config, say
from calmesh.cli.freebusy import check_format, date_style, resolve_window, resolve_zone
from calmesh.cli.labels import calendar_label

if TYPE_CHECKING:
    from calmesh.config import Config
    from calmesh.locales import DateStyle
    from calmesh.model import Window
    from calmesh.services import detection
    from calmesh.services.hub import Hub

PersonOption = Annotated[list[str] | None, typer.Option(
    "--person", "-p", help="Email, team:NAME, platform:NAME or '*' (repeatable; default everyone).")]
StartOption = Annotated[str | None, typer.Option(help="Start: YYYY-MM-DD, ISO date-time, or words (tomorrow, next monday); default today.")]
EndOption = Annotated[str | None, typer.Option(help="End (exclusive); default start + 7 days.")]
TzOption = Annotated[str | None, typer.Option("--tz", help="Time zone to show (IANA or Windows name).")]
FormatOption = Annotated[str, typer.Option("--format", help="table or json.")]


def setup(cfg: Config, tz: str | None, start: str | None, end: str | None, fmt: str) -> tuple[ZoneInfo, Window]:
    check_format(fmt)
    zone = resolve_zone(tz, cfg.hub.timezone)
    return zone, resolve_window(start, end, zone, style=date_style(cfg))


def analyse(hub: Hub, people: list[str] | None, window: Window) -> list[detection.PersonAnalysis]:
    from calmesh.directory import UnknownPerson
    from calmesh.services import detection

    try:
        emails = [p.email for p in hub.directory.select(people or ["*"])]
    except UnknownPerson as exc:
        fail(str(exc))
    if not emails:
        fail("nobody matches " + " ".join(people or ["*"]))
    return detection.analyse_people(hub, emails, window)


def _span(style: DateStyle, start: str, end: str) -> str:
    """``Thu 26 Nov 14:00–15:00`` (in the locale's words) for two ISO times in the shown zone."""
    return style.span(datetime.fromisoformat(start), datetime.fromisoformat(end))


def _copy(cfg: Config, copy: dict[str, Any]) -> Text:
    """A copy of a meeting: its title (when shown) and whose calendar holds it."""
    return Text(f"{copy['summary'] or '(private)'} ({calendar_label(cfg, copy['platform'], copy['calendar'])})")


def _print_problems(analyses: list[detection.PersonAnalysis], cfg: Config) -> None:
    from calmesh.cli.errors import problem_line

    for analysis in analyses:
        person = cfg.person(analysis.email)
        who = (person.name if person else None) or analysis.email
        for problem in analysis.errors:
            say(("!", "bold red"), f" {who}: not checked: {problem_line(cfg, problem)}")
        for problem in analysis.warnings:
            say(("!", "yellow"), f" {who}: {problem_line(cfg, problem)}")


def _exit_code(analyses: list[detection.PersonAnalysis]) -> None:
    if any(a.errors for a in analyses):
        raise typer.Exit(3)


@app.command()
def conflicts(person: PersonOption = None, start: StartOption = None, end: EndOption = None, tz: TzOption = None,
              fmt: FormatOption = "table", config: ConfigOption = None) -> None:
    """Overlapping events of each person across all their calendars on all platforms.

    Transparent, cancelled and declined events never conflict; copies of one meeting are
    duplicates, not conflicts. Exit code 3 when a platform could not be read.
    """
    from calmesh.services import detection
    from calmesh.services.hub import Hub

    cfg = get_config(config)
    zone, window = setup(cfg, tz, start, end, fmt)
    with Hub(cfg) as hub:
        analyses = analyse(hub, person, window)
    data = [detection.conflicts_json(a, zone) for a in analyses]
    if fmt == "json":
        typer.echo(json.dumps({"start": window.start.astimezone(zone).isoformat(), "end": window.end.astimezone(zone).isoformat(), "people": data},
                              indent=2, ensure_ascii=False))
    else:
        style = date_style(cfg)
        table = Table(title=f"Conflicts ({zone.key})")
        for column in ("Person", "When", "Event", "Overlaps with", "Platforms"):
            table.add_column(column)
        for entry in data:
            for c in entry["conflicts"]:
                table.add_row(Text(entry["name"] or entry["email"]), _span(style, c["start"], c["end"]),
                              _copy(cfg, c["events"][0]), _copy(cfg, c["events"][1]), Text(" + ".join(c["platforms"])))
        console.print(table if table.row_count else "No conflicts.")
        _print_problems(analyses, cfg)
    _exit_code(analyses)


@app.command()
def duplicates(
    person: PersonOption = None, start: StartOption = None, end: EndOption = None, tz: TzOption = None,
    fmt: FormatOption = "table",
    resolve: Annotated[bool, typer.Option("--resolve", help="Propose which copies to remove (dry run).")] = False,
    apply: Annotated[bool, typer.Option("--apply", help="With --resolve: delete them, logging each for --undo.")] = False,
    undo: Annotated[int | None, typer.Option("--undo", help="Put back the copy deleted under this log id.")] = None,
    config: ConfigOption = None,
) -> None:
    """The same meeting in several calendars, with a score and the reason; --resolve cleans up.

    Matched by UID (after platform ID normalisation) or fuzzily. The organizer's copy is never
    removed; --apply logs every deletion so --undo can put it back."""
    from calmesh.services import detection
    from calmesh.services.hub import Hub

    cfg = get_config(config)
    zone, window = setup(cfg, tz, start, end, fmt)
    if apply and not resolve:
        fail("--apply needs --resolve (look at the proposal first)")
    with Hub(cfg) as hub:
        if undo is not None:
            _undo(hub, undo)
            return
        analyses = analyse(hub, person, window)
        plan = detection.plan_resolution(hub, analyses, window) if resolve else None
        applied = _apply(hub, plan) if plan is not None and apply else None
    resolutions = plan.resolutions if plan else []
    data = [detection.duplicates_json(a, zone, resolutions=resolutions) for a in analyses]
    if fmt == "json":
        out: dict[str, Any] = {"start": window.start.astimezone(zone).isoformat(), "end": window.end.astimezone(zone).isoformat(), "people": data}
        if plan is not None:
            out["removals"] = [detection.removal_json(r) for r in plan.removals]
            out["kept_series"] = plan.kept_series
            out["dry_run"] = not apply
        if applied is not None:
            out["applied"] = [{**detection.removal_json(a.removal), "log_id": a.log_id, "error": a.error}
                              for a in applied]
        typer.echo(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        _duplicates_table(cfg, data, zone, date_style(cfg))
        if plan is not None:
            _plan_table(cfg, plan, applied)
        _print_problems(analyses, cfg)
    if applied is not None and any(a.error for a in applied):
        raise typer.Exit(4)
    _exit_code(analyses)


def _duplicates_table(cfg: Config, data: list[dict[str, Any]], zone: ZoneInfo, style: DateStyle) -> None:
    table = Table(title=f"Duplicates ({zone.key})")
    for column in ("Person", "When", "Copies", "Score", "Why"):
        table.add_column(column)
    for entry in data:
        for group in entry["duplicates"]:
            copies = Text("\n").join(Text.assemble(_copy(cfg, c), ("  remove", "red") if c.get("remove") else "")
                                     for c in group.get("decisions", group["copies"]))
            table.add_row(Text(entry["name"] or entry["email"]), _span(style, group["copies"][0]["start"], group["copies"][0]["end"]), copies,
                          f"{group['score']:.2f}", Text(group["reason"]))
    console.print(table if table.row_count else "No duplicates.")


def _plan_table(cfg: Config, plan: detection.ResolutionPlan, applied: list[detection.Applied] | None) -> None:
    for note in plan.kept_series:
        say(("kept", "yellow"), f" {note}")
    if not plan.removals:
        say("Nothing to remove.")
        return
    if applied is None:
        say(f"Dry run: {len(plan.removals)} cop{'y' if len(plan.removals) == 1 else 'ies'} would be "
            "removed (see 'remove' above). Run again with --apply to delete them.")
        return
    for result in applied:
        r = result.removal
        where = calendar_label(cfg, r.platform, r.calendar)
        if result.error:
            say(("not removed", "bold red"), f" {r.uid} from {where}: {result.error}")
        else:
            say(f"removed {r.uid} from {where} (log {result.log_id}; "
                f"undo with: calmesh duplicates --undo {result.log_id})")


def _apply(hub: Hub, plan: detection.ResolutionPlan) -> list[detection.Applied]:
    from sqlalchemy.exc import SQLAlchemyError

    from calmesh.services import detection
    from calmesh.store.db import StoreError

    try:
        with detection.open_audit_log(hub.config) as log:
            return detection.apply_resolution(hub, plan, log)
    except (StoreError, SQLAlchemyError) as exc:
        fail(f"stopped: the state store (deletion log) cannot be written, so nothing more is deleted: {exc}")


def _undo(hub: Hub, log_id: int) -> None:
    from sqlalchemy.exc import SQLAlchemyError

    from calmesh.connectors.base import ConnectorError
    from calmesh.services import detection
    from calmesh.store.db import StoreError

    try:
        with detection.open_audit_log(hub.config) as log:
            ref = detection.undo(hub, log, log_id)
    except (LookupError, ValueError, ConnectorError, StoreError, SQLAlchemyError) as exc:
        fail(f"cannot undo {log_id}: {exc}")
    say(f"restored the copy deleted under log {log_id} (now {ref.id})")
