"""`iotcare tokens` and `iotcare api` as an operator runs them: a service account, a token
printed once, used against the real server (uvicorn), listed, revoked; messages in Korean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from devkit.http_server import free_port
from tests.conftest import TEST_SECRET
from tests.integration.test_cli import iotcare
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _serve(database_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOTCARE_")}
    env.update(
        {
            "IOTCARE_ENVIRONMENT": "test",
            "IOTCARE_SECRET_KEY": TEST_SECRET,
            "IOTCARE_DATABASE_URL": database_url,
            "IOTCARE_LOG_FORMAT": "json",
        }
    )
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli", "api", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_tokens_from_the_cli_work_against_the_served_api(
    empty_database: str, tmp_path: Path
) -> None:
    db = {"database_url": empty_database}
    assert iotcare("db", "upgrade", **db).returncode == 0
    assert (
        iotcare("users", "add", "boss", "--role", "admin", "--generate-password", **db).returncode
        == 0
    )

    refused = iotcare("tokens", "service-account", "board", **db)
    assert refused.returncode == 1 and "--as" in refused.stderr
    made = iotcare("tokens", "service-account", "board", "--as", "boss", **db)
    assert made.returncode == 0, made.stderr
    assert "cannot sign in" in made.stdout

    bad_scope = iotcare(
        "tokens", "create", "board", "--name", "x", "--scope", "everything", "--as", "boss",
        **db, env={"IOTCARE_LANGUAGE": "ko"},
    )  # fmt: skip
    assert bad_scope.returncode == 1 and "알 수 없는 범위" in bad_scope.stderr
    bad_expiry = iotcare(
        "tokens", "create", "board", "--name", "x", "--expires", "soon", "--as", "boss", **db
    )  # fmt: skip
    assert bad_expiry.returncode == 1 and "--expires 'soon'" in bad_expiry.stderr
    created = iotcare(
        "tokens", "create", "board", "--name", "nurse call", "--scope", "read",
        "--scope", "acknowledge", "--expires", "30d", "--as", "boss", **db,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("ict_") and "shown this once" in created.stderr
    assert "scopes: read, acknowledge" in created.stdout

    port = free_port()
    log = tmp_path / "api.log"
    server = _serve(empty_database, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base}/api/openapi.json"), timeout=60, message="the API")
        assert _answers(f"{base}/api/docs")
        sites = httpx.get(
            f"{base}/api/v1/sites",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "cli-test-1"},
        )
        assert sites.status_code == 200 and sites.json() == []
        assert sites.headers["x-request-id"] == "cli-test-1"

        listed = iotcare("tokens", "list", "--as", "boss", **db)
        assert token[:12] in listed.stdout and "active" in listed.stdout
        token_id = next(
            line.split()[0] for line in listed.stdout.splitlines() if token[:12] in line
        )
        revoked = iotcare(
            "tokens", "revoke", token_id, "--as", "boss", **db, env={"IOTCARE_LANGUAGE": "ko"}
        )
        assert revoked.returncode == 0 and "폐기했습니다" in revoked.stdout
        after = httpx.get(f"{base}/api/v1/sites", headers={"Authorization": f"Bearer {token}"})
        assert after.status_code == 401
        assert after.headers["content-type"] == "application/problem+json"
    finally:
        server.terminate()
        server.wait(timeout=30)
    # The server's own log lines carry the request id (JSON logs).
    logged = [line for line in log.read_text().splitlines() if '"request_id":"cli-test-1"' in line]
    assert logged and '"logger":"api.access"' in logged[-1]
    relisted = iotcare("tokens", "list", "--as", "boss", **db)
    assert "revoked" in relisted.stdout


def test_the_api_port_in_use_is_one_clear_line(empty_database: str) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = iotcare("api", "--port", str(port), database_url=empty_database)
    assert result.returncode == 1
    assert "IOTCARE_API_PORT" in result.stderr and "Traceback" not in result.stderr


def test_the_openapi_command_prints_the_checked_in_document() -> None:
    printed = iotcare("api", "openapi")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
