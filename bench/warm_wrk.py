"""Benchmark: cached free/busy throughput against the server's own floor, driven by ``wrk``.

One ``calmesh`` server process (Starlette under uvicorn, one process, the app ``calmesh serve``
runs) with one extra route, ``POST /bench/floor``, answering a fixed body of the same size as the
cached free/busy answer, behind the same middleware (metrics, sign-in, limits). Measured in one
run with the same ``wrk`` settings (50 connections, a Lua script for the POST with its JSON body
and Basic credentials):

- **ceiling**: wrk against a raw asyncio socket answering canned bytes (no HTTP parsing), the load
  generator's own limit on this machine;
- **floor**: ``POST /bench/floor``, what the web stack costs per request;
- **cached**: ``POST /api/v1/freebusy`` for the same people and week, every answer from the cache.

Targets (issue 16): cached >= 0.5 x floor; p99 within 5 x p50 under 50 connections.

Run: ``.venv/bin/python bench/warm_wrk.py`` (``--people 6`` is the demo's size; ``--duration``;
``--profile DIR`` adds a py-spy profile of the server during the cached run). Needs ``wrk``
(Debian package ``wrk``; ``make bench-tools`` installs it as root) and the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from calmesh.demo.servers import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from freebusy import ZONES, summarise_folded, wait_http, week_for  # type: ignore[import-not-found]  # noqa: E402

USER, PASSWORD, PASSWORD_ENV = "bench", "bench-secret", "CALMESH_BENCH_PASSWORD"
WEEK = ("2026-11-23T00:00:00+00:00", "2026-11-30T00:00:00+00:00")


# ---------------------------------------------------------------------------------- the server
def serve(config_path: str, port: int, floor_size: int) -> None:
    """The server process: calmesh's app plus the floor route, under uvicorn, one process."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from calmesh.config import load_config
    from calmesh.server.app import create_app
    from calmesh.services.hub import Hub

    body = json.dumps({"people": [], "pad": "x" * max(0, floor_size - 25)}).encode()

    async def floor(_request: Request) -> Response:
        return Response(body, media_type="application/json")

    with Hub(load_config(config_path)) as hub:
        app = create_app(hub)
        app.router.routes.insert(0, Route("/bench/floor", floor, methods=["POST"]))
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def ceiling_server(port: int, size: int) -> None:
    """Canned HTTP answers from a bare asyncio protocol: what wrk itself can drive here."""
    reply = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
             + "x" * size).encode()

    class Canned(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            for _ in range(max(1, data.count(b"\r\n\r\n"))):
                self.transport.write(reply)  # type: ignore[attr-defined]

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Canned, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------- wrk
LUA = """wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic {auth}"
"""


def run_wrk(url: str, body: str, seconds: int, connections: int, threads: int, folder: Path) -> dict[str, float]:
    script = folder / "post.lua"
    script.write_text(LUA.format(body=json.dumps(body),
                                 auth=base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()))
    done = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                           "-s", str(script), url], capture_output=True, text=True, check=True)
    out = done.stdout

    def latency(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m is None:
            raise RuntimeError(f"no {label}% latency in wrk's output:\n{out}")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50": latency("50"), "p99": latency("99"), "non2xx": float(errors.group(1)) if errors else 0.0,
            "socket_errors": 1.0 if socket_errors else 0.0}


# ---------------------------------------------------------------------------------- the setup
def wait_listening(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port}") from None
            time.sleep(0.1)


