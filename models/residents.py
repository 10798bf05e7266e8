"""Residents, which caregivers look after them and which family users follow them."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.timeutil import utcnow
from models.base import Base, UTCDateTime


class Resident(Base):
    """A person IoT Care watches over."""

    __tablename__ = "residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    room: Mapped[str | None] = mapped_column(String(64))
    # None means "the site's timezone".
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Hours in which inactivity is unusual, local time; may wrap past midnight.
    active_start: Mapped[time] = mapped_column(Time, default=time(7, 0))
    active_end: Mapped[time] = mapped_column(Time, default=time(22, 0))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    care_notes: Mapped[str | None] = mapped_column(Text)
    # False once discharged: data kept, windowed rules and lists skip them.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaregiverAssignment(Base):
    """A caregiver is responsible for a resident; caregivers see only their residents."""

    __tablename__ = "caregiver_assignments"
    __table_args__ = (UniqueConstraint("user_id", "resident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    # 1 = caregiver on duty, 2 = supervisor, ... (escalation tiers).
    tier: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FamilyLink(Base):
    """A family user follows a resident: sees their state and gets their daily report."""

    __tablename__ = "family_links"
    __table_args__ = (UniqueConstraint("user_id", "resident_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    # How they are related ("daughter"), shown to the care team.
    relation: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
