"""Server-side browser sessions: the signed cookie alone no longer proves a login.

The session cookie is signed (Starlette's SessionMiddleware) but a copy of it stays valid for
as long as its signature does, whatever the user did since. So each login also writes a
session record under the user's partition, keyed by a hash of a random session id that only
the cookie carries; every cookie-authenticated request checks the record, logout deletes it,
and it expires `session_max_age_seconds` after the login however active the session is (an
absolute lifetime; DynamoDB TTL removes it later, the read checks `expires_at` itself).
Logout marks the record revoked rather than deleting it: the web role deletes nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from gas_core.jobs.keys import session_sk, user_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class SessionStore:
    """Start, check and revoke sessions in the shared table. Thread-safe."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        *,
        lifetime_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._table = table_name
        self._lifetime = lifetime_seconds
        self._clock = clock

    def start(self, user_id: str) -> str:
        """A new session of `user_id`; returns its id (for the signed cookie only)."""
        session_id = secrets.token_urlsafe(32)
        now = int(self._clock())
        self._db.put_item(
            TableName=self._table,
            Item={**self._key(user_id, session_id),
                  "entity": {"S": "session"},
                  "started_at": {"N": str(now)},
                  "expires_at": {"N": str(now + self._lifetime)}},
            ConditionExpression="attribute_not_exists(pk)",
        )
        return session_id

    def is_active(self, user_id: str, session_id: str) -> bool:
        item = self._db.get_item(TableName=self._table, Key=self._key(user_id, session_id),
                                 ConsistentRead=True).get("Item")
        if item is None or "revoked_at" in item:
            return False
        return int(item["expires_at"]["N"]) > self._clock()

    def revoke(self, user_id: str, session_id: str) -> None:
        """End the session for every copy of its cookie (idempotent)."""
        try:
            self._db.update_item(
                TableName=self._table, Key=self._key(user_id, session_id),
                UpdateExpression="SET revoked_at = :now",
                ConditionExpression="attribute_exists(pk)",  # never creates an item
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    @staticmethod
    def _key(user_id: str, session_id: str) -> dict[str, dict[str, str]]:
        # Only a hash is stored: reading the table does not yield a usable session id.
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return {"pk": {"S": user_pk(user_id)}, "sk": {"S": session_sk(digest)}}
