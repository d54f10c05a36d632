"""`gas dev`: the command (needs the `dev` extra); the stack itself is gas_cli.dev."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option("--port", default=8000, show_default=True, help="Port of the web UI and API.")
@click.option(
    "--reference",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A reference bundle directory (default: a small synthetic demo bundle).",
)
def dev(port: int, reference: Path | None) -> None:
    """Run the whole system locally against an embedded AWS emulator."""
    from gas_cli.dev import run_dev

    sys.exit(run_dev(port=port, reference=reference))
