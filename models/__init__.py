"""SQLAlchemy ORM of IoT Care; importing this package registers every table on Base.metadata."""

from models.alerts import Alert, AlertHistory
from models.api_tokens import ApiToken
from models.audit import AuditEntry
from models.base import Base
from models.care import CareNote, EmergencyContact
from models.commands import Command
from models.dead_letters import DeadLetter
from models.device_status import DeviceStatusChange, StatusChangeReason
from models.devices import BlockedDevice, Device, in_service
from models.enums import (
    AlertStatus,
    Channel,
    CommandStatus,
    DeviceStatus,
    NotificationPurpose,
    NotificationStatus,
    Role,
    RollupPeriod,
    RuleKind,
    ScopeType,
    Severity,
)
from models.events import Event
from models.ingest import IngestReplica
from models.jobs import JobWatermark
from models.notifications import Notification
from models.quality import QualityResult, QualityRun
from models.readings import Reading
from models.reports import CareReport, ResidentRoutine
from models.residents import CaregiverAssignment, FamilyLink, Resident
from models.rollups import Rollup
from models.rules import AlertRule, RuleOverride
from models.silences import Silence, SilenceReason, SilenceScope
from models.sites import Site
from models.users import AppSession, ContactChannel, SignInFailure, User

__all__ = [
    "Alert",
    "AlertHistory",
    "AlertRule",
    "AlertStatus",
    "ApiToken",
    "AppSession",
    "AuditEntry",
    "Base",
    "BlockedDevice",
    "CareNote",
    "CareReport",
    "CaregiverAssignment",
    "Channel",
    "Command",
    "CommandStatus",
    "ContactChannel",
    "DeadLetter",
    "Device",
    "DeviceStatus",
    "DeviceStatusChange",
    "EmergencyContact",
    "Event",
    "FamilyLink",
    "IngestReplica",
    "JobWatermark",
    "Notification",
    "NotificationPurpose",
    "NotificationStatus",
    "QualityResult",
    "QualityRun",
    "Reading",
    "Resident",
    "ResidentRoutine",
    "Role",
    "Rollup",
    "RollupPeriod",
    "RuleKind",
    "RuleOverride",
    "ScopeType",
    "Severity",
    "SignInFailure",
    "Silence",
    "SilenceReason",
    "SilenceScope",
    "Site",
    "StatusChangeReason",
    "User",
    "in_service",
]
