"""Benchmark: two-way sync of one Radicale calendar with another, calmesh against vdirsyncer.

For each size (1,000 and 10,000 events by default), each tool and each way of starting it, two
fresh Radicale servers are started on 127.0.0.1: A is seeded with a realistic mix (~80% single
events, ~15% weekly or daily series, a third of those with an EXDATE and a third with a moved
occurrence (RECURRENCE-ID), ~5% all-day; a year of dates, four time zones) written straight into
Radicale's storage folder before it starts; B is empty (or, above ``PREFILL_ABOVE`` events, holds
the same objects: see there why). Both servers are warmed (every object read once) first, so
neither tool pays for Radicale building its cache. Then four syncs are timed, the same for both:

- ``initial``: A -> B, every object copied (or, B pre-filled, both sides listed and paired);
- ``no-op``: the same sync again, nothing changed;
- ``no-op again``: once more (calmesh lists a calendar that just received copies in full once:
  a copy deleted before the next run would otherwise go unseen, see ``SyncEngine.run``);
- ``1% changed``: 1% of A's objects edited over HTTP (summary changed, SEQUENCE raised), then sync.

Before the tools, the same objects are PUT one by one into an empty calendar by plain httpx
(``bare_puts``): the server's own cost of the copy, a floor neither tool can go below. After a
tool's no-ops, the servers' own cost of asking "did anything change?" is timed the same way
(``server_checks``: bare CTag PROPFINDs, on A and on A and B at once, and a bare sync-collection
REPORT from a current token, by plain httpx): the floor of a no-op, whoever asks.

Peak RSS: each process's high-water mark (``ru_maxrss``) after each phase, printed with the times;
``initial`` includes the first listing of both calendars (warm: the driver's mark once imports
and setup are done is printed first, as ``ready``). CPU: the seconds of processor time each
phase took in the tool's process (all its threads; cold: start, imports and exit included), which
a busy machine stretches less than the wall-clock time.

``warm``: each tool runs in one process that imports and sets up first and times each sync
inside (calmesh: a SyncEngine with a SQLite state store, as ``calmesh sync --watch`` keeps one;
vdirsyncer: its CLI's own code called in a loop). ``cold``: each tool's own command, a new
process per sync, timed from outside with start, imports and exit included: ``calmesh sync
--once --config ...`` against ``vdirsyncer sync`` (how cron runs either). Both ways are fair;
they answer different questions, so both are printed. A cold run also times each tool's
**libraries alone** (``bench/libraries_alone.py``: a new process importing every module the
tool's no-op loads but its own): where a server answers "nothing changed" in milliseconds, a cold
no-op is mostly start-up, and this says how much of it no code of the tool's own could save.

Run: ``.venv/bin/python bench/sync_vs_vdirsyncer.py`` (``--sizes 1000``, ``--quick`` for 200
events, ``--skip-vdirsyncer``, ``--skip-floor``, ``--start warm|cold|both``, ``--seed N``,
``--server xandikos`` for two Xandikos servers instead of Radicale, seeded in one Git commit each).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from libraries_alone import importing, libraries, loaded_modules

from calmesh import ical
from calmesh.demo.servers import (
    XANDIKOS_PRINCIPAL,
    RunningServer,
    radicale_object_name,
    seed_radicale_calendar,
    seed_xandikos_calendar,
    start_radicale,
    start_xandikos,
)
from calmesh.model import CalendarItem, Event

USER, PASSWORD = "bench", "bench-secret"
PASSWORD_ENV = "CALMESH_BENCH_CALDAV_PASSWORD"
CALENDAR = "cal"
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC")
TITLES = ("Weekly sync", "1:1", "Budget review", "Réunion d'équipe", "Customer call", "Design review",
          "Sprint planning", "Hiring panel", "Lunch", "Project kickoff", "Retro", "Board prep")
PHASES = ("initial", "no-op", "no-op again", "1% changed")
YEAR = 2026
EDIT_THREADS = 8
WARM_CHUNK = 1000
PARSE_MEMO_ENV = "CALMESH_BENCH_PARSE_MEMO_MB"
"""``--parse-memo MB``: the budget of calmesh's memo of parsed objects in the driver processes."""
WRITE_WORKERS_ENV = "CALMESH_BENCH_WRITE_WORKERS"
WRITE_WORKERS = int(os.environ.get(WRITE_WORKERS_ENV, "4"))
"""calmesh's concurrent writes (SyncEngine(write_workers=...), ``--write-workers``; the warm
driver process reads it from the environment); vdirsyncer writes one at a time."""
VDIRSYNCER = Path(sys.executable).with_name("vdirsyncer")
CALMESH = Path(sys.executable).with_name("calmesh")
RADICALE_CONFIG = "[reporting]\nmax_expand_occurrence = 1000000\n"
"""Radicale refuses a REPORT that serves more than 10,000 occurrences (``max_expand_occurrence``);
vdirsyncer's first comparison of two 10,000-event calendars asks for more, so both tools get
servers with a higher limit."""
PREFILL_ABOVE = 2000
"""Radicale checks a new object's UID against every object of the calendar (``has_uid``), so an
initial copy costs O(n^2) on the server: ~40 s for 1,000 objects with either tool, hours for
10,000. Above this size B starts with A's objects already there, and ``initial`` measures the
first reconciliation (both sides listed, paired, nothing copied) instead of the copy."""


