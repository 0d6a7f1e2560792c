"""Benchmark: the hub server's free/busy, 50 people on 3 platforms, one week.

Platforms: the EWS fake (``calmesh.fakes.ews``, through calmesh's EWS connector, exchangelib),
a folder of ``.ics`` files, and Radicale (real CalDAV, through calmesh's CalDAV connector). The
hub runs as ``calmesh serve`` in its own process, so client and server do not share a GIL.

Measured in one run:

- cold latency (every request misses the cache and fans out; a distinct window per request),
  p50/p99, for all 50 people in one ``POST /api/v1/freebusy``;
- warm latency (cache hits), p50/p99;
- throughput under load: 50 concurrent clients (httpx, asyncio), a bounded number of requests
  for 10-person groups, warm cache;
- beside them, in the same repetitions, the anchor: the slowest platform's single upstream call
  (one person of one platform, straight through calmesh's availability service, no server, no
  cache). Each repetition asks one person of each platform alone, then sends one cold answer;
  the anchor is the slowest platform's median over the repetitions and is compared with the cold
  answers' p50 over the same repetitions (one call stretched by a busy machine's scheduler is
  neither the platform's speed nor the answer's);
- the first cold answer after the server starts (every calendar text read for the first time),
  each platform's people asked alone in-process, and Radicale's own share of a cold answer (its
  calendar-query REPORTs sent bare, as many at a time as calmesh sends them, and as many as
  Radicale serves at once), and the EWS fake's own share (the same GetUserAvailability requests,
  bare);
- and the ratio to Radicale's own answer: free-busy-query REPORTs (RFC 4791 7.10) for the same
  50 people against a Radicale holding all their events, one per person as a CalDAV client would.

Run: ``.venv/bin/python bench/freebusy.py`` (``--quick`` for fewer rounds; ``--rounds N`` for N cold
repetitions; ``--people 1000`` for the large-organisation mode; ``--server-code SRC`` to run the
hub from another source folder, A/B).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from calmesh import ical
from calmesh.config import parse_config
from calmesh.connectors.ics import ICSConnector, ICSSettings
from calmesh.demo.servers import free_port, seed_radicale_calendar, start_radicale
from calmesh.fakes.ews import EWSFake
from calmesh.model import (
    Attendee,
    BusyType,
    CalendarItem,
    Classification,
    Event,
    EventStatus,
    PartStat,
    Window,
)
from calmesh.services import availability
from calmesh.services.hub import Hub

MONDAY = date(2026, 11, 23)
PEOPLE = 50
RADICALE_CONNECTIONS = 8
"""Radicale's default ``[server] max_connections``: the most requests it serves at once."""
USER, PASSWORD, PASSWORD_ENV = "bench", "bench-secret", "CALMESH_BENCH_PASSWORD"
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo")
TITLES = ("Weekly sync", "1:1", "Budget review", "Customer call", "Design review", "Sprint planning", "Retro")


# ------------------------------------------------------------------------------------------ data
def week_for(email: str, zone: str, rng: random.Random) -> list[CalendarItem]:
    """About 15 meetings in the person's working week: a daily stand-up series, tentative and
    out-of-office time, a private appointment, a declined invitation."""
    tz = ZoneInfo(zone)

    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(MONDAY + timedelta(days=day), datetime.min.time(), tzinfo=tz).replace(
            hour=hour, minute=minute)

    me = Attendee(email, None, PartStat.ACCEPTED)
    items = [CalendarItem(f"standup-{email}", [Event(f"standup-{email}", at(0, 9, 30), at(0, 9, 45), "Stand-up",
                                                     rrule=["FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=5"],
                                                     organizer=me, attendees=[me], tzid=zone)])]
    for n in range(14):
        day, hour = rng.randrange(5), rng.randrange(10, 17)
        uid = f"m{n}-{email}"
        status = EventStatus.TENTATIVE if n % 7 == 3 else EventStatus.CONFIRMED
        klass = Classification.PRIVATE if n == 5 else Classification.PUBLIC
        busy = BusyType.BUSY_UNAVAILABLE if n == 9 else None
        attendees = [Attendee(email, None, PartStat.DECLINED)] if n == 11 else [me]
        items.append(CalendarItem(uid, [Event(uid, at(day, hour), at(day, hour, 45), rng.choice(TITLES),
                                              status=status, classification=klass, busy_type=busy,
                                              attendees=attendees, tzid=zone)]))
    return items


