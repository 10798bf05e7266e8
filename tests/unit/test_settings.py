"""Settings: defaults, validation that names the setting, secrets outside development."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Environment, Settings, load_settings

REPO = Path(__file__).resolve().parents[2]


STRONG = "Zq7vR2mXk9TbW4pLc8NsY3hJd6FgA1uE"  # 32 random-looking characters


def build(**values: object) -> Settings:
    return load_settings(_env_file=None, **values)


def test_defaults_work_in_development() -> None:
    settings = build()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.is_sqlite
    assert settings.mqtt_url is None


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("database_url", "nonsense", "IOTCARE_DATABASE_URL"),
        ("database_url", "mysql://u@h/db", "IOTCARE_DATABASE_URL"),
        ("mqtt_url", "http://broker", "IOTCARE_MQTT_URL"),
        ("mqtt_url", "mqtt://broker:99999", "IOTCARE_MQTT_URL"),
        ("app_port", "0", "IOTCARE_APP_PORT"),
        ("log_level", "LOUD", "IOTCARE_LOG_LEVEL"),
        ("default_timezone", "Mars/Olympus", "IOTCARE_DEFAULT_TIMEZONE"),
        ("session_timeout", "soon", "IOTCARE_SESSION_TIMEOUT"),
        ("mqtt_topic_root", "care/v1", "IOTCARE_MQTT_TOPIC_ROOT"),
    ],
)
def test_bad_setting_is_named_in_one_line(field: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build(**{field: value})
    message = str(raised.value)
    assert message.startswith(f"Invalid setting {named}:")
    assert "\n" not in message


def test_bad_setting_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTCARE_DATABASE_URL", "nonsense")
    with pytest.raises(ConfigError, match="IOTCARE_DATABASE_URL"):
        load_settings(_env_file=None)


def test_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("IOTCARE_LOG_LEVEL=debug\nIOTCARE_APP_PORT=9000\n")
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.app_port == 9000


@pytest.mark.parametrize("text", ["30s", "5m", "2h", "1d", "200ms", "PT30M", "45"])
def test_durations_accept_readable_forms(text: str) -> None:
    expected = {
        "30s": 30,
        "5m": 300,
        "2h": 7200,
        "1d": 86400,
        "200ms": 0.2,
        "PT30M": 1800,
        "45": 45,
    }[text]
    assert build(session_timeout=text).session_timeout == timedelta(seconds=expected)


@pytest.mark.parametrize("environment", ["test", "production"])
def test_missing_secret_stops_start_up_outside_development(environment: str) -> None:
    with pytest.raises(ConfigError, match="IOTCARE_SECRET_KEY"):
        build(environment=environment)


@pytest.mark.parametrize("placeholder", ["changeme", "secret", "short"])
def test_placeholder_secret_is_refused(placeholder: str) -> None:
    with pytest.raises(ConfigError, match="IOTCARE_SECRET_KEY"):
        build(environment="production", secret_key=placeholder)


@pytest.mark.parametrize(
    ("weak", "reason"),
    [
        ("1234567890123456", "at least 32"),
        ("12345678901234567890123456789012", "repeated or sequential"),
        ("abcdefghijklmnopqrstuvwxyz012345", "repeated or sequential"),
        ("abababababababababababababababababab", "different characters"),
        ("passwordpasswordpasswordpassword", "different characters"),
        ("correcthorsecorrecthorsecorrecth", "different characters"),
        ("a1a2a3a4a5a6a7a8a9a0a1a2a3a4a5a6", "entropy"),
    ],
)
def test_weak_secret_is_refused_with_how_to_generate_one(weak: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        build(environment="production", secret_key=weak)
    message = str(raised.value)
    assert "IOTCARE_SECRET_KEY" in message
    assert reason in message
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in message


def test_generated_secrets_are_accepted() -> None:
    for _ in range(200):
        for key in (secrets.token_urlsafe(32), secrets.token_hex(32), secrets.token_urlsafe(48)):
            assert build(environment="production", secret_key=key).secret_key is not None


def test_development_needs_no_secret_and_accepts_any() -> None:
    assert build().secret_key is None
    assert build(secret_key="1234567890123456").environment is Environment.DEVELOPMENT


def test_influx_token_required_with_influx_url() -> None:
    with pytest.raises(ConfigError, match="IOTCARE_INFLUX_TOKEN"):
        build(environment="production", secret_key=STRONG, influx_url="http://influx:8086")


def test_development_secret_is_generated_once(tmp_path: Path) -> None:
    settings = build(data_dir=tmp_path)
    first = settings.resolve_secret_key()
    assert len(first) >= 32
    assert settings.resolve_secret_key() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_env_example_documents_every_setting() -> None:
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*IOTCARE_([A-Z0-9_]+)=", example, re.MULTILINE))
    fields = {name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "settings missing from .env.example"
    assert documented - fields == set(), ".env.example documents settings that do not exist"


def test_no_secret_has_a_default() -> None:
    for name, field in Settings.model_fields.items():
        if "secret" in name or "token" in name or "password" in name:
            assert field.default is None, name