# ------------------------------------------------------------------------------ the events
def _series(uid: str, rng: random.Random, start: datetime, zone: str, summary: str) -> CalendarItem:
    """A weekly or daily series; a third lose one occurrence (EXDATE), a third have one moved."""
    weekly = rng.random() < 0.7
    count = rng.randrange(8, 40)
    step = timedelta(days=7 if weekly else 1)
    rule = f"FREQ={'WEEKLY' if weekly else 'DAILY'};COUNT={count}"
    end = start + timedelta(minutes=rng.choice((15, 30, 60)))
    master = Event(uid=uid, start=start, end=end, summary=summary, rrule=[rule], tzid=zone,
                   location=rng.choice((None, "Room 1", "Room 2", "Online")))
    kind = rng.randrange(3)
    if kind == 0:
        master = replace(master, exdate=[start + step * rng.randrange(1, count)])
    components = [master]
    if kind == 1:
        moved_from = start + step * rng.randrange(1, count)
        components.append(Event(uid=uid, start=moved_from + timedelta(hours=1),
                                end=moved_from + timedelta(hours=1) + (end - start),
                                summary=f"{summary} (moved)", recurrence_id=moved_from, tzid=zone))
    return CalendarItem(uid, components)


def generate(n: int, seed: int) -> list[CalendarItem]:
    """``n`` calendar objects: ~80% single events, ~15% series, ~5% all-day, over ``YEAR``."""
    rng = random.Random(seed)
    first = date(YEAR, 1, 1)
    out: list[CalendarItem] = []
    for i in range(n):
        uid = f"bench-{seed}-{i:06d}@calmesh.test"
        day = first + timedelta(days=rng.randrange(365))
        summary = rng.choice(TITLES)
        roll = rng.random()
        if roll < 0.05:
            out.append(CalendarItem(uid, [Event(uid=uid, start=day, end=day + timedelta(days=rng.choice((1, 1, 2))),
                                                summary="Offsite", transparent=rng.random() < 0.5)]))
            continue
        zone = rng.choice(ZONES)
        start = datetime(day.year, day.month, day.day, rng.randrange(8, 18), rng.choice((0, 30)),
                         tzinfo=ZoneInfo(zone))
        if roll < 0.20:
            out.append(_series(uid, rng, start, zone, summary))
            continue
        end = start + timedelta(minutes=rng.choice((30, 30, 60, 90)))
        out.append(CalendarItem(uid, [Event(uid=uid, start=start, end=end, summary=summary, tzid=zone,
                                            description=rng.choice((None, "Agenda: review the numbers.")))]))
    return out


def edited(item: CalendarItem) -> CalendarItem:
    """The same object as a user's client would write it back after renaming it."""
    components = [replace(c, summary=f"{c.summary} (edited)", sequence=c.sequence + 1) for c in item.components]
    return CalendarItem(item.uid, components)


