"""`gas infra apply` gives the table its outbox index, on a new table and on an old one."""

from __future__ import annotations

from gas_cli.infra import Infrastructure
from gas_core.aws import AwsClients
from gas_core.resources import OUTBOX_INDEX
from gas_core.settings import GasSettings
from tests.unit.infra_tables import create_table_with_indexes, index_keys


def test_apply_creates_the_table_with_the_sparse_outbox_index(
    fresh_settings: GasSettings,
) -> None:
    aws = AwsClients(fresh_settings)
    Infrastructure(fresh_settings, aws).apply()
    assert index_keys(aws, fresh_settings.names.table)[OUTBOX_INDEX.name] == [
        (OUTBOX_INDEX.hash_key, "HASH"), (OUTBOX_INDEX.range_key, "RANGE"),
    ]
    # Applying again changes nothing about the table.
    again = Infrastructure(fresh_settings, aws).apply()
    assert not [c for c in again if c.kind == "table"]


def test_apply_adds_the_outbox_index_to_a_table_created_before_it(
    fresh_settings: GasSettings,
) -> None:
    aws = AwsClients(fresh_settings)
    table = fresh_settings.names.table
    create_table_with_indexes(fresh_settings, ())
    plan = Infrastructure(fresh_settings, aws).plan()
    assert any(c.kind == "table" and OUTBOX_INDEX.name in c.detail for c in plan)
    Infrastructure(fresh_settings, aws).apply()
    assert OUTBOX_INDEX.name in index_keys(aws, table)
