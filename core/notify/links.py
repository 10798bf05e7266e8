"""Signed, expiring one-click links that acknowledge an alert in the app as one recipient.

A token is `v2.<alert id>.<user id>.<opening round>.<expiry, epoch seconds>.<signature>`, the
signature an HMAC-SHA256 with the process's secret key over everything before it. Nothing is
stored: the link proves itself, and it stops working at its expiry. When used it is checked
against the present, too: the alert must still be in the opening round the link was sent for
(a link sent before the alert was resolved and reopened does not acknowledge the new round), and
the recipient must still be allowed to see the alert (a caregiver unassigned since cannot).
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import quote

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.access import AccessDenied, Viewer
from core.alerts import lifecycle
from core.errors import IotCareError, NotFoundError
from core.i18n import translate
from core.security import sign
from core.settings import Settings
from core.timeutil import ensure_utc, utcnow
from models import Alert, AlertHistory, User

TOKEN_VERSION = "v2"  # noqa: S105  (a format tag, not a secret)
# Keeps these signatures apart from anything else signed with the same secret key (sessions).
_PURPOSE = b"iotcare.ack-link."


class AckLinkError(IotCareError):
    """The token of a one-click link cannot be used; `message_key` names a translated text."""

    message_key = "notify.link.invalid"

    def __init__(self) -> None:
        super().__init__(translate(self.message_key, "en"), key=self.message_key)


class AckLinkExpired(AckLinkError):
    """The link was genuine but is past its expiry."""

    message_key = "notify.link.expired"


class AckLinkInvalid(AckLinkError):
    """The link was altered, truncated, or signed with another key."""

    message_key = "notify.link.invalid"


class AckLinkStale(AckLinkError):
    """Genuine, but the alert was reopened since, or its recipient may no longer see it."""

    message_key = "notify.link.stale"


class AckClaim(NamedTuple):
    """What a genuine token says: acknowledge this alert, in this opening round, as this user."""

    alert_id: uuid.UUID
    user_id: int
    opening: int


def opening_round(session: Session, alert: Alert) -> int:
    """How often the alert was reopened: a reopened alert is news again, with new keys."""
    count = session.scalar(
        select(func.count())
        .select_from(AlertHistory)
        .where(AlertHistory.alert_id == alert.id, AlertHistory.action == "reopened")
    )
    return int(count or 0)


def _signature(settings: Settings, body: str) -> str:
    return sign(settings.resolve_secret_key(), _PURPOSE, body)


def make_ack_token(
    settings: Settings,
    alert_id: uuid.UUID,
    user_id: int,
    expires_at: datetime,
    *,
    opening: int,
) -> str:
    """A signed token that acknowledges `alert_id` (in opening round `opening`) as `user_id`."""
    expiry = int(ensure_utc(expires_at).timestamp())
    body = f"{TOKEN_VERSION}.{alert_id.hex}.{int(user_id)}.{int(opening)}.{expiry}"
    return f"{body}.{_signature(settings, body)}"


def make_ack_link(
    settings: Settings,
    alert_id: uuid.UUID,
    user_id: int,
    expires_at: datetime,
    *,
    opening: int,
) -> str:
    """The app URL with the signed token: `<app_base_url>/?ack=<token>`."""
    token = make_ack_token(settings, alert_id, user_id, expires_at, opening=opening)
    return f"{settings.app_base_url}/?ack={quote(token, safe='')}"


def verify_ack_token(settings: Settings, token: str, now: datetime) -> AckClaim:
    """The claim of a genuine, unexpired token; AckLinkInvalid or AckLinkExpired else."""
    # Older formats (v1 named no opening round) are refused: they cannot be checked for reopens.
    parts = token.strip().split(".")
    if len(parts) != 6 or parts[0] != TOKEN_VERSION:
        raise AckLinkInvalid()
    body, signature = ".".join(parts[:5]), parts[5]
    # Signature first (constant time), so a tampered expiry reads "invalid", never "expired".
    if not hmac.compare_digest(signature.encode(), _signature(settings, body).encode()):
        raise AckLinkInvalid()
    try:
        alert_id = uuid.UUID(hex=parts[1])
        user_id = int(parts[2])
        opening = int(parts[3])
        expires_at = datetime.fromtimestamp(int(parts[4]), UTC)
    except ValueError:
        raise AckLinkInvalid() from None
    if ensure_utc(now) >= expires_at:
        raise AckLinkExpired()
    return AckClaim(alert_id, user_id, opening)


def check_ack_link(
    session: Session, settings: Settings, token: str, now: datetime | None = None
) -> tuple[Alert, User]:
    """The alert a token would acknowledge and as whom, checked against the present, changing
    nothing: the recipient is active and may still see the alert (core.access rules, through
    the alerts query layer), and the alert is still in the opening round the link was sent for.
    """
    # Imported here: the query layer brings pandas, which processes that only issue links
    # (ingest, flows) should not load.
    from core.use_cases.alerts import check_alert

    claim = verify_ack_token(settings, token, ensure_utc(now or utcnow()))
    user = session.get(User, claim.user_id)
    if user is None or not user.active:
        raise AckLinkInvalid()
    try:
        alert = check_alert(session, Viewer.of(user), claim.alert_id)
    except (AccessDenied, NotFoundError):
        raise AckLinkStale() from None
    if opening_round(session, alert) != claim.opening:
        raise AckLinkStale()
    return alert, user


def acknowledge_with_link(
    session: Session, settings: Settings, token: str, now: datetime | None = None
) -> Alert:
    """Acknowledge the token's alert as its recipient (audited like any acknowledgement),
    after the checks of `check_ack_link`, made at use and not only at issue."""
    at = ensure_utc(now or utcnow())
    alert, user = check_ack_link(session, settings, token, at)
    return lifecycle.acknowledge(session, alert.id, user, note="one-click link", at=at)
