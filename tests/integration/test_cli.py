"""The iotcare command as an operator runs it: readable errors, no tracebacks. Commands run in
this process (tests/support/cli.py); start-up failures run as real processes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, inspect, select
from sqlalchemy.orm import Session

import models
from core import registry
from models import BlockedDevice
from tests.support.cli import iotcare, iotcare_process


def test_bad_database_url_stops_with_one_line() -> None:
    result = iotcare_process("db", "upgrade", env={"IOTCARE_DATABASE_URL": "nonsense"})
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("Invalid setting IOTCARE_DATABASE_URL:")
    assert "Traceback" not in result.stderr


def test_missing_secret_in_production_stops_start_up() -> None:
    result = iotcare_process(
        "db", "current", env={"IOTCARE_ENVIRONMENT": "production", "IOTCARE_SECRET_KEY": ""}
    )
    assert result.returncode == 1
    assert "IOTCARE_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_is_explained() -> None:
    url = "postgresql+psycopg2://nobody@127.0.0.1:1/nothing"
    result = iotcare("db", "upgrade", database_url=url)
    assert result.returncode == 1
    assert "Cannot reach the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_messages_in_korean() -> None:
    result = iotcare(
        "devices",
        "add",
        "x1",
        "--site",
        "nope",
        "--type",
        "wearable",
        env={"IOTCARE_DATABASE_URL": "sqlite:///k.db", "LANG": "ko_KR.UTF-8"},
    )
    # The service error is English text from core; the CLI's own messages follow LANG.
    assert result.returncode == 1
    created = iotcare(
        "db", "upgrade", env={"IOTCARE_DATABASE_URL": "sqlite:///k2.db", "LANG": "ko_KR.UTF-8"}
    )
    assert "데이터베이스" in created.stdout


def test_db_upgrade_stamps_a_pre_alembic_database(empty_database: str) -> None:
    engine = create_engine(empty_database)
    models.Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            models.Site.__table__.insert(),
            [
                {
                    "id": f"s{i}",
                    "name": f"Home {i}",
                    "timezone": "Asia/Seoul",
                    "created_at": datetime(2025, 1, 1, tzinfo=UTC),
                }
                for i in range(25)
            ],
        )
    result = iotcare("db", "upgrade", database_url=empty_database)
    assert result.returncode == 0, result.stderr
    assert "stamped" in result.stdout
    assert "alembic_version" in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(models.Site.__table__)) == 25
    again = iotcare("db", "upgrade", database_url=empty_database)
    assert "up to date" in again.stdout
    engine.dispose()


def test_seed_users_and_devices_round_trip(empty_database: str) -> None:
    seeded = iotcare("seed", "demo", database_url=empty_database)
    assert seeded.returncode == 0, seeded.stderr
    assert "20 residents" in seeded.stdout
    logins = [line.split() for line in seeded.stdout.splitlines() if line.startswith("  ")]
    assert {row[1] for row in logins} >= {"caregiver1", "operator", "admin"}
    assert all(len(row[2]) == 16 for row in logins)

    added = iotcare(
        "users",
        "add",
        "nurse.lee",
        "--role",
        "caregiver",
        "--language",
        "ko",
        "--generate-password",
        database_url=empty_database,
    )
    assert added.returncode == 0, added.stderr
    assert "nurse.lee" in added.stdout
    duplicate = iotcare(
        "users",
        "add",
        "nurse.lee",
        "--role",
        "caregiver",
        "--generate-password",
        database_url=empty_database,
    )
    assert duplicate.returncode == 1
    assert "exists already" in duplicate.stderr
    prompted = iotcare(
        "users",
        "add",
        "op2",
        "--role",
        "operator",
        database_url=empty_database,
        input="long-password-1\nlong-password-1\n",
    )
    assert prompted.returncode == 0, prompted.stderr

    device = iotcare(
        "devices",
        "add",
        "sunrise-hall-motion",
        "--site",
        "sunrise",
        "--type",
        "motion_sensor",
        "--room",
        "hall",
        database_url=empty_database,
    )
    assert device.returncode == 0, device.stderr
    listed = iotcare("devices", "list", "--site", "sunrise", database_url=empty_database)
    assert "sunrise-hall-motion" in listed.stdout
    assert len(listed.stdout.splitlines()) == 1 + 142 + 1


def test_blocked_devices_are_listed_and_unblocked(empty_database: str) -> None:
    assert iotcare("db", "upgrade", database_url=empty_database).returncode == 0
    engine = create_engine(empty_database)
    with Session(engine) as session:
        registry.create_site(session, "home", "Home", "Asia/Seoul")
        session.add(BlockedDevice(device_id="rogue", site_id="home", reason="not ours"))
        session.commit()
    engine.dispose()

    listed = iotcare("devices", "blocked", database_url=empty_database)
    assert listed.returncode == 0, listed.stderr
    [row] = listed.stdout.splitlines()[1:]
    assert row.split()[:2] == ["rogue", "home"] and row.endswith("not ours")

    lifted = iotcare("devices", "unblock", "rogue", database_url=empty_database)
    assert lifted.returncode == 0 and "unblocked" in lifted.stdout
    korean = iotcare(
        "devices", "blocked", database_url=empty_database, env={"IOTCARE_LANGUAGE": "ko"}
    )
    assert korean.stdout.strip() == "차단된 기기가 없습니다."
    again = iotcare("devices", "unblock", "rogue", database_url=empty_database)
    assert again.returncode == 1 and "is not blocked" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("devices", "add", "d1", "--site", "s", "--type", "robot"),
        ("users", "add", "u1", "--role", "king", "--generate-password"),
        ("db",),
        ("nonsense",),
    ],
)
def test_bad_arguments_get_usage_not_traceback(args: tuple[str, ...], tmp_path: Path) -> None:
    result = iotcare(*args, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else listens on for the test's duration."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("command", "setting", "language", "said"),
    [
        (("broker", "--port", "{port}"), "--port", "en_US.UTF-8", "already in use"),
        (("app", "--port", "{port}"), "IOTCARE_APP_PORT", "en_US.UTF-8", "already in use"),
        (("ingest",), "IOTCARE_METRICS_PORT", "en_US.UTF-8", "already in use"),
        (("ingest",), "IOTCARE_METRICS_PORT", "ko_KR.UTF-8", "이미 사용 중"),
    ],
)
def test_busy_port_is_one_line_naming_port_and_setting(
    busy_port: int, command: tuple[str, ...], setting: str, language: str, said: str
) -> None:
    args = [arg.format(port=busy_port) for arg in command]
    result = iotcare_process(
        *args, env={"IOTCARE_METRICS_PORT": str(busy_port), "LANG": language}, timeout=30
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert str(busy_port) in result.stderr and setting in result.stderr and said in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""  # no "Serving the app at ..." first


def readme_command_lines() -> list[list[str]]:
    """The `iotcare ...` lines of the README's command-line section, as words."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## The command line", 1)[1].split("```", 2)[1]
    lines = []
    for line in section.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0].endswith("iotcare"):
            lines.append(words[1:])
    return lines


