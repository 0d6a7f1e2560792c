"""Who deleted a copy: a deleted copy found gone from its member (its user's deletion, not
calmesh's) is marked, so that the same object put back there (out of a trash bin, an undo) makes
the event live again, while a copy calmesh deleted that turns up again is still a stale copy.
Copies deleted before this revision are taken as calmesh's (the earlier behaviour). And
calmesh's own deletion under way is recorded just before it is made, so that a run killed in
between does not leave calmesh's deletion to be taken for someone else's.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_copies") as batch:
        batch.add_column(sa.Column("deleted_there", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("deleting", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("sync_copies") as batch:
        batch.drop_column("deleting")
        batch.drop_column("deleted_there")
