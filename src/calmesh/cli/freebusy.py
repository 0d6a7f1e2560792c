"""``calmesh freebusy``: the merged availability of people, whatever platform they live on."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from calmesh.cli.app import ConfigOption, app, console, fail, get_config, say
from calmesh.model import BusyType, PersonFreeBusy, Window

if TYPE_CHECKING:
    from calmesh.config import Config
    from calmesh.locales import DateStyle

CELL = {
    BusyType.FREE: ("·", "grey50"),
    BusyType.BUSY_TENTATIVE: ("▒", "yellow"),
    BusyType.BUSY: ("█", "red"),
    BusyType.BUSY_UNAVAILABLE: ("▓", "magenta"),
    BusyType.UNKNOWN: ("?", "bright_black"),
}


MAX_WINDOW_DAYS = 366
"""The longest range a command accepts: the server's default ``max_window_days`` too."""


def _not_a_date(value: str) -> NoReturn:
    fail(f"{value!r} is not a date: use YYYY-MM-DD, an ISO-8601 date-time, or words such as "
         "'tomorrow', 'next monday' or 'next week'", 2)


def date_style(cfg: Config | None = None) -> DateStyle:
    """The command line's date formats and first day of the week: ``[hub] locale``, else the
    terminal's ``LC_ALL``/``LC_TIME``/``LANG`` (see :mod:`calmesh.locales`)."""
    from calmesh.locales import DateStyle, environment_locale

    return DateStyle.choose(cfg.hub.locale if cfg else None, environment_locale())


def parse_when(value: str, zone: ZoneInfo, *, now: datetime | None = None, style: DateStyle | None = None) -> datetime:
    """``2026-12-01`` (local midnight in ``zone``), a full ISO-8601 date-time, ``this week``,
    ``next week`` or ``last week`` (the first day of that week in ``style``'s locale: Sunday in
    en_US, Monday in fr_FR), or natural words read by dateparser: ``tomorrow``, ``next monday``,
    ``friday 9am``, ``in 3 days`` (a day without a time means its midnight). A value that is none
    of these exits with code 2."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(0), tzinfo=zone)
        parsed = datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
    except ValueError:
        if not any(c.isalpha() for c in value):  # digits only: a mistyped date, never guessed at
            _not_a_date(value)
    from calmesh.locales import week_words

    base = (now or datetime.now(zone)).astimezone(zone).replace(tzinfo=None)
    week = week_words(value, base.date(), style or date_style())
    if week is not None:
        return week.replace(tzinfo=zone)
    from dateparser.date import DateDataParser  # only for words: it costs ~0.1 s to import

    found = DateDataParser(settings={"PREFER_DATES_FROM": "future", "RELATIVE_BASE": base,
                                     "RETURN_TIME_AS_PERIOD": True}).get_date_data(value)
    if found.date_obj is None:
        _not_a_date(value)
    when = found.date_obj if found.period == "time" else datetime.combine(found.date_obj.date(), time(0))
    return when.replace(tzinfo=zone) if when.tzinfo is None else when


def resolve_window(start: str | None, end: str | None, zone: ZoneInfo, *, now: datetime | None = None,
                   style: DateStyle | None = None) -> Window:
    """The range a command covers: ``--start`` (default today) to ``--end`` (default a week on),
    at most :data:`MAX_WINDOW_DAYS` long."""
    today = (now or datetime.now(zone)).astimezone(zone).date()
    begin = parse_when(start, zone, now=now, style=style) if start else datetime.combine(today, time(0), tzinfo=zone)
    finish = parse_when(end, zone, now=now, style=style) if end else begin + timedelta(days=7)
    if finish <= begin:
        fail(f"--end ({finish:%Y-%m-%d %H:%M}) must be after --start ({begin:%Y-%m-%d %H:%M}), both in {zone.key}", 2)
    if finish - begin > timedelta(days=MAX_WINDOW_DAYS):
        fail(f"--start to --end spans {(finish - begin).days} days; at most {MAX_WINDOW_DAYS} (the server's "
             "limit too): ask for a shorter range", 2)
    return Window(begin, finish)


def resolve_zone(tz: str | None, default: str) -> ZoneInfo:
    """``--tz`` (IANA or Windows name), else the config's zone; an unknown one exits with code 2."""
    from calmesh.timezones import to_iana

    iana = to_iana(tz or default)
    if iana is None:
        fail(f"unknown time zone {tz!r} (use an IANA name like Europe/Paris, or a Windows name)", 2)
    return ZoneInfo(iana)


def check_format(fmt: str, allowed: tuple[str, ...] = ("table", "json")) -> None:
    if fmt not in allowed:
        fail(f"--format must be {', '.join(allowed[:-1])} or {allowed[-1]}", 2)


def as_json(answers: list[PersonFreeBusy], window: Window, zone: ZoneInfo, interval: timedelta) -> dict[str, Any]:
    """The JSON API's ``FreeBusyAnswer`` (see its OpenAPI document), plus the window asked: one
    schema for scripts whichever door they use, built by the API's own function."""
    from calmesh.services.answer_json import person_json

    return {"start": window.start.astimezone(zone).isoformat(), "end": window.end.astimezone(zone).isoformat(),
            "people": [person_json(a, zone, interval, None) for a in answers]}  # the operator reads all