# ----------------------------------------------------------------------------- the servers
SERVER = "radicale"
"""The CalDAV server both calendars live on (``--server``). Radicale computes its CTag and its
sync tokens by reading every object's cache entry, so the cheapest "did anything change?" grows
with the calendar; Xandikos's CTag is the id of the calendar's Git tree, kept while its index
file is unchanged, so it does not."""


def start_server(root: Path, items: Sequence[CalendarItem]) -> RunningServer:
    """A ``SERVER`` whose calendar holds ``items``, seeded before it starts (far faster than PUT by
    PUT): Radicale through its storage folder, Xandikos in one Git commit."""
    if SERVER == "xandikos":
        seed_xandikos_calendar(root, items)
        return start_xandikos(root)
    seed_radicale_calendar(root, USER, CALENDAR, items)
    return start_radicale(root, {USER: PASSWORD}, extra_config=RADICALE_CONFIG)


def calendar_url(server: RunningServer) -> str:
    if server.name == "xandikos":  # one user, any credentials: see start_xandikos
        return f"{server.url}{XANDIKOS_PRINCIPAL.strip('/')}/calendars/calendar/"
    return f"{server.url}{USER}/{CALENDAR}/"


def warm_up(client: httpx.Client, url: str) -> int:
    """Read every object once (Radicale fills its item cache), so neither tool pays for it;
    returns how many there are. Hrefs first, then objects in chunks: Radicale refuses a REPORT
    that would serve more than 10,000 VEVENTs (``[reporting] max_expand_occurrence``)."""
    listing = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token/>'
               '<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>')
    response = client.request("REPORT", url, content=listing)
    response.raise_for_status()
    hrefs = [h for h in re.findall(r"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>", response.text) if h.endswith(".ics")]
    for start in range(0, len(hrefs), WARM_CHUNK):
        query = ('<?xml version="1.0"?><C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
                 '<D:prop><D:getetag/><C:calendar-data/></D:prop>'
                 + "".join(f"<D:href>{h}</D:href>" for h in hrefs[start:start + WARM_CHUNK])
                 + "</C:calendar-multiget>")
        client.request("REPORT", url, content=query, headers={"Depth": "1"}).raise_for_status()
    return len(hrefs)


def apply_edits(client: httpx.Client, url: str, items: Sequence[CalendarItem]) -> None:
    """PUT the edited objects over their originals, concurrently (the edits are not timed)."""
    def put(item: CalendarItem) -> None:
        response = client.put(url + radicale_object_name(item.uid), content=ical.item_to_ical(edited(item)),
                              headers={"Content-Type": "text/calendar; charset=utf-8"})
        response.raise_for_status()
    # Xandikos answers 423 Locked to a PUT while another holds its index lock: one at a time there
    with ThreadPoolExecutor(1 if SERVER == "xandikos" else EDIT_THREADS) as pool:
        list(pool.map(put, items))


def bare_client() -> httpx.Client:
    """The plain httpx client of the bench's own requests (seeding checks, edits, the floors).
    Xandikos refuses a REPORT or PROPFIND without an XML content type (415); Radicale accepts either."""
    return httpx.Client(auth=(USER, PASSWORD), timeout=600.0,
                        headers={"Content-Type": "application/xml; charset=utf-8"})


@dataclass
class Pair:
    """Servers A (seeded) and B (empty calendar) for one tool's three phases."""

    a: RunningServer
    b: RunningServer
    client: httpx.Client

    @property
    def urls(self) -> tuple[str, str]:
        return calendar_url(self.a), calendar_url(self.b)

    def close(self) -> None:
        self.client.close()
        self.a.stop()
        self.b.stop()