def test_readme_command_lines_match_the_commands() -> None:
    """Every README line names a real command and its options, and gives the required ones."""
    import typer

    from cli.main import app

    root = typer.main.get_command(app)
    lines = readme_command_lines()
    assert len(lines) > 10
    for words in lines:
        # Typer builds on its own copy of click: groups are told apart by their subcommands.
        command: Any = root
        rest = list(words)
        while hasattr(command, "commands") and rest and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        # A group only when it also runs on its own (`iotcare broker` and `iotcare broker certs`).
        assert not hasattr(command, "commands") or command.invoke_without_command, words
        known = {name for p in command.params for name in p.opts + p.secondary_opts}
        given = {w.strip("[]").split("=")[0] for w in rest if w.strip("[]").startswith("-")}
        assert given <= known, (words, given - known)
        always = {w.split("=")[0] for w in rest if w.startswith("-")}  # not in [brackets]
        for option in command.params:
            if option.required and option.param_type_name == "option":
                assert always & set(option.opts), (words, option.opts)


EXAMPLE_ROSTER = Path(__file__).resolve().parents[2] / "docs" / "examples" / "roster.csv"


def _roster_rows(url: str) -> tuple[int, int, int]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            return (
                session.scalar(select(func.count()).select_from(models.Site)),
                session.scalar(select(func.count()).select_from(models.Resident)),
                session.scalar(select(func.count()).select_from(models.Device)),
            )
    finally:
        engine.dispose()


