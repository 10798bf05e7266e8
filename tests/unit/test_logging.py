"""Logging: JSON and console formats, context in records, rotating files."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.logging import configure_logging, log_context
from core.settings import Settings


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_json_records_carry_context(settings: Settings, tmp_path: Path) -> None:
    configured = settings.model_copy(update={"log_format": "json", "log_dir": tmp_path / "logs"})
    configure_logging(configured, "unit")
    with log_context(device="d1", flow_run="r9"):
        logging.getLogger("iotcare.test").warning("battery low", extra={"battery": 7})
    line = (tmp_path / "logs" / "unit.log").read_text().strip().splitlines()[-1]
    record = json.loads(line)
    assert record["message"] == "battery low"
    assert record["level"] == "WARNING"
    assert record["device"] == "d1"
    assert record["flow_run"] == "r9"
    assert record["battery"] == 7
    assert record["time"].endswith("+00:00")


def test_file_handler_rotates(settings: Settings, tmp_path: Path) -> None:
    configured = settings.model_copy(
        update={"log_dir": tmp_path / "logs", "log_max_bytes": 10_000, "log_backup_count": 2}
    )
    configure_logging(configured, "rot")
    handlers = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert len(handlers) == 1
    for i in range(400):
        logging.getLogger("iotcare.test").info("line %d %s", i, "x" * 50)
    files = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert files == ["rot.log", "rot.log.1", "rot.log.2"]


def test_console_format_and_reconfigure_does_not_duplicate(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(settings, "a")
    configure_logging(settings, "a")
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_iotcare", False)]
    assert len(ours) == 1
    with log_context(site="sunrise"):
        logging.getLogger("iotcare.test").error("broker down")
    err = capsys.readouterr().err
    assert "ERROR" in err
    assert "broker down site=sunrise" in err
