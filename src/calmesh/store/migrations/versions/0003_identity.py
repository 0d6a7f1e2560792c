"""Meeting identities: who organises each meeting calmesh booked, and every copy it wrote.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=False),
        sa.Column("organizer", sa.String(length=320), nullable=False),
        sa.Column("platform", sa.String(length=200), nullable=False),
        sa.Column("calendar", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_identities")),
        sa.UniqueConstraint("uid", name=op.f("uq_meeting_identities_uid")),
    )
    op.create_table(
        "meeting_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("platform", sa.String(length=200), nullable=False),
        sa.Column("calendar", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Text(), nullable=True),
        sa.Column("marker", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["meeting_id"], ["meeting_identities.id"],
                                name=op.f("fk_meeting_copies_meeting_id_meeting_identities"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_copies")),
        sa.UniqueConstraint("meeting_id", "platform", "calendar", name=op.f("uq_meeting_copies_meeting_id")),
    )
    op.create_index("ix_meeting_copies_place", "meeting_copies", ["platform", "calendar"])


def downgrade() -> None:
    op.drop_index("ix_meeting_copies_place", table_name="meeting_copies")
    op.drop_table("meeting_copies")
    op.drop_table("meeting_identities")
