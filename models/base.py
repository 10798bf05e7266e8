"""Declarative base with a naming convention, and the column types every model shares."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Index, MetaData, String, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names, so migrations on SQLite (batch mode) and PostgreSQL agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every IoT Care ORM class."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value!r}: IoT Care stores aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always hand back an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class StrEnumType(TypeDecorator[Any]):
    """An enum stored as its plain string value in a VARCHAR column (readable by hand)."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[enum.StrEnum], length: int = 32) -> None:
        super().__init__(length=length)
        self.enum_class = enum_class

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Store the enum's value; reject strings outside the enum."""
        if value is None:
            return None
        return self.enum_class(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        """Read back an enum member."""
        return None if value is None else self.enum_class(value)


def only_on(dialect: str, index: Index) -> Index:
    """An index that exists on one backend only (e.g. a PostgreSQL BRIN index).

    `ddl_if` keeps create_all from making it elsewhere; the `info` mark tells migrations/env.py to
    leave it out of the model/migration comparison on the other backends (Alembic's autogenerate
    does not honour `ddl_if`).
    """
    index.info["only_on"] = dialect
    return index.ddl_if(dialect=dialect)


def comparison_filter(dialect: str) -> Callable[..., bool]:
    """Alembic's include_object: leave indexes meant for another backend out of the comparison."""

    def include(obj: Any, _name: str | None, type_: str, reflected: bool, _other: Any) -> bool:
        if type_ == "index" and not reflected:
            wanted = obj.info.get("only_on")
            return wanted is None or wanted == dialect
        return True

    return include
