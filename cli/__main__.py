"""`python -m cli` runs the iotcare command."""

from cli.main import run

run()
