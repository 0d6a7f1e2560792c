"""Sync runs that left their group at rest: the fingerprint of the group's configuration under
which a run found nothing left to do (see ``SyncEngine``: the next run, if every change feed is
quiet, then skips loading the group's state and planning).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sync_runs", sa.Column("settled", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs") as batch:
        batch.drop_column("settled")
