"""State each ingest replica reports, for the operator pages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.timeutil import utcnow
from models.base import Base, UTCDateTime


class IngestReplica(Base):
    """One ingest process, keyed by its MQTT client id; updated on every heartbeat."""

    __tablename__ = "ingest_replicas"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    connected: Mapped[bool] = mapped_column(Boolean, default=False)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    written: Mapped[int] = mapped_column(BigInteger, default=0)
    dead_lettered: Mapped[int] = mapped_column(BigInteger, default=0)
    pending: Mapped[int] = mapped_column(Integer, default=0)
    spool_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    last_error: Mapped[str | None] = mapped_column(Text)
