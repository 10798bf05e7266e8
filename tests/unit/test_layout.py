"""Package boundaries that keep the layout honest."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(directory: str) -> dict[str, set[str]]:
    """Every module a package's files import, by file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / directory).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_benchmarks_and_the_dev_kit_do_not_import_the_tests() -> None:
    """bench/ and devkit/ share devkit/, never tests/ (a test helper is not a benchmark's API)."""
    offenders = {
        path: sorted(n for n in names if n == "tests" or n.startswith("tests."))
        for package in ("bench", "devkit")
        for path, names in imported_modules(package).items()
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_product_does_not_import_the_dev_kit_or_the_simulator_from_ingest() -> None:
    """Shipped packages never need the dev kit; the simulator lives in simulator/, not ingest/."""
    for package in ("core", "models", "cli", "ingest", "flows", "dashboards", "api", "simulator"):
        for path, names in imported_modules(package).items():
            assert not any(n == "devkit" or n.startswith("devkit.") for n in names), path
            assert not any(n.startswith("ingest.simulator") for n in names), path
