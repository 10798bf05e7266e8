"""The one broker-URL parser: schemes, default ports, credentials, and what it refuses."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.mqtt_url import BrokerAddress, BrokerUrlError, parse_broker_url, redact


def test_plain_and_tls_urls_get_their_default_ports_and_decoded_credentials() -> None:
    plain = parse_broker_url("mqtt://svc:p%40ss%3Aword@broker.local")
    assert plain == BrokerAddress("broker.local", 1883, False, "svc", "p@ss:word")
    assert parse_broker_url("mqtts://broker.local") == BrokerAddress("broker.local", 8883, True)
    assert parse_broker_url("tcp://10.0.0.5:11883").label == "10.0.0.5:11883"
    assert parse_broker_url("ssl://broker.local:9883").tls


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://broker.local", "use mqtt://"),
        ("mqtt://", "use mqtt://"),
        ("broker.local:1883", "use mqtt://"),
        ("mqtt://broker.local:99999", "the port is not a number"),
    ],
)
def test_unusable_urls_say_how_to_write_one(url: str, message: str) -> None:
    with pytest.raises(BrokerUrlError, match=message):
        parse_broker_url(url)


def test_from_url_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="Invalid setting IOTCARE_MQTT_URL: use mqtt://"):
        BrokerAddress.from_url("http://broker.local")
    assert BrokerAddress.from_url("mqtt://127.0.0.1:1") == BrokerAddress("127.0.0.1", 1, False)


def test_redact_hides_only_the_password() -> None:
    assert redact("mqtt://sim:secret@host:1883") == "mqtt://sim:***@host:1883"
    assert redact("mqtt://host:1883") == "mqtt://host:1883"
