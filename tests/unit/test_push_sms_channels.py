"""ntfy and SMS contacts without a network: address checks, SMS length, secret masking, settings."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from pydantic import ValidationError

from core.errors import IotCareError
from core.i18n import catalogue
from core.notify.channels import (
    DeliveryError,
    make_channels,
    mask_secrets,
    normalize_phone,
    ntfy_plugin,
    parse_ntfy_address,
    secret_values,
    sms_encoding,
    sms_length,
    sms_segments,
    sms_text,
    sms_url,
)
from core.settings import describe_validation_error
from core.use_cases.admin import validate_address
from models import Notification, NotificationPurpose
from tests.conftest import make_test_settings

LINK = "https://care.example.org/?ack=v1.0123456789abcdef0123456789abcdef.1.1796611859.sig"


def note(subject: str, body: str, language: str = "en", **payload: Any) -> Notification:
    """A notification as the outbox makes it (only what channels read)."""
    data = {"ack_url": LINK, "language": language, "facts": {"severity": "critical"}}
    data.update(payload)
    row = SimpleNamespace(
        subject=subject,
        body=body,
        payload=data,
        address="+821012345678",
        purpose=NotificationPurpose.NEW,
        idempotency_key="k",
    )
    return cast(Notification, row)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("+821012345678", "+821012345678"),
        ("+82 10-1234-5678", "+821012345678"),
        ("0082 10 1234 5678", "+821012345678"),
        ("+1 (415) 555-0123", "+14155550123"),
    ],
)
def test_phone_numbers_are_stored_in_e164(written: str, stored: str) -> None:
    assert normalize_phone(written) == stored
    assert validate_address("sms", written) == stored


@pytest.mark.parametrize(
    "bad", ["010-1234-5678", "+0101234567", "+82", "call me", "+8210123456789012"]
)
def test_phone_numbers_not_in_e164_are_refused_in_english_and_korean(bad: str) -> None:
    with pytest.raises(IotCareError) as caught:
        validate_address("sms", bad)
    assert caught.value.key == "errors.admin.phone_invalid"
    assert "+821012345678" in caught.value.localized("en")
    assert "국가 번호" in caught.value.localized("ko")


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("care-night-4f2a", (None, "care-night-4f2a")),
        ("https://ntfy.example.org/care_night", ("https://ntfy.example.org", "care_night")),
        ("http://10.0.0.5:8080/kim/", ("http://10.0.0.5:8080", "kim")),
        ("ntfys://NTFY.example.org/kim", ("https://ntfy.example.org", "kim")),
    ],
)
def test_ntfy_addresses_are_a_topic_or_its_url(address: str, parsed: tuple[Any, str]) -> None:
    assert parse_ntfy_address(address) == parsed
    assert validate_address("ntfy", f" {address} ") == address


@pytest.mark.parametrize(
    "bad",
    [
        "care night",
        "x" * 65,
        "https://ntfy.example.org/",
        "https://ntfy.example.org/a/b",
        "https://user:pw@ntfy.example.org/topic",
        "https://ntfy.example.org/topic?auth=abc",
        "mailto://ntfy.example.org/topic",
        "주제",
    ],
)
def test_bad_ntfy_addresses_are_refused_in_english_and_korean(bad: str) -> None:
    with pytest.raises(IotCareError) as caught:
        validate_address("ntfy", bad)
    assert caught.value.key == "errors.admin.ntfy_invalid"
    assert "ntfy" in caught.value.localized("en") and "토픽" in caught.value.localized("ko")


def test_both_channels_have_labels_in_english_and_korean() -> None:
    for language in ("en", "ko"):
        texts = catalogue(language)
        for key in ("app.admin.channel", "app.notifications.channels"):
            assert texts[f"{key}.ntfy"] and texts[f"{key}.sms"]
        assert "+821012345678" in texts["app.admin.address_help"]


def test_sms_segments_follow_gsm7_and_ucs2_sizes() -> None:
    assert (sms_encoding("Fall in room 101 {x}"), sms_encoding("낙상 감지")) == ("gsm7", "ucs2")
    assert sms_length("[]") == 4  # GSM-7 extension characters take two septets
    assert sms_length("😀", "ucs2") == 2  # a surrogate pair
    assert [sms_segments("a" * n) for n in (160, 161, 306, 307)] == [1, 2, 2, 3]
    assert [sms_segments("가" * n) for n in (70, 71, 134, 135)] == [1, 2, 2, 3]


@pytest.mark.parametrize("segments", [2, 3, 5])
def test_a_long_korean_message_is_cut_to_its_segments_keeping_the_link(segments: int) -> None:
    body = "\n".join(["긴급 알림: 낙상 감지", "대상: 김영희 (101호)", "장소: 햇살요양원 " * 30])
    body += f"\n\n한 번에 확인하기(박간호사님으로): {LINK}"
    text = sms_text(note("[긴급] 낙상 감지 — 김영희 (101호)", body, "ko"), segments)
    assert sms_segments(text) == segments
    assert text.endswith(f"\n확인: {LINK}")
    assert text.count(LINK) == 1
    assert text.startswith("[긴급] 낙상 감지")
    assert "…\n확인" in text


def test_the_link_is_never_cut_even_when_it_alone_overflows_the_segments() -> None:
    long_link = LINK + "x" * 200
    row = note("[긴급] 낙상 감지", "긴급 알림", "ko", ack_url=long_link)
    assert sms_text(row, 2) == f"확인: {long_link}"


def test_an_english_message_stays_gsm7_and_whole_when_it_fits() -> None:
    body = f"CRITICAL alert: Fall detected\n\nAcknowledge with one click: {LINK}"
    text = sms_text(note("[CRITICAL] Fall detected — Kim (101)", body), 3)
    assert text == (
        f"[CRITICAL] Fall detected - Kim (101)\nCRITICAL alert: Fall detected\nAcknowledge: {LINK}"
    )
    assert sms_encoding(text) == "gsm7"


def test_the_sms_number_goes_into_the_gateway_url(tmp_path: Path) -> None:
    settings = make_test_settings(
        tmp_path, sms_gateway_url="twilio://ACabc:tokentokentoken@+15551234567/{phone}"
    )
    assert sms_url(settings, note("s", "b")).endswith("/%2B821012345678")
    with pytest.raises(DeliveryError) as caught:
        sms_url(make_test_settings(tmp_path), note("s", "b"))
    assert "IOTCARE_SMS_GATEWAY_URL" in caught.value.reason and not caught.value.retryable


def test_the_ntfy_token_goes_to_the_configured_server_only(tmp_path: Path) -> None:
    settings = make_test_settings(
        tmp_path, ntfy_url="https://ntfy.example.org/", ntfy_token="tk_abcdefabcdef"
    )
    here = note("s", "b")
    here.address = "care-night"
    plugin = ntfy_plugin(settings, here)
    assert (plugin.host, plugin.secure, plugin.token, plugin.priority) == (
        "ntfy.example.org",
        True,
        "tk_abcdefabcdef",
        "max",
    )
    there = note("s", "b")
    there.address = "https://ntfy.other.org/care-night"
    assert ntfy_plugin(settings, there).token is None


@pytest.mark.parametrize(
    "bad", ["json://gw.example.org/send", "no-scheme {phone}"], ids=["no-phone", "no-url"]
)
def test_a_gateway_url_without_phone_or_scheme_is_refused_without_echoing_it(
    tmp_path: Path, bad: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make_test_settings(tmp_path, sms_gateway_url=bad)
    # What start-up prints: the setting named, its value (often with a password) not shown.
    said = describe_validation_error(caught.value)
    assert said.startswith("Invalid setting IOTCARE_SMS_GATEWAY_URL") and bad not in said


def test_secrets_are_masked_in_errors_and_in_apprise_log_records(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_test_settings(
        tmp_path,
        ntfy_token="tk_ntfytokenvalue",
        sms_gateway_url="jsons://gw:gw-pass-word@sms.example.org/send?key=api-key-1234&:to={phone}",
    )
    values = secret_values(settings)
    assert {"tk_ntfytokenvalue", "gw-pass-word", "api-key-1234"} <= set(values)
    assert "+" not in "".join(values)  # the payload mapping is not a secret
    assert mask_secrets("POST to gw:gw-pass-word@ (key=api-key-1234)", values) == (
        "POST to gw:***@ (key=***)"
    )
    make_channels(settings)
    with caplog.at_level(logging.DEBUG, logger="apprise"):
        logging.getLogger("apprise").debug(
            "Headers: %s", {"Authorization": "Basic Z3c6Z3ctcGFzcy13b3Jk", "X-Click": LINK}
        )
        logging.getLogger("apprise").warning("token %s refused", "tk_ntfytokenvalue")
    assert "Z3c6Z3ctcGFzcy13b3Jk" not in caplog.text
    assert "tk_ntfytokenvalue" not in caplog.text
    assert "?ack=***" in caplog.text and "v1.0123" not in caplog.text