def start_pair(root: Path, items: Sequence[CalendarItem], *, prefill: bool) -> Pair:
    """A seeded with ``items``; B empty, or holding the same objects when ``prefill``."""
    a = start_server(root / "a", items)
    try:
        b = start_server(root / "b", items if prefill else [])
    except BaseException:
        a.stop()
        raise
    pair = Pair(a, b, bare_client())
    try:
        for url, expected in zip(pair.urls, (len(items), len(items) if prefill else 0), strict=True):
            if (found := warm_up(pair.client, url)) != expected:
                raise RuntimeError(f"{url} holds {found} objects, {expected} were seeded")
    except BaseException:
        pair.close()
        raise
    return pair


# ---------------------------------------------------------------------------------- runners
class Runner:
    """Runs one tool's sync of A <-> B, one phase per :meth:`run`, and says how long it took.

    ``cold``: the tool's own command, a new process per phase, timed from outside (process start,
    imports and exit counted: how cron runs either). ``warm``: one driver process (this script's ``--driver`` mode)
    imports and sets up first, then times each sync inside itself (how ``calmesh sync --watch``
    runs, and vdirsyncer's own code called in a loop)."""

    def __init__(self, tool: str, work: Path, pair: Pair, warm: bool) -> None:
        url_a, url_b = pair.urls
        self.tool = tool
        self.env = {**os.environ, PASSWORD_ENV: PASSWORD}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)  # both run from bytecode, as installed packages do
        state = work / "calmesh-state.sqlite"
        if tool == "vdirsyncer":
            self.env["VDIRSYNCER_CONFIG"] = str(write_vdirsyncer_config(work, url_a, url_b))
            _timed([str(VDIRSYNCER), "discover", "bench"], self.env)
            self.command = [str(VDIRSYNCER), "sync", "bench"]
        else:
            self.command = [str(CALMESH), "sync", "--once", "--config", str(write_calmesh_config(work, state, url_a, url_b))]
        self.process: subprocess.Popen[str] | None = None
        self.ready_rss: int | None = None
        if warm:
            self.log = work / f"{tool}-driver.log"  # what the tool prints (vdirsyncer: a line per item)
            self.process = subprocess.Popen([sys.executable, __file__, "--driver", tool, str(state), url_a, url_b],
                                            env=self.env, text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=(log_file := self.log.open("w")))
            log_file.close()  # the child holds its own descriptor
            self.ready_rss = self._answer()[1]  # "ready": imports and setup done

    def _answer(self) -> tuple[float, int, float]:
        """(seconds, the driver's peak RSS in KiB, CPU seconds) of the sync it just made."""
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ok "):
            self.close()
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{Path(self.command[0]).name} driver failed: {line.strip() or 'exited'}\n{tail}")
        _ok, seconds, rss, cpu = line.split()
        return float(seconds), int(rss), float(cpu)

    def run(self) -> tuple[float, int, float]:
        """One sync: (seconds, peak RSS in KiB of the process that made it, its CPU seconds)."""
        if self.process is None:
            return _timed(self.command, self.env)
        assert self.process.stdin is not None
        self.process.stdin.write("sync\n")
        self.process.stdin.flush()
        return self._answer()

    def libraries_alone(self, rounds: int = 5) -> tuple[float, float]:
        """(seconds, CPU seconds), medians of ``rounds``, of a new process importing the libraries
        the tool's command loads in a no-op, without the tool's own modules (see
        ``bench/libraries_alone.py``): what a cold no-op costs before the tool's code does
        anything. The modules are read off one more no-op (the servers are as after the
        timed ones: nothing changed)."""
        command = importing(libraries(loaded_modules(self.command, self.env), self.tool))
        runs = [_timed(command, self.env) for _ in range(rounds)]
        return statistics.median(r[0] for r in runs), statistics.median(r[2] for r in runs)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=60)


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """(seconds, peak RSS in KiB, CPU seconds) of ``command`` run to its end in a new process.
    The peak is the child's ``ru_maxrss``, which on Linux starts at this bench's own resident
    size when it forks (see :func:`_peak_rss`): a tool's peak below that cannot show. With
    1,000 events on Radicale the bench holds 37 to 47 MB, less than either tool's peak; with
    10,000, or after seeding Xandikos's Git stores in-process, it may not."""
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        _pid, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            out.seek(0)
            raise RuntimeError(f"{' '.join(command[:4])} failed ({process.returncode}):\n{out.read()[-6000:]}")
    return elapsed, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def write_calmesh_config(work: Path, state: Path, url_a: str, url_b: str) -> Path:
    """The same job for ``calmesh sync --once``: two CalDAV platforms, one two-way group, A wins
    conflicts, the writers of the warm driver (``WRITE_WORKERS``)."""
    config = work / "calmesh.toml"
    platforms = "".join(
        f'[platforms.{name}]\nkind = "caldav"\nurl = "{url}"\nusername = "{USER}"\n'
        f'password_env = "{PASSWORD_ENV}"\ntimeout = 600\n\n' for name, url in (("a", url_a), ("b", url_b)))
    config.write_text(
        f'[hub]\nstate = "sqlite:///{state}"\nsync_write_workers = {WRITE_WORKERS}\n\n{platforms}'
        '[sync.groups.bench]\nconflict = "a"\ncalendars = [\n'
        f'  {{ platform = "a", calendar = "{url_a}" }},\n  {{ platform = "b", calendar = "{url_b}" }},\n]\n',
        encoding="utf-8")
    return config


