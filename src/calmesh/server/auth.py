"""Who is asking: HTTP Basic and bearer tokens checked against the configured users.

Secrets are stored hashed (``pbkdf2_sha256$iterations$salt$hash``, hashlib's PBKDF2, compared in
constant time) or read from an environment variable (``password_env``). A user configured with
``password_env`` may also present that password as a bearer token, which is how the demo's one
password works on every door.

PBKDF2 is slow on purpose, too slow to run on every request of a busy Scheduling Assistant, so a
credential that verified once is remembered (by a keyed digest, never in clear) for a few minutes.
Failed attempts are never remembered and cost the full hash each time; the rate limiter bounds them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from calmesh.config import UserConfig, secret

SCHEME = "pbkdf2_sha256"
ITERATIONS = 260_000
REALM = "calmesh"
CHALLENGES = (f'Basic realm="{REALM}", charset="UTF-8"', f'Bearer realm="{REALM}"')
"""``WWW-Authenticate`` values sent with every 401 (one header each)."""


def hash_password(password: str, *, iterations: int = ITERATIONS, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{SCHEME}${iterations}${salt}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a ``hash_password`` string; False for any malformed hash."""
    try:
        scheme, iterations, salt, expected = stored.split("$")
        rounds = int(iterations)
        expected_bytes = bytes.fromhex(expected)
    except ValueError:
        return False
    if scheme != SCHEME or not 1 <= rounds <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return hmac.compare_digest(digest, expected_bytes)


@dataclass(frozen=True, slots=True)
class User:
    name: str
    sees_details_of: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Account:
    user: User
    password_hash: str | None
    password: str | None
    token_hash: str | None


class Authenticator:
    """Checks ``Authorization`` headers. Built once per server; reads ``password_env`` at start so
    a missing variable is a startup error, not a 401 at the first request."""

    def __init__(self, users: Sequence[UserConfig], *, remember_seconds: float = 300.0) -> None:
        self._accounts = {
            u.name: _Account(User(u.name, tuple(u.sees_details_of)), u.password_hash,
                             secret(u.password_env, f"server user {u.name}"), u.token_hash)
            for u in users
        }
        self._key = secrets.token_bytes(32)
        self._remember = remember_seconds
        self._verified: OrderedDict[bytes, tuple[User, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._accounts)

    def authenticate(self, authorization: str | None) -> User | None:
        """The user an ``Authorization`` header proves, or None (missing, malformed or wrong)."""
        if not authorization:
            return None
        memo = hmac.new(self._key, authorization.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            known = self._verified.get(memo)
            if known is not None and known[1] > now:
                return known[0]
        user = self._check(authorization)
        if user is not None:
            with self._lock:
                self._verified[memo] = (user, now + self._remember)
                while len(self._verified) > 4096:
                    self._verified.popitem(last=False)
        return user

    def _check(self, authorization: str) -> User | None:
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None
            name, sep, password = decoded.partition(":")
            account = self._accounts.get(name)
            if not sep or account is None:
                return None
            return account.user if self._password_ok(account, password) else None
        if scheme.lower() == "bearer" and value:
            for account in self._accounts.values():
                if account.token_hash and verify_password(value, account.token_hash):
                    return account.user
                if account.password is not None and hmac.compare_digest(account.password.encode(), value.encode()):
                    return account.user
        return None

    @staticmethod
    def _password_ok(account: _Account, password: str) -> bool:
        if account.password is not None and hmac.compare_digest(account.password.encode(), password.encode()):
            return True
        return account.password_hash is not None and verify_password(password, account.password_hash)
