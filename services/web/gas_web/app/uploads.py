"""Upload reservations: the record that a job id was issued to one user at `POST /jobs`.

Submit accepts only a job id reserved for the caller (anything else is a 404), so a user
cannot claim an id issued to someone else by uploading under his own prefix. The reservation
names the exact object key the presigned POST was signed for and the assembly asked for; it is
consumed once the job exists (marked, not deleted: the web role deletes nothing), and expires
(DynamoDB TTL on `expires_at`, and checked on read because TTL deletes late).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from gas_core.jobs.keys import upload_sk, user_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class Reservation:
    user_id: str
    job_id: str
    input_key: str
    assembly: str
    expires_at: int


class UploadReservations:
    """Reserve, find and consume upload reservations in the shared table. Thread-safe."""

    def __init__(
        self, dynamodb: DynamoDBClient, table_name: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = dynamodb
        self._table = table_name
        self._clock = clock

    def reserve(self, *, user_id: str, job_id: str, input_key: str, assembly: str,
                lifetime_seconds: int) -> Reservation:
        """Record a freshly issued job id (a conditional put: an id is issued only once)."""
        reservation = Reservation(user_id=user_id, job_id=job_id, input_key=input_key,
                                  assembly=assembly,
                                  expires_at=int(self._clock()) + lifetime_seconds)
        self._db.put_item(
            TableName=self._table,
            Item={
                "pk": {"S": user_pk(user_id)},
                "sk": {"S": upload_sk(job_id)},
                "entity": {"S": "upload"},
                "input_key": {"S": input_key},
                "assembly": {"S": assembly},
                "expires_at": {"N": str(reservation.expires_at)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return reservation

    def find(self, user_id: str, job_id: str) -> Reservation | None:
        """The caller's live reservation of `job_id`, or None (never issued to them, consumed,
        or expired)."""
        item = self._db.get_item(TableName=self._table, Key=self._key(user_id, job_id),
                                 ConsistentRead=True).get("Item")
        if item is None or "consumed_at" in item:
            return None
        expires_at = int(item["expires_at"]["N"])
        if expires_at <= self._clock():
            return None
        return Reservation(user_id=user_id, job_id=job_id,
                           input_key=str(item["input_key"]["S"]),
                           assembly=str(item["assembly"]["S"]),
                           expires_at=expires_at)

    def consume(self, user_id: str, job_id: str) -> None:
        """The job exists now: the id cannot be submitted again (idempotent)."""
        try:
            self._db.update_item(
                TableName=self._table, Key=self._key(user_id, job_id),
                UpdateExpression="SET consumed_at = :now",
                # Never creates an item; a second consume changes nothing.
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(consumed_at)",
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    @staticmethod
    def _key(user_id: str, job_id: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": user_pk(user_id)}, "sk": {"S": upload_sk(job_id)}}
