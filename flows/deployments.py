"""Every scheduled job: its deployment name, flow entrypoint and schedule.

The one list both `iotcare flows serve` (local, embedded default) and prefect.yaml (work pool,
`prefect deploy --all`) describe; tests/flows/test_deployments.py keeps the two identical.
Schedules are cron expressions in UTC. Each flow works out its own window (watermarks, local
days), so a late or skipped run only delays work, never loses it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

TIMEZONE = "UTC"
TAGS = ["iotcare"]


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment: the name operators see, the flow it runs and when."""

    name: str
    entrypoint: str  # path/to/module.py:flow_function, as in prefect.yaml
    cron: str
    description: str

    def load_flow(self) -> Any:
        """The Prefect flow object the entrypoint names."""
        path, _, attribute = self.entrypoint.partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        return getattr(module, attribute)


DEPLOYMENTS: tuple[DeploymentSpec, ...] = (
    DeploymentSpec(
        "alert-rules",
        "flows/alerting.py:alert_rules_flow",
        "* * * * *",
        "Windowed alert rules: thresholds, inactivity, offline, night exit, battery, quality.",
    ),
    DeploymentSpec(
        "notifications",
        "flows/notifications.py:notifications_flow",
        "* * * * *",
        "Escalate unacknowledged alerts, deliver due notifications, re-send commands.",
    ),
    DeploymentSpec(
        "rollups",
        "flows/rollups.py:rollups_flow",
        "5 * * * *",
        "Hourly and daily rollups per device and metric.",
    ),
    DeploymentSpec(
        "data-quality",
        "flows/quality.py:data_quality_flow",
        "15 * * * *",
        "Great Expectations suites over the last hour; alerts operators on failure.",
    ),
    DeploymentSpec(
        "care-reports",
        "flows/care_report.py:care_reports_flow",
        "25 * * * *",
        "Daily care report of each resident after their local midnight.",
    ),
    DeploymentSpec(
        "routines",
        "flows/routines.py:routines_flow",
        "40 2 * * *",
        "Learned inactivity routine per resident from the last 14 days.",
    ),
    DeploymentSpec(
        "retention",
        "flows/retention.py:retention_flow",
        "30 3 * * *",
        "Delete raw readings, dead letters and delivered notifications past their age.",
    ),
)


def find(name: str) -> DeploymentSpec:
    """The deployment with this name (KeyError if none)."""
    for spec in DEPLOYMENTS:
        if spec.name == name:
            return spec
    raise KeyError(name)


def runner_deployments(specs: tuple[DeploymentSpec, ...] = DEPLOYMENTS) -> list[Any]:
    """RunnerDeployments for prefect.serve(): each flow with its name, schedule and tags."""
    from prefect.schedules import Cron

    return [
        spec.load_flow().to_deployment(
            name=spec.name,
            schedules=[Cron(spec.cron, timezone=TIMEZONE)],
            description=spec.description,
            tags=TAGS,
        )
        for spec in specs
    ]
