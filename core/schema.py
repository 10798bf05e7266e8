"""Schema migrations: upgrade, downgrade, stamp, and adopting databases that predate Alembic."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from core.errors import SchemaError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Each revision module lists the tables it creates in TABLES; that is how a database created
# without Alembic is matched to a revision.
INITIAL_REVISION = "0001"


def alembic_config() -> Config:
    """An Alembic config pointing at migrations/, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


def head_revision() -> str:
    """The newest revision in migrations/."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it has no version table."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _app_tables() -> set[str]:
    import models

    return set(models.Base.metadata.tables)


def _run(engine: Engine, action: str, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate to `revision`; a database with our tables but no version is stamped first.

    Returns what was done: "created", "stamped", "upgraded" or "current".
    """
    before = current_revision(engine)
    existing = set(inspect(engine).get_table_names())
    outcome = "upgraded"
    if before is None:
        ours = existing & _app_tables()
        if ours:
            _adopt_legacy(engine, ours)
            outcome = "stamped"
        else:
            outcome = "created"
    elif before == head_revision() and revision == "head":
        return "current"
    _run(engine, "upgrade", revision)
    log.info("database migrated", extra={"from_revision": before, "to_revision": revision})
    return outcome


def _adopt_legacy(engine: Engine, present: set[str]) -> None:
    """Stamp a pre-Alembic database at the newest revision whose tables it already has."""
    revision = legacy_revision(present)
    if revision is None:
        script = ScriptDirectory.from_config(alembic_config())
        missing = sorted(_tables_created_by(script, INITIAL_REVISION) - present)
        raise SchemaError(
            "The database has some IoT Care tables but no migration version, and these are "
            f"missing: {', '.join(missing)}. Refusing to guess; restore the tables or use an "
            "empty database."
        )
    log.warning(
        "database predates Alembic: stamping revision %s without changing any table", revision
    )
    _run(engine, "stamp", revision)


def legacy_revision(present: set[str]) -> str | None:
    """The newest table-creating revision whose tables (and all earlier ones') all exist."""
    script = ScriptDirectory.from_config(alembic_config())
    candidate = None
    for rev in reversed(list(script.walk_revisions("base", "heads"))):
        created = _tables_created_by(script, rev.revision)
        if not created:
            continue
        if not created <= present:
            break
        candidate = rev.revision
    return candidate


def _tables_created_by(script: ScriptDirectory, revision: str) -> set[str]:
    module = script.get_revision(revision).module
    return set(getattr(module, "TABLES", ()))


def tables_created_by(revision: str) -> set[str]:
    """The tables a revision creates (its module's TABLES)."""
    return _tables_created_by(ScriptDirectory.from_config(alembic_config()), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to `revision` ("base" removes every table)."""
    _run(engine, "downgrade", revision)


def stamp(engine: Engine, revision: str = "head") -> None:
    """Record `revision` as current without running any migration."""
    _run(engine, "stamp", revision)
