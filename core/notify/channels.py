"""Notification channels: one interface, with Apprise behind e-mail, Telegram, webhooks, ntfy, SMS.

E-mail goes through Apprise's mailto://, Telegram through tgram:// (its Bot API host can be
moved to a self-hosted telegram-bot-api server), webhooks through Apprise's json:// plugin with
an `Idempotency-Key` header and the key and the alert's facts in the JSON body, so receivers
can drop a repeat. ntfy push goes through ntfy:// / ntfys:// with the alert's severity as the
ntfy priority and the acknowledgement link as the click action. SMS goes through the Apprise URL
of the operator's gateway (IOTCARE_SMS_GATEWAY_URL, with the number put in), the message cut to
a few SMS segments with the acknowledgement link kept. The in-app inbox is the outbox row itself.
Secrets of the settings never reach a stored or logged delivery error: they are masked.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import apprise
from apprise.plugins.custom_json import NotifyJSON
from apprise.plugins.ntfy import NotifyNtfy

from core.i18n import translate
from core.settings import Settings
from models import Channel as ChannelKind
from models import Notification, NotificationPurpose, Severity

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
EMAIL_IDEMPOTENCY_HEADER = "X-IotCare-Idempotency-Key"
# ntfy priorities by alert severity: critical rings through do-not-disturb on most phones.
NTFY_PRIORITIES = {
    Severity.CRITICAL.value: "max",
    Severity.WARNING.value: "high",
    Severity.INFO.value: "default",
}
# ntfy shows these tags as emoji in front of the title.
NTFY_TAGS = {
    Severity.CRITICAL.value: "rotating_light",
    Severity.WARNING.value: "warning",
    Severity.INFO.value: "information_source",
}
NTFY_RESOLVED_TAG = "white_check_mark"
# ntfy's own topic rule (and Apprise's): 1-64 letters, digits, '_' or '-'.
NTFY_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# E.164: '+', a country code not starting with 0, at most 15 digits in all.
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().\-/]")
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
Composer = Callable[[Notification], tuple[str, str]]


def _subject_and_body(notification: Notification) -> tuple[str, str]:
    return notification.subject or "", notification.body or ""


# Credentials Apprise may print whatever secrets were configured (its debug log shows headers),
# and one-click acknowledgement tokens, which act for the person they were sent to.
_CREDENTIALS_RE = re.compile(r"((?:Bearer|Basic)\s+|[?&]ack=)[^\s'\"&,}]+", re.IGNORECASE)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret in it replaced by '***' (longest first, so none leaks in part)."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _CREDENTIALS_RE.sub(r"\1***", text)


class _SecretMask(logging.Filter):
    """Masks configured secrets and credentials in every record of Apprise's logger."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the message with secrets masked; never drops a record."""
        message = record.getMessage()
        masked = mask_secrets(message, self.secrets)
        if masked != message:
            record.msg, record.args = masked, None
        return True


_APPRISE_MASK = _SecretMask()
logging.getLogger("apprise").addFilter(_APPRISE_MASK)


def secret_values(settings: Settings) -> list[str]:
    """Every secret a delivery error could echo: passwords, tokens, the SMS gateway's login."""
    values = [
        secret.get_secret_value()
        for secret in (settings.smtp_password, settings.telegram_bot_token, settings.ntfy_token)
        if secret is not None
    ]
    if settings.sms_gateway_url is not None:
        template = settings.sms_gateway_url.get_secret_value()
        parts = urlsplit(template)
        found = [parts.username or "", parts.password or ""]
        # API keys also travel as query values (?key=...); payload mapping (:to=) is no secret.
        found += [v for k, v in parse_qsl(parts.query) if not k.startswith((":", "-", "+"))]
        found += [f for f in (parts.path or "").split("/") if len(f) >= 16]
        values += found + [unquote(f) for f in found]
    return values


