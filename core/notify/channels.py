"""Notification channels: one interface, with Apprise behind e-mail, Telegram and webhooks.

E-mail goes through Apprise's mailto://, Telegram through tgram:// (its Bot API host can be
moved to a self-hosted telegram-bot-api server), webhooks through Apprise's json:// plugin with
an `Idempotency-Key` header and the key and the alert's facts in the JSON body, so receivers
can drop a repeat. The in-app inbox is the outbox row itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import apprise
from apprise.plugins.custom_json import NotifyJSON

from core.settings import Settings
from models import Channel as ChannelKind
from models import Notification, NotificationPurpose, Severity

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
EMAIL_IDEMPOTENCY_HEADER = "X-IotCare-Idempotency-Key"
_NOTIFY_TYPES = {
    Severity.CRITICAL.value: apprise.NotifyType.FAILURE,
    Severity.WARNING.value: apprise.NotifyType.WARNING,
    Severity.INFO.value: apprise.NotifyType.INFO,
}


class DeliveryError(Exception):
    """A delivery failed; `retryable` says whether trying again later can help."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class Channel(Protocol):
    """Hands one notification to the outside world, or raises DeliveryError."""

    def deliver(self, notification: Notification) -> None:
        """Deliver `notification`; raise DeliveryError when it did not go."""
        ...


class InboxChannel:
    """The in-app inbox: the outbox row is the inbox item, so delivering only marks it sent."""

    def deliver(self, notification: Notification) -> None:
        """Nothing to send: the app lists sent inbox rows of the signed-in user."""


class _ThreadLogCapture(logging.Handler):
    """Apprise reports why a send failed only in its log: keep this thread's warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep records of the delivering thread only (sweepers deliver in parallel)."""
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


Builder = Callable[[Notification], Any]


class AppriseChannel:
    """A channel through one Apprise plugin built per notification (URL string or plugin)."""

    def __init__(self, name: str, build: Builder) -> None:
        self.name = name
        self.build = build

    def deliver(self, notification: Notification) -> None:
        """Send through Apprise; False from notify() becomes a retryable DeliveryError."""
        target = self.build(notification)
        # Memory-only storage: Apprise must not write state files under the service's home.
        notifier = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
        if not notifier.add(target):
            raise DeliveryError(f"{self.name}: Apprise cannot use this address", retryable=False)
        capture = _ThreadLogCapture()
        apprise_log = logging.getLogger("apprise")
        apprise_log.addHandler(capture)
        try:
            sent = notifier.notify(
                body=notification.body or "",
                title=notification.subject or "",
                notify_type=_notify_type(notification),
                body_format=apprise.NotifyFormat.TEXT,
            )
        finally:
            apprise_log.removeHandler(capture)
        if not sent:
            detail = "; ".join(capture.messages[-3:]) or "the service did not accept it"
            raise DeliveryError(f"{self.name}: {detail}", retryable=True)


def _notify_type(notification: Notification) -> apprise.NotifyType:
    if notification.purpose is NotificationPurpose.RESOLVED:
        return apprise.NotifyType.SUCCESS
    severity = (notification.payload or {}).get("facts", {}).get("severity")
    return _NOTIFY_TYPES.get(severity, apprise.NotifyType.INFO)


def _require_address(notification: Notification, what: str) -> str:
    if not notification.address:
        raise DeliveryError(f"{what}: the contact has no address", retryable=False)
    return notification.address


def email_url(settings: Settings, notification: Notification) -> str:
    """The Apprise mailto(s):// URL for one e-mail, from the SMTP settings."""
    if not settings.smtp_host or not settings.smtp_from:
        raise DeliveryError(
            "e-mail is not configured: set IOTCARE_SMTP_HOST and IOTCARE_SMTP_FROM",
            retryable=False,
        )
    to = _require_address(notification, "e-mail")
    scheme = "mailto" if settings.smtp_security == "none" else "mailtos"
    auth = ""
    if settings.smtp_username:
        auth = quote(settings.smtp_username, safe="")
        if settings.smtp_password is not None:
            auth += ":" + quote(settings.smtp_password.get_secret_value(), safe="")
        auth += "@"
    query = urlencode(
        {
            "from": settings.smtp_from,
            "to": to,
            # smtp= pins the server: Apprise must not guess one from the sender's domain.
            "smtp": settings.smtp_host,
            "mode": "insecure" if settings.smtp_security == "none" else settings.smtp_security,
            # Plain text: the message is written as text, and every mail client shows it.
            "format": "text",
            f"+{EMAIL_IDEMPOTENCY_HEADER}": notification.idempotency_key,
        }
    )
    return f"{scheme}://{auth}{settings.smtp_host}:{settings.smtp_port}/?{query}"


def telegram_plugin(settings: Settings, notification: Notification) -> Any:
    """An Apprise Telegram plugin for the chat id in the notification's address."""
    if settings.telegram_bot_token is None:
        raise DeliveryError(
            "Telegram is not configured: set IOTCARE_TELEGRAM_BOT_TOKEN", retryable=False
        )
    chat = quote(_require_address(notification, "Telegram"), safe="@-")
    token = settings.telegram_bot_token.get_secret_value()
    plugin = apprise.Apprise.instantiate(f"tgram://{token}/{chat}/?image=no&preview=no")
    if not plugin:
        raise DeliveryError("Telegram: the bot token or chat id is not valid", retryable=False)
    # Apprise has no URL option for the Bot API host; a self-hosted server (and the tests'
    # fake) is reached by moving the plugin's endpoint.
    plugin.notify_url = f"{settings.telegram_api_url.rstrip('/')}/bot"
    return plugin


def webhook_plugin(notification: Notification) -> Any:
    """An Apprise JSON plugin that POSTs to the address with the idempotency key."""
    address = _require_address(notification, "webhook")
    parts = urlsplit(address)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DeliveryError(f"webhook: '{address}' is not an http(s) URL", retryable=False)
    scheme = "jsons" if parts.scheme == "https" else "json"
    results = NotifyJSON.parse_url(urlunsplit((scheme, parts.netloc, parts.path or "/", "", "")))
    if not results:
        raise DeliveryError(f"webhook: '{address}' is not usable", retryable=False)
    payload = notification.payload or {}
    # The receiver's own query string goes through unchanged, as GET parameters.
    results["params"] = dict(parse_qsl(parts.query, keep_blank_values=True))
    results["headers"] = {IDEMPOTENCY_HEADER: notification.idempotency_key}
    results["payload"] = {
        "idempotency_key": notification.idempotency_key,
        "purpose": NotificationPurpose(notification.purpose).value,
        "alert": payload.get("facts", {}),
        "tier": payload.get("tier"),
        "recipient": payload.get("recipient"),
        "ack_url": payload.get("ack_url"),
    }
    return NotifyJSON(**results)


def make_channels(settings: Settings) -> dict[ChannelKind, Channel]:
    """Every channel, configured from settings (unconfigured ones fail without retrying)."""
    return {
        ChannelKind.INBOX: InboxChannel(),
        ChannelKind.EMAIL: AppriseChannel("e-mail", lambda n: email_url(settings, n)),
        ChannelKind.TELEGRAM: AppriseChannel("Telegram", lambda n: telegram_plugin(settings, n)),
        ChannelKind.WEBHOOK: AppriseChannel("webhook", webhook_plugin),
    }
