"""Every command in README.md and docs/*.md, run against the demo agency, so the docs cannot drift.

The commands are read from the fenced shell blocks (```sh, ```bash, ```shell, ```console) of the
documents as they are now; a command added to the docs is run here without anyone listing it.
Those that cannot run in a test are listed in :data:`NOT_RUN` with the reason, those written in
a notation (``[--apply | --undo ID]``) in :data:`RUN_AS` with what is run instead, and those that
fail today because of an open item of issue 17 in :data:`OPEN_ITEMS` (expected failures naming the
item). A listed command the docs no longer contain fails :func:`test_every_listed_command_is_in_the_docs`,
so the lists cannot rot either.

The demo is the one ``calmesh demo`` starts (:func:`calmesh.demo.run.start`: Radicale standing in
for Zoho, the EWS fake for Exchange, an ``.ics`` folder for the in-house system), seeded with the
week ``make demo`` would seed today (:func:`calmesh.demo.data.demo_monday`), so the commands that
look a week ahead by default (``conflicts``, ``duplicates``) show what a newcomer sees; the booking
examples fall in the week after it, so booking and moving (which refuse the past) work whatever
day the suite runs. ``calmesh serve`` serves it on a free port for the HTTP examples. Commands run in a shell
from the repository's root with ``$CALMESH_CONFIG`` naming the demo's config. The docs' examples
are written in the week of :data:`DOCS_MONDAY`: every ISO date in a command is moved by whole
weeks to the demo's, so weekdays (and the demo's meetings on them) stay what the docs say.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest

from calmesh.demo.data import demo_monday, demo_today
from calmesh.demo.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = {"sh", "bash", "shell", "console"}
DOCS_MONDAY = date(2026, 11, 23)
"""The week the docs' examples are written in (README's sample table: Mon, 23 Nov – Fri, 27 Nov 2026)."""
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("docs-commands")]

NOT_RUN: dict[str, str] = {
    "calmesh feeds revoke 2": "the id is whatever `calmesh feeds list` shows; revoking by id is run by "
                              "tests/server/test_server_doorsec.py::test_secret_urls_open_one_person_and_are_revocable",
    "make demo": "starts the demo and serves it until interrupted: this test starts the same demo "
                 "(calmesh.demo.run) and serves it with `calmesh serve`",
    "calmesh demo": "serves the demo until interrupted (see `make demo`)",
    "make test": "runs the whole suite, this test included",
    "make test-fast": "runs the test suite",
    "make soak": "runs the agency test for 30 minutes",
    "make lint": "ruff and mypy: run by `make test` itself",
    "make bench": "benchmarks run for minutes; their smoke run is tests/sync/test_bench_smoke.py",
    "python3 -m venv .venv && .venv/bin/pip install -e .": "installs from the package index into a new "
                                                           "virtualenv (`make venv` does it for the suite)",
    "cp examples/calmesh.toml calmesh.toml": "the example names the agency's real Zoho, Microsoft 365 and "
                                             "Exchange, out of reach of a test; the next line is checked against it "
                                             "by test_readme_export_names_every_variable_of_the_example",
    "export ZOHO_APP_PASSWORD=... GRAPH_CLIENT_SECRET=... EXCHANGE_PASSWORD=... "
    "CALMESH_BRIDGE_PASSWORD=... CALMESH_OPS_PASSWORD=...": "secrets of the example's real platforms "
                                                            "(checked by test_readme_export_names_...)",
    "export CALMESH_EWS_PASSWORD='…'": "the secret of a real Exchange server",
    "export CALMESH_GOOGLE_KEY=/etc/calmesh/google-sa.json": "the key of a real Google service account",
    "calmesh sync --watch --interval 60s": "runs the sync groups until Ctrl-C",
    "calmesh init --kind graph --name m365 --mailbox alice@agency.example --mailbox carla@agency.example":
        "asks for a real tenant's ids and reaches Microsoft: tests/cli/test_cli_init.py runs it on the Graph fake",
    "calmesh init --kind google --name workspace --mailbox alice@agency.example":
        "reaches Google with a real service account key: tests/cli/test_cli_init.py runs it on the Google fake",
    "calmesh inbox reply.eml": "needs a REPLY mail from an attendee's client: tests/cli/test_cli_schedule.py "
                               "applies one",
    ".venv/bin/python bench/sync_vs_vdirsyncer.py": "a benchmark of minutes against vdirsyncer",
    ".venv/bin/python bench/sync_vs_vdirsyncer.py --sizes 1000 --start warm": "a benchmark against vdirsyncer",
    ".venv/bin/python bench/sync_vs_vdirsyncer.py --sizes 1000 --write-workers 2": "a benchmark against vdirsyncer",
    ".venv/bin/python bench/sync_vs_vdirsyncer.py --quick --skip-vdirsyncer": "run by "
                                                                              "tests/sync/test_bench_smoke.py",
    ".venv/bin/python bench/sync_vs_vdirsyncer.py --sizes 1000,10000 --start warm --skip-floor --prefill-above 500 "
    "--server xandikos": "a benchmark of minutes against vdirsyncer; tests/sync/test_bench_smoke.py runs the "
                        "bench on Xandikos too",
}

RUN_AS: dict[str, tuple[str, str]] = {
    "calmesh duplicates --resolve [--apply | --undo ID]": (
        "calmesh duplicates --resolve", "[--apply | --undo ID] is notation: the plan is shown, nothing applied"),
    "calmesh sync --group sales --dry-run": (
        "calmesh sync --group alice-busy --dry-run", "the docs' group is an example: the demo's is alice-busy"),
    "calmesh serve --config calmesh.toml [--host 0.0.0.0] [--port 8765]": (
        "", "run by the fixture as `calmesh serve --config <demo> --port <free>` ([...] is notation); "
            "the test checks it answers"),
}

OPEN_ITEMS: dict[str, str] = {}
"""Documented commands an open item keeps from working on the demo (none today)."""

EXPECTED: dict[str, str] = {
    "calmesh find-time carla@agency.example david@agency.example -o alice@agency.example --duration 60": "1",
    "calmesh freebusy alice@agency.example carla@agency.example --start 2026-12-01 --end 2026-12-08 "
    "--tz Europe/Paris": "Alice Martin",
    # the demo's Thursday is in the default window (a week from today) whatever the day
    "calmesh conflicts --person david@agency.example": "Q1 forecast",
    "calmesh duplicates --resolve [--apply | --undo ID]": "TR: ACME follow-up",
}
"""Text a command's output must hold besides succeeding (where succeeding alone says little)."""

