"""Daily care reports, learned routines per resident, and job watermarks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 01:15:39.354920
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("care_reports", "job_watermarks", "resident_routines")


def upgrade() -> None:
    op.create_table(
        "job_watermarks",
        sa.Column("job", sa.String(length=100), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_watermarks")),
    )
    op.create_table(
        "care_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_care_reports_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_reports")),
        sa.UniqueConstraint("resident_id", "day", name=op.f("uq_care_reports_resident_id_day")),
    )
    with op.batch_alter_table("care_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_care_reports_resident_id"), ["resident_id"], unique=False
        )

    op.create_table(
        "resident_routines",
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("usual_gap_minutes", sa.Float(), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_resident_routines_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resident_id", "hour", name=op.f("pk_resident_routines")),
    )


def downgrade() -> None:
    op.drop_table("resident_routines")
    with op.batch_alter_table("care_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_reports_resident_id"))

    op.drop_table("care_reports")
    op.drop_table("job_watermarks")