def write_vdirsyncer_config(work: Path, url_a: str, url_b: str) -> Path:
    """Two CalDAV storages given by collection URL (``collections = null``), A wins conflicts
    (as the calmesh group's ``conflict = "a"``), status in the run's folder."""
    config = work / "vdirsyncer.conf"
    config.write_text(
        "[general]\n"
        f'status_path = "{work / "vdirsyncer-status"}"\n\n'
        "[pair bench]\n"
        'a = "a"\nb = "b"\ncollections = null\nconflict_resolution = "a wins"\n\n'
        "[storage a]\n"
        f'type = "caldav"\nurl = "{url_a}"\nusername = "{USER}"\npassword = "{PASSWORD}"\n\n'
        "[storage b]\n"
        f'type = "caldav"\nurl = "{url_b}"\nusername = "{USER}"\npassword = "{PASSWORD}"\n',
        encoding="utf-8")
    return config


@dataclass
class Outcome:
    """One tool's phases on one pair: seconds, peak RSS (KiB) and CPU seconds per phase, the RSS of
    the warm driver once set up, and the server's own no-change checks (see :func:`server_checks`)."""

    times: list[float]
    rss: list[int]
    cpu: list[float]
    ready_rss: int | None
    checks: tuple[float, float, float]
    libraries: tuple[float, float] | None = None
    """Cold: (seconds, CPU seconds) of the tool's libraries alone (:meth:`Runner.libraries_alone`)."""


def server_checks(client: httpx.Client, urls: tuple[str, str], rounds: int = 3) -> tuple[float, float, float]:
    """The servers' own cost of "did anything change?", by plain httpx, the median of
    ``rounds``: a CTag PROPFIND (Depth 0) on A; the same on A and B at once (what a no-op of the
    pair waits for at the least, both servers working on this machine's two cores); and a
    sync-collection REPORT on A from its current token (nothing to report). No client can ask
    more cheaply."""
    url = urls[0]
    ctag = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
            "<D:prop><CS:getctag/></D:prop></D:propfind>")

    def report(token: str) -> httpx.Response:
        response = client.request("REPORT", url, content=(
            '<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
            f"<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>"
            "<D:prop><D:getetag/></D:prop></D:sync-collection>"))
        response.raise_for_status()
        return response

    found = re.search(r"<(?:\w+:)?sync-token>([^<]+)</", report("").text)
    if found is None:
        raise RuntimeError(f"{url}: no sync-token in the sync-collection answer")
    def ask_ctag(target: str) -> None:
        client.request("PROPFIND", target, content=ctag, headers={"Depth": "0"}).raise_for_status()

    ctags, pairs, syncs = [], [], []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(rounds):
            started = time.perf_counter()
            ask_ctag(url)
            ctags.append(time.perf_counter() - started)
            started = time.perf_counter()
            list(pool.map(ask_ctag, urls))
            pairs.append(time.perf_counter() - started)
            started = time.perf_counter()
            report(found.group(1))
            syncs.append(time.perf_counter() - started)
    return statistics.median(ctags), statistics.median(pairs), statistics.median(syncs)