# ------------------------------------------------------------------------------------ platforms
def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up") from None
            time.sleep(0.1)


def seed_radicale(folder: Path, people: dict[str, list[CalendarItem]]) -> dict[str, str]:
    """One calendar per person, written into Radicale's storage folder before it starts (PUT by
    PUT, 1,000 people took longer than 40 minutes here). Returns email -> calendar path under the
    server's URL."""
    paths = {}
    for email, items in people.items():
        name = email.split("@")[0]
        seed_radicale_calendar(folder, USER, name, items)
        paths[email] = f"{USER}/{name}/"
    return paths


CALENDAR_QUERY = """<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/></C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""


def radicale_floor(urls: list[str], window: Window, parallel: int) -> float:
    """Radicale's own share of a cold answer: the calendar-query REPORTs calmesh's CalDAV
    connector sends for these calendars (a day wider each side, as it asks), ``parallel`` in
    flight at a time as calmesh sends them, made by bare httpx with nothing parsed: seconds."""
    body = CALENDAR_QUERY.format(start=window.start - timedelta(days=1), end=window.end + timedelta(days=1))
    with httpx.Client(auth=(USER, PASSWORD), timeout=60) as client, ThreadPoolExecutor(parallel) as pool:
        def one(url: str) -> None:
            client.request("REPORT", url, content=body, headers={
                "Depth": "1", "Content-Type": "application/xml"}).raise_for_status()

        began = time.perf_counter()
        list(pool.map(one, urls))
        return time.perf_counter() - began


AVAILABILITY = """<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"
 xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Header>
<t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body><m:GetUserAvailabilityRequest>
<t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>1</t:DayOrder>
<t:Month>1</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime><t:DaylightTime><t:Bias>0</t:Bias>
<t:Time>00:00:00</t:Time><t:DayOrder>1</t:DayOrder><t:Month>1</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime>
</t:TimeZone><m:MailboxDataArray>{mailboxes}</m:MailboxDataArray><t:FreeBusyViewOptions><t:TimeWindow>
<t:StartTime>{start:%Y-%m-%dT%H:%M:%SZ}</t:StartTime><t:EndTime>{end:%Y-%m-%dT%H:%M:%SZ}</t:EndTime></t:TimeWindow>
<t:MergedFreeBusyIntervalInMinutes>30</t:MergedFreeBusyIntervalInMinutes><t:RequestedView>DetailedMerged</t:RequestedView>
</t:FreeBusyViewOptions></m:GetUserAvailabilityRequest></s:Body></s:Envelope>"""
MAILBOX = ("<t:MailboxData><t:Email><t:Address>{}</t:Address><t:RoutingType>SMTP</t:RoutingType></t:Email>"
           "<t:AttendeeType>Required</t:AttendeeType><t:ExcludeConflicts>false</t:ExcludeConflicts></t:MailboxData>")


def exchange_floor(url: str, emails: list[str], window: Window, parallel: int) -> float:
    """Exchange's own share of a cold answer: the GetUserAvailability requests calmesh's EWS
    connector sends for these mailboxes (chunks of 100, ``parallel`` at a time), made by bare
    httpx with nothing parsed: seconds."""
    chunks = [emails[i:i + 100] for i in range(0, len(emails), 100)]
    with httpx.Client(auth=(USER, PASSWORD), timeout=60) as client, ThreadPoolExecutor(parallel) as pool:
        def one(chunk: list[str]) -> None:
            body = AVAILABILITY.format(mailboxes="".join(MAILBOX.format(e) for e in chunk),
                                       start=window.start, end=window.end)
            response = client.post(url, content=body, headers={"Content-Type": "text/xml; charset=utf-8"})
            response.raise_for_status()
            if b"ResponseClass=\"Error\"" in response.content:
                raise SystemExit("the EWS fake answered an error to the bare request")

        began = time.perf_counter()
        list(pool.map(one, chunks))
        return time.perf_counter() - began


def radicale_report(client: httpx.Client, url: str, window: Window) -> None:
    body = f"""<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
