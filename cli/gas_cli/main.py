"""The `gas` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gas_annotator.commands import annotate_command, reference_group
from gas_cli import client
from gas_cli.dlq import dlq
from gas_cli.policies import ACCESS, policy_document

if TYPE_CHECKING:
    from gas_cli.infra import Infrastructure


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """GAS, the Genomics Annotation Service."""


@cli.command()
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


@cli.group()
def infra() -> None:
    """Provision AWS resources (idempotent)."""


def _infrastructure(endpoint_url: str | None) -> Infrastructure:
    # boto3 and pydantic-settings load only for the commands that use them: `gas --help` and the
    # API client commands start without them.
    from gas_cli.infra import Infrastructure
    from gas_core.settings import GasSettings

    settings = GasSettings()
    if endpoint_url:
        settings = settings.model_copy(update={"aws_endpoint_url": endpoint_url})
    return Infrastructure(settings)


_endpoint_option = click.option(
    "--endpoint-url", help="AWS endpoint (an emulator); default: GAS_AWS_ENDPOINT_URL or AWS."
)


@infra.command()
@_endpoint_option
def apply(endpoint_url: str | None) -> None:
    """Create or update every resource; prints each change, or that there was none."""
    changes = _infrastructure(endpoint_url).apply()
    for change in changes:
        click.echo(str(change))
    click.echo(f"{len(changes)} changes applied." if changes else "No changes: up to date.")


@infra.command()
@_endpoint_option
def plan(endpoint_url: str | None) -> None:
    """Print what `apply` would change, changing nothing."""
    changes = _infrastructure(endpoint_url).plan()
    for change in changes:
        click.echo(str(change))
    click.echo(f"{len(changes)} changes to apply." if changes else "No changes: up to date.")


@infra.command()
@click.argument("service", type=click.Choice(sorted(ACCESS)))
@click.option("--account-id", help="AWS account id (default: asked of STS).")
@_endpoint_option
def policy(service: str, account_id: str | None, endpoint_url: str | None) -> None:
    """Print SERVICE's least-privilege IAM policy (JSON) for its IRSA role."""
    infrastructure = _infrastructure(endpoint_url)
    if account_id:
        infrastructure._account = account_id
    click.echo(json.dumps(policy_document(service, infrastructure), indent=2))


cli.add_command(dlq)

# The annotation engine and reference bundles, offline: the same code the annotator runs.
cli.add_command(annotate_command)
cli.add_command(reference_group)


cli.add_command(client.login)
cli.add_command(client.submit)
cli.add_command(client.jobs)
cli.add_command(client.status)
cli.add_command(client.download)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
