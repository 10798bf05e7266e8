"""Escalation, notification delivery and actuator command dispatch, every minute.

Ingest delivers a new critical alert's notifications at once; this sweeper delivers everything
else (quiet hours over, retries after a channel failed, escalations) and re-sends commands that
have not been acknowledged. Every step is safe to run twice at the same time.
"""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from core.commands import dispatch
from core.mqtt_sender import MqttSender
from core.notify.delivery import deliver_due
from core.notify.escalation import escalate_due
from core.timeutil import ensure_utc, utcnow
from flows.runtime import RETRIES, RETRY_DELAYS, log_flow_failure, run_name, runtime


@task(
    name="Escalate unacknowledged alerts",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def escalate(now: datetime) -> int:
    """Queue the next tier's notifications for alerts nobody acknowledged in time."""
    rt = runtime()
    with rt.session() as session:
        return escalate_due(session, now, settings=rt.settings)


@task(
    name="Deliver due notifications",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def deliver(now: datetime) -> dict[str, int]:
    """Send what is due through each channel; failures are rescheduled with backoff."""
    rt = runtime()
    stats = deliver_due(rt.sessions, rt.channels, now, settings=rt.settings)
    return {
        "claimed": stats.claimed,
        "sent": stats.sent,
        "retried": stats.retried,
        "dead": stats.dead,
    }


@task(
    name="Dispatch actuator commands",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS,
    cache_policy=NONE,
)
def send_commands(now: datetime) -> dict[str, int]:
    """Re-send unacknowledged commands; expire those past their deadline."""
    rt = runtime()
    if not rt.settings.mqtt_url:
        get_run_logger().info("no broker configured (IOTCARE_MQTT_URL): commands not dispatched")
        return {"sent": 0, "expired": 0, "failed": 0}
    stats = dispatch(
        rt.sessions,
        MqttSender.from_settings(rt.settings, "iotcare-flows"),
        rt.settings.mqtt_topic_root,
        now=now,
    )
    return {"sent": stats.sent, "expired": stats.expired, "failed": stats.failed}


@flow(
    name="notifications",
    description="Escalate, deliver notifications, dispatch commands.",
    flow_run_name=run_name("notifications", "now"),
    on_failure=[log_flow_failure],
)
def notifications_flow(now: datetime | None = None) -> dict[str, object]:
    """One sweep: escalation first, so its notifications go out in the same run."""
    now = ensure_utc(now or utcnow())
    summary = {"escalated": escalate(now), "delivery": deliver(now), "commands": send_commands(now)}
    get_run_logger().info("notifications sweep: %s", summary)
    return summary
