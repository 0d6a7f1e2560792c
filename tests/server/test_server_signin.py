"""Sign-in limits on the running app: lock-outs, guessing, equal work, and the event loop.

The app is driven in-process with httpx's ASGITransport, which lets each request choose its client
address; the app's clock is frozen, so back-off never runs out during a test (no timing in any
assertion: a flood's latency cost is measured in ``bench/auth_flood.py``).
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette

from calmesh.config import ConfigError, UserConfig, parse_config
from calmesh.server import auth
from calmesh.server.app import create_app
from calmesh.server.auth import Authenticator, pbkdf2_hash
from calmesh.server.limits import SignInLimits
from calmesh.services.hub import Hub

from .conftest import DEMO, LEAD, OPS, OPS_TOKEN, PASSWORD_ENV, config_text, seed_ics

PEOPLE = "/api/v1/people"
ATTACKERS = ("10.6.6.1", "10.6.6.2", "10.6.6.3")
OLD = ("old", "old-secret")
"""A user whose hash is in the earlier PBKDF2 format."""


def basic(name: str, password: str | None = None) -> str:
    raw = name if password is None else f"{name}:{password}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


@pytest.fixture
def app(tmp_path: Path, slow_feed: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Starlette]:
    monkeypatch.setenv(PASSWORD_ENV, DEMO[1])
    seed_ics(tmp_path)
    extra = f"""[[server.users]]
