"""Shared bits of the care home pages: running a change and showing what went wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.access import Viewer
from core.errors import IotCareError
from core.use_cases.care_fields import FieldError
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.components.page import run_action


def show_field_error(error: IotCareError) -> None:
    """An error in the reader's language, naming the field when it is about one."""
    message = error.localized(language())
    if isinstance(error, FieldError):
        message = t(
            "app.care.field_error", field=t(f"app.care.field.{error.field}"), message=message
        )
    st.error(md_escape(message))


def run_change(
    viewer: Viewer, done: str, change: Callable[..., Any], *args: Any, **kwargs: Any
) -> tuple[bool, Any]:
    """`run_action` with errors naming the field they are about."""
    return run_action(viewer, done, change, *args, on_error=show_field_error, **kwargs)
