"""The one broker-URL parser: mqtt://[user:password@]host[:port], or mqtts:// for TLS.

Settings validation, ingest, the command sender, the broker's account files, the device
simulator, the benchmarks and the tests all read IOTCARE_MQTT_URL-style URLs through here, so
they agree on schemes, default ports and percent-encoded credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from core.errors import ConfigError

# tcp:// and ssl:// are paho's and Mosquitto's own spellings of mqtt:// and mqtts://.
PLAIN_SCHEMES = frozenset({"mqtt", "tcp"})
TLS_SCHEMES = frozenset({"mqtts", "ssl"})
PLAIN_PORT = 1883
TLS_PORT = 8883
USAGE = "use mqtt://[user:password@]host[:port] or mqtts:// for TLS"
BAD_PORT = "the port is not a number between 1 and 65535"


class BrokerUrlError(ValueError):
    """A broker URL that cannot be used; the message says how to write one."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and how to log in."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    @property
    def label(self) -> str:
        """host:port, without credentials, for messages."""
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, setting: str = "IOTCARE_MQTT_URL") -> BrokerAddress:
        """Parse a URL from configuration; ConfigError naming the setting if it is unusable."""
        try:
            return parse_broker_url(url)
        except BrokerUrlError as error:
            raise ConfigError(f"Invalid setting {setting}: {error}") from None


def parse_broker_url(url: str) -> BrokerAddress:
    """The broker address of `url` (default port 1883, 8883 for TLS); BrokerUrlError if unusable."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme not in PLAIN_SCHEMES | TLS_SCHEMES or not parts.hostname:
        raise BrokerUrlError(USAGE)
    try:
        port = parts.port
    except ValueError:
        raise BrokerUrlError(BAD_PORT) from None
    tls = scheme in TLS_SCHEMES
    return BrokerAddress(
        host=parts.hostname,
        port=port or (TLS_PORT if tls else PLAIN_PORT),
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def redact(url: str) -> str:
    """The URL with its password replaced by *** (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
