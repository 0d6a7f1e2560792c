"""Who is changing a meeting now: a process moving, cancelling or answering a meeting, or writing
a copy owed to it, holds its record for a while (a random token and a time it lapses), so that
another process does not change it meanwhile and write an older version last. A hold left by a
process that died lapses on its own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_identities") as batch:
        batch.add_column(sa.Column("held_by", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("held_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meeting_identities") as batch:
        batch.drop_column("held_until")
        batch.drop_column("held_by")
