"""The `gas` command.

The client commands (login, submit, jobs, status, download, filters, upgrade, downgrade) need
only the `gas-cli` package. The operator and developer commands load their modules, and so their
dependencies, only when they run; without the extra that brings those dependencies they say
which one to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

import click

from gas_cli import client

# What each extra of gas-cli brings (see cli/pyproject.toml), as importable top-level modules.
EXTRAS: dict[str, tuple[str, ...]] = {
    "ops": ("gas_core", "boto3"),
    "dev": ("gas_core", "gas_annotator", "moto"),
}


@dataclass(frozen=True)
class LazyCommand:
    target: str  # "module:attribute" of the click command
    extra: str
    help: str  # shown by `gas --help` without importing the command

    def missing(self) -> list[str]:
        return [name for name in EXTRAS[self.extra] if importlib.util.find_spec(name) is None]

    def load(self, name: str) -> click.Command:
        if self.missing():
            return _needs_extra(name, self.extra)
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


LAZY_COMMANDS: dict[str, LazyCommand] = {
    "dev": LazyCommand("gas_cli.dev_command:dev", "dev",
                       "Run the whole system locally against an embedded AWS emulator."),
    "infra": LazyCommand("gas_cli.infra_commands:infra", "ops",
                         "Provision AWS resources (idempotent)."),
    "dlq": LazyCommand("gas_cli.dlq:dlq", "ops", "Inspect and redrive dead-letter queues."),
    # The annotation engine and reference bundles, offline: the same code the annotator runs.
    "annotate": LazyCommand("gas_annotator.commands:annotate_command", "dev",
                            "Annotate a VCF offline with the annotation engine."),
    "reference": LazyCommand("gas_annotator.commands:reference_group", "dev",
                             "Build, install or create reference bundles."),
}


def _needs_extra(name: str, extra: str) -> click.Command:
    def refuse() -> None:
        raise click.ClickException(
            f"`gas {name}` needs the {extra} extra: pip install 'gas-cli[{extra}]'")

    # Refuses whatever follows (including --help), in one line.
    return click.Command(name, callback=refuse, add_help_option=False,
                         context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})


class Gas(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        lazy = LAZY_COMMANDS.get(cmd_name)
        if lazy is not None:
            return lazy.load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, command.get_short_help_str(formatter.width))
                for name, command in self.commands.items()]
        for name, lazy in LAZY_COMMANDS.items():
            note = "" if not lazy.missing() else f" [needs gas-cli[{lazy.extra}]]"
            rows.append((name, lazy.help + note))
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=Gas, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """GAS, the Genomics Annotation Service."""


cli.add_command(client.login)
cli.add_command(client.submit)
cli.add_command(client.jobs)
cli.add_command(client.status)
cli.add_command(client.download)
cli.add_command(client.filters)
cli.add_command(client.upgrade)
cli.add_command(client.downgrade)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
