"""``calmesh serve``, ``calmesh hash-password`` and ``serve_demo``, run as real processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from calmesh.cli.app import app
from calmesh.server.auth import verify_password

from .conftest import PASSWORD_ENV, config_text, seed_ics

CALMESH = str(Path(sys.executable).parent / "calmesh")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float = 30) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} never printed; got {lines}")


def test_hash_password_reads_the_secret_from_stdin_never_the_command_line() -> None:
    result = subprocess.run([CALMESH, "hash-password"], input="hunter2 with spaces\n", capture_output=True,
                            text=True, timeout=60, env=_env())
    assert result.returncode == 0, result.stderr
    stored = result.stdout.strip()
    assert stored.startswith("$argon2id$") and verify_password("hunter2 with spaces", stored)
    assert "hunter2" not in result.stdout + result.stderr
    refused = CliRunner().invoke(app, ["hash-password", "--password", "hunter2"])
    assert refused.exit_code == 2  # no such option: a secret on the command line is not accepted
    empty = subprocess.run([CALMESH, "hash-password"], input="", capture_output=True, text=True, timeout=60)
    assert empty.returncode == 1 and "empty" in empty.stderr


@pytest.fixture
def config_file(tmp_path: Path, slow_feed: str) -> Path:
    seed_ics(tmp_path)
    path = tmp_path / "calmesh.toml"
    path.write_text(config_text(slow_feed))
    return path


def _env() -> dict[str, str]:
    return {**os.environ, PASSWORD_ENV: "demo-secret", "COLUMNS": "200"}


def test_serve_command_answers_and_reports_a_taken_port(config_file: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([CALMESH, "serve", "--config", str(config_file),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env())
    try:
        _wait_for_line(proc, "calmesh serving")
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        taken = subprocess.run([CALMESH, "serve", "--config", str(config_file),
                                "--port", str(port)], capture_output=True, text=True, env=_env(), timeout=60)
        assert taken.returncode == 1 and "already in use" in taken.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)


DEMO_SCRIPT = """
import sys
from rich.console import Console
from calmesh.config import load_config
from calmesh.server.app import serve_demo
serve_demo(load_config(sys.argv[1]), int(sys.argv[2]), "demo", "demo-secret", Console(width=200))
"""


def test_serve_demo_prints_the_ready_line_and_serves_on_every_door(config_file: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-c", DEMO_SCRIPT, str(config_file), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    try:
        lines = _wait_for_line(proc, "calmesh demo ready")
        assert f"calmesh demo ready at http://127.0.0.1:{port} (user demo, password demo-secret)" in lines
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"{base}/api/v1/people", headers={"Authorization": "Bearer demo-secret"})
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
        assert httpx.get(f"{base}/feeds/alice@agency.example.ics", auth=("demo", "demo-secret")).status_code == 200
        pox = httpx.post(f"{base}/autodiscover/autodiscover.xml", auth=("demo", "demo-secret"), content=(
            b'<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
            b"<Request><EMailAddress>alice@agency.example</EMailAddress></Request></Autodiscover>"))
        assert f"EwsUrl>{base}/EWS/Exchange.asmx</" in pox.text  # the demo's own address
        taken = subprocess.run([sys.executable, "-c", DEMO_SCRIPT, str(config_file), str(port)],
                               capture_output=True, text=True, env=_env(), timeout=60)
        assert "already in use" in taken.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_to_start_without_users_and_says_how_to_add_one(tmp_path: Path) -> None:
    path = tmp_path / "calmesh.toml"
    path.write_text('[hub]\ntimezone = "Europe/Paris"\n')
    result = subprocess.run([CALMESH, "serve", "--config", str(path), "--port", str(_free_port())],
                            capture_output=True, text=True, env=_env(), timeout=60)
    assert result.returncode == 2 and "calmesh serving" not in result.stdout
    assert "no server users" in result.stderr and "[[server.users]]" in result.stderr
    assert "calmesh hash-password" in result.stderr


def test_serve_counts_failed_sign_ins_by_the_client_a_trusted_proxy_names(tmp_path: Path, slow_feed: str) -> None:
    seed_ics(tmp_path)
    path = tmp_path / "calmesh.toml"
    path.write_text(config_text(slow_feed, server_extra='trusted_proxies = ["127.0.0.1"]'))
    port = _free_port()
    proc = subprocess.Popen([CALMESH, "serve", "--config", str(path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    try:
        _wait_for_line(proc, "calmesh serving")  # bound: connections queue until uvicorn answers

        def guess(client: str, i: int) -> int:
            return httpx.get(f"http://127.0.0.1:{port}/api/v1/people", timeout=30, headers={
                "Authorization": f"Bearer guess-{i}", "X-Forwarded-For": client}).status_code

        codes = [guess("203.0.113.5", i) for i in range(8)]
        assert codes == [401] * 6 + [429] * 2  # the forwarded client backs off ...
        assert guess("203.0.113.6", 99) == 401  # ... not everyone behind the proxy
    finally:
        proc.terminate()
        proc.wait(timeout=10)
