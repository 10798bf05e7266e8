"""Device status history (device_status_changes) and devices.status_since.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("device_status_changes",)


def upgrade() -> None:
    op.create_table(
        "device_status_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("firmware", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_status_changes_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_status_changes")),
        sa.UniqueConstraint("device_id", "at", name=op.f("uq_device_status_changes_device_id_at")),
    )
    # Existing devices: when their status began is not known (None), so "offline for N
    # minutes" counts from their last message until their next change is recorded. A database
    # made by create_all before it met Alembic has the column already.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("devices")}
    if "status_since" in columns:
        return
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("status_since")
    op.drop_table("device_status_changes")
