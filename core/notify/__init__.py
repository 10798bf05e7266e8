"""Notifications: the transactional outbox, routing and escalation, rendering, channels, delivery.

Composition roots call `core.notify.outbox.install()` once so alert changes queue notifications,
build channels with `core.notify.channels.make_channels(settings)`, and run
`core.notify.delivery.deliver_due` / `core.notify.escalation.escalate_due` on a schedule.
"""