<C:time-range start="{window.start:%Y%m%dT%H%M%SZ}" end="{window.end:%Y%m%dT%H%M%SZ}"/></C:free-busy-query>"""
    response = client.request("REPORT", url, content=body, headers={"Depth": "1", "Content-Type": "application/xml"})
    response.raise_for_status()
    ical.parse_vfreebusy(response.content, "radicale")


# ------------------------------------------------------------------------------------ the setup
def build(radicale_url: str, calendars: dict[str, str], people: dict[str, list[CalendarItem]],
          root: Path, stack: contextlib.ExitStack) -> tuple[str, dict[str, str]]:
    """Seed the EWS fake and the ICS folder (Radicale is seeded already) and write the hub
    config; returns (config text, email -> platform)."""
    (root / "inhouse").mkdir()
    inhouse = ICSConnector("inhouse", ICSSettings(kind="ics", path=str(root / "inhouse")))
    fake = EWSFake(users={USER: PASSWORD})
    platform_of: dict[str, str] = {}
    people_toml = []
    for i, (email, items) in enumerate(people.items()):
        platform, zone = ("exchange", "inhouse", "zoho")[i % 3], ZONES[i % len(ZONES)]
        platform_of[email] = platform
        calendar = {"inhouse": f"{email}.ics", "zoho": calendars[email], "exchange": email}[platform]
        for item in items:
            if platform == "inhouse":
                inhouse.put(calendar, item)
            elif platform == "exchange":
                if email not in fake.mailboxes:
                    fake.add_mailbox(email, zone)
                fake.add_item(email, item)
        people_toml.append(f'[[people]]\nemail = "{email}"\nplatform = "{platform}"\ntimezone = "{zone}"\n'
                           f'calendars = ["{calendar}"]\n'
                           f'working_hours = {{ days = "Mon-Fri", start = "09:00", end = "18:00" }}\n')
    fake.start()
    stack.callback(fake.stop)
    auth = f'username = "{USER}"\npassword_env = "{PASSWORD_ENV}"\n'
    text = (f'[hub]\ntimezone = "Europe/Paris"\nstate = "sqlite:///state.sqlite"\n'
            f'[server]\ncache_ttl = 600\nrate_limit_per_minute = 10000000\n'
            f'[[server.users]]\nname = "{USER}"\npassword_env = "{PASSWORD_ENV}"\n'
            f'[platforms.exchange]\nkind = "ews"\nservice_endpoint = "{fake.ews_url}"\nauth = "basic"\n{auth}'
            f'server_version = "Exchange2016"\n'
            f'[platforms.inhouse]\nkind = "ics"\npath = "inhouse"\n'
            f'[platforms.zoho]\nkind = "caldav"\nurl = "{radicale_url}{USER}/"\n{auth}'
            + "\n".join(people_toml))
    return text, platform_of


# ---------------------------------------------------------------------------------- measuring
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(value: float) -> str:
    return f"{value * 1000:8.1f} ms"


async def load(base: str, groups: list[list[str]], window: dict[str, str], clients: int,
               total: int) -> tuple[float, list[float], list[str]]:
    """(elapsed, latencies of answered requests, failures): a failure is counted, not fatal."""
    latencies: list[float] = []
    failures: list[str] = []
    counter = iter(range(total))

    async def worker(client: httpx.AsyncClient) -> None:
        for n in counter:
            started = time.perf_counter()
            try:
                response = await client.post("/api/v1/freebusy", json={"attendees": groups[n % len(groups)], **window})
                response.raise_for_status()
            except httpx.HTTPError as exc:
                failures.append(f"{exc.__class__.__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, auth=(USER, PASSWORD), timeout=60, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return time.perf_counter() - started, latencies, failures


@contextlib.contextmanager
def profiled_server(pid: int, folder: Path | None, name: str) -> Iterator[None]:
    """py-spy samples the server process while the block runs: the thread holding the GIL only
    (``--gil``), so the profile shows where the interpreter's one core goes, not idle threads."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                            "--format", "raw", "--output", str(folder / f"{name}.folded"), "--rate", "200", "--gil"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the load starts
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        summarise_folded(folder / f"{name}.folded", folder / f"{name}.txt")


