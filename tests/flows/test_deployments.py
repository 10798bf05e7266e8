"""prefect.yaml and flows/deployments.py describe the same deployments, and they deploy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.flows import Flow

from flows.deployments import DEPLOYMENTS, TIMEZONE, runner_deployments
from tests.conftest import TEST_SECRET
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def prefect_yaml() -> PrefectYamlModel:
    return PrefectYamlModel(**yaml.safe_load((ROOT / "prefect.yaml").read_text()))


def test_prefect_yaml_matches_the_deployment_list() -> None:
    from_yaml = {}
    for deployment in prefect_yaml().deployments:
        assert deployment.schedules and len(deployment.schedules) == 1, deployment.name
        schedule = deployment.schedules[0]
        assert schedule.timezone == TIMEZONE, deployment.name
        assert deployment.work_pool is not None and deployment.work_pool.name == "iotcare"
        from_yaml[deployment.name] = (deployment.entrypoint, schedule.cron)
    from_code = {spec.name: (spec.entrypoint, spec.cron) for spec in DEPLOYMENTS}
    assert from_yaml == from_code


def test_every_entrypoint_names_a_flow_file_and_function() -> None:
    for spec in DEPLOYMENTS:
        path, _, function = spec.entrypoint.partition(":")
        assert (ROOT / path).is_file(), spec.entrypoint
        flow = spec.load_flow()
        assert isinstance(flow, Flow), spec.entrypoint
        assert flow.fn.__name__ == function


def test_prefect_yaml_shares_its_parts_through_anchors() -> None:
    text = (ROOT / "prefect.yaml").read_text()
    assert "&process_pool" in text and text.count("*process_pool") == len(DEPLOYMENTS)


def test_deployments_register_with_a_prefect_server() -> None:
    from prefect import get_client
    from prefect.utilities.asyncutils import run_coro_as_sync

    deployments = runner_deployments()
    assert [d.name for d in deployments] == [s.name for s in DEPLOYMENTS]
    ids = [d.apply() for d in deployments]

    async def read() -> list:
        async with get_client() as client:
            return [await client.read_deployment(i) for i in ids]

    stored = run_coro_as_sync(read())
    assert [(d.name, d.schedules[0].schedule.cron) for d in stored] == [
        (s.name, s.cron) for s in DEPLOYMENTS
    ]


def test_a_second_serve_refuses_and_leaves_the_running_one_alone() -> None:
    """While a serve polls the deployments, `iotcare flows serve` says so and exits 1 instead of
    serving them too and pausing them on its way out (Prefect's pause on shutdown)."""
    from prefect import get_client
    from prefect.settings import PREFECT_API_URL
    from prefect.utilities.asyncutils import run_coro_as_sync

    from cli.flows import served_elsewhere

    ids = [d.apply() for d in runner_deployments()]

    async def poll() -> None:
        # What a serving runner does every few seconds; the server records last_polled.
        async with get_client() as client:
            await client.get_scheduled_flow_runs_for_deployments(deployment_ids=ids)

    async def states() -> list[tuple[bool, object]]:
        async with get_client() as client:
            return [
                (d.paused, d.last_polled) for d in [await client.read_deployment(i) for i in ids]
            ]

    run_coro_as_sync(poll())
    wait_until(
        lambda: all(polled for _, polled in run_coro_as_sync(states()) or []),
        timeout=30,
        message="the server recording the poll",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IOTCARE_", "PREFECT_"))}
    env.update(
        {
            "IOTCARE_ENVIRONMENT": "test",
            "IOTCARE_SECRET_KEY": TEST_SECRET,
            "IOTCARE_LOG_LEVEL": "WARNING",
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "LANG": "en_US.UTF-8",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "cli", "flows", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Another `iotcare flows serve`" in result.stderr and "Traceback" not in result.stderr
    assert not any(paused for paused, _ in run_coro_as_sync(states()) or [])
    # Once the other serve has stopped (and paused them, as Prefect does), serving is allowed.
    assert served_elsewhere() == [s.name for s in DEPLOYMENTS]

    async def pause() -> None:
        async with get_client() as client:
            for deployment_id in ids:
                await client.pause_deployment(deployment_id)

    run_coro_as_sync(pause())
    assert served_elsewhere() == []