def run_tool(tool: str, root: Path, items: Sequence[CalendarItem], edits: Sequence[CalendarItem],
             *, warm: bool, prefill: bool) -> Outcome:
    """The phases of one tool on a fresh pair of servers; checks B holds A's objects at the end."""
    work = root / f"{tool}-{'warm' if warm else 'cold'}"
    work.mkdir()
    pair = start_pair(work, items, prefill=prefill)
    runner: Runner | None = None
    try:
        runner = Runner(tool, work, pair, warm)
        phases = [runner.run(), runner.run(), runner.run()]
        checks = server_checks(pair.client, pair.urls)  # quiet, as in the no-ops
        libraries = None if warm else runner.libraries_alone()
        apply_edits(pair.client, pair.urls[0], edits)
        phases.append(runner.run())
        if (n := warm_up(pair.client, pair.urls[1])) != len(items):
            raise RuntimeError(f"{tool}: B holds {n} objects after the sync, A {len(items)}")
        return Outcome([p[0] for p in phases], [p[1] for p in phases], [p[2] for p in phases], runner.ready_rss,
                       checks, libraries)
    finally:
        if runner is not None:
            runner.close()
        pair.close()


def bare_puts(root: Path, items: Sequence[CalendarItem]) -> float:
    """The server's own share of an initial copy: the same objects PUT one after another into an
    empty calendar by plain httpx, with no sync logic at all. No tool can copy faster than this
    to that server; how close each comes is what the ``initial`` row compares."""
    work = root / "bare-puts"
    work.mkdir()
    server = start_server(work, [])
    try:
        with bare_client() as client:
            url = calendar_url(server)
            warm_up(client, url)
            bodies = [(url + radicale_object_name(item.uid), ical.item_to_ical(item)) for item in items]
            started = time.perf_counter()
            for target, body in bodies:
                client.put(target, content=body, headers={"Content-Type": "text/calendar; charset=utf-8",
                                                          "If-None-Match": "*"}).raise_for_status()
            return time.perf_counter() - started
    finally:
        server.stop()


# ---------------------------------------------------------------------------------- drivers
def calmesh_sync(state: str, url_a: str, url_b: str, *, whole: bool = False) -> Callable[[], None]:
    """A SyncEngine for the two-way group A <-> B (A wins conflicts), SQLite state in ``state``;
    ``whole``: its first comparison made whole, not in parts (``calmesh-whole``, for the
    comparison of the two; docs/sync.md, "A first sync of large calendars"). With
    ``PARSE_MEMO_ENV`` set, the process's memo of parsed objects gets that many MB of text."""
    from calmesh import ical
    from calmesh.config import SyncGroupConfig, SyncMember
    from calmesh.connectors.caldav import CalDAVConnector, CalDAVSettings
    from calmesh.services.sync import PART_SIZE, SyncEngine
    from calmesh.store.db import open_store
    from calmesh.store.repository import SyncRepository

    if (memo := os.environ.get(PARSE_MEMO_ENV)) is not None:
        ical._OBJECTS = ical._ObjectMemo(int(float(memo) * 1024 * 1024))  # the bench's own knob

    connectors = {name: CalDAVConnector(name, CalDAVSettings(kind="caldav", url=url, username=USER,
                                                            password_env=PASSWORD_ENV, timeout=600.0))
                  for name, url in (("a", url_a), ("b", url_b))}
    group = SyncGroupConfig(calendars=[SyncMember(platform="a", calendar=url_a),
                                       SyncMember(platform="b", calendar=url_b)], conflict="a")
    engine = SyncEngine(SyncRepository(open_store(f"sqlite:///{state}")), connectors.__getitem__,
                        write_workers=WRITE_WORKERS, part_size=None if whole else PART_SIZE)

    def sync() -> None:
        report = engine.run("bench", group)
        if report.status != "ok":
            raise RuntimeError(f"calmesh sync {report.status}: {report.errors[:5]}")
    return sync


