"""Alert rules: data an operator edits in the app, not code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.timeutil import utcnow
from models.base import Base, JSONType, StrEnumType, UTCDateTime
from models.enums import RuleKind, ScopeType, Severity


class AlertRule(Base):
    """One rule: its kind, validated parameters, severity, scope and notification route."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[RuleKind] = mapped_column(StrEnumType(RuleKind, 32))
    # Validated against the kind's schema in core before it is stored.
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    severity: Mapped[Severity] = mapped_column(StrEnumType(Severity, 16))
    scope_type: Mapped[ScopeType] = mapped_column(
        StrEnumType(ScopeType, 16), default=ScopeType.SITE
    )
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    device_type: Mapped[str | None] = mapped_column(String(32))
    # Escalation route: [{"tier": 1, "after_minutes": 0, "channels": [...]}, ...].
    route: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    auto_resolve: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RuleOverride(Base):
    """Per-resident parameters that replace a rule's defaults (e.g. a higher heart-rate limit)."""

    __tablename__ = "rule_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), index=True
    )
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id", ondelete="CASCADE"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    note: Mapped[str | None] = mapped_column(Text)