def write_config(root: Path, people: int, seed: int) -> tuple[Path, list[str]]:
    """An ICS folder with a week per person (bench/freebusy.py's meetings): once cached, where
    the answer came from does not matter to this benchmark."""
    from calmesh.connectors.ics import ICSConnector, ICSSettings

    rng = random.Random(seed)
    (root / "cal").mkdir()
    ics = ICSConnector("files", ICSSettings(kind="ics", path=str(root / "cal")))
    emails = [f"person{i:02d}@bench.example" for i in range(people)]
    blocks = []
    for i, email in enumerate(emails):
        for item in week_for(email, ZONES[i % len(ZONES)], rng):
            ics.put(f"{email}.ics", item)
        blocks.append(f'[[people]]\nemail = "{email}"\nplatform = "files"\ncalendars = ["{email}.ics"]\n'
                      f'timezone = "{ZONES[i % len(ZONES)]}"\n')
    config = root / "calmesh.toml"
    config.write_text('[hub]\ntimezone = "Europe/Paris"\nstate = "sqlite:///state.sqlite"\n'
                      '[server]\ncache_ttl = 3600\nrate_limit_per_minute = 100000000\nwatch_sync = false\n'
                      f'[[server.users]]\nname = "{USER}"\npassword_env = "{PASSWORD_ENV}"\n'
                      '[platforms.files]\nkind = "ics"\npath = "cal"\n' + "\n".join(blocks))
    return config, emails


@contextlib.contextmanager
def process(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        yield child
    finally:
        child.terminate()
        child.wait(10)


@contextlib.contextmanager
def py_spy(pid: int, folder: Path | None) -> Iterator[None]:
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--gil",
                            "--format", "raw", "--output", str(folder / "wrk-cached.folded"), "--rate", "200"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        summarise_folded(folder / "wrk-cached.folded", folder / "wrk-cached.txt")


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=6, help="people in the cached answer (the demo has 6)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", metavar="DIR", type=Path)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package wrk; `make bench-tools` as root)")
    os.environ[PASSWORD_ENV] = PASSWORD
    with tempfile.TemporaryDirectory(prefix="calmesh-wrk-") as tmp:
        root = Path(tmp)
        config, emails = write_config(root, args.people, args.seed)
        body = json.dumps({"attendees": emails, "start": WEEK[0], "end": WEEK[1]})
        port = free_port()
        with process([sys.executable, __file__, "--serve", str(config), str(port), "0"]):
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz")
            with httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=60) as client:
                answer = client.post("/api/v1/freebusy", content=body, headers={"Content-Type": "application/json"})
                answer.raise_for_status()
                size = len(answer.content)
        # the same server again, its floor route answering as many bytes as the cached answer
        port = free_port()
        results: dict[str, dict[str, float]] = {}
        print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average {load_average()}")
        print(f"cached answer: {args.people} people, one week, {size} bytes; wrk -t{args.threads} "
              f"-c{args.connections} -d{args.duration}s")
        with process([sys.executable, __file__, "--serve", str(config), str(port), str(size)]) as server:
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/healthz")
            with httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=60) as client:
                client.post("/api/v1/freebusy", content=body,
                            headers={"Content-Type": "application/json"}).raise_for_status()  # cached now
                floor_size = len(client.post("/bench/floor", content=body).content)
            ceiling_port = free_port()
            with process([sys.executable, __file__, "--ceiling", str(ceiling_port), str(size)]):
                wait_listening(ceiling_port)
                results["ceiling (raw asyncio socket)"] = run_wrk(f"http://127.0.0.1:{ceiling_port}/", body,
                                                                  args.duration, args.connections, args.threads, root)
            results["floor (POST /bench/floor)"] = run_wrk(f"{base}/bench/floor", body, args.duration,
                                                           args.connections, args.threads, root)
            with py_spy(server.pid, args.profile):
                results["cached (POST /api/v1/freebusy)"] = run_wrk(f"{base}/api/v1/freebusy", body, args.duration,
                                                                    args.connections, args.threads, root)
    print(f"floor body {floor_size} bytes; load average after: {load_average()}")
    print(f"{'':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>8}  non-2xx")
    for name, r in results.items():
        print(f"{name:34} {r['rps']:9.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['p99'] / r['p50']:8.1f}  "
              f"{int(r['non2xx'])}")
    floor = results["floor (POST /bench/floor)"]
    cached = results["cached (POST /api/v1/freebusy)"]
    print(f"cached / floor throughput: {cached['rps'] / floor['rps']:.2f} (target >= 0.5); "
          f"cached p99 / p50: {cached['p99'] / cached['p50']:.1f} (target <= 5); "
          f"floor / wrk ceiling: {floor['rps'] / results['ceiling (raw asyncio socket)']['rps']:.2f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--ceiling":
        ceiling_server(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
