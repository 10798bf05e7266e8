"""docs/openapi.json: generated from the code, and every operation documents its problems."""

from __future__ import annotations

import json
from pathlib import Path

from api.app import render
from tests.conftest import make_test_settings

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "openapi.json"


def test_the_document_is_generated_from_the_code(tmp_path: Path) -> None:
    assert DOC.read_text(encoding="utf-8") == render(make_test_settings(tmp_path)), (
        "docs/openapi.json is stale: run `iotcare api openapi > docs/openapi.json`"
    )


def test_every_operation_needs_a_token_and_answers_problems(tmp_path: Path) -> None:
    document = json.loads(render(make_test_settings(tmp_path)))
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    operations = [op for path in document["paths"].values() for op in path.values()]
    assert len(operations) >= 9
    for operation in operations:
        assert operation["security"] == [{"token": []}], operation["operationId"]
        for status in ("401", "403", "404", "422", "429"):
            content = operation["responses"][status]["content"]
            assert list(content) == ["application/problem+json"], (operation["operationId"], status)
    problem = document["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "instance"} <= set(problem["required"])


def test_one_click_pages_are_not_operations(tmp_path: Path) -> None:
    document = json.loads(render(make_test_settings(tmp_path)))
    assert not [path for path in document["paths"] if path.startswith("/api/ack")]
