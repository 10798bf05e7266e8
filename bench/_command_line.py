"""The command line the benchmarks share: common options, the --json record, and the command
that reproduces a run (printed with every benchmark's figures)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def benchmark_parser(module: str, description: str | None) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, its docstring (`description`) shown as written."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def admin_url_default() -> str:
    """The PostgreSQL server to create throwaway databases on."""
    return os.environ.get("IOTCARE_TEST_DATABASE_URL") or DEFAULT_ADMIN_URL


def add_database_url_option(parser: argparse.ArgumentParser) -> None:
    """--database-url: the PostgreSQL server the throwaway database is created on."""
    parser.add_argument(
        "--database-url",
        default=admin_url_default(),
        help="PostgreSQL server to create a throwaway database on "
        "(default: $IOTCARE_TEST_DATABASE_URL or the local server as postgres)",
    )


def add_publisher_options(
    parser: argparse.ArgumentParser, publishers: int, window_help: str
) -> None:
    """The ingest benchmarks' load and link: --publishers (default `publishers`), --devices,
    --window, --protocol (the consumers' MQTT version) and --publisher (the publishers' client)."""
    parser.add_argument("--publishers", type=int, default=publishers, help="publisher processes")
    parser.add_argument("--devices", type=int, default=1200, help="devices, split over publishers")
    parser.add_argument("--window", type=int, default=1000, help=window_help)
    parser.add_argument("--protocol", choices=("3.1.1", "5"), default="3.1.1")
    parser.add_argument(
        "--publisher",
        choices=("raw", "paho"),
        default="raw",
        help="publisher client: raw (hand-built MQTT 3.1.1 QoS1 packets on a socket, a few us a "
        "message) or paho (the simulator's client, ~60 us a message: the publishers then take "
        "most of the 2 cores)",
    )


def add_ingest_env_option(parser: argparse.ArgumentParser) -> None:
    """--ingest-env IOTCARE_X=VALUE (repeatable): extra settings of the ingest replicas."""
    parser.add_argument(
        "--ingest-env",
        action="append",
        default=[],
        metavar="IOTCARE_X=VALUE",
        help="extra ingest setting (repeatable)",
    )


def check_ingest_env(parser: argparse.ArgumentParser, items: Sequence[str]) -> None:
    """Exit with a usage error unless every --ingest-env item is IOTCARE_NAME=VALUE."""
    for item in items:
        if "=" not in item or not item.startswith("IOTCARE_"):
            parser.error(f"--ingest-env {item!r}: expected IOTCARE_NAME=VALUE")


def ingest_settings(items: Sequence[str]) -> dict[str, str]:
    """The --ingest-env items as a name -> value mapping."""
    return dict(item.split("=", 1) for item in items)


def python_path() -> str:
    """The interpreter, relative to the repository when it is the project's venv."""
    python = sys.executable
    if python.startswith(str(ROOT) + os.sep):
        python = os.path.relpath(python, ROOT)
    return python


def reproduce_command(module: str, options: Sequence[str]) -> str:
    """`cd <repository> && <python> -m <module> <options>`: with every option spelled out, it
    reproduces the run whatever the defaults become."""
    return f"cd {shlex.quote(str(ROOT))} && {shlex.join([python_path(), '-m', module, *options])}"


def append_json_line(
    path: Path | None, record: dict[str, Any], default: Callable[[Any], Any] | None = None
) -> None:
    """--json: append `record` to `path` as one JSON line (nothing without a path); `default`
    serialises what orjson cannot (as orjson.dumps's)."""
    if path is not None:
        with path.open("ab") as out:
            out.write(orjson.dumps(record, default=default) + b"\n")