REFUSALS = ("Traceback", "internal error", "unexpected error")


@dataclass(frozen=True, slots=True)
class Command:
    document: str
    line: int
    text: str
    """As documented, continuation lines joined, comment removed."""

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"


def _without_comment(line: str, quote: str = "") -> tuple[str, str]:
    """``line`` without a shell comment (a ``#`` at the start or after a blank, outside quotes),
    and the quote still open at its end (``quote``: the one open at its start)."""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), ""
    return line.rstrip(), quote


def documented_commands() -> list[Command]:
    found: list[Command] = []
    for path in DOCUMENTS:
        lines = path.read_text(encoding="utf-8").splitlines()
        state, start, quote = "out", 0, ""  # "out" of blocks, in a shell block to "run", or in another to "skip"
        pending: list[str] = []
        for number, line in enumerate(lines, 1):
            fence = re.match(r"^\s*```\s*(\w*)", line)
            if fence:
                if state == "out":
                    state = "run" if fence.group(1) in SHELL_BLOCKS else "skip"
                else:
                    state, pending = "out", []
                continue
            if state != "run":
                continue
            if not pending:
                start = number
            text, quote = _without_comment(line, quote)
            if quote:  # a quoted argument going on over the next lines (a JSON body)
                pending.append(text.strip() + "\n")
                continue
            if text.endswith("\\"):
                pending.append(text[:-1].strip() + " ")
                continue
            joined = "".join([*pending, text.strip()]).strip()
            pending = []
            if joined:
                found.append(Command(str(path.relative_to(ROOT)), start, joined))
    return found


COMMANDS = documented_commands()


def test_the_docs_have_commands() -> None:
    texts = {c.text for c in COMMANDS}
    assert "make demo" in texts and any(t.startswith("calmesh freebusy ") for t in texts)


def test_every_listed_command_is_in_the_docs() -> None:
    texts = {c.text for c in COMMANDS}
    stale = [t for t in [*NOT_RUN, *RUN_AS, *OPEN_ITEMS, *EXPECTED] if t not in texts]
    assert not stale, f"listed here but no longer in the docs (remove or update): {stale}"


