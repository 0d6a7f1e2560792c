"""``calmesh find-time``, ``book``, ``move``, ``cancel`` and ``inbox``: meetings across platforms."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from rich.text import Text

from calmesh.cli.app import ConfigOption, app, console, fail, get_config, say
from calmesh.cli.freebusy import check_format, date_style, parse_when, resolve_window, resolve_zone

if TYPE_CHECKING:
    from calmesh.config import Config
    from calmesh.locales import DateStyle
    from calmesh.services.hub import Hub
    from calmesh.services.scheduling import Booking

OrganizerOption = Annotated[str, typer.Option("--organizer", "-o", help="Who books: their home calendar gets the event.")]
ChangerOption = Annotated[str, typer.Option("--organizer", "-o", help="The meeting's organiser: only they may change it.")]
OptionalOption = Annotated[list[str] | None, typer.Option("--optional", help="Optional attendee (repeatable).")]
TzOption = Annotated[str | None, typer.Option("--tz", help="Time zone for input and output (IANA or Windows name).")]
FormatOption = Annotated[str, typer.Option("--format", help="table or json.")]
BufferBefore = Annotated[int, typer.Option(help="Minutes kept free before the meeting.", min=0)]
BufferAfter = Annotated[int, typer.Option(help="Minutes kept free after the meeting.", min=0)]

_MARK = {"free": ("free", "green"), "tentative": ("tentative", "yellow"), "busy": ("busy", "red"),
         "oof": ("away", "magenta"), "unknown": ("unknown", "bright_black")}


def _zone(cfg: Config, tz: str | None, fmt: str) -> ZoneInfo:
    check_format(fmt)
    return resolve_zone(tz, cfg.hub.timezone)


def _emit(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@app.command("find-time")
def find_time(
    attendees: Annotated[list[str], typer.Argument(help="Required attendees' emails (any platform).")],
    organizer: OrganizerOption,
    optional: OptionalOption = None,
    duration: Annotated[int, typer.Option(help="Meeting length in minutes.", min=1)] = 30,
    start: Annotated[str | None, typer.Option(help="Search from (YYYY-MM-DD, ISO, or words: tomorrow, next monday); default today.")] = None,
    end: Annotated[str | None, typer.Option(help="Search until (exclusive); default start + 7 days.")] = None,
    granularity: Annotated[int, typer.Option(help="Minutes between candidate starts.", min=1)] = 30,
    buffer_before: BufferBefore = 0,
    buffer_after: BufferAfter = 0,
    notice: Annotated[int, typer.Option(help="Minimum notice in minutes from now.", min=0)] = 0,
    limit: Annotated[int, typer.Option("--max", help="How many suggestions.", min=1)] = 10,
    tz: TzOption = None,
    fmt: FormatOption = "table",
    config: ConfigOption = None,
) -> None:
    """Ranked meeting times for people on any platform.

    Each person's working hours and zone are respected; each suggestion says who is free,
    tentative, busy or unknown."""
    from calmesh.services import scheduling
    from calmesh.services.hub import Hub

    cfg = get_config(config)
    zone = _zone(cfg, tz, fmt)
    window = resolve_window(start, end, zone, style=date_style(cfg))
    request = scheduling.MeetingRequest(
        organizer, tuple(attendees), tuple(optional or ()), timedelta(minutes=duration), window,
        timedelta(minutes=granularity), timedelta(minutes=buffer_before), timedelta(minutes=buffer_after),
        timedelta(minutes=notice), limit)
    with Hub(cfg) as hub:
        try:
            found = scheduling.find_time(hub, request, now=datetime.now(UTC))
        except scheduling.SchedulingError as exc:
            fail(str(exc))
    data = scheduling.search_json(found, zone, details_for=None)  # the operator reads everything
    if fmt == "json":
        _emit(data)
    else:
        _suggestions_table(data, zone, date_style(cfg))
    if any(p["errors"] for p in data["people"]):
        raise typer.Exit(3)


def _suggestions_table(data: dict[str, Any], zone: ZoneInfo, style: DateStyle) -> None:
    if not data["suggestions"]:
        say(f"No suggestion: {data['empty_reason']}.")
    else:
        table = Table(title=f"Suggested times ({zone.key})")
        table.add_column("#")
        table.add_column("When")
        table.add_column("Confidence")
        for person in data["people"]:
            table.add_column(Text(person["name"] or person["email"]))
        for n, s in enumerate(data["suggestions"], 1):
            cells = [Text.assemble(_MARK[a["availability"]], " (off hours)" if a["outside_working_hours"] else "",
                                   "" if a["required"] else " opt.") for a in s["attendees"]]
            table.add_row(str(n), style.span(datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"])),
                          f"{s['confidence']:.0f}%", *cells)
        console.print(table)
    for person in data["people"]:
        who = person["name"] or person["email"]
        for error in person["errors"]:
            say(("!", "bold red"), f" {who}: availability unknown: {error}")
        for warning in person["warnings"]:
            say(("!", "yellow"), f" {who}: {warning}")


@app.command()
def book(
    attendees: Annotated[list[str], typer.Argument(help="Required attendees' emails.")],
    organizer: OrganizerOption,
    start: Annotated[str, typer.Option(help="Start (ISO date-time or words such as 'friday 10:00'; in --tz).")],
    title: Annotated[str, typer.Option("--title", help="Meeting title.")],
    duration: Annotated[int, typer.Option(help="Length in minutes.", min=1)] = 30,
    optional: OptionalOption = None,
    location: Annotated[str | None, typer.Option(help="Where.")] = None,
    description: Annotated[str | None, typer.Option(help="Agenda or notes.")] = None,
    buffer_before: BufferBefore = 0,
    buffer_after: BufferAfter = 0,
    tz: TzOption = None,
    fmt: FormatOption = "table",
    config: ConfigOption = None,
) -> None:
    """Book a meeting on the organiser's platform and invite everyone else.

    One UID everywhere; invitations are written into attendees' calendars where calmesh may, else
    sent by iMIP email. Availability is checked again first: a slot that became busy is refused,
    naming who."""
    from calmesh.connectors.base import ConnectorError
    from calmesh.services import scheduling
    from calmesh.services.hub import Hub

    cfg = get_config(config)
    zone = _zone(cfg, tz, fmt)
    begin = parse_when(start, zone)
    try:
        request = scheduling.BookingRequest(
            organizer, tuple(attendees), begin, begin + timedelta(minutes=duration), title, tuple(optional or ()),
            description, location, timedelta(minutes=buffer_before), timedelta(minutes=buffer_after))
        with Hub(cfg) as hub:
            booking = scheduling.book(hub, request, now=datetime.now(UTC))
    except scheduling.SchedulingError as exc:
        fail(str(exc))
    except ConnectorError as exc:
        fail(f"could not create the event: {exc}")
    _report(cfg, booking, fmt, f"Booked {title!r} at {begin:%Y-%m-%d %H:%M} ({zone.key}), UID {booking.uid}")


def _report(cfg: Config, booking: Booking, fmt: str, headline: str) -> None:
    """How each attendee was reached (exit code 4 if anyone could not be); calendars by whose
    they are, not by their ids (the JSON keeps the ids)."""
    from calmesh.cli.labels import calendar_label, person_label
    from calmesh.services import scheduling

    data = scheduling.booking_json(booking)
    if fmt == "json":
        _emit(data)
    else:
        say(headline)
        for d in data["deliveries"]:
            where = f" ({calendar_label(cfg, d['platform'], d['calendar'])})" if d["calendar"] else ""
            note = f": {d['detail']}" if d["detail"] else ""
            if d["owed"]:
                note += "; calmesh writes it there once the platform answers (`calmesh deliver`, or on its own under `calmesh serve` and `calmesh sync --watch`)"
            say(f"  {person_label(cfg, d['email'])}: {d['method']}{where}{note}")
        for warning in booking.warnings:
            say(("!", "yellow"), f" {warning}")
        for notice in data["notices"]:  # what a platform holds another way, as a sync run says it
            say(("!", "yellow"), f" {notice}")
    if any(d.method == "failed" for d in booking.deliveries):
        raise typer.Exit(4)


UidArgument = Annotated[str, typer.Argument(help="The meeting's UID (as `calmesh book` printed it).")]


@app.command()
def move(
    uid: UidArgument,
    organizer: ChangerOption,
    start: Annotated[str, typer.Option(help="New start (ISO date-time or words such as 'friday 10:00'; in --tz).")],
    end: Annotated[str | None, typer.Option(help="New end (as --start); default: the meeting keeps its length.")] = None,
    tz: TzOption = None,
    fmt: FormatOption = "table",
    config: ConfigOption = None,
) -> None:
    """Move a meeting calmesh booked to a new time, and ask everyone again.

    The new slot is checked like a booking (the meeting's own current time does not count
    against it); every copy calmesh can reach is moved, the others get an updated invitation."""
    from calmesh.services import scheduling

    cfg = get_config(config)
    zone = _zone(cfg, tz, fmt)
    begin, finish = parse_when(start, zone), (parse_when(end, zone) if end else None)
    booking = _change(cfg, lambda hub, now: scheduling.move_booking(hub, uid, organizer, begin, finish, now=now))
    ended = booking.item.components[0].span_utc(zone)[1].astimezone(zone)
    _report(cfg, booking, fmt, f"Moved {uid} to {begin:%Y-%m-%d %H:%M}–{ended:%H:%M} ({zone.key})")


@app.command()
def cancel(
    uid: UidArgument,
    organizer: ChangerOption,
    reason: Annotated[str | None, typer.Option(help="Told to the attendees.")] = None,
    fmt: FormatOption = "table",
    config: ConfigOption = None,
) -> None:
    """Cancel a meeting calmesh booked: every copy is marked cancelled, the others get a CANCEL."""
    from calmesh.services import scheduling

    cfg = get_config(config)
    _zone(cfg, None, fmt)
    booking = _change(cfg, lambda hub, now: scheduling.cancel_booking(hub, uid, organizer, now=now, reason=reason))
    _report(cfg, booking, fmt, f"Cancelled {uid}")


def _change(cfg: Config, apply: Callable[[Hub, datetime], Booking]) -> Booking:
    """Run a move or cancellation, turning its refusals into a message and exit code 1."""
    from calmesh.connectors.base import ConnectorError
    from calmesh.services import scheduling
    from calmesh.services.hub import Hub

    with Hub(cfg) as hub:
        try:
            return apply(hub, datetime.now(UTC))
        except scheduling.SchedulingError as exc:
            fail(str(exc))
        except ConnectorError as exc:
            fail(f"could not change the event: {exc}")


@app.command()
def deliver(fmt: FormatOption = "table", config: ConfigOption = None) -> None:
    """Write the meeting copies owed to attendees' calendars that did not answer when the meeting
    was booked, moved or cancelled (exit code 4 while some still cannot be written).

    `calmesh serve` and `calmesh sync --watch` do this on their own every minute."""
    from calmesh.cli.labels import calendar_label, person_label
    from calmesh.services import scheduling
    from calmesh.services.hub import Hub

    cfg = get_config(config)
    _zone(cfg, None, fmt)
    with Hub(cfg) as hub:
        try:
            done = scheduling.redeliver(hub, now=datetime.now(UTC))
        except scheduling.SchedulingError as exc:
            fail(str(exc))
    if fmt == "json":
        _emit({"deliveries": [{"uid": t.uid, **scheduling.delivery_json(t.delivery)} for t in done]})
    elif not done:
        say("nothing owed: every copy calmesh wrote holds its meeting as it is")
    for uid, d in ((t.uid, t.delivery) for t in done) if fmt != "json" else ():
        where = calendar_label(cfg, d.platform, d.calendar or "") if d.platform else "by email"
        outcome = "written" if d.method == "calendar" else "mailed" if d.method == "email" else (
            f"still failing ({d.detail}); tried again later" if d.owed else f"not written ({d.detail})")
        say(f"  {uid} for {person_label(cfg, d.email)} ({where}): {outcome}")
    if any(t.delivery.method == "failed" for t in done):
        raise typer.Exit(4)


@app.command()
def inbox(
    path: Annotated[Path | None, typer.Argument(help="An iMIP mail (.eml) or .ics file; '-' or none: stdin.")] = None,
    fmt: FormatOption = "table",
    config: ConfigOption = None,
) -> None:
    """Apply an iTIP REPLY or CANCEL (iMIP mail or .ics) to the organiser's copy."""
    from calmesh.connectors.base import ConnectorError
    from calmesh.services import itip, scheduling
    from calmesh.services.hub import Hub

    cfg = get_config(config)
    _zone(cfg, None, fmt)
    try:
        data = sys.stdin.buffer.read() if path is None or str(path) == "-" else path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    with Hub(cfg) as hub:
        try:
            done = scheduling.process_message(hub, data)
        except itip.ITIPError as exc:
            fail(str(exc))
        except ConnectorError as exc:
            fail(f"cannot update the meeting: {exc}")
    if fmt == "json":
        _emit(scheduling.processed_json(done))
        return
    say(f"{done.method} for {done.uid}: " + ", ".join(done.changes))
    for copy in done.updated:
        say(f"  updated {copy}")
