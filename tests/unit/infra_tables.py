"""Tables as older deployments made them, for the tests of `gas infra apply`'s upgrades."""

from __future__ import annotations

from typing import Any

from gas_cli.infra import _index_attributes, _index_spec
from gas_core.aws import AwsClients
from gas_core.resources import TableIndex
from gas_core.settings import GasSettings


def create_table_with_indexes(settings: GasSettings, indexes: tuple[TableIndex, ...]) -> None:
    """The jobs table (pk, sk) with only `indexes` of today's, as a deployment made before the
    others were added."""
    keys = {key for index in indexes for key in (index.hash_key, index.range_key)}
    extra: dict[str, Any] = {}
    if indexes:
        extra["GlobalSecondaryIndexes"] = [_index_spec(index) for index in indexes]
    AwsClients(settings).dynamodb.create_table(
        TableName=settings.names.table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"},
                              *[a for a in _index_attributes() if a["AttributeName"] in keys]],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )


def index_keys(aws: AwsClients, table: str) -> dict[str, list[tuple[str, str]]]:
    """Each global secondary index of `table` with its key schema."""
    described = aws.dynamodb.describe_table(TableName=table)["Table"]
    return {
        index["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]]
        for index in described.get("GlobalSecondaryIndexes", [])
    }
