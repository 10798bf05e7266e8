"""Alembic environment: URL from IoT Care settings, metadata from models."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, TypeDecorator

import models
from core.db import make_engine
from core.settings import get_settings
from models.base import comparison_filter

config = context.config
target_metadata = models.Base.metadata


def _render_item(type_: str, obj: Any, _autogen_context: Any) -> str | bool:
    """Write our TypeDecorators as their plain SQLAlchemy types, so migrations stand alone."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    if type_ == "type":
        # JSONB's repr names Text() unqualified; make the generated file import it.
        _autogen_context.imports.add("from sqlalchemy import Text")
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
        include_object=comparison_filter(connection.dialect.name),
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade head --sql`)."""
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run against a live database: the caller's connection, or one made from settings."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    settings = get_settings()
    engine = make_engine(settings, config.get_main_option("sqlalchemy.url") or None)
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
