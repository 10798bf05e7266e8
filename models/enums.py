"""Closed vocabularies of the data model, stored as readable strings."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a signed-in person may do."""

    CAREGIVER = "caregiver"
    OPERATOR = "operator"
    ADMIN = "admin"
    FAMILY = "family"  # a relative: sees only their family member's state and daily report


class DeviceStatus(StrEnum):
    """Connection state of a device as last reported (status topic or last will)."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


class Severity(StrEnum):
    """How urgent an alert is."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    """Alert lifecycle: open, then acknowledged, then resolved."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class RuleKind(StrEnum):
    """Kinds of alert rule an operator can configure."""

    THRESHOLD = "threshold"
    EVENT = "event"
    INACTIVITY = "inactivity"
    DEVICE_OFFLINE = "device_offline"
    NIGHT_EXIT = "night_exit"
    BATTERY_LOW = "battery_low"
    DATA_QUALITY = "data_quality"


class ScopeType(StrEnum):
    """What a rule applies to."""

    SITE = "site"
    RESIDENT = "resident"
    DEVICE_TYPE = "device_type"


class Channel(StrEnum):
    """Ways a notification reaches a person."""

    INBOX = "inbox"
    EMAIL = "email"
    TELEGRAM = "telegram"
    WEBHOOK = "webhook"
    NTFY = "ntfy"  # push to the ntfy app on a phone (a topic on an ntfy server)
    SMS = "sms"  # text message through the configured SMS gateway


class NotificationStatus(StrEnum):
    """Outbox row state."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    HELD = "held"
    DEAD = "dead"
    CANCELLED = "cancelled"


class NotificationPurpose(StrEnum):
    """Why a notification is sent."""

    NEW = "new"
    # A critical alert that happened again (a new event) while still open or acknowledged.
    REPEAT = "repeat"
    ESCALATION = "escalation"
    RESOLVED = "resolved"
    REPORT = "report"


class CommandStatus(StrEnum):
    """Actuator command state, through cmd/ack."""

    PENDING = "pending"
    SENT = "sent"
    ACKED = "acked"
    FAILED = "failed"
    EXPIRED = "expired"


class RollupPeriod(StrEnum):
    """Bucket width of a rollup."""

    HOUR = "hour"
    DAY = "day"
