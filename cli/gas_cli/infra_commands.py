"""`gas infra`: provision AWS resources and print IAM policies (needs the `ops` extra)."""

from __future__ import annotations

import json

import click

from gas_cli.infra import Infrastructure
from gas_cli.policies import ACCESS, policy_document
from gas_core.settings import GasSettings


@click.group()
def infra() -> None:
    """Provision AWS resources (idempotent)."""


def _infrastructure(endpoint_url: str | None) -> Infrastructure:
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
