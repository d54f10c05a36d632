"""`gas infra apply` gives the table its sparse `queue` index (PENDING jobs' positions): on a
new table, and on a table that has only the outbox index (a deployment made before it)."""

from __future__ import annotations

from gas_cli.infra import Infrastructure
from gas_core.aws import AwsClients
from gas_core.resources import OUTBOX_INDEX, QUEUE_INDEX
from gas_core.settings import GasSettings
from tests.unit.infra_tables import create_table_with_indexes, index_keys


def test_apply_creates_the_sparse_queue_index(fresh_settings: GasSettings) -> None:
    aws = AwsClients(fresh_settings)
    Infrastructure(fresh_settings, aws).apply()
    assert index_keys(aws, fresh_settings.names.table)[QUEUE_INDEX.name] == [
        (QUEUE_INDEX.hash_key, "HASH"), (QUEUE_INDEX.range_key, "RANGE"),
    ]


def test_apply_adds_the_queue_index_to_a_table_with_only_the_outbox_index(
    fresh_settings: GasSettings,
) -> None:
    aws = AwsClients(fresh_settings)
    table = fresh_settings.names.table
    create_table_with_indexes(fresh_settings, (OUTBOX_INDEX,))
    plan = Infrastructure(fresh_settings, aws).plan()
    assert [c.detail for c in plan if c.kind == "table" and "index" in c.detail] == [
        f"add index {QUEUE_INDEX.name}"
    ]
    Infrastructure(fresh_settings, aws).apply()
    assert set(index_keys(aws, table)) == {OUTBOX_INDEX.name, QUEUE_INDEX.name}
    again = Infrastructure(fresh_settings, aws).apply()
    assert not [c for c in again if c.kind == "table"]
