"""Errors that carry a message meant for the person who runs the command."""

from __future__ import annotations


class IotCareError(Exception):
    """Base for errors whose message is shown to the user as it is (no traceback)."""


class ConfigError(IotCareError):
    """A setting is missing or wrong; the message names it."""


class NotFoundError(IotCareError):
    """Something the user named does not exist."""


class ConflictError(IotCareError):
    """Something the user asked to create exists already, or the state does not allow it."""


class SchemaError(IotCareError):
    """The database schema is in a state migrations cannot handle safely."""
