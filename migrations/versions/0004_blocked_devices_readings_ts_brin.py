"""Blocked devices (rejected by an operator), and a BRIN index on readings.ts (PostgreSQL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 21:24:04.176803
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("blocked_devices",)


def upgrade() -> None:
    op.create_table(
        "blocked_devices",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("blocked_by", sa.Integer(), nullable=True),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["blocked_by"],
            ["users.id"],
            name=op.f("fk_blocked_devices_blocked_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_blocked_devices_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_blocked_devices")),
    )
    with op.batch_alter_table("blocked_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blocked_devices_site_id"), ["site_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # BRIN builds in one pass over the table and stays a few pages large; it takes a SHARE
        # lock, so ingest's writes wait while it builds (seconds per hundred million rows).
        # IF NOT EXISTS: a database made by create_all before it met Alembic may have it already.
        op.create_index(
            "ix_readings_ts_brin",
            "readings",
            ["ts"],
            unique=False,
            postgresql_using="brin",
            postgresql_with={"autosummarize": "on"},
            if_not_exists=True,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_readings_ts_brin", table_name="readings", postgresql_using="brin")
    with op.batch_alter_table("blocked_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocked_devices_site_id"))
    op.drop_table("blocked_devices")
