"""Prefect flows: one module per scheduled job; flows only orchestrate core functions."""
