"""Pending copies: a copy is recorded before the write that creates it, with a change token from
before that write, so that a run killed in between can be told apart from a deletion.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_copies") as batch:
        batch.add_column(sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("evidence_token", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_copies") as batch:
        batch.drop_column("evidence_token")
        batch.drop_column("pending")
