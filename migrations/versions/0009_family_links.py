"""Family users: which resident(s) a family user follows.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 03:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("family_links",)


def upgrade() -> None:
    op.create_table(
        "family_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("relation", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_family_links_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_family_links_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_family_links")),
        sa.UniqueConstraint(
            "user_id", "resident_id", name=op.f("uq_family_links_user_id_resident_id")
        ),
    )
    with op.batch_alter_table("family_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_family_links_resident_id"), ["resident_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_family_links_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("family_links")
