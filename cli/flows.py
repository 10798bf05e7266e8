"""`iotcare flows`: serve the scheduled jobs (Prefect deployments), list them, run one now."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer

from cli.context import ctx
from core.errors import IotCareError
from core.i18n import plural
from flows.deployments import DEPLOYMENTS, DeploymentSpec, find, runner_deployments

log = logging.getLogger(__name__)

SERVER_START_TIMEOUT = 120
# A serve polls its deployments every few seconds (PREFECT_RUNNER_POLL_FREQUENCY, 10 s): one
# polled this recently, and not paused, is being served by a process that is still running.
SERVED_WITHIN = timedelta(seconds=60)

app = typer.Typer(
    help="Scheduled jobs (Prefect flows): rollups, data quality, care reports, routines, "
    "retention.",
    no_args_is_help=True,
)


@app.command()
def serve(
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Most flow runs at a time (default: no limit)."
    ),
    port: int = typer.Option(
        4200,
        "--port",
        help="Port of the local Prefect server started when PREFECT_API_URL is unset.",
    ),
) -> None:
    """Serve every deployment with its schedule from this process, until Ctrl-C.

    Without PREFECT_API_URL, a local Prefect server (API and UI, its database in
    <data dir>/prefect) is started first and stopped afterwards: Prefect's temporary in-process
    server does not schedule runs.
    """
    from flows import runtime

    c = ctx()
    t = c.t
    # SIGTERM (from `iotcare demo` or a process manager) unwinds like Ctrl-C from the start,
    # so a Prefect server still starting up is stopped too instead of being orphaned.
    signal.signal(signal.SIGTERM, _interrupt)
    # Before Prefect is imported: our loggers' records go to the runs' logs too, and a care
    # home's server has no business phoning home.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", runtime.EXTRA_LOGGERS)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with contextlib.ExitStack() as stack:
        if not os.environ.get("PREFECT_API_URL"):
            home = c.settings.data_dir / "prefect"
            typer.echo(t("cli.flows.starting_server", url=f"http://127.0.0.1:{port}", path=home))
            url = stack.enter_context(local_prefect_server(home, port, t))
            # Flow runs are subprocesses of the runner: they inherit this.
            os.environ["PREFECT_API_URL"] = f"{url}/api"
            typer.echo(t("cli.flows.server_ready", url=url))
        # Prefect pauses a serve's deployments when it stops (so runs do not pile up while
        # nobody serves them): a second serve would pause the first one's on its way out.
        served = served_elsewhere()
        if served:
            raise IotCareError(
                t(
                    "cli.flows.already_served",
                    url=os.environ["PREFECT_API_URL"].removesuffix("/api"),
                    names=", ".join(served),
                    seconds=int(SERVED_WITHIN.total_seconds()),
                )
            )
        runtime.use(c.settings)
        deployments = runner_deployments()
        typer.echo(plural(t, "cli.flows.serving", len(deployments), count=len(deployments)))
        for spec in DEPLOYMENTS:
            typer.echo(
                t("cli.flows.line", name=spec.name, cron=spec.cron, entrypoint=spec.entrypoint)
            )
        _serve(deployments, limit)


def served_elsewhere(specs: tuple[DeploymentSpec, ...] = DEPLOYMENTS) -> list[str]:
    """Our deployments that another serve is serving now: not paused, polled within a minute."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.utilities.asyncutils import run_coro_as_sync

    from core.timeutil import ensure_utc, utcnow

    async def read() -> list[str]:
        served = []
        recent = utcnow() - SERVED_WITHIN
        async with get_client() as client:
            for spec in specs:
                try:
                    deployment = await client.read_deployment_by_name(
                        f"{spec.load_flow().name}/{spec.name}"
                    )
                except ObjectNotFound:
                    continue
                polled = deployment.last_polled
                if not deployment.paused and polled and ensure_utc(polled) >= recent:
                    served.append(spec.name)
        return served

    return run_coro_as_sync(read()) or []


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def local_prefect_server(home: Path, port: int, t: Callable[..., str]) -> Iterator[str]:
    """A Prefect server on 127.0.0.1:port for as long as the block runs (reused if one is up)."""
    url = f"http://127.0.0.1:{port}"
    if _healthy(url):
        yield url
        return
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own process group, so stopping it stops whatever it started too.
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise IotCareError(
                    t("cli.flows.server_failed", seconds=SERVER_START_TIMEOUT, log=log_path)
                )
            time.sleep(0.5)
        yield url
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _serve(deployments: list[Any], limit: int | None) -> None:
    """prefect.serve(), except that SIGTERM stops it like Ctrl-C does.

    Prefect 3.8's runner answers SIGTERM by calling its async stop() from sync code and then
    hangs while shutting down; `iotcare demo` and process managers stop children with SIGTERM.
    """
    import asyncio

    from prefect.runner import Runner

    runner = Runner(limit=limit)
    for deployment in deployments:
        runner.add_deployment(deployment)
    runner.handle_sigterm = _interrupt  # type: ignore[method-assign]
    try:
        asyncio.run(runner.start())
    except KeyboardInterrupt:
        log.info("flows serve: stopped")


@app.command("list")
def list_flows() -> None:
    """List the deployments, their schedules (UTC) and entrypoints."""
    c = ctx()
    for spec in DEPLOYMENTS:
        typer.echo(
            c.t("cli.flows.line", name=spec.name, cron=spec.cron, entrypoint=spec.entrypoint)
        )


@app.command()
def run(
    name: str = typer.Argument(..., help="Deployment name, as in `iotcare flows list`."),
) -> None:
    """Run one flow now, in this process (a Prefect server records it if PREFECT_API_URL is set)."""
    from flows import runtime

    c = ctx()
    t = c.t
    try:
        spec = find(name)
    except KeyError:
        names = ", ".join(s.name for s in DEPLOYMENTS)
        raise typer.BadParameter(t("cli.flows.unknown", name=name, names=names)) from None
    runtime.use(c.settings)
    try:
        result = spec.load_flow()()
    finally:
        runtime.reset()
    typer.echo(t("cli.flows.finished", name=name, result=result))