def test_readme_export_names_every_variable_of_the_example() -> None:
    example = (ROOT / "examples" / "calmesh.toml").read_text(encoding="utf-8")
    settings = "\n".join(line.split("#")[0] for line in example.splitlines())
    needed = set(re.findall(r'\w+_env\s*=\s*"([A-Z0-9_]+)"', settings))
    exports = " ".join(c.text for c in COMMANDS if c.document == "README.md" and c.text.startswith("export "))
    named = set(re.findall(r"([A-Z][A-Z0-9_]*)=", exports))
    assert needed and needed <= named, f"README's export misses {sorted(needed - named)}"


# ------------------------------------------------------------------------------------ the demo
@dataclass
class Demo:
    root: Path
    config: Path
    monday: date
    port: int
    env: dict[str, str]
    uids: list[str]
    """UIDs the documented ``book`` commands answered, for the ``move UID`` / ``cancel UID`` examples."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    from calmesh.demo import run

    root = tmp_path_factory.mktemp("docs-demo")
    monday = demo_monday(demo_today())
    environment = run.start(root, monday)
    port = free_port()
    env = {**os.environ, "CALMESH_CONFIG": str(environment.config_path), run.PASSWORD_ENV: run.DEMO_PASSWORD,
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200", "NO_COLOR": "1"}
    # the server's own sync loop off, so it never runs a group at the same time as a documented
    # `calmesh sync` (same directory: the config's relative paths mean the same files)
    served = environment.config_path.with_name("serve.toml")
    served.write_text(environment.config_path.read_text(encoding="utf-8").replace(
        "[server]\n", "[server]\nwatch_sync = false\n", 1), encoding="utf-8")
    server = subprocess.Popen([str(BIN / "calmesh"), "serve", "--config", str(served),
                               "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/healthz", server)
        yield Demo(root, environment.config_path, monday, port, env, [])
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        environment.close()


def _wait_for(url: str, server: subprocess.Popen[str]) -> None:
    """Until the server answers (a readiness wait bounded by the test timeout, not a timing check)."""
    while True:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else ""
            raise AssertionError(f"calmesh serve exited with {server.returncode}:\n{output}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            subprocess.run(["sleep", "0.2"], check=False)


def in_demo_week(text: str, demo: Demo) -> str:
    """Every ISO date moved by the whole weeks between the docs' week and the demo's."""
    shift = demo.monday - DOCS_MONDAY

    def moved(match: re.Match[str]) -> str:
        return (date.fromisoformat(match.group(0)) + shift).isoformat()

    return re.sub(r"(?<!\d)\d{4}-\d{2}-\d{2}(?!\d)", moved, text)


def runnable(command: Command, demo: Demo) -> str:
    text = RUN_AS[command.text][0] if command.text in RUN_AS else command.text
    text = in_demo_week(text, demo).replace("127.0.0.1:8765", f"127.0.0.1:{demo.port}")
    text = text.replace(".venv/bin/", f"{BIN}/")
    if re.search(r"\bUID\b", text):
        if not demo.uids:
            pytest.skip("needs the UID of the meeting booked by the documented `calmesh book` example")
        text = re.sub(r"\bUID\b", demo.uids[-1], text)
    return text


@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_documented_command(command: Command, demo: Demo) -> None:
    if command.text in NOT_RUN:
        pytest.skip(f"not run: {NOT_RUN[command.text]}")
    if command.text in RUN_AS and not RUN_AS[command.text][0]:
        assert httpx.get(f"http://127.0.0.1:{demo.port}/healthz", timeout=10).status_code < 500
        return
    text = runnable(command, demo)
    if shutil.which(text.split()[0], path=demo.env["PATH"]) is None:
        pytest.skip(f"{text.split()[0]} is not installed here")
    done = subprocess.run(["bash", "-c", text], cwd=ROOT, env=demo.env, capture_output=True, text=True,
                          timeout=240, check=False)
    output = done.stdout + done.stderr
    try:
        assert done.returncode == 0, f"exit {done.returncode}"
        assert output.strip(), "printed nothing"
        assert not [r for r in REFUSALS if r in output], "printed an error"
        if command.text in EXPECTED:
            assert EXPECTED[command.text] in output and "No suggestion" not in output, "not the documented result"
    except AssertionError as failure:
        message = f"{command.id}: `{text}`: {failure}\n{output[-3000:]}"
        if command.text in OPEN_ITEMS:
            pytest.xfail(f"{OPEN_ITEMS[command.text]}: {message[:500]}")
        raise AssertionError(message) from None
    if command.text in OPEN_ITEMS:
        return  # fixed meanwhile: passes (the entry in OPEN_ITEMS can go)
    uid = re.search(r"\bUID (\S+)", output)
    if text.startswith("calmesh book") and uid:
        demo.uids.append(uid.group(1))
