"""Alerts: opening (deduplicated), acknowledging, resolving and reopening, with full history."""