def vdirsyncer_sync() -> Callable[[], None]:
    """vdirsyncer's own CLI code (config from ``VDIRSYNCER_CONFIG``), called in this process."""
    import vdirsyncer.cli.tasks  # noqa: F401  imported lazily by the CLI: import before timing
    import vdirsyncer.storage.dav  # noqa: F401
    import vdirsyncer.sync  # noqa: F401
    from vdirsyncer.cli import app

    def sync() -> None:
        try:
            app.main(["sync", "bench"], standalone_mode=False)
        except SystemExit as exc:  # vdirsyncer's error handler exits
            if exc.code:
                raise RuntimeError(f"vdirsyncer sync exited with {exc.code}") from exc
    return sync


def driver(tool: str, state: str, url_a: str, url_b: str) -> None:
    """The warm runner: one sync per ``sync`` line on stdin, answering ``ok <seconds>``."""
    sync = vdirsyncer_sync() if tool == "vdirsyncer" else calmesh_sync(state, url_a, url_b,
                                                                       whole=tool == "calmesh-whole")
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the tool prints goes to stderr, not into the answers
    print(f"ok 0 {_peak_rss()} 0", file=answers, flush=True)
    for _line in sys.stdin:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            sync()
        except Exception as exc:  # reported to the parent, which stops the bench
            print(f"error {exc!r}".replace("\n", " "), file=answers, flush=True)
            return
        print(f"ok {time.perf_counter() - started:.6f} {_peak_rss()} {time.process_time() - cpu:.6f}",
              file=answers, flush=True)


