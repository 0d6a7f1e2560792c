"""Meeting people: the organiser's and attendees' entries (role, answer) in the identity record,
for platforms that keep no ORGANIZER or ATTENDEE (an in-house table), so a move re-invites them
and a REPLY has an attendee to update.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting_identities") as batch:
        batch.add_column(sa.Column("people", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meeting_identities") as batch:
        batch.drop_column("people")
