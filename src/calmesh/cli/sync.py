"""``calmesh sync`` (run sync groups once or on a clock) and ``calmesh status`` (how they are doing).

The summary is per calendar because that is what an operator acts on: which calendar got what,
which deletions wait for ``--confirm-deletes``, which upstream items are quarantined and why; a
dry run lists every planned action (what, from where to where, why). ``--format json`` prints
the same as JSON. Every string that comes from a calendar or a server is escaped before Rich
prints it (Rich would take ``[...]`` in a title for markup and swallow it).
Exit status: 0 when every run was clean, 3 when a run had errors (as ``calmesh freebusy``).
"""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from calmesh.cli.app import ConfigOption, app, console, fail, get_config, say
from calmesh.cli.labels import calendar_label, member_label, person_label

if TYPE_CHECKING:
    from collections.abc import Callable

    from calmesh.config import Config, SyncGroupConfig
    from calmesh.core.projection import SyncMode
    from calmesh.services.sync import Progress as SyncProgress
    from calmesh.services.sync import SyncEngine, SyncReport
    from calmesh.store.repository import SyncRepository

WRITE_COLUMNS = ("created", "updated", "deleted", "failed")
CONFIRM_HINT = " (run again with --confirm-deletes to apply, or --restore-held to put the events back)"


def _groups(cfg: Config, names: list[str] | None) -> dict[str, SyncGroupConfig]:
    groups = cfg.sync.groups
    if not groups:
        fail("no sync groups configured (add a [sync.groups.NAME] table)")
    unknown = [n for n in names or [] if n not in groups]
    if unknown:
        fail(f"unknown sync group {', '.join(map(repr, unknown))} (known: {', '.join(sorted(groups))})")
    return {n: groups[n] for n in (names or sorted(groups))}


