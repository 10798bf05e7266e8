"""The one settings class every IoT Care process reads (environment variables and .env)."""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from core.errors import ConfigError
from core.mqtt_url import parse_broker_url

ENV_PREFIX = "IOTCARE_"

# Values that mean "somebody copied .env.example and did not fill it in".
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "password", "xxx", "todo", "<secret>"}

# A signing key must resist guessing: long, varied, about 128 bits of entropy or more.
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 10
MIN_SECRET_BITS = 128
KEY_HOW_TO = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> Any:
    """Accept '200ms', '30s', '5m', '2h', '1d' or plain seconds besides ISO 8601."""
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    return value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Environment(StrEnum):
    """Where a process runs; anything but development demands real secrets."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    """How log records are written."""

    CONSOLE = "console"
    JSON = "json"


class MqttProtocol(StrEnum):
    """MQTT protocol version spoken to the broker."""

    V5 = "5"
    V311 = "3.1.1"


class Language(StrEnum):
    """Languages every text a person reads is available in."""

    EN = "en"
    KO = "ko"


class Settings(BaseSettings):
    """Every setting of every IoT Care process, read from IOTCARE_* variables and .env."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- general
    environment: Environment = Field(
        Environment.DEVELOPMENT, description="development, test or production."
    )
    data_dir: Path = Field(
        Path("var"), description="Directory for local state: SQLite file, spool, secrets."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs sessions and one-click links. Required outside development "
        "(in development one is generated and kept in data_dir): at least 32 random characters, "
        "about 128 bits; short, repetitive or sequential keys are refused. Generate one with "
        '`python -c "import secrets; print(secrets.token_urlsafe(32))"`.',
    )
    language: Language = Field(
        Language.EN, description="Default language for CLI messages and new users (en or ko)."
    )
    default_timezone: str = Field(
        "Asia/Seoul", description="IANA timezone for new sites when none is given."
    )

    # --- database
    database_url: str = Field(
        "sqlite:///var/iotcare.db",
        description="SQLAlchemy URL of the system of record: sqlite:///path or "
        "postgresql+psycopg2://user:password@host:5432/db.",
    )
    database_pool_size: int = Field(5, ge=1, le=200, description="PostgreSQL pool size.")
    database_max_overflow: int = Field(
        10, ge=0, le=200, description="Extra PostgreSQL connections beyond the pool."
    )
    database_pool_timeout: Duration = Field(
        timedelta(seconds=30), description="How long to wait for a pooled connection."
    )
    sqlite_busy_timeout: Duration = Field(
        timedelta(seconds=10), description="How long SQLite waits on a locked database."
    )

    # --- MQTT
    mqtt_url: str | None = Field(
        None,
        description="Broker URL, mqtt://user:password@host:1883 or mqtts:// for TLS. "
        "Unset: `make demo` starts the embedded broker.",
    )
    mqtt_topic_root: str = Field(
        "care", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="First level of every topic."
    )
    mqtt_protocol: MqttProtocol = Field(
        MqttProtocol.V311,
        description="MQTT protocol version: 3.1.1 or 5. paho decodes MQTT 5 properties on every "
        "message, which costs ingest about a third of its throughput; 5 sends the in-flight "
        "window to the broker as Receive Maximum.",
    )
    mqtt_client_id: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]{1,128}$",
        description="Client id of this ingest replica; unset: iotcare-ingest-<hostname>. Must be "
        "stable across restarts (the broker keeps the session under it).",
    )
    mqtt_shared_group: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Shared-subscription group, so several replicas split the load; unset: one "
        "replica on a plain persistent subscription. Mosquitto 2.0 does not restore shared "
        "subscriptions after a restart: what devices publish until the replicas resubscribe is "
        "lost (docs/ingest.md).",
    )
    mqtt_keepalive: int = Field(30, ge=5, le=3600, description="Keepalive, seconds.")
    mqtt_session_expiry: Duration = Field(
        timedelta(days=7),
        description="How long the broker keeps this replica's session and queued messages "
        "while it is away (MQTT 5).",
    )
    mqtt_reconnect_min: Duration = Field(
        timedelta(seconds=1), description="First reconnect delay (doubles, with jitter)."
    )
    mqtt_reconnect_max: Duration = Field(
        timedelta(seconds=60), description="Longest reconnect delay."
    )
    mqtt_tls_ca_file: Path | None = Field(
        None, description="CA bundle for mqtts:// (unset: the system's trust store)."
    )
    mqtt_tls_insecure: bool = Field(
        False, description="Skip broker certificate hostname checks (testing only)."
    )

    # --- Mosquitto files (device credentials: `iotcare devices provision`)
    mosquitto_password_file: Path | None = Field(
        None,
        description="Mosquitto's password_file, rewritten from the registry (hashes only) when "
        "devices are provisioned or revoked; unset: not written.",
    )
    mosquitto_acl_file: Path | None = Field(
        None,
        description="Mosquitto's acl_file, rewritten with the password file: each device may "
        "publish and subscribe only under its own topics.",
    )
    mosquitto_pid_file: Path | None = Field(
        None,
        description="Mosquitto's pid_file: after rewriting the files, SIGHUP is sent to that "
        "process so it reloads them; unset: reload Mosquitto yourself.",
    )

    # --- ingest
    ingest_batch_size: int = Field(
        5000, ge=1, le=100_000, description="Flush a write batch at this many rows."
    )
    ingest_flush_interval: Duration = Field(
        timedelta(milliseconds=200), description="Flush a write batch at least this often."
    )
    ingest_idle_flush: Duration = Field(
        timedelta(milliseconds=5),
        description="Flush as soon as no message arrived for this long (traffic paused, or the "
        "broker's in-flight window, perhaps smaller than ours, is full).",
    )
    ingest_inflight_window: int = Field(
        20,
        ge=1,
        le=65535,
        description="Unacknowledged messages the broker lets us hold (Mosquitto "
        "max_inflight_messages, MQTT 5 receive maximum). A batch is flushed as soon as this many "
        "messages wait, so set it to the broker's limit; raise both for throughput.",
    )
    ingest_max_payload_bytes: int = Field(
        262_144, ge=1024, description="Larger payloads are dead-lettered as oversized."
    )
    ingest_dead_letter_payload_bytes: int = Field(
        16_384, ge=256, description="Raw payload kept per dead letter (the rest is cut)."
    )
    ingest_max_future_skew: Duration = Field(
        timedelta(minutes=5), description="Timestamps further ahead than this are dead-lettered."
    )
    ingest_retry_max: Duration = Field(
        timedelta(seconds=30),
        description="Longest wait between write retries while a store is down.",
    )
    ingest_heartbeat_interval: Duration = Field(
        timedelta(seconds=10),
        description="How often a replica records its state in the database.",
    )
    metrics_host: str = Field("127.0.0.1", description="Address of the metrics/health endpoint.")
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Port of /metrics and /healthz (0: off)."
    )
    spool_max_bytes: int = Field(
        1_073_741_824,
        ge=1_048_576,
        description="Disk the InfluxDB spool may use before ingest stops acknowledging "
        "(back-pressure).",
    )

    # --- InfluxDB (optional long-term sink)
    influx_url: str | None = Field(None, description="InfluxDB 2.x URL; unset disables the sink.")
    influx_token: SecretStr | None = Field(None, description="InfluxDB API token.")
    influx_org: str = Field("iotcare", description="InfluxDB organisation.")
    influx_bucket: str = Field("telemetry", description="InfluxDB bucket for raw telemetry.")

    # --- logging
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR.")
    log_format: LogFormat = Field(LogFormat.CONSOLE, description="console or json.")
    log_dir: Path | None = Field(
        None, description="When set, logs also go to rotating files in this directory."
    )
    log_max_bytes: int = Field(10_000_000, ge=10_000, description="Size of one log file.")
    log_backup_count: int = Field(5, ge=0, le=1000, description="Rotated log files kept.")

    # --- app
    app_base_url: str = Field(
        "http://localhost:8501", description="Public URL of the Streamlit app (for links)."
    )
    app_port: int = Field(8501, ge=1, le=65535, description="Port the Streamlit app listens on.")
    session_timeout: Duration = Field(
        timedelta(hours=8), description="Signed-in session lifetime in the app."
    )
    app_refresh: Duration = Field(
        timedelta(seconds=15),
        gt=timedelta(0),
        description=(
            "How often the app's live parts refresh themselves: the overview, the alerts list and "
            "inbox, the sidebar's unread count (a new critical alert shows within this time)."
        ),
    )

    # --- HTTP API for integrations (`iotcare api`)
    api_host: str = Field(
        "127.0.0.1", description="Address the HTTP API listens on (0.0.0.0 in a container)."
    )
    api_port: int = Field(8600, ge=1, le=65535, description="Port the HTTP API listens on.")
    api_rate_limit: int = Field(
        600,
        ge=1,
        description="Requests a minute one API token may make (a token bucket of that size, "
        "refilled evenly); more get 429 with Retry-After.",
    )
    api_anonymous_rate_limit: int = Field(
        60,
        ge=1,
        description="Requests a minute one client address may make without a valid token "
        "(failed tokens, one-click acknowledgement pages).",
    )
    api_trusted_proxies: str = Field(
        "127.0.0.1",
        description="Addresses (comma-separated, or *) of reverse proxies whose "
        "X-Forwarded-For names the client, for the per-address rate limit.",
    )
    api_page_size_max: int = Field(
        500, ge=1, le=10_000, description="Most items one page of an API list may hold."
    )

    # --- notifications (outbox delivery, channels, one-click links)
    notify_max_attempts: int = Field(
        10,
        ge=1,
        le=100,
        description="Delivery attempts before a notification is marked dead (shown to operators).",
    )
    notify_retry_initial: Duration = Field(
        timedelta(seconds=30),
        description="Wait before the first retry of a failed delivery (doubles, with jitter).",
    )
    notify_retry_max: Duration = Field(
        timedelta(minutes=30), description="Longest wait between delivery retries."
    )
    ack_link_ttl: Duration = Field(
        timedelta(hours=24),
        description="How long a one-click acknowledgement link in a notification stays valid.",
    )
    smtp_host: str | None = Field(
        None, description="SMTP server for e-mail notifications; unset: e-mail is off."
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    smtp_security: str = Field(
        "starttls",
        pattern=r"^(starttls|ssl|none)$",
        description="starttls (port 587), ssl (implicit TLS, port 465) or none (local relay).",
    )
    smtp_username: str | None = Field(None, description="SMTP login; unset: no login.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_from: str | None = Field(
        None, description="Sender address of notification e-mails, e.g. alerts@example.org."
    )
    telegram_bot_token: SecretStr | None = Field(
        None, description="Telegram bot token (from @BotFather); unset: Telegram is off."
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org",
        pattern=r"^https?://[^\s/]+(:\d+)?/?$",
        description="Telegram Bot API server (a self-hosted telegram-bot-api server also works).",
    )
    ntfy_url: str | None = Field(
        None,
        pattern=r"^https?://[^\s/?#]+/?$",
        description="ntfy server (https://ntfy.sh or your own, no path) for contacts given as a "
        "bare topic name; unset: ntfy contacts must be full topic URLs "
        "(https://ntfy.example.org/topic).",
    )
    ntfy_token: SecretStr | None = Field(
        None,
        description="ntfy access token (tk_...) sent as a Bearer token, only to the "
        "IOTCARE_NTFY_URL server; unset: topics are published without a login.",
    )
    sms_gateway_url: SecretStr | None = Field(
        None,
        description="Apprise URL of the SMS gateway with {phone} (or {phone_digits}) where the "
        "recipient's number goes, e.g. twilio://SID:TOKEN@+15551234567/{phone} or "
        "jsons://user:pass@sms.example.org/send?:to={phone}&:message=text; unset: SMS is off.",
    )
    sms_max_segments: int = Field(
        3,
        ge=2,
        le=10,
        description="Longest SMS in segments (160 GSM-7 or 70 UCS-2 characters each, e.g. "
        "Korean; at least 2, as one Korean segment cannot hold the acknowledgement link); "
        "longer messages are cut, the link always kept whole.",
    )
    llm_url: str | None = Field(
        None,
        pattern=r"^https?://\S+$",
        description="OpenAI-compatible chat completions endpoint (full URL, e.g. "
        "http://llm:8080/v1/chat/completions) that writes a one-paragraph summary on top of "
        "each notification; unset: the template alone. It receives the alert facts, never "
        "the resident's name.",
    )
    llm_api_key: SecretStr | None = Field(
        None, description="Bearer key for the LLM endpoint, if it needs one."
    )
    llm_model: str | None = Field(
        None, description="Model name sent to the LLM endpoint (omitted when unset)."
    )
    llm_timeout: Duration = Field(
        timedelta(seconds=5),
        description="Longest wait for the LLM summary before the template is used alone.",
    )

    # --- scheduled jobs (Prefect flows: rollups, data quality, care reports, retention)
    rollup_lateness: Duration = Field(
        timedelta(hours=2),
        description="How late a reading may arrive and still be in its rollup: each hourly run "
        "re-aggregates the hours that closed less than this long ago, and a day is rolled up "
        "once it closed this long ago. Later readings need `iotcare rollups backfill`.",
    )
    rollup_work_mem: str = Field(
        "256MB",
        pattern=r"^\d+(kB|MB|GB)$",
        description="PostgreSQL work_mem for the rollup query, so its sort stays in memory.",
    )
    quality_freshness: Duration = Field(
        timedelta(minutes=90),
        description="A registered device with no reading for longer than this fails the "
        "data-quality freshness check (hourly reporters included, hence the margin).",
    )
    quality_dead_letter_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Highest acceptable share of dead-lettered messages in a data-quality window.",
    )
    quality_sample_size: int = Field(
        20, ge=1, le=1000, description="Unexpected values kept per failed expectation."
    )
    quality_retention_days: int = Field(
        90, ge=1, description="Data-quality runs and their Data Docs pages kept this many days."
    )
    care_report_delay: Duration = Field(
        timedelta(hours=1),
        description="How long after a resident's local midnight the report of the day before "
        "is made (a margin for late readings).",
    )
    retention_days: int = Field(
        30, ge=1, description="Raw readings older than this many days are deleted (rollups stay)."
    )
    dead_letter_retention_days: int = Field(
        30, ge=1, description="Dead letters older than this many days are deleted."
    )
    notification_retention_days: int = Field(
        90, ge=1, description="Delivered notifications older than this many days are deleted."
    )
    retention_batch_size: int = Field(
        10_000,
        ge=100,
        le=1_000_000,
        description="Rows deleted per transaction by retention, so deletes never hold long locks.",
    )

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; use sqlite:///path/to/file.db or "
                "postgresql+psycopg2://user:password@host:5432/dbname"
            ) from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError(
                f"unsupported database '{url.get_backend_name()}'; use sqlite or postgresql"
            )
        if url.get_backend_name() == "postgresql" and not url.host and not url.query:
            raise ValueError("a PostgreSQL URL needs a host")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parse_broker_url(value)  # a BrokerUrlError is a ValueError saying what is wrong
        return value

    @field_validator("mqtt_shared_group", "mqtt_client_id", mode="before")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("influx_url", "app_base_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("use http://host:port or https://host")
        return value.rstrip("/")

    @field_validator("ntfy_url", mode="before")
    @classmethod
    def _ntfy_url_base(cls, value: str | None) -> str | None:
        return value.rstrip("/") if isinstance(value, str) and value.strip() else None

    @field_validator("sms_gateway_url")
    @classmethod
    def _check_sms_gateway(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        text = value.get_secret_value().strip()
        # Never echo the value: it usually holds the gateway's password or API key.
        if "://" not in text:
            raise ValueError("use an Apprise URL such as twilio://... or jsons://...")
        if "{phone}" not in text and "{phone_digits}" not in text:
            raise ValueError("the URL needs {phone} or {phone_digits} where the number goes")
        return SecretStr(text)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("use DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone '{value}' (use an IANA name such as Asia/Seoul)"
            ) from None
        return value

    @model_validator(mode="after")
    def _check_secrets(self) -> Settings:
        if self.environment is Environment.DEVELOPMENT:
            return self
        if _is_placeholder(self.secret_key):
            raise ValueError(
                f"{ENV_PREFIX}SECRET_KEY must be set to a long random value outside development; "
                f"{KEY_HOW_TO}"
            )
        assert self.secret_key is not None
        weakness = secret_weakness(self.secret_key.get_secret_value())
        if weakness:
            raise ValueError(f"{ENV_PREFIX}SECRET_KEY is too weak: {weakness}; {KEY_HOW_TO}")
        if self.influx_url and _is_placeholder(self.influx_token):
            raise ValueError(
                f"{ENV_PREFIX}INFLUX_TOKEN must be set when {ENV_PREFIX}INFLUX_URL is set"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        """Whether the system of record is a SQLite file."""
        return make_url(self.database_url).get_backend_name() == "sqlite"

    def resolve_secret_key(self) -> str:
        """The signing key: the configured one, or in development one kept in data_dir."""
        if not _is_placeholder(self.secret_key):
            assert self.secret_key is not None
            return self.secret_key.get_secret_value()
        if self.environment is not Environment.DEVELOPMENT:
            raise ConfigError(f"{ENV_PREFIX}SECRET_KEY is not set")
        return _development_secret(self.data_dir)


def secret_weakness(secret: str) -> str | None:
    """Why a signing key is guessable (too short, repetitive, sequential, low entropy), or None."""
    text = secret.strip()
    if len(text) < MIN_SECRET_LENGTH:
        return f"it has {len(text)} characters, at least {MIN_SECRET_LENGTH} are needed"
    if len(set(text)) < MIN_SECRET_DISTINCT:
        return f"it uses only {len(set(text))} different characters"
    # Runs of three repeated or sequential characters ("aaa", "123", "cba") are rare in random
    # keys (under 1 % of positions even in hex); in typed keys they are most of the text.
    runs = sum(b - a == c - b and abs(b - a) <= 1 for a, b, c in _triples(text))
    if runs * 4 > len(text) - 2:
        return "it is made of repeated or sequential characters"
    # Shannon estimate from the key's own character frequencies, times its length.
    counts = Counter(text)
    per_char = -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())
    if per_char * len(text) < MIN_SECRET_BITS:
        return f"its estimated entropy is {per_char * len(text):.0f} bits, below {MIN_SECRET_BITS}"
    return None


def _triples(text: str) -> zip[tuple[int, int, int]]:
    codes = [ord(char) for char in text]
    return zip(codes, codes[1:], codes[2:], strict=False)


def _is_placeholder(value: SecretStr | None) -> bool:
    if value is None:
        return True
    text = value.get_secret_value().strip()
    return text.lower() in _PLACEHOLDERS or len(text) < 16


def _development_secret(data_dir: Path) -> str:
    import secrets

    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the first bad setting, for people rather than programmers."""
    first = error.errors()[0]
    loc = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = first.get("msg", "invalid value").removeprefix("Value error, ")
    if loc:
        return f"Invalid setting {ENV_PREFIX}{loc[0].upper()}: {message}"
    return f"Invalid settings: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into a ConfigError that names the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests clear the cache to override)."""
    return load_settings()
