"""PostgreSQL and Mosquitto for a test run that was not given any (IOTCARE_TEST_* unset).

A developer's plain `pytest` or `make test` then starts both from the binaries on this machine,
once for the run, instead of skipping every test that needs them; only where the binaries are
absent do those tests skip (and fail in CI, which configures its own servers).
"""

from __future__ import annotations

import logging
import os
import pwd
from collections.abc import Callable

from tests.support import services

log = logging.getLogger(__name__)

DATABASE_VARIABLE = "IOTCARE_TEST_DATABASE_URL"
MQTT_VARIABLE = "IOTCARE_TEST_MQTT_URL"


def postgres_usable() -> bool:
    """Whether initdb and postgres are here, and (as root) the user they must run as."""
    from tests.support.postgres_instance import RUN_AS, find_pg_bin

    if find_pg_bin() is None:
        return False
    if os.name == "posix" and os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return False
    return True


def start_missing_services() -> list[Callable[[], None]]:
    """Start a PostgreSQL and a Mosquitto for each unset IOTCARE_TEST_* URL whose binaries exist,
    export their URLs (xdist workers inherit them) and return how to stop them."""
    from devkit.mosquitto import PrivateMosquitto, find_mosquitto
    from tests.support.postgres_instance import PrivatePostgres

    stops: list[Callable[[], None]] = []
    if not os.environ.get(DATABASE_VARIABLE) and postgres_usable():
        server = PrivatePostgres()
        stops.append(server.close)
        server.start(timeout=60)
        os.environ[DATABASE_VARIABLE] = services.TEST_DATABASE_URL = server.url
        log.info("PostgreSQL for this test run at %s", server.url)
    if not os.environ.get(MQTT_VARIABLE) and find_mosquitto() is not None:
        broker = PrivateMosquitto(persistence=False)
        stops.append(broker.close)
        broker.start()
        os.environ[MQTT_VARIABLE] = services.TEST_MQTT_URL = broker.url
        log.info("Mosquitto for this test run at %s", broker.url)
    return stops