OUTSIDE_HOURS = ("░", "grey37")
"""The mark of free time outside a person's working hours (``--working-hours``): not an absence."""


def render_table(answers: list[PersonFreeBusy], window: Window, zone: ZoneInfo, out: Console,
                 day_start: int = 8, day_end: int = 20, cfg: Config | None = None, working_hours: bool = False,
                 dates: DateStyle | None = None) -> None:
    """One row per person, one column per day; each cell a strip of time slots from 08:00 to
    20:00, half-hours when the terminal is wide enough, else hours or two-hour slots. With
    ``working_hours``, free time outside each person's hours gets its own mark. Days are written
    the way ``dates``'s locale writes them."""
    from calmesh.core.freebusy import outside_working_hours, status_in

    dates = dates or date_style(cfg)
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
    table = Table(title=f"Free/busy, {dates.days(days[0], days[-1])} ({zone.key}), "
                        f"{day_start:02d}:00–{day_end:02d}:00, one mark per {step_minutes} min", show_lines=False)
    table.add_column("Person", no_wrap=True, min_width=name_width)
    table.add_column("Platform", no_wrap=True, min_width=platform_width)
    for d in days:
        table.add_column(dates.day_short(d), no_wrap=True, min_width=hours * 60 // step_minutes)
    step = timedelta(minutes=step_minutes)
    for answer in answers:
        outside = (outside_working_hours(answer.working_hours, window)
                   if working_hours and answer.working_hours is not None else [])
        cells = []
        for d in days:
            strip = Text()
            cursor = datetime.combine(d, time(day_start), tzinfo=zone)
            stop = datetime.combine(d, time(day_end), tzinfo=zone)
            while cursor < stop:
                kind = status_in(answer.busy, cursor, cursor + step)
                char, style = CELL[kind]
                if kind is BusyType.FREE and outside and status_in(outside, cursor, cursor + step) is not BusyType.FREE:
                    char, style = OUTSIDE_HOURS
                strip.append(char, style=style)
                cursor += step
            cells.append(strip)
        table.add_row(Text(answer.name or answer.email), Text(answer.platform or "?"), *cells)
    out.print(table, width=max(out.width, needed), crop=False)
    legend = Text("  ")
    for kind in (BusyType.FREE, BusyType.BUSY_TENTATIVE, BusyType.BUSY, BusyType.BUSY_UNAVAILABLE, BusyType.UNKNOWN):
        char, style = CELL[kind]
        legend.append(char, style=style)
        legend.append(f" {kind.label}   ")
    if working_hours:
        legend.append(OUTSIDE_HOURS[0], style=OUTSIDE_HOURS[1])
        legend.append(" Outside working hours")
    out.print(legend, soft_wrap=True)
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
    start: Annotated[str | None, typer.Option(help="Start: YYYY-MM-DD, ISO date-time, or words (tomorrow, next monday, next week: from the locale's first day of the week); default today.")] = None,
    end: Annotated[str | None, typer.Option(help="End date (exclusive), default start + 7 days.")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Time zone to show (IANA or Windows name).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or ics.")] = "table",
    working_hours: Annotated[bool, typer.Option(help="Mark time outside each person's working hours (table: its "
                                                     "own mark; ics: BUSY-UNAVAILABLE; json: always given as "
                                                     "working_hours).")] = False,
    interval: Annotated[int, typer.Option(help="json: minutes per availability_view digit, as the API's.",
                                          min=1, max=1440)] = 30,
    config: ConfigOption = None,
) -> None:
    """Show the merged free/busy of people across every platform that holds their time."""
    from calmesh import ical
    from calmesh.directory import UnknownPerson
    from calmesh.services import availability
    from calmesh.services.hub import Hub

    check_format(fmt, ("table", "json", "ics"))
    cfg = get_config(config)
    zone = resolve_zone(tz, cfg.hub.timezone)
    style = date_style(cfg)
    window = resolve_window(start, end, zone, style=style)
    with Hub(cfg) as hub:
        try:
            emails = [p.email for p in hub.directory.select(people)]
        except UnknownPerson as exc:
            fail(str(exc))
        if not emails:
            fail("nobody matches " + " ".join(people))
        # iCalendar has no word for "outside working hours" but BUSY-UNAVAILABLE; the table marks
        # it apart and JSON gives the hours themselves.
        answers = availability.freebusy(hub, emails, window, working_hours=working_hours and fmt == "ics")
    if fmt == "json":
        typer.echo(json.dumps(as_json(answers, window, zone, timedelta(minutes=interval)), indent=2,
                              ensure_ascii=False))
    elif fmt == "ics":
        for answer in answers:
            typer.echo(ical.vfreebusy(answer.busy, window, attendee=answer.email).to_ical().decode(), nl=False)
    else:
        render_table(answers, window, zone, console, cfg=cfg, working_hours=working_hours, dates=style)
    if any(a.errors for a in answers):
        raise typer.Exit(3)