def run_with_progress(engine: SyncEngine, name: str, group: SyncGroupConfig, **options: bool) -> SyncReport:
    """One run of a group behind a progress bar: items fetched per calendar, then writes applied."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("[bold]{task.fields[group]}[/] {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=not console.is_terminal) as bar:
        task = bar.add_task("fetching", total=None, group=name)

        def show(event: SyncProgress) -> None:
            if event.stage == "fetched":
                bar.update(task, description=f"fetched {event.done} from {event.member}")
            elif event.stage == "planned":
                bar.update(task, description="applying", total=event.total, completed=0)
            else:
                bar.update(task, description=f"applying (last: {event.member})", completed=event.done)

        return engine.run(name, group, progress=show, **options)


def render_report(report: SyncReport, repo: SyncRepository, mode: SyncMode = "mirror", cfg: Config | None = None) -> None:
    """Per-calendar counts; for a dry run every planned action; then conflicts, held deletions,
    skips, quarantine and errors. With ``cfg``, calendars are named by whose they are."""
    from calmesh.cli.labels import name_members
    from calmesh.core.syncplan import Conflict, Skip

    def label(member: str) -> str:
        return member_label(cfg, member) if cfg is not None else member

    def named(text: str) -> str:
        return name_members(cfg, text) if cfg is not None else text

    conflicts: Counter[str] = Counter()
    for action in report.plan.actions:
        if isinstance(action, Conflict):
            conflicts.update(action.members)
    members = sorted(set(report.by_member) | set(conflicts))
    title = f"sync {report.group}: {report.status}" + (" (nothing written)" if report.dry_run else "")
    table = Table(title=escape(title), title_justify="left")
    table.add_column("Calendar", overflow="fold")
    columns = [f"planned_{c}" for c in ("create", "update", "delete")] if report.dry_run else list(WRITE_COLUMNS)
    for column in (*columns, "conflicts"):
        table.add_column(column.removeprefix("planned_"), justify="right")
    planned: dict[str, Counter[str]] = {}
    for write in report.plan.writes:
        planned.setdefault(write.target, Counter())[f"planned_{type(write).__name__.lower()}"] += 1
    counts = planned if report.dry_run else report.by_member
    for member in sorted(set(members) | set(counts)):
        row = counts.get(member, Counter())
        table.add_row(escape(label(member)), *(str(row[c]) for c in columns), str(conflicts[member]))
    if table.row_count:
        console.print(table)
    else:
        console.print(f"[bold]{escape(title)}[/]: in step, no writes", highlight=False, soft_wrap=True)
    if report.dry_run:
        _print_actions(report, mode, label)
    else:
        skipped: dict[tuple[str, str], list[str]] = {}
        for action in report.plan.actions:
            if isinstance(action, Conflict):
                console.print(f"[yellow]conflict[/] {escape(named(action.logical_id))} between "
                              f"{escape(', '.join(map(label, action.members)))}: {escape(action.resolution)}",
                              highlight=False, soft_wrap=True)
            elif isinstance(action, Skip):
                skipped.setdefault((action.member, action.reason), []).append(action.logical_id)
        for (member, reason), lids in skipped.items():  # a held wipe skips thousands: one line each reason
            what = escape(named(lids[0])) if len(lids) == 1 else f"{len(lids)} items"
            console.print(f"[yellow]skipped[/] {what} on {escape(label(member))}: {escape(reason)}",
                          highlight=False, soft_wrap=True)
    for notice in report.notices:
        hint = CONFIRM_HINT if "held until confirmed" in notice else ""
        console.print(f"[yellow]![/] {escape(named(notice) + hint)}", highlight=False, soft_wrap=True)
    for q in repo.quarantined(report.group):
        console.print(f"[magenta]quarantined[/] {escape(label(q.member))} {escape(q.item_ref or q.uid or '')}: "
                      f"{escape(q.reason)}", highlight=False, soft_wrap=True)
    for error in report.errors:
        console.print(f"[bold red]error[/] {escape(named(error))}", highlight=False, soft_wrap=True)


def _print_actions(report: SyncReport, mode: SyncMode, label: Callable[[str], str]) -> None:
    """Every planned action of a dry run: what, from where to where (calendars named by ``label``,
    as in the counts above; ``--format json`` keeps the member keys), and why."""
    rows = _action_rows(report, mode)
    if not rows:
        return
    table = Table(title=escape(f"planned actions of {report.group}"), title_justify="left")
    for column in ("Action", "What", "From", "To", "Why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        ends = [label(end) if (end := row[k]) else "" for k in ("from", "to")]
        table.add_row(*(escape(v or "") for v in (row["action"], row["what"], *ends, row["why"])))
    console.print(table)


def _action_rows(report: SyncReport, mode: SyncMode) -> list[dict[str, str | None]]:
    from calmesh.core.planview import describe

    return [r.as_dict() for r in describe(report.plan, report.state, report.read, mode)]


def report_json(report: SyncReport, repo: SyncRepository, mode: SyncMode) -> dict[str, Any]:
    """What ``calmesh sync --format json`` prints of one run."""
    return {
        "group": report.group, "status": report.status, "dry_run": report.dry_run,
        "counts": dict(report.counts), "by_member": {k: dict(v) for k, v in sorted(report.by_member.items())},
        "actions": _action_rows(report, mode),
        "held": [_hold_json(h) for h in report.plan.holds.values()],
        "notices": list(report.notices),
        "adapted": [n.as_dict() for n in report.adapted],
        "quarantine": [{"member": q.member, "item": q.item_ref or q.uid, "reason": q.reason}
                       for q in repo.quarantined(report.group)],
        "errors": list(report.errors),
    }


def _hold_json(hold: Any, since: datetime | None = None) -> dict[str, Any]:
    out = {"member": hold.member, "kind": hold.kind, "missing": hold.missing, "size": hold.size,
           "reason": hold.reason}
    return out if since is None else {**out, "since": since.isoformat()}


@app.command()
def sync(
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="Group to run (repeatable; default all).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be written; write nothing.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Run each group once and exit (the default).")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Run the groups on a clock until Ctrl-C.")] = False,
    interval: Annotated[str | None, typer.Option(help="With --watch: time between runs (60s, 5m, 1h); "
                                                      "default each group's interval.")] = None,
    confirm_deletes: Annotated[bool, typer.Option("--confirm-deletes",
                                                  help="Apply deletions held by the bulk-delete guard.")] = False,
    restore_held: Annotated[bool, typer.Option("--restore-held",
                                               help="Dismiss the guard's holds: put the held events back on the "
                                                    "calendars that lost them.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Compare every calendar in full, ignoring change tokens.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table (the default) or json (one document; "
                                                      "with --watch one line per run).")] = "table",
    config: ConfigOption = None,
) -> None:
    """Keep the calendars of each sync group in step (see docs/sync.md)."""
    from calmesh.config import parse_duration
    from calmesh.services.hub import Hub
    from calmesh.services.scheduler import SyncScheduler, hub_engine, owed_deliveries
    from calmesh.store.db import StoreError

    if fmt not in ("table", "json"):
        fail("--format must be table or json", 2)
    if once and watch:
        fail("--once and --watch exclude each other", 2)
    if watch and confirm_deletes:
        fail("--confirm-deletes confirms one run's held deletions: use it with --once, after reading them", 2)
    if watch and restore_held:
        fail("--restore-held dismisses the held deletions: use it with --once, after reading them", 2)
    if confirm_deletes and restore_held:
        fail("--confirm-deletes and --restore-held exclude each other", 2)
    every = None
    if interval is not None:
        if not watch:
            fail("--interval only applies with --watch", 2)
        try:
            every = parse_duration(interval)
        except ValueError as exc:
            fail(str(exc), 2)
    cfg = get_config(config)
    groups = _groups(cfg, group)
    with Hub(cfg) as hub:
        try:
            engine = hub_engine(hub)
        except StoreError as exc:
            fail(str(exc), 2)
        failed = False
        documents: list[dict[str, Any]] = []

        def run(name: str, grp: SyncGroupConfig) -> SyncReport:
            nonlocal failed
            options = {"dry_run": dry_run, "confirm_deletes": confirm_deletes, "full": full,
                       "restore_held": restore_held}
            if fmt == "json":  # no progress bar: stdout carries the JSON only
                report = engine.run(name, grp, dry_run=dry_run, confirm_deletes=confirm_deletes, full=full,
                                    restore_held=restore_held)
                documents.append(report_json(report, engine.repo, grp.mode))
                if watch:
                    typer.echo(json.dumps(documents.pop(), ensure_ascii=False))
            else:
                report = run_with_progress(engine, name, grp, **options)
                render_report(report, engine.repo, grp.mode, cfg)
            if not dry_run:  # with [hub] cache, servers drop these people's answers at once
                hub.calendars_changed(report.changed_members)
            failed = failed or bool(report.errors)
            return report

        if not watch:
            for name, grp in groups.items():
                run(name, grp)
            if fmt == "json":
                typer.echo(json.dumps(documents, indent=2, ensure_ascii=False))
            if failed:
                raise typer.Exit(3)
            return
        if fmt == "table":
            console.print(f"watching {escape(', '.join(groups))}; Ctrl-C to stop", highlight=False, soft_wrap=True)
        scheduler = SyncScheduler(groups, run, interval=every, chores={"owed deliveries": owed_deliveries(hub)})

        def stop(_signum: int, _frame: FrameType | None) -> None:
            """Ctrl-C or SIGTERM (systemd, docker stop) ends the loop after the run in progress, as
            for ``calmesh worker``, so a routine stop leaves no run unfinished; asked twice, it
            interrupts that run."""
            if scheduler.stopping:
                raise KeyboardInterrupt
            scheduler.stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            scheduler.run_forever()
        except KeyboardInterrupt:
            pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        console.print("stopped", highlight=False, soft_wrap=True)


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = int((now - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def group_status(repo: SyncRepository, name: str) -> dict[str, Any]:
    """What ``calmesh status`` shows of one group, as plain data (also its ``--json`` output)."""
    runs = repo.runs(name, limit=1)
    last = runs[0] if runs else None
    return {
        "group": name,
        "last_run": None if last is None else {
            "started": last.started_at.isoformat(),
            "finished": last.finished_at.isoformat() if last.finished_at else None,
            "status": last.status, "dry_run": last.dry_run, "counts": last.counts, "errors": last.errors},
        "items": repo.counts(name),
        "tokens": {t.member: {"last_full": t.last_full_at.isoformat() if t.last_full_at else None,
                              "runs_since_full": t.runs_since_full} for t in repo.tokens(name).values()},
        "quarantine": [{"member": q.member, "item": q.item_ref or q.uid, "reason": q.reason,
                        "first_seen": q.first_seen.isoformat(), "times_seen": q.times_seen}
                       for q in repo.quarantined(name)],
        "held": [_hold_json(h.hold, h.since) for h in repo.holds(name).values()],
    }


@app.command()
def status(
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="Group to show (default all).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    config: ConfigOption = None,
) -> None:
    """Each sync group: last run, item counts, errors, held deletions, change-token age and
    quarantine; the platforms the server last saw failing, with the technical cause; and the
    meeting copies owed to calendars that did not answer (`calmesh deliver`)."""
    from calmesh.store.checks import PlatformChecks
    from calmesh.store.identities import IdentityRepository

    if fmt not in ("table", "json"):
        fail("--format must be table or json", 2)
    as_json = as_json or fmt == "json"
    from calmesh.store.db import StoreError, open_store
    from calmesh.store.repository import SyncRepository

    cfg = get_config(config)
    groups = _groups(cfg, group) if cfg.sync.groups or group else {}  # owed meeting copies need no group
    try:
        sessions = open_store(cfg.state_url())
    except StoreError as exc:
        fail(str(exc), 2)
    repo = SyncRepository(sessions)
    states = [group_status(repo, name) for name in groups]
    failing = PlatformChecks(sessions).failing()
    owed = [(meeting.uid, c) for meeting in IdentityRepository(sessions).owing() for c in meeting.copies if c.owed]
    if as_json:
        typer.echo(json.dumps({
            "platforms_failing": [{"platform": platform, "last_seen": seen.isoformat(), "error": error}
                                  for platform, (seen, error) in failing.items()],
            "owed_deliveries": [{"uid": uid, "email": c.email, "platform": c.platform, "calendar": c.calendar,
                                 "attempts": c.attempts, "error": c.error} for uid, c in owed],
            "groups": states}, indent=2))
        return
    now = datetime.now(UTC)
    for platform, (seen, error) in failing.items():
        console.print(f"[bold red]platform {escape(platform)}[/] failing (the server last saw it "
                      f"{_ago(seen, now)}): {escape(error)}", highlight=False, soft_wrap=True)
    if not groups:
        console.print("no sync groups configured (add a [sync.groups.NAME] table)", highlight=False, soft_wrap=True)
    for uid, c in owed:
        console.print(f"[bold yellow]owed[/] meeting {escape(uid)} to {escape(person_label(cfg, c.email or ''))} "
                      f"({escape(calendar_label(cfg, c.platform, c.calendar) if c.platform else 'by email')}): "
                      f"{c.attempts} failed attempts, "
                      f"the last: {escape(c.error or '')}; `calmesh deliver` writes it once the platform answers",
                      highlight=False, soft_wrap=True)
    for state in states:
        last = state["last_run"]
        items = state["items"]
        headline = "never run" if last is None else (
            f"last run {_ago(datetime.fromisoformat(last['started']), now)}: {last['status']}"
            + ("" if last["finished"] else " (not finished: killed or still running)"))
        console.print(f"[bold]{escape(state['group'])}[/]: {escape(headline)}; {items['items']} items, "
                      f"{items['tombstones']} tombstones, {items['dirty']} pending", highlight=False, soft_wrap=True)
        if last is not None:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(last["counts"].items()) if v)
            if counts:
                console.print(f"  counts: {escape(counts)}", highlight=False, soft_wrap=True)
            for error in last["errors"]:
                console.print(f"  [bold red]error[/] {escape(error)}", highlight=False, soft_wrap=True)
        for held in state["held"]:
            since = _ago(datetime.fromisoformat(held["since"]), now)
            console.print(f"  [bold yellow]held[/] {escape(member_label(cfg, held['member']))}: {held['missing']} of {held['size']} "
                          f"items gone; {escape(held['reason'])} (held since {since}){escape(CONFIRM_HINT)}",
                          highlight=False, soft_wrap=True)
        for member, token in sorted(state["tokens"].items()):
            full_at = token["last_full"] and datetime.fromisoformat(token["last_full"])
            console.print(f"  {escape(member_label(cfg, member))}: compared in full {_ago(full_at or None, now)}, "
                          f"{token['runs_since_full']} incremental runs since", highlight=False, soft_wrap=True)
        for q in state["quarantine"]:
            console.print(f"  [magenta]quarantined[/] {escape(member_label(cfg, q['member']))} {escape(q['item'] or '')}: "
                          f"{escape(q['reason'])} (seen {q['times_seen']}x)", highlight=False, soft_wrap=True)


@app.command()
def worker(
    threads: Annotated[int, typer.Option(min=1, help="Groups run at once by this worker.")] = 1,
    config: ConfigOption = None,
) -> None:
    """Run sync groups taken off the queue named by [hub] queue (Redis), until Ctrl-C or SIGTERM."""
    from calmesh.services import queue
    from calmesh.services.hub import Hub
    from calmesh.services.scheduler import hub_engine

    cfg = get_config(config)
    if not cfg.hub.queue:
        fail("no queue configured: set [hub] queue = \"redis://host:6379/0\"")
    with Hub(cfg) as hub:
        broker = queue.broker(cfg.hub.queue)
        queue.declare_worker_actor(broker, cfg, lambda: hub_engine(hub),
                                   on_report=lambda report: hub.calendars_changed(report.changed_members))
        runner = queue.worker(broker, threads)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
        runner.start()
        say(f"calmesh worker: {threads} thread(s) on {cfg.hub.queue}; Ctrl-C to stop")
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            runner.stop()
            broker.close()
            signal.signal(signal.SIGTERM, previous)
