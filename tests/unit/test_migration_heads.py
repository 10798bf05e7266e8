"""Migrations form one line: two people adding a revision at once must be reconciled first."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from core.schema import alembic_config


def test_one_head_revision() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1, f"several head revisions {heads}: set one's down_revision to the other"
