"""One-click acknowledgement from a notification, served by the API: GET asks, POST acts.

A GET (what mail link scanners and previews do) only shows a small confirm page; the alert is
acknowledged by the page's POST. Both check the link as the app does (core.notify.links: the
signature, the expiry, the opening round, and the recipient's access now).
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.auth import Session_, limit_anonymous, settings_of
from api.problems import accept_language
from core.alerts.titles import title_text
from core.i18n import normalize_language, translate
from core.notify.links import (
    AckLinkError,
    AckLinkExpired,
    AckLinkStale,
    acknowledge_with_link,
    check_ack_link,
)
from models import Alert, User

router = APIRouter(prefix="/ack", include_in_schema=False)

ACK_PATH = "/api/ack"
_MAX_TOKEN = 300
_ERROR_STATUS = ((AckLinkExpired, 410), (AckLinkStale, 409))


def _page(lang: str, title: str, body: str, status: int = 200) -> HTMLResponse:
    """A small self-contained page (no scripts, no external resources)."""
    text = f"""<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}
button{{font-size:1.1rem;padding:.6rem 1.2rem}}</style></head>
<body><h1>{html.escape(title)}</h1>{body}</body></html>"""
    return HTMLResponse(
        text,
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
            "form-action 'self'",
        },
    )


def _error_page(request: Request, error: AckLinkError) -> HTMLResponse:
    lang = accept_language(request.headers.get("accept-language"))
    # Gone when expired, a conflict when the alert moved on since, else a bad link.
    status = next((code for kind, code in _ERROR_STATUS if isinstance(error, kind)), 400)
    message = html.escape(error.localized(lang))
    return _page(lang, translate("api.ack.title", lang), f"<p>{message}</p>", status)


def _what(alert: Alert, lang: str) -> str:
    return html.escape(title_text(alert.title, lang))


def _language(user: User) -> str:
    return normalize_language(user.language)


def _check(session: Session, request: Request, token: str) -> tuple[Alert, User]:
    return check_ack_link(session, settings_of(request), token[:_MAX_TOKEN])


@router.get("", response_class=HTMLResponse)
def confirm_page(
    request: Request, session: Session_, token: Annotated[str, Query(max_length=_MAX_TOKEN)]
) -> HTMLResponse:
    """Ask the recipient to confirm; nothing changes on a GET."""
    limit_anonymous(request)
    try:
        alert, user = _check(session, request, token)
    except AckLinkError as error:
        return _error_page(request, error)
    lang = _language(user)
    body = (
        f"<p>{html.escape(translate('api.ack.confirm', lang, name=user.display_name))}</p>"
        f"<p><strong>{_what(alert, lang)}</strong></p>"
        f'<form method="post" action="{ACK_PATH}">'
        f'<input type="hidden" name="token" value="{html.escape(token)}">'
        f'<button type="submit">{html.escape(translate("api.ack.button", lang))}</button>'
        "</form>"
    )
    return _page(lang, translate("api.ack.title", lang), body)


@router.post("", response_class=HTMLResponse)
def acknowledge(
    request: Request, session: Session_, token: Annotated[str, Form(max_length=_MAX_TOKEN)]
) -> HTMLResponse:
    """Acknowledge as the link's recipient (audited like any acknowledgement)."""
    limit_anonymous(request)
    try:
        _alert, user = _check(session, request, token)
        alert = acknowledge_with_link(session, settings_of(request), token[:_MAX_TOKEN])
        session.commit()
    except AckLinkError as error:
        session.rollback()
        return _error_page(request, error)
    lang = _language(user)
    done = translate("api.ack.done", lang, title=title_text(alert.title, lang))
    body = f"<p>{html.escape(done)}</p>"
    return _page(lang, translate("api.ack.title", lang), body)
