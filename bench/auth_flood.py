"""Benchmark: a real user's latency while others flood the server with wrong credentials.

Starts ``calmesh serve`` (a separate process, as in production) with one user whose password has
an Argon2id hash at the default (memory-hard) cost, then measures, in one run:

- the real user's p50 (a remembered credential on ``GET /api/v1/people``) and ``/healthz``'s p50,
  alone;
- the same while ``--flooders`` processes send wrong bearer tokens and wrong passwords for the real
  user's name as fast as they can, from ``--addresses`` different client addresses (127.0.0.2,
  127.0.0.3, ...: Linux routes all of 127/8 to loopback);

and prints the ratios (issue 14 asks for at most 2x) and how the flood was answered (401: verified
and wrong; 429: refused at once by the sign-in limits). Numbers depend on the machine; the
ratio is what to compare.

Run: ``.venv/bin/python bench/auth_flood.py`` (``--seconds``, ``--flooders``, ``--addresses``).
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from calmesh.server.auth import hash_password

USER, PASSWORD = "viewer", "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path, port: int) -> subprocess.Popen[bytes]:
    config = folder / "calmesh.toml"
    config.write_text(f"""[hub]
timezone = "Europe/Paris"
[server]
rate_limit_per_minute = 1000000
watch_sync = false
[[server.users]]
name = "{USER}"
password_hash = "{hash_password(PASSWORD)}"
""")
    calmesh = str(Path(sys.executable).parent / "calmesh")
    proc = subprocess.Popen([calmesh, "serve", "--config", str(config), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
            return proc
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("calmesh serve did not start") from None
            time.sleep(0.1)


def p50(client: httpx.Client, path: str, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return statistics.median(times) * 1000


def flood(base: str, addresses: list[str], seconds: float, me: int, out: multiprocessing.Queue[Counter[int]]) -> None:
    """One flooding process (its own interpreter: the measuring client does not share its GIL)."""
    clients = [httpx.Client(base_url=base, timeout=30, transport=httpx.HTTPTransport(local_address=a))
               for a in addresses]
    seen = Counter[int]()
    i, ends = 0, time.monotonic() + seconds
    while time.monotonic() < ends:
        client = clients[i % len(clients)]
        guess = f"guess-{me}-{i}"  # never the same twice (the server would check it once for all)
        wrong = f"Bearer {guess}" if i % 2 else "Basic " + base64.b64encode(f"{USER}:{guess}".encode()).decode()
        try:
            code = client.get("/api/v1/people", headers={"Authorization": wrong}).status_code
        except httpx.TransportError:
            code = 0
        seen[code] += 1
        i += 1
    for client in clients:
        client.close()
    out.put(seen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the flood lasts")
    parser.add_argument("--flooders", type=int, default=6, help="flooding processes")
    parser.add_argument("--addresses", type=int, default=24, help="client addresses the flooders use")
    parser.add_argument("--samples", type=int, default=200, help="requests per p50")
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        proc = start_server(Path(folder), port)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, auth=(USER, PASSWORD), timeout=30) as user:
                user.get("/api/v1/people")  # the one hash verification; remembered from here
                quiet_user, quiet_health = p50(user, "/api/v1/people", args.samples), p50(user, "/healthz", args.samples)
                out: multiprocessing.Queue[Counter[int]] = multiprocessing.Queue()
                addresses = [f"127.0.0.{2 + k}" for k in range(args.addresses)]
                shares = [addresses[k::args.flooders] or [addresses[k % len(addresses)]] for k in range(args.flooders)]
                flooders = [multiprocessing.Process(target=flood, args=(base, share, args.seconds + 2, k, out))
                            for k, share in enumerate(shares)]
                for process in flooders:
                    process.start()
                time.sleep(1.0)  # let the flood reach its steady state
                ended = time.monotonic() + args.seconds
                loud_user, loud_health = [], []
                while time.monotonic() < ended:
                    loud_user.append(p50(user, "/api/v1/people", 20))
                    loud_health.append(p50(user, "/healthz", 20))
                seen = sum((out.get(timeout=120) for _ in flooders), Counter[int]())
                for process in flooders:
                    process.join()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    flooded_user, flooded_health = statistics.median(loud_user), statistics.median(loud_health)
    print(f"cores: {os.cpu_count()}, flood: {args.flooders} processes from {args.addresses} addresses, "
          f"{args.seconds:.0f} s; answers {dict(sorted(seen.items()))}")
    print(f"real user p50:  {quiet_user:7.2f} ms alone, {flooded_user:7.2f} ms flooded: "
          f"ratio {flooded_user / quiet_user:.2f}")
    print(f"/healthz p50:   {quiet_health:7.2f} ms alone, {flooded_health:7.2f} ms flooded: "
          f"ratio {flooded_health / quiet_health:.2f}")


if __name__ == "__main__":
    main()
