"""Updates under way: a copy's new content hash is recorded just before calmesh updates it, so
that a run killed once the server stored the update, before calmesh recorded it, does not leave
calmesh's own write to be read as an edit made there (which would outrank a deletion).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sync_copies") as batch:
        batch.add_column(sa.Column("writing_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_copies") as batch:
        batch.drop_column("writing_hash")
