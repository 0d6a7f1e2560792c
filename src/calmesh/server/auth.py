"""Who is asking: HTTP Basic and bearer tokens checked against the configured users.

Secrets are stored hashed or read from an environment variable (``password_env``). New hashes
(``calmesh hash-password``) are Argon2id (argon2-cffi), memory-hard so that a stolen
configuration is slow to guess on GPUs; hashes from earlier versions
(``pbkdf2_sha256$iterations$salt$hash``) still verify. A user configured with ``password_env``
may also present that password as a bearer token, which is how the demo's one password works on
every door.

Hashes are slow on purpose, too slow to run on every request of a busy Scheduling Assistant, so a
credential that verified once is remembered (by a keyed digest, never in clear) for a few minutes:
:meth:`Authenticator.remembered` is cheap and runs on the event loop. :meth:`Authenticator.verify`
costs a hash and blocks: the server runs it on a small worker pool and bounds failures per client
(:mod:`calmesh.server.limits`). Every Basic attempt costs exactly one hash verification, against a
dummy hash of the configured kind and cost when the name is unknown or has no hash, so a name's
existence cannot be told from the time an answer takes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import astuple, dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from calmesh.config import ConfigError, UserConfig, secret

PBKDF2 = "pbkdf2_sha256"
REALM = "calmesh"
CHALLENGES = (f'Basic realm="{REALM}", charset="UTF-8"', f'Bearer realm="{REALM}"')
"""``WWW-Authenticate`` values sent with every 401 (one header each)."""
SCOPE_KEY = "calmesh.user"
"""Where the limits middleware leaves the request's proven :class:`User` (or None) in the ASGI scope."""


def hash_password(password: str, *, time_cost: int = argon2.DEFAULT_TIME_COST,
                  memory_kib: int = argon2.DEFAULT_MEMORY_COST,
                  parallelism: int = argon2.DEFAULT_PARALLELISM) -> str:
    """An Argon2id hash (argon2-cffi's encoded form, parameters included) for ``server.users``."""
    return argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                 parallelism=parallelism).hash(password)


def pbkdf2_hash(password: str, iterations: int) -> str:
    """A hash in the earlier PBKDF2 format; only made for the dummy that equalises work when the
    configured users still have such hashes (and by tests, to stand for those users)."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"{PBKDF2}${iterations}${salt}${digest.hex()}"


def cost_of(stored: str) -> int | argon2.Parameters:
    """The cost of a stored hash: PBKDF2 rounds or Argon2 parameters (``ValueError`` when it is
    not a hash calmesh verifies)."""
    if stored.startswith("$argon2"):
        try:
            return argon2.extract_parameters(stored)
        except InvalidHashError:
            raise ValueError("malformed Argon2 hash") from None
    scheme, iterations, salt, expected = stored.split("$")  # ValueError when not four parts
    rounds = int(iterations)
    bytes.fromhex(expected)
    if scheme != PBKDF2 or not 1 <= rounds <= 10_000_000 or not salt:
        raise ValueError("not a pbkdf2_sha256 hash")
    return rounds


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches an Argon2 or PBKDF2 hash; False for any malformed hash.
    The one place a hash is computed (tests count calls here to check equal work)."""
    try:
        cost = cost_of(stored)
    except ValueError:
        return False
    if isinstance(cost, argon2.Parameters):
        try:
            return argon2.PasswordHasher().verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    _, _, salt, expected = stored.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), cost)
    return hmac.compare_digest(digest, bytes.fromhex(expected))


def _dummy_hash(stored: Sequence[str]) -> str:
    """A hash of a random secret with the kind and cost most configured hashes have: verifying it
    costs what verifying a real user's hash costs."""
    costs = Counter(c if isinstance(c, int) else astuple(c) for c in map(cost_of, stored))
    if not costs:
        return hash_password(secrets.token_urlsafe(16))
    cost = costs.most_common(1)[0][0]
    if isinstance(cost, int):
        return pbkdf2_hash(secrets.token_urlsafe(16), cost)
    return argon2.PasswordHasher.from_parameters(argon2.Parameters(*cost)).hash(secrets.token_urlsafe(16))


def claimed_name(authorization: str) -> str | None:
    """The user name a Basic header claims (before any check), None for other schemes."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[0]


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
    """Checks ``Authorization`` headers. Built once per server; reads ``password_env`` and checks
    every stored hash at start, so a missing variable or a mangled hash is a startup error, not a
    401 at the first request."""

    def __init__(self, users: Sequence[UserConfig], *, remember_seconds: float = 300.0) -> None:
        self._accounts = {
            u.name: _Account(User(u.name, tuple(u.sees_details_of)), u.password_hash,
                             secret(u.password_env, f"server user {u.name}"), u.token_hash)
            for u in users
        }
        hashes = []
        for u in users:
            for field, value in (("password_hash", u.password_hash), ("token_hash", u.token_hash)):
                if value is None:
                    continue
                try:
                    cost_of(value)
                except ValueError:
                    raise ConfigError(f"server user {u.name}: {field} is not a hash calmesh can verify; "
                                      "make one with `calmesh hash-password`") from None
                if field == "password_hash":
                    hashes.append(value)
        self._dummy = _dummy_hash(hashes)
        self._key = secrets.token_bytes(32)
        self._remember = remember_seconds
        self._verified: OrderedDict[bytes, tuple[User, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._accounts)

    def _memo(self, authorization: str) -> bytes:
        return hmac.new(self._key, authorization.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def remembered(self, authorization: str) -> User | None:
        """The user this exact header proved in the last few minutes, else None. Cheap."""
        with self._lock:
            known = self._verified.get(self._memo(authorization))
        return known[0] if known is not None and known[1] > time.monotonic() else None

    def verify(self, authorization: str) -> User | None:
        """The user an ``Authorization`` header proves, or None (malformed or wrong). Blocking: it
        computes hashes. A success is remembered for :meth:`remembered`."""
        user = self._check(authorization)
        if user is not None:
            with self._lock:
                self._verified[self._memo(authorization)] = (user, time.monotonic() + self._remember)
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
            return self._basic(self._accounts.get(name), password, bool(sep))
        if scheme.lower() == "bearer" and value:
            found = None
            for account in self._accounts.values():  # every token hash, whichever matches
                if account.token_hash and verify_password(value, account.token_hash):
                    found = found or account.user
                if account.password is not None and hmac.compare_digest(account.password.encode(), value.encode()):
                    found = found or account.user
            return found
        return None

    def _basic(self, account: _Account | None, password: str, has_password: bool) -> User | None:
        """Exactly one hash verification whatever the name: the account's hash, else the dummy."""
        stored = account.password_hash if account is not None and account.password_hash else None
        hash_ok = verify_password(password, stored or self._dummy)
        if account is None or not has_password:
            return None
        if stored is not None and hash_ok:
            return account.user
        if account.password is not None and hmac.compare_digest(account.password.encode(), password.encode()):
            return account.user
        return None
