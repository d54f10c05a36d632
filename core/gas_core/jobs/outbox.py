"""The outbox's bookkeeping in the table: pending events of an item, marking one sent, and
finding the items whose events are overdue (through the sparse index OUTBOX_INDEX).

Events are added by the state writes themselves (`events=` on the repository's writes); this
part only reads and removes them. Removing an event does not bump the item's `version`: it is
no state change, and version-guarded writers must not conflict with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gas_core.jobs.codec import SERIALIZER, is_conditional_failure, to_dynamo
from gas_core.jobs.keys import PROFILE_SK, job_sk, user_pk
from gas_core.jobs.store import OUTBOX_ATTRIBUTE, OUTBOX_GRACE_SECONDS, TableStore
from gas_core.resources import OUTBOX_INDEX, OUTBOX_PENDING

if TYPE_CHECKING:
    from gas_core.events import Event

# Tries of a removal that lost a race with a concurrent append or removal on the same item.
_REMOVE_TRIES = 5


@dataclass(frozen=True)
class ItemKey:
    """The table key of an item that can carry events (a job or a profile)."""

    pk: str
    sk: str

    @classmethod
    def of_job(cls, user_id: str, job_id: str) -> ItemKey:
        return cls(user_pk(user_id), job_sk(job_id))

    @classmethod
    def of_profile(cls, user_id: str) -> ItemKey:
        return cls(user_pk(user_id), PROFILE_SK)

    def dynamo(self) -> dict[str, Any]:
        return {"pk": {"S": self.pk}, "sk": {"S": self.sk}}


def outbox_item_attributes(events: Sequence[Event], now: float) -> dict[str, Any]:
    """The outbox attributes of a new item (a put) created with pending `events`."""
    if not events:
        return {}
    return {
        OUTBOX_ATTRIBUTE: [event.model_dump_json() for event in events],
        OUTBOX_INDEX.hash_key: OUTBOX_PENDING,
        OUTBOX_INDEX.range_key: int(now + OUTBOX_GRACE_SECONDS),
    }


class OutboxStore(TableStore):
    def pending_events(self, key: ItemKey) -> list[str]:
        """JSON bodies of the item's events not yet marked sent, oldest first."""
        response = self._db.get_item(
            TableName=self._table,
            Key=key.dynamo(),
            ConsistentRead=True,
            ProjectionExpression="#outbox",
            ExpressionAttributeNames={"#outbox": OUTBOX_ATTRIBUTE},
        )
        return _bodies(response.get("Item", {}))

    def mark_event_sent(self, key: ItemKey, body: str) -> None:
        """Remove one published event from the item's outbox (a no-op if already removed);
        the item leaves the index when its outbox is empty."""
        names = {"#outbox": OUTBOX_ATTRIBUTE}
        for _ in range(_REMOVE_TRIES):
            pending = self.pending_events(key)
            if body not in pending:
                return
            index = pending.index(body)
            try:
                # Conditional on the element still being this event: a concurrent removal
                # shifts the list, and then we read it again.
                response = self._db.update_item(
                    TableName=self._table,
                    Key=key.dynamo(),
                    UpdateExpression=f"REMOVE #outbox[{index}]",
                    ConditionExpression=f"#outbox[{index}] = :body",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":body": {"S": body}},
                    ReturnValues="ALL_NEW",
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
                continue
            if not _bodies(response.get("Attributes", {})):
                self._clear_if_empty(key)
            return

    def due_outbox_items(self, now: float) -> Iterator[ItemKey]:
        """Items holding events due for republishing at `now` (a Query of the sparse index)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OUTBOX_INDEX.name,
            "KeyConditionExpression": "#pending = :pending AND #due <= :now",
            "ExpressionAttributeNames": {
                "#pending": OUTBOX_INDEX.hash_key, "#due": OUTBOX_INDEX.range_key,
            },
            "ExpressionAttributeValues": {
                ":pending": {"S": OUTBOX_PENDING},
                ":now": SERIALIZER.serialize(to_dynamo(int(now))),
            },
        }
        while True:
            response = self._db.query(**request)
            for item in response.get("Items", []):
                yield ItemKey(item["pk"]["S"], item["sk"]["S"])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _clear_if_empty(self, key: ItemKey) -> None:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key.dynamo(),
                UpdateExpression="REMOVE #outbox, #pending, #due",
                # An event appended meanwhile keeps the item in the index.
                ConditionExpression="size(#outbox) = :zero",
                ExpressionAttributeNames={
                    "#outbox": OUTBOX_ATTRIBUTE,
                    "#pending": OUTBOX_INDEX.hash_key,
                    "#due": OUTBOX_INDEX.range_key,
                },
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise


def _bodies(item: dict[str, Any]) -> list[str]:
    return [value["S"] for value in item.get(OUTBOX_ATTRIBUTE, {}).get("L", [])]
