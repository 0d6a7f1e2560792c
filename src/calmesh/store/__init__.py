"""The state store: SQLAlchemy tables, Alembic migrations and the repository the engine uses.

SQLite by default, PostgreSQL by URL; see :mod:`calmesh.store.db` and
:mod:`calmesh.store.repository`.
"""