name = "{OLD[0]}"
password_hash = "{pbkdf2_hash(OLD[1], 1000)}"
"""
    text = config_text(slow_feed).replace("[platforms.zoho]", extra + "[platforms.zoho]", 1)
    hub = Hub(parse_config(text, tmp_path / "calmesh.toml"))
    yield create_app(hub, clock=lambda: 1000.0)
    hub.close()


Ask = Callable[..., Awaitable[httpx.Response]]


def run(app: Starlette, test: Callable[[Ask], Awaitable[None]]) -> None:
    """Run ``test`` with ``ask(address, authorization=None, path=PEOPLE)`` bound to ``app``."""

    async def ask(address: str, authorization: str | None = None, path: str = PEOPLE) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        headers = {"Authorization": authorization} if authorization else {}
        async with httpx.AsyncClient(transport=transport, base_url="http://calmesh.test") as client:
            return await client.get(path, headers=headers)

    anyio.run(test, ask)


def test_failures_in_a_colleagues_name_never_lock_them_out(app: Starlette) -> None:
    async def test(ask: Ask) -> None:
        assert (await ask(ATTACKERS[0], basic(*LEAD))).status_code == 200  # remembered from here
        assert (await ask("10.6.6.9", basic(OPS[0], "one-typo"))).status_code == 401
        verified = []
        for address in ATTACKERS:  # the report's attack: the name, no password; then guesses
            codes = [(await ask(address, basic(OPS[0]))).status_code for _ in range(20)]
            codes += [(await ask(address, basic(OPS[0], f"guess{i}"))).status_code for i in range(20)]
            assert codes == sorted(codes) and set(codes) == {401, 429}  # verified, then refused at once
            verified.append(codes.count(401))
        # the first address until its own back-off (5 free failures); the next ones until the
        # name's (10 free failures in all), then one each: they had not failed for "ops" before
        assert verified == [6, 4, 1]
        refused = await ask(ATTACKERS[0], basic(OPS[0], "guess-again"))
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        # the address that failed once for "ops" now waits for the name's back-off too ...
        assert (await ask("10.6.6.9", basic(*OPS))).status_code == 429
        # ... but the real user from a clean address is verified, and a remembered credential
        # passes even from an attacker's address
        assert (await ask("10.1.1.1", basic(*OPS))).status_code == 200
        assert (await ask(ATTACKERS[0], basic(*LEAD))).status_code == 200
        assert (await ask(ATTACKERS[0], basic(*OPS))).status_code == 200  # remembered since 10.1.1.1
        assert (await ask("10.1.1.2", basic(OPS[0], "wrong"))).status_code == 401  # verified, not 429
        assert (await ask("10.1.1.3", basic(*DEMO))).status_code == 200  # other names unaffected

    run(app, test)


def test_wrong_bearer_tokens_back_off_by_address_not_by_token(app: Starlette) -> None:
    async def test(ask: Ask) -> None:
        codes = [(await ask(ATTACKERS[0], f"Bearer guess-{i}")).status_code for i in range(40)]
        assert codes == [401] * (SignInLimits.ADDRESS_FREE + 1) + [429] * (39 - SignInLimits.ADDRESS_FREE)
        assert (await ask("10.1.1.1", f"Bearer {OPS_TOKEN}")).status_code == 200
        assert (await ask(ATTACKERS[0])).status_code == 401  # no credentials: not a sign-in at all

    run(app, test)


def test_unknown_and_known_names_cost_one_verification_of_the_same_kind(
        app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[str] = []
    real = auth.verify_password

    def counting(password: str, stored: str) -> bool:
        verified.append(stored.rpartition("$")[0].rpartition("$")[0])  # kind and cost, no salt
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting)
    authenticator: Authenticator = app.state.ctx.auth
    for header in (basic("nobody", "x"), basic(OPS[0], "x"), basic(DEMO[0], "x"), basic(OPS[0]),
                   basic("nobody"), basic(*DEMO), basic(*OPS)):
        verified.clear()
        authenticator.verify(header)
        assert verified == ["$argon2id$v=19$m=8,t=1,p=1"], header

    old = Authenticator([UserConfig(name=OLD[0], password_hash=pbkdf2_hash(OLD[1], 1000))])
    for header in (basic("nobody", "x"), basic(OLD[0], "x"), basic(*OLD)):
        verified.clear()
        old.verify(header)
        assert verified == ["pbkdf2_sha256$1000"], header  # the dummy matches the configured kind


def test_verification_runs_off_the_event_loop_one_per_address(
        app: Starlette, monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def stuck(password: str, stored: str) -> bool:
        calls.append(password)
        started.set()
        release.wait(timeout=60)  # a safety net only: the test sets it
        return False

    async def test(ask: Ask) -> None:
        assert (await ask("10.1.1.1", basic(*LEAD))).status_code == 200  # remembered before the flood
        monkeypatch.setattr(auth, "verify_password", stuck)
        answers: list[int] = []

        async def wrong() -> None:
            answers.append((await ask(ATTACKERS[0], basic(OPS[0], "wrong"))).status_code)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wrong)
            await anyio.to_thread.run_sync(started.wait)
            # a verification is in flight in a worker thread; the loop still answers everyone
            assert (await ask("10.1.1.5", path="/healthz")).status_code == 200
            assert (await ask("10.1.1.1", basic(*LEAD))).status_code == 200
            second = await ask(ATTACKERS[0], basic(OPS[0], "other"))
            assert second.status_code == 429 and "already being checked" in second.json()["detail"]
            tasks.start_soon(wrong)  # the same header again waits for the same verification
            await anyio.wait_all_tasks_blocked()
            release.set()
        assert answers == [401, 401] and calls == ["wrong"]

    run(app, test)


def test_argon2_for_new_hashes_and_earlier_pbkdf2_hashes_still_accepted(app: Starlette) -> None:
    async def test(ask: Ask) -> None:
        assert (await ask("10.1.1.1", basic(*OLD))).status_code == 200
        assert (await ask("10.1.1.2", basic(OLD[0], "wrong"))).status_code == 401
        assert (await ask("10.1.1.3", basic(*OPS))).status_code == 200  # an Argon2id hash (conftest)

    run(app, test)
    assert auth.hash_password("x", time_cost=1, memory_kib=8, parallelism=1).startswith("$argon2id$")


def test_a_hash_calmesh_cannot_verify_is_a_startup_error() -> None:
    with pytest.raises(ConfigError, match="calmesh hash-password"):
        Authenticator([UserConfig(name="x", password_hash="md5$1$a$b")])
