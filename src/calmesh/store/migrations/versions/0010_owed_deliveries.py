"""Deliveries owed: a copy of a booked meeting that calmesh could not write into an attendee's
calendar because the platform did not answer (or the copy changed under the write) is recorded as
owed, with the failure, so that it is written once the platform answers again instead of the
attendee keeping the old time. Copies recorded before this revision owe nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_copies") as batch:
        batch.add_column(sa.Column("owed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meeting_copies") as batch:
        batch.drop_column("error")
        batch.drop_column("attempts")
        batch.drop_column("owed")
