"""Alembic environment for the calmesh state store.

calmesh runs migrations itself (``calmesh.store.db.upgrade``), handing over an open connection,
so this environment has no URL of its own and no offline (SQL script) mode.
"""

from alembic import context

from calmesh.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run calmesh migrations through calmesh.store.db.upgrade(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
