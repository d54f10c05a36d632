"""The local emulator gives conditional writes the atomicity DynamoDB gives them."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gas_cli.emulator import start_emulator
from tests.support import free_port


def _slow_condition_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Widen the gap between moto's condition check and its write, as a loaded server does,
    so that unserialized requests would reliably interleave inside it."""
    from moto.dynamodb.models import table

    original = table.get_filter_expression

    def slow_filter(*args: Any, **kwargs: Any) -> Any:
        condition = original(*args, **kwargs)
        check = condition.expr

        def slow_expr(item: Any) -> Any:
            result = check(item)
            time.sleep(0.02)
            return result

        condition.expr = slow_expr
        return condition

    monkeypatch.setattr(table, "get_filter_expression", slow_filter)


def test_simultaneous_conditional_puts_on_one_item_let_exactly_one_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _slow_condition_checks(monkeypatch)
    port = free_port()
    server = start_emulator(port)
    try:
        db = boto3.client(
            "dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
            config=Config(max_pool_connections=32, retries={"max_attempts": 1}),
        )
        db.create_table(
            TableName="race", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        wins: Counter[str] = Counter()
        lock = threading.Lock()
        keys = [f"k{i}" for i in range(10)]
        start = threading.Barrier(8)

        def contend(worker: int) -> None:
            start.wait()
            for key in keys:
                try:
                    db.put_item(TableName="race", Item={"pk": {"S": key},
                                                        "owner": {"S": str(worker)}},
                                ConditionExpression="attribute_not_exists(pk)")
                except ClientError as error:
                    assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
                    continue
                with lock:
                    wins[key] += 1

        threads = [threading.Thread(target=contend, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {key: wins[key] for key in keys} == dict.fromkeys(keys, 1)
    finally:
        server.stop()
