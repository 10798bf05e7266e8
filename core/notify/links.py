"""Signed, expiring one-click links that acknowledge an alert in the app as one recipient.

A token is `v1.<alert id>.<user id>.<expiry, epoch seconds>.<signature>`, the signature an
HMAC-SHA256 with the process's secret key over everything before it. Nothing is stored: the
link proves itself, and it stops working at its expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from sqlalchemy.orm import Session

from core.alerts import lifecycle
from core.errors import IotCareError
from core.i18n import translate
from core.settings import Settings
from core.timeutil import ensure_utc, utcnow
from models import Alert, User

TOKEN_VERSION = "v1"  # noqa: S105  (a format tag, not a secret)
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


def _signature(settings: Settings, body: str) -> str:
    key = settings.resolve_secret_key().encode()
    digest = hmac.new(key, _PURPOSE + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_ack_token(
    settings: Settings, alert_id: uuid.UUID, user_id: int, expires_at: datetime
) -> str:
    """A signed token that acknowledges `alert_id` as `user_id` until `expires_at`."""
    expiry = int(ensure_utc(expires_at).timestamp())
    body = f"{TOKEN_VERSION}.{alert_id.hex}.{int(user_id)}.{expiry}"
    return f"{body}.{_signature(settings, body)}"


def make_ack_link(
    settings: Settings, alert_id: uuid.UUID, user_id: int, expires_at: datetime
) -> str:
    """The app URL with the signed token: `<app_base_url>/?ack=<token>`."""
    token = make_ack_token(settings, alert_id, user_id, expires_at)
    return f"{settings.app_base_url}/?ack={quote(token, safe='')}"


def verify_ack_token(settings: Settings, token: str, now: datetime) -> tuple[uuid.UUID, int]:
    """(alert id, user id) of a genuine, unexpired token; AckLinkInvalid or AckLinkExpired else."""
    parts = token.strip().split(".")
    if len(parts) != 5 or parts[0] != TOKEN_VERSION:
        raise AckLinkInvalid()
    body, signature = ".".join(parts[:4]), parts[4]
    # Signature first (constant time), so a tampered expiry reads "invalid", never "expired".
    if not hmac.compare_digest(signature.encode(), _signature(settings, body).encode()):
        raise AckLinkInvalid()
    try:
        alert_id = uuid.UUID(hex=parts[1])
        user_id = int(parts[2])
        expires_at = datetime.fromtimestamp(int(parts[3]), UTC)
    except ValueError:
        raise AckLinkInvalid() from None
    if ensure_utc(now) >= expires_at:
        raise AckLinkExpired()
    return alert_id, user_id


def acknowledge_with_link(
    session: Session, settings: Settings, token: str, now: datetime | None = None
) -> Alert:
    """Acknowledge the token's alert as its recipient (audited like any acknowledgement)."""
    at = ensure_utc(now or utcnow())
    alert_id, user_id = verify_ack_token(settings, token, at)
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise AckLinkInvalid()
    return lifecycle.acknowledge(session, alert_id, user, note="one-click link", at=at)
