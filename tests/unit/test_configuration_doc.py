"""docs/configuration.md is the generated reference of the current Settings class."""

from __future__ import annotations

from pathlib import Path

from core.settings import ENV_PREFIX, Settings
from core.settings_reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_configuration_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/configuration.md is stale: run "
        "`.venv/bin/python -m core.settings_reference > docs/configuration.md`"
    )


def test_every_setting_is_described() -> None:
    text = render()
    for name, field in Settings.model_fields.items():
        assert f"`{ENV_PREFIX}{name.upper()}`" in text
        assert field.description, f"{name} has no description"