def _peak_rss() -> int:
    """This process's peak resident set so far, KiB: Linux's ``VmHWM``, the high-water mark of
    its own address space. Not ``ru_maxrss``, which Linux carries over from the parent at fork
    and exec: a driver started by this bench holding 10,000 generated events (and, for
    Xandikos, having seeded its Git stores) reported the bench's size as its own "ready" mark."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):  # not Linux: the rusage figure, with the caveat above
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ------------------------------------------------------------------------------------ main
def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def set_server(kind: str) -> None:
    """The CalDAV server of this run (:data:`SERVER`)."""
    global SERVER
    SERVER = kind


def set_write_workers(n: int) -> None:
    """calmesh's writers for this run and the driver processes it starts."""
    global WRITE_WORKERS
    WRITE_WORKERS = max(1, n)
    os.environ[WRITE_WORKERS_ENV] = str(WRITE_WORKERS)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated event counts")
    parser.add_argument("--quick", action="store_true", help="just 200 events (a smoke run)")
    parser.add_argument("--skip-vdirsyncer", action="store_true")
    parser.add_argument("--start", choices=("warm", "cold", "both"), default="both",
                        help="time syncs in a running process (warm), per new process (cold), or both")
    parser.add_argument("--prefill-above", type=int, default=PREFILL_ABOVE, metavar="N",
                        help="above N events B starts with A's objects (see PREFILL_ABOVE)")
    parser.add_argument("--skip-floor", action="store_true",
                        help="do not time bare PUTs of the objects (the server's own share of the copy)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--server", choices=("radicale", "xandikos"), default="radicale",
                        help="the CalDAV server of both calendars (see SERVER)")
    parser.add_argument("--write-workers", type=int, default=WRITE_WORKERS, metavar="N",
                        help=f"calmesh's concurrent writes (default {WRITE_WORKERS})")
    parser.add_argument("--with-whole", action="store_true",
                        help="warm only: also calmesh with its first comparison made whole (calmesh-whole)")
    parser.add_argument("--parse-memo", type=float, metavar="MB",
                        help="calmesh's memo of parsed objects, MB of text (default: calmesh's own, 64)")
    parser.add_argument("--driver", nargs=4, metavar=("TOOL", "STATE", "URL_A", "URL_B"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver:
        tool, state, url_a, url_b = args.driver
        driver(tool, state, url_a, url_b)
        return
    set_write_workers(args.write_workers)
    set_server(args.server)
    if args.parse_memo is not None:
        os.environ[PARSE_MEMO_ENV] = str(args.parse_memo)
    sizes = [200] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    tools = ["calmesh"] if args.skip_vdirsyncer else ["calmesh", "vdirsyncer"]
    if args.with_whole:
        tools.insert(1, "calmesh-whole")
    starts = ["warm", "cold"] if args.start == "both" else [args.start]
    if "vdirsyncer" in tools and not VDIRSYNCER.exists():
        parser.error(f"vdirsyncer not found at {VDIRSYNCER}; install it or pass --skip-vdirsyncer")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; {SERVER}; calmesh writes with "
          f"{WRITE_WORKERS} workers, vdirsyncer one at a time", flush=True)
    rows: list[tuple[int, str, str, float, float | None]] = []
    floors: dict[int, float] = {}
    root = Path(tempfile.mkdtemp(prefix="calmesh-bench-sync-"))
    try:
        for size in sizes:
            items = generate(size, args.seed)
            edits = random.Random(args.seed + size).sample(items, max(1, size // 100))
            prefill = size > args.prefill_above
            (root / str(size)).mkdir()
            if not prefill and not args.skip_floor:
                floors[size] = bare_puts(root / str(size), items)
                print(f"{size} events, bare PUTs into an empty calendar (the server alone): {floors[size]:.2f}s",
                      flush=True)
            for start in starts:
                results = {}
                for tool in tools:
                    if tool == "calmesh-whole" and start != "warm":
                        continue  # a driver's engine setting: no CLI flag to make it cold
                    out = results[tool] = run_tool(tool, root / str(size), items, edits, warm=start == "warm",
                                                   prefill=prefill)
                    ready = f"ready {out.ready_rss / 1024:.0f} MB, " if out.ready_rss else ""
                    print(f"{size} events, {start}, {tool}: "
                          + ", ".join(f"{p} {t:.2f}s" for p, t in zip(PHASES, out.times, strict=True))
                          + f"; peak RSS {ready}"
                          + ", ".join(f"{p} {r / 1024:.0f} MB" for p, r in zip(PHASES, out.rss, strict=True))
                          + "; CPU " + ", ".join(f"{p} {c:.2f}s" for p, c in zip(PHASES, out.cpu, strict=True))
                          + f"; the servers alone (quiet): CTag PROPFIND on A {out.checks[0]:.3f}s, "
                            f"on A and B at once {out.checks[1]:.3f}s, sync-collection on A from a current "
                            f"token {out.checks[2]:.3f}s"
                          + (f"; its libraries alone {out.libraries[0]:.2f}s, CPU {out.libraries[1]:.2f}s"
                             if out.libraries else ""), flush=True)
                for i, phase in enumerate(PHASES):
                    other = results.get("vdirsyncer")
                    label = "initial (B pre-filled)" if prefill and i == 0 else phase
                    rows.append((size, start, label, results["calmesh"].times[i], other.times[i] if other else None))
                if (ours := results["calmesh"].libraries) is not None:
                    theirs = results["vdirsyncer"].libraries if "vdirsyncer" in results else None
                    rows.append((size, start, "libraries alone", ours[0], theirs[0] if theirs else None))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n{'size':>6}  {'start':<5}  {'phase':<22} {'calmesh s':>10} {'vdirsyncer s':>13} {'ratio':>7}")
    for size, start, phase, ours, theirs in rows:
        ratio = f"{theirs / ours:.2f}x" if theirs is not None else "-"
        print(f"{size:>6}  {start:<5}  {phase:<22} {ours:>10.2f} {_cell(theirs):>13} {ratio:>7}")
    for size, floor in floors.items():
        print(f"{size:>6}  initial copy, the server alone (bare PUTs, no sync logic): {floor:.2f} s")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print("ratio = vdirsyncer s / calmesh s (above 1: calmesh faster); warm = timed inside a running "
          "process, cold = a new process per sync (start and imports included); libraries alone = a new "
          "process importing what the tool's no-op imports but its own modules, nothing else "
          "(bench/libraries_alone.py)")


if __name__ == "__main__":
    main()