class AppriseChannel:
    """A channel through one Apprise plugin built per notification (URL string or plugin)."""

    def __init__(
        self,
        name: str,
        build: Builder,
        compose: Composer = _subject_and_body,
        secrets: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.build = build
        self.compose = compose
        self.secrets = list(secrets)

    def deliver(self, notification: Notification) -> None:
        """Send through Apprise; False from notify() becomes a retryable DeliveryError."""
        target = self.build(notification)
        # Memory-only storage: Apprise must not write state files under the service's home.
        notifier = apprise.Apprise(asset=apprise.AppriseAsset(storage_mode="memory"))
        if not notifier.add(target):
            raise DeliveryError(f"{self.name}: Apprise cannot use this address", retryable=False)
        title, body = self.compose(notification)
        capture = _ThreadLogCapture()
        apprise_log = logging.getLogger("apprise")
        apprise_log.addHandler(capture)
        try:
            sent = notifier.notify(
                body=body,
                title=title,
                notify_type=_notify_type(notification),
                body_format=apprise.NotifyFormat.TEXT,
            )
        finally:
            apprise_log.removeHandler(capture)
        if not sent:
            detail = "; ".join(capture.messages[-3:]) or "the service did not accept it"
            # The reason is logged and stored for operators: no password or token in it.
            reason = mask_secrets(f"{self.name}: {detail}", self.secrets)
            raise DeliveryError(reason, retryable=True)


def _severity(notification: Notification) -> str:
    return str((notification.payload or {}).get("facts", {}).get("severity") or "")


def _notify_type(notification: Notification) -> apprise.NotifyType:
    if notification.purpose is NotificationPurpose.RESOLVED:
        return apprise.NotifyType.SUCCESS
    return _NOTIFY_TYPES.get(_severity(notification), apprise.NotifyType.INFO)


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


# --- ntfy push


def parse_ntfy_address(address: str) -> tuple[str | None, str]:
    """(server as scheme://host[:port], or None for IOTCARE_NTFY_URL's; topic), or ValueError.

    A contact's ntfy address is a bare topic (`care-night-4f2a`) or the topic's full URL as the
    ntfy app shows it (`https://ntfy.example.org/care-night-4f2a`; ntfy:// and ntfys:// also do).
    """
    address = address.strip()
    if NTFY_TOPIC_RE.match(address):
        return None, address
    parts = urlsplit(address)
    scheme = {"ntfy": "http", "ntfys": "https"}.get(parts.scheme, parts.scheme)
    if scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("not an ntfy topic or topic URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        # Logins belong in IOTCARE_NTFY_TOKEN, not in an address shown on the admin page.
        raise ValueError("an ntfy address has no login, query or fragment")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError("the port is not a number between 1 and 65535") from None
    topic = parts.path.strip("/")
    if not NTFY_TOPIC_RE.match(topic):
        raise ValueError("the URL's path must be one topic name")
    return f"{scheme}://{parts.netloc.lower()}", topic


def ntfy_plugin(settings: Settings, notification: Notification) -> Any:
    """An Apprise ntfy plugin: title, priority by severity, click = the ack link, emoji tags."""
    address = _require_address(notification, "ntfy")
    try:
        server, topic = parse_ntfy_address(address)
    except ValueError as error:
        raise DeliveryError(f"ntfy: the address is not usable ({error})", retryable=False) from None
    if server is None:
        if not settings.ntfy_url:
            raise DeliveryError(
                "ntfy is not configured: set IOTCARE_NTFY_URL, or give the contact the topic's "
                "full URL",
                retryable=False,
            )
        server = settings.ntfy_url
    parts = urlsplit(server)
    severity = _severity(notification)
    payload = notification.payload or {}
    resolved = notification.purpose is NotificationPurpose.RESOLVED
    # An all-clear must not ring like the alarm it clears.
    priority = "default" if resolved else NTFY_PRIORITIES.get(severity, "default")
    tags = [NTFY_RESOLVED_TAG if resolved else NTFY_TAGS.get(severity, "information_source")]
    kind = str(payload.get("facts", {}).get("kind") or "")
    if NTFY_TOPIC_RE.match(kind):
        tags.append(kind)
    query = {"priority": priority, "tags": ",".join(tags), "image": "no"}
    if payload.get("ack_url"):
        query["click"] = str(payload["ack_url"])
    scheme = "ntfys" if parts.scheme == "https" else "ntfy"
    results = NotifyNtfy.parse_url(f"{scheme}://{parts.netloc}/{topic}?{urlencode(query)}")
    if not results:
        raise DeliveryError("ntfy: the address is not usable", retryable=False)
    same_server = settings.ntfy_url is not None and server == settings.ntfy_url.lower()
    if settings.ntfy_token is not None and same_server:
        # The token is for the configured server only: never hand it to another host.
        results["auth"] = "token"
        results["token"] = settings.ntfy_token.get_secret_value()
    return NotifyNtfy(**results)


# --- SMS


def normalize_phone(text: str) -> str:
    """The number in E.164 (+821012345678), or ValueError; spaces, dashes, dots, () are dropped."""
    number = _PHONE_PUNCTUATION.sub("", text.strip())
    if number.startswith("00"):
        number = "+" + number[2:]
    if not E164_RE.match(number):
        raise ValueError("not a phone number in international form (+ country code, number)")
    return number


# GSM 03.38 basic alphabet and its extension table (extension characters take two septets).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


# Typography with a plain GSM-7 twin: one em dash must not turn an English SMS into UCS-2,
# which carries 70 characters a segment instead of 160.
_GSM7_FRIENDLY = str.maketrans(
    {"—": "-", "–": "-", "‐": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "…": "...", "·": "-"}
)


def sms_encoding(text: str) -> str:
    """'gsm7' when every character fits the GSM 7-bit alphabet, else 'ucs2' (e.g. Korean)."""
    ok = all(c in _GSM7_BASIC or c in _GSM7_EXTENDED for c in text)
    return "gsm7" if ok else "ucs2"


def _units(char: str, encoding: str) -> int:
    if encoding == "gsm7":
        return 2 if char in _GSM7_EXTENDED else 1
    return 2 if ord(char) > 0xFFFF else 1  # UTF-16 code units: a surrogate pair is two


def sms_length(text: str, encoding: str | None = None) -> int:
    """Length in septets (GSM-7) or UTF-16 code units (UCS-2), as the network counts it."""
    encoding = encoding or sms_encoding(text)
    return sum(_units(c, encoding) for c in text)


def sms_segments(text: str) -> int:
    """How many SMS segments `text` takes (160/153 GSM-7, 70/67 UCS-2 characters)."""
    encoding = sms_encoding(text)
    single, part = (160, 153) if encoding == "gsm7" else (70, 67)
    length = sms_length(text, encoding)
    return 1 if length <= single else -(-length // part)


def sms_capacity(encoding: str, segments: int) -> int:
    """Most units `segments` segments carry (one segment holds more than a part of several)."""
    single, part = (160, 153) if encoding == "gsm7" else (70, 67)
    return single if segments == 1 else part * segments


def sms_text(notification: Notification, max_segments: int) -> str:
    """Subject and body in at most `max_segments` segments, the ack link whole at the end."""
    payload = notification.payload or {}
    link = str(payload.get("ack_url") or "")
    language = str(payload.get("language") or "en")
    lines = [notification.subject or ""]
    lines += [
        line.strip()
        for line in (notification.body or "").splitlines()
        # The body's link line is replaced by a short one at the end, which is never cut.
        if line.strip() and (not link or link not in line)
    ]
    # A repeated subject line (the body's first) wastes a scarce segment.
    text = "\n".join(dict.fromkeys(lines)).strip()
    tail = "\n" + translate("notify.sms.ack", language, link=link) if link else ""
    plain = text.translate(_GSM7_FRIENDLY)
    if sms_encoding(plain + tail) == "gsm7":
        text = plain
    encoding = sms_encoding(text + tail)
    room = sms_capacity(encoding, max_segments) - sms_length(tail, encoding)
    if room < 8:
        # No room for words: a cut link would not work, so the link alone goes, over the cap.
        return tail.lstrip("\n") or text
    if sms_length(text, encoding) > room:
        ellipsis = "..." if encoding == "gsm7" else "…"
        room -= sms_length(ellipsis, encoding)
        kept, used = [], 0
        for char in text:
            used += _units(char, encoding)
            if used > room:
                break
            kept.append(char)
        text = "".join(kept).rstrip() + ellipsis
    return text + tail


def sms_url(settings: Settings, notification: Notification) -> str:
    """The gateway's Apprise URL with the recipient's number put in."""
    if settings.sms_gateway_url is None:
        raise DeliveryError("SMS is not configured: set IOTCARE_SMS_GATEWAY_URL", retryable=False)
    try:
        phone = normalize_phone(_require_address(notification, "SMS"))
    except ValueError as error:
        raise DeliveryError(f"SMS: the number is not usable ({error})", retryable=False) from None
    template = settings.sms_gateway_url.get_secret_value()
    # Quoted: a bare '+' in a URL's query would arrive as a space.
    return template.replace("{phone}", quote(phone, safe="")).replace("{phone_digits}", phone[1:])


def make_channels(settings: Settings) -> dict[ChannelKind, Channel]:
    """Every channel, configured from settings (unconfigured ones fail without retrying)."""
    secrets = secret_values(settings)
    _APPRISE_MASK.secrets.update(secrets)
    return {
        ChannelKind.INBOX: InboxChannel(),
        ChannelKind.EMAIL: AppriseChannel(
            "e-mail", lambda n: email_url(settings, n), secrets=secrets
        ),
        ChannelKind.TELEGRAM: AppriseChannel(
            "Telegram", lambda n: telegram_plugin(settings, n), secrets=secrets
        ),
        ChannelKind.WEBHOOK: AppriseChannel("webhook", webhook_plugin, secrets=secrets),
        ChannelKind.NTFY: AppriseChannel(
            "ntfy", lambda n: ntfy_plugin(settings, n), secrets=secrets
        ),
        # The whole message is the SMS body: a separate title would be glued on by Apprise.
        ChannelKind.SMS: AppriseChannel(
            "SMS",
            lambda n: sms_url(settings, n),
            compose=lambda n: ("", sms_text(n, settings.sms_max_segments)),
            secrets=secrets,
        ),
    }
