"""Names, firmware, titles and notes from people and devices show literally, never as Markdown."""

from __future__ import annotations

import re

import pytest

from core.alerts import lifecycle
from core.alerts.lifecycle import Subject
from core.timeutil import utcnow
from dashboards.components.markdown import md_escape
from models import Device, DeviceStatus, RuleKind, Severity, User
from tests.dashboards.conftest import no_exception

LINK = "[click](http://evil.example)"
IMAGE = "![x](http://evil.example/a.png)"
# A link or image that Markdown would act on: an unescaped "[" or "](", or a bare web address.
ACTIVE = re.compile(r"(?<!\\)\[|(?<!\\)\]\(|https?://|www\.evil")


def markdown_values(at) -> list[str]:
    """The Markdown source of every element that renders Markdown."""
    kinds = ("title", "header", "subheader", "markdown", "caption", "info", "success")
    kinds += ("warning", "error")
    return [str(element.value) for kind in kinds for element in getattr(at, kind)]


def assert_literal(at, *visible: str) -> None:
    no_exception(at)
    values = markdown_values(at)
    hostile = [v for v in values if "evil" in v]
    assert hostile, values  # the strings are shown...
    assert not [v for v in hostile if ACTIVE.search(v)], hostile  # ...but never as links/images
    for word in visible:
        assert any(word in v for v in hostile), (word, hostile)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (LINK, r"\[click\](http\://evil.example)"),
        (IMAGE, r"!\[x\](http\://evil.example/a.png)"),
        ("see www.evil.example", r"see www\.evil.example"),
        (
            "**bold** _it_ `code` <b>x</b> $x$ :red[y]",
            r"\*\*bold\*\* \_it\_ \`code\` \<b\>x\</b\> \$x\$ :red\[y\]",
        ),
        ("Kitchen (Gas valve) 09:31", "Kitchen (Gas valve) 09:31"),
        ("two\nlines", "two lines"),
    ],
)
def test_md_escape(text: str, expected: str) -> None:
    assert md_escape(text) == expected


def test_a_device_named_like_a_link_shows_as_text(open_app, app_db) -> None:
    with app_db.session() as session:
        session.add(
            Device(
                id="evil-name",
                site_id=app_db.site_id,
                name=LINK,
                firmware=IMAGE,
                room=LINK,
                status=DeviceStatus.ONLINE,
                last_seen=utcnow(),
                created_at=utcnow(),
            )
        )
        session.commit()
    at = open_app("operator", page="devices", query={"device": "evil-name"})
    assert_literal(at, "click", "a.png")


def test_an_alert_title_and_note_like_links_show_as_text(open_app, app_db) -> None:
    operator = app_db.user("operator")
    with app_db.session() as session:
        raised = lifecycle.raise_alert(
            session,
            kind=RuleKind.EVENT,
            severity=Severity.WARNING,
            subject=Subject("site", "evil-alert", site_id=app_db.site_id),
            title=f"Smoke {LINK}",
            details={"event_type": IMAGE},
        )
        lifecycle.acknowledge(
            session, raised.alert.id, session.get(User, operator.id), note=f"see {IMAGE}"
        )
        session.commit()
        alert_id = str(raised.alert.id)
    at = open_app("operator", page="alerts", query={"alert": alert_id})
    assert_literal(at, "click", "a.png")
