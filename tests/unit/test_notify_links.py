"""One-click acknowledgement links: genuine ones work until they expire; altered ones never do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from pydantic import SecretStr

from core.notify.links import (
    AckLinkExpired,
    AckLinkInvalid,
    make_ack_link,
    make_ack_token,
    verify_ack_token,
)
from core.settings import Settings

NOW = datetime(2026, 11, 22, 0, 31, tzinfo=UTC)
ALERT = uuid.UUID("12345678-1234-5678-1234-567812345678")


def token_of(link: str) -> str:
    return unquote(parse_qs(urlsplit(link).query)["ack"][0])


def test_link_points_at_the_app_and_verifies(settings: Settings) -> None:
    link = make_ack_link(settings, ALERT, 7, NOW + timedelta(hours=24), opening=0)
    assert link.startswith(f"{settings.app_base_url}/?ack=")
    assert verify_ack_token(settings, token_of(link), NOW) == (ALERT, 7, 0)
    later = NOW + timedelta(hours=23, minutes=59)
    assert verify_ack_token(settings, token_of(link), later) == (ALERT, 7, 0)


def test_link_names_its_opening_round(settings: Settings) -> None:
    token = make_ack_token(settings, ALERT, 7, NOW + timedelta(hours=1), opening=2)
    assert verify_ack_token(settings, token, NOW).opening == 2


def test_expired_link_is_refused_as_expired(settings: Settings) -> None:
    token = make_ack_token(settings, ALERT, 7, NOW + timedelta(hours=1), opening=0)
    with pytest.raises(AckLinkExpired) as raised:
        verify_ack_token(settings, token, NOW + timedelta(hours=1))
    assert raised.value.message_key == "notify.link.expired"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace(".7.", ".8.", 1),  # another user
        lambda t: t.replace(ALERT.hex, uuid.uuid4().hex),  # another alert
        lambda t: ".".join([*t.split(".")[:4], str(int(t.split(".")[4]) + 86400), t.split(".")[5]]),
        lambda t: t.replace(".7.0.", ".7.1.", 1),  # another opening round
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # signature
        lambda t: t.rsplit(".", 1)[0],  # no signature
        lambda t: "v1" + t[2:],
        lambda t: "v1." + ".".join(t.split(".")[1:3] + t.split(".")[4:]),  # the old format
        lambda t: "",
        lambda t: "garbage",
    ],
)
def test_tampered_link_is_invalid(settings: Settings, tamper: object) -> None:
    token = make_ack_token(settings, ALERT, 7, NOW + timedelta(hours=1), opening=0)
    with pytest.raises(AckLinkInvalid) as raised:
        verify_ack_token(settings, tamper(token), NOW)  # type: ignore[operator]
    assert raised.value.message_key == "notify.link.invalid"


def test_link_signed_with_another_key_is_invalid(settings: Settings) -> None:
    other = settings.model_copy(
        update={"secret_key": SecretStr("another-secret-key-0123456789abcdef")}
    )
    token = make_ack_token(other, ALERT, 7, NOW + timedelta(hours=1), opening=0)
    with pytest.raises(AckLinkInvalid):
        verify_ack_token(settings, token, NOW)


def test_naive_times_are_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="naive"):
        make_ack_token(settings, ALERT, 7, datetime(2026, 1, 1), opening=0)
