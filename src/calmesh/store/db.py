"""Connecting to the state store and bringing its schema up to date.

SQLite is the default (one file next to the config, WAL so that ``calmesh status`` can read while
a sync writes, a busy timeout so that two processes wait instead of failing); PostgreSQL is used
by URL (``postgresql+psycopg://user@host/db``) when several workers share the state.

Migrations run programmatically from the package's own files: no ``alembic.ini`` is needed where
calmesh is installed. Alembic itself is imported only when a store needs migrating: importing it
(and the SQLAlchemy dialects it loads) takes longer than a small ``calmesh sync --once``, so a store
already at :data:`HEAD_REVISION` is recognised with one plain query.
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD_REVISION = "0011"
"""The newest migration's revision id (tests/store checks it against Alembic's view of MIGRATIONS:
a new migration must update it, or stores would be taken as up to date without it)."""
VERSION_TABLE = "alembic_version"
SQLITE_BUSY_TIMEOUT_MS = 10_000
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Every engine :func:`make_engine` made in this process and not yet collected."""


class StoreError(Exception):
    """The state store cannot be opened or migrated; the message says which URL and why."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite connections get WAL, a busy timeout and foreign keys."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise StoreError(f"not a database URL: {url!r} ({exc})") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(parsed, pool_pre_ping=True, **kwargs)
    _ENGINES.add(engine)
    return engine


def close_engines() -> None:
    """Close the pooled connections of every store engine of this process, as a command ends:
    SQLite then checkpoints its WAL into the database file (the last connection to close does)."""
    for engine in list(_ENGINES):
        engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL (readers never wait for the writer) with ``synchronous=NORMAL``: a commit is durable
    against the process being killed at any instant, which is what sync's crash safety relies
    on; only a power loss may take back the last commits, and those records are rebuilt from
    the copies' markers. FULL would fsync every commit: a sync saves a record per new copy."""
    cursor = dbapi_connection.cursor()
    try:
        if cursor.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent: an up-to-date store is left alone)."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The head of the migrations folder, as Alembic reads it (what :data:`HEAD_REVISION` must be)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def stored_revisions(engine: Engine) -> set[str]:
    """The revisions recorded in the store's version table (none for a new database), read with
    plain SQLAlchemy so that checking an up-to-date store does not import Alembic."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return set()
        return set(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def is_up_to_date(engine: Engine) -> bool:
    return stored_revisions(engine) == {HEAD_REVISION}


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def open_store(url: str, *, migrate: bool = True) -> sessionmaker[Session]:
    """Engine + up-to-date schema + session factory for ``url``: what the CLI and server call."""
    engine = make_engine(url)
    if not is_up_to_date(engine):
        if not migrate:
            raise StoreError(f"state store {engine.url.render_as_string(hide_password=True)} needs "
                             "migrating: run `calmesh` once with write access to upgrade it")
        upgrade(engine)
    return session_factory(engine)
