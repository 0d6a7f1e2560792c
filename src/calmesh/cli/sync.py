"""``calmesh sync`` (run sync groups once or on a clock) and ``calmesh status`` (how they are doing).

The summary is per calendar because that is what an operator acts on: which calendar got what,
which deletions wait for ``--confirm-deletes``, which upstream items are quarantined and why.
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
from rich.table import Table

from calmesh.cli.app import ConfigOption, app, console, fail, get_config

if TYPE_CHECKING:
    from calmesh.config import Config, SyncGroupConfig
    from calmesh.services.sync import Progress as SyncProgress
    from calmesh.services.sync import SyncEngine, SyncReport
    from calmesh.store.repository import SyncRepository

WRITE_COLUMNS = ("created", "updated", "deleted", "failed")


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


def render_report(report: SyncReport, repo: SyncRepository) -> None:
    """Per-calendar counts, then conflicts, held deletions, skips, quarantine and errors."""
    from calmesh.core.syncplan import Conflict, Skip

    conflicts: Counter[str] = Counter()
    for action in report.plan.actions:
        if isinstance(action, Conflict):
            conflicts.update(action.members)
    members = sorted(set(report.by_member) | set(conflicts))
    title = f"sync {report.group}: {report.status}" + (" (nothing written)" if report.dry_run else "")
    table = Table(title=title, title_justify="left")
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
        table.add_row(member, *(str(row[c]) for c in columns), str(conflicts[member]))
    if table.row_count:
        console.print(table)
    else:
        console.print(f"[bold]{title}[/]: in step, no writes", highlight=False, soft_wrap=True)
    for action in report.plan.actions:
        if isinstance(action, Conflict):
            console.print(f"[yellow]conflict[/] {action.logical_id} between {', '.join(action.members)}: "
                          f"{action.resolution}", highlight=False, soft_wrap=True)
        elif isinstance(action, Skip):
            console.print(f"[yellow]skipped[/] {action.logical_id} on {action.member}: {action.reason}",
                          highlight=False, soft_wrap=True)
    for notice in report.notices:
        hint = " (run again with --confirm-deletes to apply)" if "held until confirmed" in notice else ""
        console.print(f"[yellow]![/] {notice}{hint}", highlight=False, soft_wrap=True)
    for q in repo.quarantined(report.group):
        console.print(f"[magenta]quarantined[/] {q.member} {q.item_ref or q.uid}: {q.reason}", highlight=False, soft_wrap=True)
    for error in report.errors:
        console.print(f"[bold red]error[/] {error}", highlight=False, soft_wrap=True)


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
    full: Annotated[bool, typer.Option("--full", help="Compare every calendar in full, ignoring change tokens.")] = False,
    config: ConfigOption = None,
) -> None:
    """Keep the calendars of each sync group in step (see docs/sync.md)."""
    from calmesh.config import parse_duration
    from calmesh.services.hub import Hub
    from calmesh.services.scheduler import SyncScheduler, hub_engine
    from calmesh.store.db import StoreError

    if once and watch:
        fail("--once and --watch exclude each other")
    if watch and confirm_deletes:
        fail("--confirm-deletes confirms one run's held deletions: use it with --once, after reading them")
    every = None
    if interval is not None:
        if not watch:
            fail("--interval only applies with --watch")
        try:
            every = parse_duration(interval)
        except ValueError as exc:
            fail(str(exc))
    cfg = get_config(config)
    groups = _groups(cfg, group)
    with Hub(cfg) as hub:
        try:
            engine = hub_engine(hub)
        except StoreError as exc:
            fail(str(exc), 2)
        failed = False

        def run(name: str, grp: SyncGroupConfig) -> SyncReport:
            nonlocal failed
            report = run_with_progress(engine, name, grp, dry_run=dry_run, confirm_deletes=confirm_deletes,
                                       full=full)
            render_report(report, engine.repo)
            failed = failed or bool(report.errors)
            return report

        if not watch:
            for name, grp in groups.items():
                run(name, grp)
            if failed:
                raise typer.Exit(3)
            return
        console.print(f"watching {', '.join(groups)}; Ctrl-C to stop", highlight=False, soft_wrap=True)
        scheduler = SyncScheduler(groups, run, interval=every)

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
    }


@app.command()
def status(
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="Group to show (default all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    config: ConfigOption = None,
) -> None:
    """Each sync group: last run, item counts, errors, change-token age and quarantine."""
    from calmesh.store.db import StoreError, open_store
    from calmesh.store.repository import SyncRepository

    cfg = get_config(config)
    groups = _groups(cfg, group)
    try:
        repo = SyncRepository(open_store(cfg.state_url()))
    except StoreError as exc:
        fail(str(exc), 2)
    states = [group_status(repo, name) for name in groups]
    if as_json:
        typer.echo(json.dumps(states, indent=2))
        return
    now = datetime.now(UTC)
    for state in states:
        last = state["last_run"]
        items = state["items"]
        headline = "never run" if last is None else (
            f"last run {_ago(datetime.fromisoformat(last['started']), now)}: {last['status']}"
            + ("" if last["finished"] else " (not finished: killed or still running)"))
        console.print(f"[bold]{state['group']}[/]: {headline}; {items['items']} items, "
                      f"{items['tombstones']} tombstones, {items['dirty']} pending", highlight=False, soft_wrap=True)
        if last is not None:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(last["counts"].items()) if v)
            if counts:
                console.print(f"  counts: {counts}", highlight=False, soft_wrap=True)
            for error in last["errors"]:
                console.print(f"  [bold red]error[/] {error}", highlight=False, soft_wrap=True)
        for member, token in sorted(state["tokens"].items()):
            full_at = token["last_full"] and datetime.fromisoformat(token["last_full"])
            console.print(f"  {member}: compared in full {_ago(full_at or None, now)}, "
                          f"{token['runs_since_full']} incremental runs since", highlight=False, soft_wrap=True)
        for q in state["quarantine"]:
            console.print(f"  [magenta]quarantined[/] {q['member']} {q['item']}: {q['reason']} "
                          f"(seen {q['times_seen']}x)", highlight=False, soft_wrap=True)


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
        queue.declare_worker_actor(broker, cfg, lambda: hub_engine(hub))
        runner = queue.worker(broker, threads)
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
        runner.start()
        console.print(f"calmesh worker: {threads} thread(s) on {cfg.hub.queue}; Ctrl-C to stop", highlight=False)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            runner.stop()
            broker.close()
            signal.signal(signal.SIGTERM, previous)
