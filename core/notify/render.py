"""The text of a notification: per recipient and purpose, in their language, from core/i18n.

A message says who (resident and room), what, where (site), since when (in the resident's
timezone), how severe, how often, and carries the recipient's one-click acknowledgement link. A
repeat also says when the new event happened, on which device and what it reported.
An optional LLM summary (OpenAI-compatible chat completions) becomes its first paragraph; the
template alone is used whenever the LLM is not configured or does not answer well in time.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib import request
from urllib.error import URLError

from sqlalchemy.orm import Session

from core.alerts.occurrence import Occurrence
from core.alerts.titles import title_text
from core.i18n import catalogue, normalize_language, translate
from core.settings import Settings
from core.timeutil import is_timezone, to_local
from models import Alert, NotificationPurpose, Resident, RuleKind, Severity, Site

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M %Z"
# A summary longer than this is not a summary; an LLM that rambles is ignored.
MAX_SUMMARY_CHARS = 600
# A device's event data is shown as it came; a hostile or broken device must not fill a message.
MAX_EVENT_DETAILS_CHARS = 200
_LANGUAGE_NAMES = {"en": "English", "ko": "Korean"}


@dataclass(frozen=True)
class AlertFacts:
    """What any message about an alert says, whoever reads it (stored in the outbox payload)."""

    alert_id: str
    severity: str
    kind: str
    title: str
    event_type: str | None
    subject_type: str
    site_id: str | None
    site_name: str
    resident_id: int | None
    resident_name: str | None
    room: str | None
    device_id: str | None
    opened_at: str
    resolved_at: str | None
    occurrences: int
    timezone: str
    # The new event of a repeat (None otherwise): when, which device, what it reported.
    occurrence_at: str | None = None
    occurrence_device_id: str | None = None
    occurrence_data: dict[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        """A JSON-able dict (for the outbox payload and webhook bodies)."""
        return asdict(self)

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> AlertFacts:
        """Rebuild from `to_payload()` output."""
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RenderedMessage:
    """Subject line and plain-text body of one notification."""

    subject: str
    body: str


def alert_facts(
    session: Session, alert: Alert, default_timezone: str, occurrence: Occurrence | None = None
) -> AlertFacts:
    """Collect the facts of `alert`: resident, room, site and the timezone to show times in, and
    for a repeat its new `occurrence`."""
    resident = session.get(Resident, alert.resident_id) if alert.resident_id else None
    site_id = alert.site_id or (resident.site_id if resident else None)
    site = session.get(Site, site_id) if site_id else None
    candidates = (resident.timezone if resident else None, site.timezone if site else None)
    timezone = next((zone for zone in candidates if is_timezone(zone)), default_timezone)
    details = alert.details or {}
    event_type = details.get("event_type") if isinstance(details, dict) else None
    return AlertFacts(
        alert_id=str(alert.id),
        severity=Severity(alert.severity).value,
        kind=RuleKind(alert.kind).value,
        title=alert.title,
        event_type=str(event_type) if event_type else None,
        subject_type=alert.subject_type,
        site_id=site_id,
        site_name=site.name if site else (site_id or "-"),
        resident_id=resident.id if resident else None,
        resident_name=resident.name if resident else None,
        room=resident.room if resident else None,
        device_id=alert.device_id,
        opened_at=alert.opened_at.isoformat(),
        resolved_at=alert.resolved_at.isoformat() if alert.resolved_at else None,
        occurrences=alert.occurrences,
        timezone=timezone,
        occurrence_at=(
            (occurrence.ts or alert.last_seen_at).isoformat() if occurrence is not None else None
        ),
        occurrence_device_id=occurrence.device_id if occurrence is not None else None,
        occurrence_data=dict(occurrence.data) if occurrence is not None else None,
    )


def local_time(value: datetime | str, timezone: str) -> str:
    """An instant as people there read it, e.g. '2026-11-22 09:31 KST'."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return to_local(instant, timezone).strftime(TIME_FORMAT)


def describe_what(facts: AlertFacts, language: str) -> str:
    """The translated event name when there is one, else the alert's title."""
    key = f"notify.event.{facts.event_type}"
    if facts.event_type and key in catalogue(normalize_language(language)):
        return translate(key, language)
    return title_text(facts.title, language)  # a default rule's name in the reader's language


def describe_who(facts: AlertFacts, language: str) -> str:
    """Resident and room, or the device, or the whole site."""
    if facts.resident_name and facts.room:
        return translate(
            "notify.who.resident_room", language, name=facts.resident_name, room=facts.room
        )
    if facts.resident_name:
        return translate("notify.who.resident", language, name=facts.resident_name)
    if facts.device_id:
        return translate("notify.who.device", language, device=facts.device_id)
    return translate("notify.who.site", language)


