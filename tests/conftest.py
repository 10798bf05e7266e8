"""Fixtures every test module can use: settings, databases on SQLite and PostgreSQL, factories.

Database tests take `db_session` (or `engine`) and so run once per backend: SQLite always,
PostgreSQL when IOTCARE_TEST_DATABASE_URL is set (and in CI, where it must be).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core import security
from core.db import make_engine
from core.settings import Settings, get_settings
from tests.factories import Factory
from tests.support.databases import BACKENDS, drop_templates, migrated_database, throwaway_database

TEST_SECRET = "test-secret-key-not-for-production-0123456789"
# Argon2id at its cheapest (1 pass over 8 KiB, 1 lane): production's 3 passes over 64 MiB cost
# ~0.1 s a hash, and the suite makes thousands of users. tests/unit/test_security.py pins
# production's parameters.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def pytest_configure(config: pytest.Config) -> None:
    """Cheap password hashing in every test process; PostgreSQL and Mosquitto of the run's own
    when none are configured (started once, by the process that runs or deals out the tests)."""
    security.use_hasher(CHEAP_HASHER)
    if not hasattr(config, "workerinput"):  # not an xdist worker: those inherit the URLs
        from tests.support.session_services import start_missing_services

        for stop in start_missing_services():
            config.add_cleanup(stop)


def make_test_settings(tmp: Path, **overrides: Any) -> Settings:
    """Settings for tests: test environment, state in a temp dir, no .env file read."""
    values: dict[str, Any] = {
        "environment": "test",
        "data_dir": tmp,
        "secret_key": TEST_SECRET,
        "database_url": f"sqlite:///{tmp / 'iotcare.db'}",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's .env or IOTCARE_* variables by accident."""
    import os

    for name in list(os.environ):
        if name.startswith("IOTCARE_") and not name.startswith("IOTCARE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Test settings (override fields with `settings.model_copy(update=...)`)."""
    return make_test_settings(tmp_path)


@pytest.fixture
def override_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Settings]:
    """Make `get_settings()` return test settings with the given overrides, process-wide."""

    def apply(**overrides: Any) -> Settings:
        built = make_test_settings(tmp_path, **overrides)
        get_settings.cache_clear()
        monkeypatch.setattr("core.settings.get_settings", lambda: built)
        for key, value in built.model_dump(mode="json").items():
            if value is not None:
                monkeypatch.setenv(f"IOTCARE_{key.upper()}", str(value))
        secret = built.secret_key.get_secret_value() if built.secret_key else TEST_SECRET
        monkeypatch.setenv("IOTCARE_SECRET_KEY", secret)
        return built

    return apply


@pytest.fixture(scope="session", params=BACKENDS)
def db_backend(request: pytest.FixtureRequest) -> str:
    """Each database test runs on every backend."""
    return str(request.param)


@pytest.fixture(scope="session", autouse=True)
def _database_templates() -> Iterator[None]:
    """The migrated template databases this process made are dropped at the end."""
    yield
    drop_templates()


@pytest.fixture(scope="session")
def database_url(db_backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database at migration head for the whole session on this backend, dropped at the end."""
    with migrated_database(db_backend, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Engine on the session database (migrated to head)."""
    settings = make_test_settings(tmp_path_factory.mktemp("settings"), database_url=database_url)
    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (commits become savepoints)."""
    connection = engine.connect()
    transaction = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        transaction.rollback()
        connection.close()


@pytest.fixture
def factory(db_session: Session) -> Factory:
    """Data factory on the test's session."""
    return Factory(db_session)


@pytest.fixture
def empty_database(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh empty database of this backend for one test (migration tests), dropped after."""
    with throwaway_database(db_backend, tmp_path) as url:
        yield url


@pytest.fixture
def migrated_database_url(db_backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh database of this backend at migration head for one test, dropped after."""
    with migrated_database(db_backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The real broker the tests publish through (Mosquitto in CI)."""
    from tests.support.services import TEST_MQTT_URL, require

    require(TEST_MQTT_URL is not None, "An MQTT broker", "IOTCARE_TEST_MQTT_URL")
    assert TEST_MQTT_URL is not None
    return TEST_MQTT_URL


@pytest.fixture
def private_mosquitto() -> Iterator[Callable[..., Any]]:
    """Factory `private_mosquitto(**PrivateMosquitto options)`: started brokers, removed after."""
    from devkit.mosquitto import MOSQUITTO_ENV, PrivateMosquitto, find_mosquitto
    from tests.support.services import require

    require(find_mosquitto() is not None, "The mosquitto binary", MOSQUITTO_ENV)
    brokers: list[PrivateMosquitto] = []

    def start(**options: Any) -> PrivateMosquitto:
        broker = PrivateMosquitto(**options)
        brokers.append(broker)
        return broker.start()

    try:
        yield start
    finally:
        for broker in brokers:
            broker.close()


@pytest.fixture
def private_postgres() -> Iterator[Any]:
    """A started PostgreSQL server of the test's own (PrivatePostgres), removed after the test."""
    from tests.support.postgres_instance import PG_BIN_ENV, PrivatePostgres
    from tests.support.services import require
    from tests.support.session_services import postgres_usable

    require(postgres_usable(), "PostgreSQL server binaries (initdb, postgres)", PG_BIN_ENV)
    server = PrivatePostgres()
    try:
        yield server.start()
    finally:
        server.close()


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[str, int], Any]]:
    """Factory: `tcp_proxy(host, port)` starts a TcpProxy to that server; all closed after."""
    from devkit.tcp_proxy import TcpProxy

    proxies: list[TcpProxy] = []

    def start(host: str, port: int) -> TcpProxy:
        proxy = TcpProxy(host, port)
        proxies.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in proxies:
            proxy.close()


@pytest.fixture
def postgres_proxy(tcp_proxy: Callable[[str, int], Any]) -> Any:
    """The test PostgreSQL server behind a TcpProxy (ProxiedDatabase: `.url`, `.proxy.cut()`)."""
    from sqlalchemy.engine import make_url

    from devkit.tcp_proxy import ProxiedDatabase, proxied_url
    from tests.support.services import TEST_DATABASE_URL, require

    require(TEST_DATABASE_URL is not None, "PostgreSQL", "IOTCARE_TEST_DATABASE_URL")
    assert TEST_DATABASE_URL is not None
    server = make_url(TEST_DATABASE_URL)
    proxy = tcp_proxy(server.host or "127.0.0.1", server.port or 5432)
    return ProxiedDatabase(proxy=proxy, url=proxied_url(TEST_DATABASE_URL, proxy))