def summarise_folded(folded: Path, out: Path, top: int = 40) -> None:
    """Self and inclusive sample counts per function from py-spy's folded stacks."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + n
    lines = [f"{total} samples"]
    for title, table in (("self", own), ("inclusive", inclusive)):
        lines.append(f"--- {title}")
        lines += [f"{100 * n / max(total, 1):5.1f}%  {name}" for name, n in
                  sorted(table.items(), key=lambda kv: -kv[1])[:top]]
    out.write_text("\n".join(lines) + "\n")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


BURST_CLIENTS, BURST_HOURS = 200, 36


def burst(base: str, emails: list[str], week: Window) -> tuple[float, list[float], int]:
    """200 clients at once, each for 10 people and a week starting at one of 36 different hours
    a fortnight ahead (nobody asked those days before): (elapsed, latencies, distinct covers)."""
    groups = [emails[i:i + 10] for i in range(0, min(len(emails), 50), 10)]
    first = week.start + timedelta(days=14)
    asks = [(groups[n % len(groups)], first + timedelta(hours=n % BURST_HOURS)) for n in range(BURST_CLIENTS)]
    covers = {(tuple(g), block_cover(Window(s, s + timedelta(days=7)))) for g, s in asks}

    async def run() -> tuple[float, list[float]]:
        latencies: list[float] = []
        limits = httpx.Limits(max_connections=BURST_CLIENTS, max_keepalive_connections=BURST_CLIENTS)
        async with httpx.AsyncClient(base_url=base, auth=(USER, PASSWORD), timeout=300, limits=limits) as client:
            async def one(group: list[str], start: datetime) -> None:
                began = time.perf_counter()
                response = await client.post("/api/v1/freebusy", json={
                    "attendees": group, "start": start.isoformat(), "end": (start + timedelta(days=7)).isoformat()})
                response.raise_for_status()
                latencies.append(time.perf_counter() - began)

            began = time.perf_counter()
            await asyncio.gather(*(one(g, s) for g, s in asks))
            return time.perf_counter() - began, latencies

    elapsed, latencies = asyncio.run(run())
    return elapsed, latencies, len(covers)


def timed(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return time.perf_counter() - began


def fresh_week(week: Window, days_before: int) -> dict[str, str]:
    """A one-week window ``days_before`` days before ``week``, as a request asks it: a cover no
    earlier request asked, so the answer is cold."""
    start = week.start - timedelta(days=days_before)
    return {"start": start.isoformat(), "end": (start + timedelta(days=7)).isoformat()}


def block_cover(window: Window) -> Window:
    """The days the server fetches for ``window`` (its own rounding, when the code has it)."""
    try:
        from calmesh.services.cache import block_cover as cover
    except ImportError:  # code from before windows were fetched by the day (an A/B run)
        return window
    return cover(window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, help="cold repetitions (default 21; 9 with --quick, 5 with --quick above 100 people)")
    parser.add_argument("--profile", metavar="DIR", type=Path,
                        help="write py-spy profiles of the server there (the thread holding the GIL): "
                             "during the cold rounds and under the warm load")
    parser.add_argument("--people", type=int, default=PEOPLE,
                        help="people on the three platforms (1000: the large-organisation mode; the "
                             "server takes 100 attendees a request, so larger sets are asked in requests "
                             "of 100 sent together)")
    parser.add_argument("--server-code", metavar="SRC", type=Path,
                        help="A/B runs: the hub server runs this source folder's calmesh (e.g. a copy of an "
                             "older commit's src/); the bench, its fakes and the in-process measures stay this one's")
    args = parser.parse_args()
    cold_rounds, warm_rounds, load_requests = (9, 30, 300) if args.quick else (21, 200, 2000)
    if args.people > 100 and args.quick:
        cold_rounds = 5  # a cold answer for 1,000 people takes seconds
    cold_rounds = args.rounds or cold_rounds
    rng = random.Random(args.seed)
    emails = [f"person{i:02d}@bench.example" for i in range(args.people)]
    people = {e: week_for(e, ZONES[i % len(ZONES)], rng) for i, e in enumerate(emails)}
    os.environ[PASSWORD_ENV] = PASSWORD
    week = Window(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))

    with tempfile.TemporaryDirectory(prefix="calmesh-bench-") as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        print(f"seeding {args.people} people x ~15 meetings ...", flush=True)
        paths = seed_radicale(root / "radicale", people)
        radicale_url = stack.enter_context(start_radicale(root / "radicale", {USER: PASSWORD})).url
        calendars = {email: radicale_url + path for email, path in paths.items()}
        text, platform_of = build(radicale_url, calendars, people, root, stack)
        config_path = root / "calmesh.toml"
        config_path.write_text(text)
        platforms = sorted(set(platform_of.values()))
        kinds = {name: parse_config(text, config_path).platforms[name]["kind"] for name in platforms}
        print("platforms: " + ", ".join(f"{n} ({kinds[n]}, {sum(1 for p in platform_of.values() if p == n)} people)"
                                        for n in platforms))

        # the anchor's calls: one person of each platform alone, straight through the availability
        # service; made in each cold repetition below, beside the cold answer
        hub = stack.enter_context(Hub(parse_config(text, config_path)))
        availability.freebusy(hub, emails, week)  # connect once, every calendar text read once
        by_platform = {p: [e for e in emails if platform_of[e] == p] for p in platforms}
        single: dict[str, list[float]] = {p: [] for p in platforms}

        def single_calls(n: int) -> None:
            for platform, members in by_platform.items():
                email = members[n % len(members)]
                started = time.perf_counter()
                (answer,) = availability.freebusy(hub, [email], week)
                single[platform].append(time.perf_counter() - started)
                if answer.errors:
                    raise SystemExit(f"upstream error for {email}: {answer.errors}")

        inproc: list[tuple[float, float]] = []
        alone: dict[str, list[float]] = {}
        # the same fan-out in this process: wall time against the CPU it costs (all threads)
        for n in range(cold_rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            availability.freebusy(hub, emails, Window(week.start - timedelta(days=30 + n), week.end))
            inproc.append((time.perf_counter() - wall, time.process_time() - cpu))
        # each platform's people alone, the same way: which platform the fan-out waits for
        for n in range(cold_rounds):
            for platform in platforms:
                began = time.perf_counter()
                availability.freebusy(hub, [e for e in emails if platform_of[e] == platform],
                                      Window(week.start - timedelta(days=60 + n), week.end))
                alone.setdefault(platform, []).append(time.perf_counter() - began)

        port = free_port()
        server = subprocess.Popen([str(Path(sys.executable).parent / "calmesh"), "serve", "--config",
                                   str(config_path), "--port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env={**os.environ, **({"PYTHONPATH": str(args.server_code)} if args.server_code else {})})
        stack.callback(server.wait, 10)
        stack.callback(server.terminate)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz")

        cold, warm, cold_cpu = [], [], []
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        with httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=300, limits=limits) as client, \
                ThreadPoolExecutor(max_workers=max(1, -(-len(emails) // 100))) as senders, \
                ThreadPoolExecutor(max_workers=1) as senders_side:
            def post(attendees: list[str], window: dict[str, str]) -> None:
                response = client.post("/api/v1/freebusy", json={"attendees": attendees, **window})
                response.raise_for_status()
                if any(p["error"] for p in response.json()["people"]):
                    raise SystemExit("the server reported missing data")

            def ask(start: datetime, end: datetime) -> float:
                """Everybody, in requests of 100 (the server's limit) sent together."""
                window = {"start": start.isoformat(), "end": end.isoformat()}
                began = time.perf_counter()
                list(senders.map(lambda part: post(part, window),
                                 [emails[i:i + 100] for i in range(0, len(emails), 100)]))
                return time.perf_counter() - began

            # connections up, code paths warm: one person of each platform, so that the first cold
            # answer below reads everybody else's calendar texts for the first time
            firsts = [next(e for e in emails if platform_of[e] == p) for p in platforms]
            post(firsts, {"start": (week.start - timedelta(days=7)).isoformat(), "end": week.start.isoformat()})
            cpu = cpu_seconds(server.pid)
            first_cold = ask(week.start - timedelta(days=1), week.end)
            first_cpu = cpu_seconds(server.pid) - cpu
            # the cold repetitions: in each, the anchor's single calls, one cold answer (whole days
            # more each time: a cover never asked, a miss) and Radicale's own share of it (the same
            # REPORTs, bare, as many at a time as calmesh sends them)
            zoho = [calendars[e] for e in emails if platform_of[e] == "zoho"]
            parallel = parse_config(text, config_path).platforms["zoho"].get("parallel_requests", 4)
            exchange = [e for e in emails if platform_of[e] == "exchange"]
            ews_url = parse_config(text, config_path).platforms["exchange"]["service_endpoint"]
            floor, ews_floor = [], []
            with profiled_server(server.pid, args.profile, "server-cold"):
                for n in range(1, cold_rounds + 1):
                    single_calls(n)
                    cpu = cpu_seconds(server.pid)
                    cold.append(ask(week.start - timedelta(days=n + 1), week.end))
                    cold_cpu.append(cpu_seconds(server.pid) - cpu)
                    cover = block_cover(Window(week.start - timedelta(days=n + 1), week.end))
                    floor.append(radicale_floor(zoho, cover, parallel))
                    ews_floor.append(exchange_floor(ews_url, exchange, cover, parallel))
            # a two-person answer (one CalDAV person, one Exchange), cold, alone and then asked while
            # the cold answer for everybody is under way: how long a small question waits behind a
            # big one for the platforms' request slots (``parallel_requests``, shared by every answer)
            pair = [next(e for e in emails if platform_of[e] == p) for p in ("zoho", "exchange")]
            small_alone, small_beside = [], []
            for n in range(cold_rounds):
                small_alone.append(timed(lambda n=n: post(pair, fresh_week(week, 60 + n))))
                big = senders_side.submit(ask, week.start - timedelta(days=40 + n), week.end)
                time.sleep(cold[n % len(cold)] / 5)  # the big answer's requests are queued by now
                small_beside.append(timed(lambda n=n: post(pair, fresh_week(week, 80 + n))))
                big.result()
            # and as many at once as Radicale serves (its [server] max_connections, 8 by default;
            # above it, connections wait or are reset)
            floor_all = [radicale_floor(zoho, block_cover(Window(week.start - timedelta(days=n + 2), week.end)),
                                        RADICALE_CONNECTIONS) for n in range(cold_rounds)]
            ask(week.start, week.end)
            for _ in range(warm_rounds):
                warm.append(ask(week.start, week.end))
            burst_elapsed, burst_latencies, burst_covers = burst(base, emails, week)

        groups = [emails[i:i + 10] for i in range(0, min(len(emails), 50), 10)]
        window = {"start": week.start.isoformat(), "end": week.end.isoformat()}
        with httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=120) as client:
            for group in groups:  # warm the cache for the load test
                client.post("/api/v1/freebusy", json={"attendees": group, **window}).raise_for_status()
        with profiled_server(server.pid, args.profile, "server-warm-load"):
            elapsed, latencies, failures = asyncio.run(load(base, groups, window, 50, load_requests))

        # Radicale's own free/busy for the same people (one REPORT per person, as a client would)
        report = []
        with httpx.Client(auth=(USER, PASSWORD), timeout=60) as client:
            for url in calendars.values() if len(emails) <= 100 else ():  # 1,000 REPORTs take over a minute
                radicale_report(client, url, week)  # warm
            for _ in range(max(3, cold_rounds // 2) if len(emails) <= 100 else 1):  # 1,000 REPORTs: once
                began = time.perf_counter()
                for url in calendars.values():
                    radicale_report(client, url, week)
                report.append(time.perf_counter() - began)

    print(f"\nload average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")
    requests = -(-len(emails) // 100)
    print(f"free/busy for {len(emails)} people, one week, "
          + ("one POST /api/v1/freebusy:" if requests == 1 else f"{requests} POSTs of 100 sent together:"))
    print(f"  cold (fan-out)   p50 {ms(pct(cold, .5))}   p99 {ms(pct(cold, .99))}   ({len(cold)} requests)"
          f"   server CPU per cold answer: p50 {ms(pct(cold_cpu, .5))}")
    print(f"  cold, in-process fan-out (no server): wall p50 {ms(pct([w for w, _ in inproc], .5))}"
          f"   CPU p50 {ms(pct([c for _, c in inproc], .5))} (all threads)")
    slowest = max(single, key=lambda p: statistics.median(single[p]))
    anchor = statistics.median(single[slowest])
    print(f"  anchor: the slowest platform's single upstream call (1 person, 1 platform), median of the same "
          f"{cold_rounds} repetitions: {ms(anchor)} ({slowest}; " + ", ".join(
              f"{p} {statistics.median(v) * 1000:.1f}" for p, v in single.items())
          + f" ms; slowest of all {sum(len(v) for v in single.values())} calls {ms(max(max(v) for v in single.values()))})")
    per_round = [c / max(v[n] for v in single.values()) for n, c in enumerate(cold)]
    print(f"  ratio cold p50 / anchor: {pct(cold, .5) / anchor:5.2f}x   (median of the repetitions' own ratios "
          f"{statistics.median(per_round):5.2f}x; server CPU per answer / anchor: {pct(cold_cpu, .5) / anchor:5.2f}x)")
    print(f"  first cold answer after start (every calendar text read for the first time): {ms(first_cold)}"
          f"   server CPU {ms(first_cpu)}   ratio to the anchor {first_cold / anchor:5.2f}x")
    print("  each platform's people alone, in-process, p50: " + ", ".join(
        f"{p} ({sum(1 for q in platform_of.values() if q == p)}) {pct(v, .5) * 1000:.1f} ms" for p, v in alone.items()))
    print(f"  Radicale alone: the cold answers' {len(zoho)} calendar-query REPORTs, bare, {parallel} at a time, p50 "
          f"over the same repetitions {ms(pct(floor, .5))} ({pct(floor, .5) / anchor:5.2f}x the anchor); "
          f"ratio cold p50 / max(that, anchor): {pct(cold, .5) / max(pct(floor, .5), anchor):5.2f}x")
    print(f"  Exchange (the fake) alone: the cold answers' GetUserAvailability for {len(exchange)} mailboxes, bare, "
          f"p50 over the same repetitions {ms(pct(ews_floor, .5))} ({pct(ews_floor, .5) / anchor:5.2f}x the anchor)")
    print(f"  Radicale alone, the same REPORTs {RADICALE_CONNECTIONS} at a time (its max_connections): "
          f"p50 {ms(pct(floor_all, .5))}")
    print(f"  a 2-person cold answer (CalDAV + Exchange) asked while the cold answer for everybody is under way: "
          f"p50 {ms(pct(small_beside, .5))}, alone p50 {ms(pct(small_alone, .5))} "
          f"({pct(small_beside, .5) / pct(small_alone, .5):5.2f}x)")
    print(f"  warm (cache)     p50 {ms(pct(warm, .5))}   p99 {ms(pct(warm, .99))}   ({len(warm)} requests)")
    print(f"throughput, 50 concurrent clients, {load_requests} requests of 10 people (warm):")
    print(f"  {len(latencies) / elapsed:8.0f} requests/s   p50 {ms(pct(latencies, .5))}   p99 {ms(pct(latencies, .99))}"
          f"   failed: {len(failures)}" + (f" (first: {failures[0]})" if failures else ""))
    print(f"uncached burst: {len(burst_latencies)} clients at once, 10 people each, windows starting at "
          f"{BURST_HOURS} different hours ({burst_covers} distinct day covers):")
    print(f"  {len(burst_latencies) / burst_elapsed:8.0f} requests/s   p50 {ms(pct(burst_latencies, .5))}"
          f"   p99 {ms(pct(burst_latencies, .99))}")
    radicale_time = statistics.median(report)
    print(f"Radicale free-busy-query REPORT, same {len(calendars)} Radicale people, one per person: "
          f"{ms(radicale_time)}")
    print(f"  ratio calmesh/Radicale: cold {statistics.median(cold) / radicale_time:5.2f}x"
          f"   warm {statistics.median(warm) / radicale_time:5.2f}x"
          f"   (calmesh answers for {len(platforms)} platforms at once)")


if __name__ == "__main__":
    main()
