"""Shared bits of the care home pages: running a change and showing what went wrong."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.access import Viewer
from core.errors import IotCareError
from core.queries.care_fields import FieldError
from dashboards.components.i18n import language, t
from dashboards.components.markdown import md_escape
from dashboards.components.page import flash
from dashboards.context import db_session


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
    """Run a change in its own transaction: (True, result) with `done` flashed, or the error
    shown in the reader's language and (False, None)."""
    try:
        with db_session() as session:
            result = change(session, viewer, *args, **kwargs)
    except IotCareError as error:
        show_field_error(error)
        return False, None
    flash(done)
    return True, result