def test_roster_import_reports_every_bad_row_then_imports_a_good_file(
    empty_database: str, tmp_path: Path
) -> None:
    assert iotcare("db", "upgrade", database_url=empty_database).returncode == 0
    for name, role in (("boss", "admin"), ("nurse.lee", "caregiver")):
        made = iotcare(
            "users",
            "add",
            name,
            "--role",
            role,
            "--generate-password",
            database_url=empty_database,
        )
        assert made.returncode == 0, made.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "kind,site,id,name,timezone,active_start,contact_name,contact_phone,type,resident\n"
        "site,,oak,Oak House,UTC,,,,,\n"
        "resident,oak,,Choi,,25:00,,,,\n"
        "resident,oak,,Han,,,Han Jr,abc,,\n"
        "device,oak,w-9,X,,,,,toaster,\n"
        "device,oak,w-10,X,,,,,wearable,Nobody\n",
        encoding="utf-8",
    )
    result = iotcare("roster", "import", str(bad), "--as", "boss", database_url=empty_database)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("row ")]
    assert [line.split(":")[0] for line in lines] == [
        "row 3, active_start",
        "row 4, contact_phone",
        "row 5, type",
        "row 6, resident",
    ]
    assert "Nothing was imported: 4 problems in 4 rows." in result.stderr
    assert _roster_rows(empty_database) == (0, 0, 0)  # the good first row was not kept either
    korean = iotcare(
        "roster",
        "import",
        str(bad),
        "--as",
        "boss",
        "--dry-run",
        database_url=empty_database,
        env={"IOTCARE_LANGUAGE": "ko"},
    )
    assert "3행, active_start:" in korean.stderr

    nobody = iotcare("roster", "import", str(EXAMPLE_ROSTER), database_url=empty_database)
    assert nobody.returncode == 1 and "--as USERNAME" in nobody.stderr
    checked = iotcare(
        "roster",
        "import",
        str(EXAMPLE_ROSTER),
        "--dry-run",
        "--as",
        "boss",
        database_url=empty_database,
    )
    assert checked.returncode == 0, checked.stderr
    assert "Dry run, nothing written." in checked.stdout
    assert _roster_rows(empty_database) == (0, 0, 0)
    done = iotcare(
        "roster",
        "import",
        str(EXAMPLE_ROSTER),
        database_url=empty_database,
        env={"IOTCARE_ACTOR": "boss"},
    )
    assert done.returncode == 0, done.stderr
    assert "Imported 1 site, 2 residents, 4 devices, 1 caregiver assignment." in done.stdout
    assert _roster_rows(empty_database) == (1, 2, 4)

    # Ids from the database: PostgreSQL sequences do not roll back with the refused imports.
    engine = create_engine(empty_database)
    with Session(engine) as session:
        ids = dict(session.execute(select(models.Resident.name, models.Resident.id)).all())
    engine.dispose()
    kim, park = str(ids["Kim Young-ja"]), str(ids["Park Soon-ja"])
    moved = iotcare("residents", "move", kim, "105", "--as", "boss", database_url=empty_database)
    assert moved.returncode == 0, moved.stderr
    gone = iotcare("residents", "discharge", park, "--as", "boss", database_url=empty_database)
    assert gone.returncode == 0, gone.stderr
    listed = iotcare("residents", "list", "--all", "--as", "boss", database_url=empty_database)
    assert "105" in listed.stdout and "(discharged)" in listed.stdout
    bad_site = iotcare(
        "sites",
        "add",
        "elm",
        "--name",
        "Elm",
        "--timezone",
        "Mars/Base",
        "--as",
        "boss",
        database_url=empty_database,
    )
    assert bad_site.returncode == 1
    assert bad_site.stderr.strip() == (
        "timezone: Unknown timezone 'Mars/Base': use an IANA name such as Asia/Seoul."
    )
