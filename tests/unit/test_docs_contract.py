"""docs/mqtt.md publishes the catalogue exactly as the code defines it."""

from __future__ import annotations

import re
from pathlib import Path

from core.contract.catalogue import DEVICE_METRICS, METRICS, DeviceType, EventType
from core.contract.errors import Reason
from core.i18n import catalogue

DOC = (Path(__file__).resolve().parents[2] / "docs" / "mqtt.md").read_text()


def table_rows(first_header: str) -> dict[str, list[str]]:
    lines = DOC.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_metrics_match() -> None:
    rows = table_rows("metric")
    assert set(rows) == set(METRICS)
    for name, metric in METRICS.items():
        unit, valid = rows[name]
        assert unit == metric.unit
        expected = "true / false" if metric.boolean else f"{metric.minimum:g} to {metric.maximum:g}"
        assert valid == expected


def test_device_types_match() -> None:
    rows = table_rows("device type")
    assert set(rows) == {d.value for d in DeviceType}
    for kind, metrics in DEVICE_METRICS.items():
        assert re.findall(r"`(\w+)`", rows[kind.value][0]) == list(metrics)


def test_event_types_and_reasons_match() -> None:
    assert set(table_rows("event type")) == {e.value for e in EventType}
    assert set(table_rows("reason")) == {r.value for r in Reason}


def test_every_dead_letter_reason_is_explained_in_english_and_korean() -> None:
    for language in ("en", "ko"):
        labels = catalogue(language)
        missing = [r.value for r in Reason if f"app.ingest.reason.{r.value}" not in labels]
        assert not missing, (language, missing)
