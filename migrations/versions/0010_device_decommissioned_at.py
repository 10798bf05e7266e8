"""Decommissioned devices stay in the registry, marked with when they left service.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 03:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    # A database made by create_all before it met Alembic has the column already.
    if "decommissioned_at" not in _columns("devices"):
        with op.batch_alter_table("devices", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("decommissioned_at", sa.DateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("decommissioned_at")
