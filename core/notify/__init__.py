"""Notifications: the transactional outbox, routing and escalation, rendering, channels, delivery.

The alert lifecycle queues notifications through `core.notify.outbox.alert_changed` with the
settings its session carries (core.bootstrap's sessions do); the channels come from
`core.notify.channels.make_channels(settings)` (core.bootstrap.Runtime.channels); schedules run
`core.notify.delivery.deliver_due` / `core.notify.escalation.escalate_due`. Settings are always
passed in, never read here.
"""
