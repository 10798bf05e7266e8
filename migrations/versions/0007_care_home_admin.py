"""Care home administration: site contacts, discharge time, emergency contacts, care notes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 02:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("emergency_contacts", "care_notes")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    op.create_table(
        "emergency_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("relation", sa.String(length=64), nullable=True),
        sa.Column("phone", sa.String(length=64), nullable=True),
        sa.Column("email", sa.String(length=255), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_emergency_contacts_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_contacts")),
    )
    with op.batch_alter_table("emergency_contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_emergency_contacts_resident_id"), ["resident_id"], unique=False
        )
    op.create_table(
        "care_notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("author_name", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_care_notes_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"],
            ["residents.id"],
            name=op.f("fk_care_notes_resident_id_residents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_notes")),
    )
    with op.batch_alter_table("care_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_care_notes_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_care_notes_resident_id"), ["resident_id"], unique=False
        )
    # A database made by create_all before it met Alembic has the columns already.
    if "contacts" not in _columns("sites"):
        with op.batch_alter_table("sites", schema=None) as batch_op:
            batch_op.add_column(sa.Column("contacts", sa.Text(), nullable=True))
    if "discharged_at" not in _columns("residents"):
        with op.batch_alter_table("residents", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("discharged_at", sa.DateTime(timezone=True), nullable=True)
            )


def downgrade() -> None:
    with op.batch_alter_table("residents", schema=None) as batch_op:
        batch_op.drop_column("discharged_at")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("contacts")
    with op.batch_alter_table("care_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_care_notes_resident_id"))
        batch_op.drop_index(batch_op.f("ix_care_notes_at"))
    op.drop_table("care_notes")
    with op.batch_alter_table("emergency_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_emergency_contacts_resident_id"))
    op.drop_table("emergency_contacts")
