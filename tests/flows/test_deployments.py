"""prefect.yaml and flows/deployments.py describe the same deployments, and they deploy."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.flows import Flow

from flows.deployments import DEPLOYMENTS, TIMEZONE, runner_deployments

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