def describe_event_data(data: dict[str, Any] | None) -> str:
    """An event's data as `key=value, ...` (shortened), or '-' when it reported nothing."""
    if not data:
        return "-"
    text = ", ".join(f"{key}={value}" for key, value in sorted(data.items(), key=lambda i: i[0]))
    text = " ".join(text.split())
    if len(text) > MAX_EVENT_DETAILS_CHARS:
        text = text[: MAX_EVENT_DETAILS_CHARS - 1] + "…"
    return text


def render_message(
    facts: AlertFacts,
    purpose: NotificationPurpose,
    language: str,
    recipient: str,
    link: str | None,
    summary: str | None = None,
) -> RenderedMessage:
    """Subject and body for one recipient; `summary` (from an LLM) becomes the first paragraph."""
    purpose = NotificationPurpose(purpose)
    if purpose is NotificationPurpose.REPORT:
        raise ValueError("care reports are written by the report flow, not from an alert")
    params: dict[str, Any] = {
        "severity": translate(f"notify.severity.{facts.severity}", language),
        "what": describe_what(facts, language),
        "who": describe_who(facts, language),
        "site": facts.site_name,
        "since": local_time(facts.opened_at, facts.timezone),
        "occurrences": facts.occurrences,
        "recipient": recipient,
        "link": link or "",
        "resolved_at": local_time(facts.resolved_at, facts.timezone) if facts.resolved_at else "",
        "again_at": (
            local_time(facts.occurrence_at, facts.timezone) if facts.occurrence_at else ""
        ),
        "device": facts.occurrence_device_id or facts.device_id or "-",
        "details": describe_event_data(facts.occurrence_data),
    }
    subject = translate(f"notify.subject.{purpose.value}", language, **params)
    body = translate(f"notify.body.{purpose.value}", language, **params)
    if summary:
        body = f"{summary}\n\n{body}"
    return RenderedMessage(subject=subject, body=body)


# --- optional LLM summary


def _prompt(facts: AlertFacts, purpose: NotificationPurpose, language: str) -> list[dict[str, str]]:
    # Privacy: the endpoint gets what happened, where and when, never the resident's name.
    facts_for_llm = {
        "purpose": NotificationPurpose(purpose).value,
        "severity": facts.severity,
        "kind": facts.kind,
        "what": describe_what(facts, "en"),
        "event_type": facts.event_type,
        "room": facts.room,
        "site": facts.site_name,
        "device": facts.device_id,
        "since_local": local_time(facts.opened_at, facts.timezone),
        "resolved_local": (
            local_time(facts.resolved_at, facts.timezone) if facts.resolved_at else None
        ),
        "occurrences": facts.occurrences,
        "again_local": (
            local_time(facts.occurrence_at, facts.timezone) if facts.occurrence_at else None
        ),
    }
    system = (
        "You write the first paragraph of an alert notification sent to a caregiver in a care "
        f"home. Write one or two short, calm, factual sentences in "
        f"{_LANGUAGE_NAMES[normalize_language(language)]} saying what happened and what to "
        "check first. Use only the facts given; invent no names, diagnoses, numbers or links. "
        "No greeting, no markdown."
    )
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": json.dumps(facts_for_llm, ensure_ascii=False)},
    ]


def summarize(
    settings: Settings, facts: AlertFacts, purpose: NotificationPurpose, language: str
) -> str | None:
    """A one-paragraph summary from the configured LLM endpoint, or None (unset or failed)."""
    if not settings.llm_url:
        return None
    body: dict[str, Any] = {
        "messages": _prompt(facts, purpose, language),
        "max_tokens": 160,
        "temperature": 0.2,
        "stream": False,
    }
    if settings.llm_model:
        body["model"] = settings.llm_model
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.llm_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.llm_api_key.get_secret_value()}"
    req = request.Request(  # noqa: S310  (the URL is an operator's http(s) setting)
        settings.llm_url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with request.urlopen(  # noqa: S310
            req, timeout=settings.llm_timeout.total_seconds()
        ) as response:
            answer = json.loads(response.read(65536))
        text = answer["choices"][0]["message"]["content"]
    except (URLError, OSError, ValueError, KeyError, IndexError, TypeError) as error:
        log.warning("LLM summary unavailable (%s); using the template alone", error)
        return None
    return _clean_summary(text)


def _clean_summary(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    # The only link in a message must be ours: a summary with a URL could be a phishing vector.
    if not text or len(text) > MAX_SUMMARY_CHARS or "://" in text or "www." in text:
        log.warning("LLM summary rejected (empty, too long or containing a link)")
        return None
    return text
