"""Errors that carry a message meant for the person who runs the command."""

from __future__ import annotations

from typing import Any


class IotCareError(Exception):
    """Base for errors whose message is shown to the user as it is (no traceback).

    `key` (with `params`) names the message in the i18n catalogue, so the app can show it in the
    reader's language; the English text stays the exception's message for logs and the CLI.
    """

    def __init__(self, message: str = "", *, key: str | None = None, **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = params

    def localized(self, language: str | None) -> str:
        """The message in `language` when it has a catalogue key, else the English text."""
        if self.key is None:
            return str(self)
        from core.i18n import translate

        return translate(self.key, language, **self.params)


class ConfigError(IotCareError):
    """A setting is missing or wrong; the message names it."""


class NotFoundError(IotCareError):
    """Something the user named does not exist."""


class ConflictError(IotCareError):
    """Something the user asked to create exists already, or the state does not allow it."""


class SchemaError(IotCareError):
    """The database schema is in a state migrations cannot handle safely."""
