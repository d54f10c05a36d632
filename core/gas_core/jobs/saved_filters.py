"""Saved filters: a user's named sets of results-browser query parameters.

Three kinds of item under the user's partition (`USER#{user_id}`):

* `FILTER#{filter_id}` (a ULID): `name`, `params`, `created_at`, `version`.
* `FILTERNAME#{name key}`: the claim on one name, pointing at its filter. Names are unique per
  user, compared without case and with runs of spaces as one (`Rare  LoF` = `rare lof`).
* `FILTERS`: `filter_count`, how many filters the user has, kept at most `max_filters`.

Saving and deleting are one DynamoDB transaction each over those three items, every part
conditional: the filter is put only where none exists, the name only where unclaimed, the
count raised only below the cap; a delete removes the filter only at the version read and its
name claim only while it points at that filter. So concurrent saves can neither exceed the cap
nor share a name, and a filter is found only under its owner's partition (anyone else's id is
simply not found).

Parameters are the results browser's query parameters (the same names in the page URL, the
API and the CLI); anything else is refused rather than stored, and every value is bounded.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel
from ulid import ULID

from gas_core.jobs.codec import deserialize_item, serialize_attributes
from gas_core.jobs.keys import (
    FILTER_COUNT_SK,
    FILTER_PREFIX,
    filter_name_sk,
    filter_sk,
    is_job_id,
    user_pk,
)
from gas_core.jobs.store import TableStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# The query parameters a filter may hold: the results browser's, API's and CLI's names.
# (The sort direction is `order`, asc|desc, as the API and the page spell it.)
FILTER_PARAMETERS = (
    "preset", "gene", "consequence", "impact", "clinvar", "known", "max_af", "af_field",
    "keep_no_af", "view", "carriers", "zygosity", "sample", "sort", "order",
)
# Parameters whose values are a fixed set: a saved filter never holds one the API refuses.
PARAMETER_CHOICES = {
    "known": ("true", "false"),
    "keep_no_af": ("true", "false"),
    "view": ("variant", "transcript"),
    "carriers": ("only", "all"),
    "zygosity": ("het", "hom_alt", "hom_ref", "missing"),
    "order": ("asc", "desc"),
}
MAX_SAVED_FILTERS = 50
MAX_NAME_LENGTH = 80
MAX_VALUE_LENGTH = 512  # the longest the variants API takes (a comma list of terms)


class InvalidFilter(ValueError):
    """A name or parameters that cannot be saved; the message says why, in one line, and
    `field` which part was wrong (`name` or `params`)."""

    def __init__(self, message: str, field: str = "params") -> None:
        super().__init__(message)
        self.field = field


class FilterNotFound(LookupError):
    pass


class FilterNameTaken(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"You already have a saved filter named {name!r}.")
        self.name = name


class FilterLimitReached(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"You have {limit} saved filters, the most you can keep; "
                         "delete one first.")
        self.limit = limit


class SavedFilter(BaseModel):
    user_id: str
    filter_id: str
    name: str
    params: dict[str, str]
    created_at: datetime
    version: int = 1

    def to_api(self) -> dict[str, Any]:
        return {"id": self.filter_id, "name": self.name, "params": self.params,
                "created_at": self.created_at.isoformat()}


def is_filter_id(value: str) -> bool:
    return is_job_id(value)  # both are ULIDs


def normalise_name(name: str) -> str:
    """The name as shown: trimmed, runs of white space as one space; InvalidFilter if empty,
    too long or holding control characters."""
    shown = " ".join(name.split())
    if not shown:
        raise InvalidFilter("A saved filter needs a name.", "name")
    if len(shown) > MAX_NAME_LENGTH:
        raise InvalidFilter(f"A filter name has at most {MAX_NAME_LENGTH} characters.", "name")
    if any(unicodedata.category(ch).startswith("C") for ch in shown):
        raise InvalidFilter("A filter name cannot hold control characters.", "name")
    return shown


def name_key(name: str) -> str:
    """What makes two names the same name: no case, one space between words."""
    return normalise_name(name).casefold()


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The parameters as stored: known names only, values as they appear in a URL (strings;
    booleans as true/false), empty ones dropped. InvalidFilter names the first problem."""
    unknown = sorted(set(params) - set(FILTER_PARAMETERS))
    if unknown:
        raise InvalidFilter(f"Unknown filter parameter {unknown[0]!r}; known ones: "
                            + ", ".join(FILTER_PARAMETERS) + ".")
    stored: dict[str, str] = {}
    for name in FILTER_PARAMETERS:  # a stable order, whatever the caller's
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float | str):
            text = str(value).strip()
        else:
            raise InvalidFilter(f"Filter parameter {name!r} must be a single value.")
        if len(text) > MAX_VALUE_LENGTH:
            raise InvalidFilter(f"Filter parameter {name!r} has more than {MAX_VALUE_LENGTH} "
                                "characters.")
        if _CONTROL.search(text):
            raise InvalidFilter(f"Filter parameter {name!r} holds control characters.")
        if not text:
            continue
        choices = PARAMETER_CHOICES.get(name)
        if choices and text not in choices:
            raise InvalidFilter(f"Filter parameter {name!r} must be one of {', '.join(choices)}.")
        if name == "max_af" and not _is_frequency(text):
            raise InvalidFilter("Filter parameter 'max_af' must be a number between 0 and 1.")
        stored[name] = text
    if not stored:
        raise InvalidFilter("A saved filter needs at least one parameter.")
    return stored


def _is_frequency(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return 0 <= value <= 1  # NaN compares false


class SavedFilterStore(TableStore):
    """Reads and conditional writes of saved filters. Thread-safe."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
        max_filters: int = MAX_SAVED_FILTERS,
    ) -> None:
        super().__init__(dynamodb, table_name, clock=clock)
        self.max_filters = max_filters

    def list_filters(self, user_id: str) -> list[SavedFilter]:
        """The user's filters, by name (one Query of their partition, never a Scan)."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": user_pk(user_id)},
                                          ":prefix": {"S": FILTER_PREFIX}},
            "ConsistentRead": True,
        }
        filters: list[SavedFilter] = []
        while True:
            response = self._db.query(**request)
            filters += [_from_item(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return sorted(filters, key=lambda f: (f.name.casefold(), f.filter_id))
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def get_filter(self, user_id: str, filter_id: str) -> SavedFilter:
        """The filter, read under its owner's partition; FilterNotFound for anyone else's."""
        if not is_filter_id(filter_id):
            raise FilterNotFound(filter_id)
        response = self._db.get_item(TableName=self._table, Key=self._key(user_id,
                                                                          filter_sk(filter_id)),
                                     ConsistentRead=True)
        if "Item" not in response:
            raise FilterNotFound(filter_id)
        return _from_item(response["Item"])

    def save_filter(self, user_id: str, name: str, params: Mapping[str, Any]) -> SavedFilter:
        """Save a new filter. Raises InvalidFilter, FilterNameTaken or FilterLimitReached."""
        saved = SavedFilter(
            user_id=user_id, filter_id=str(ULID()), name=normalise_name(name),
            params=normalise_params(params), created_at=datetime.fromtimestamp(self._clock(), UTC),
        )
        item = serialize_attributes({
            "pk": user_pk(user_id), "sk": filter_sk(saved.filter_id), "entity": "saved_filter",
            **saved.model_dump(),
        })
        claim = serialize_attributes({
            "pk": user_pk(user_id), "sk": filter_name_sk(name_key(saved.name)),
            "entity": "saved_filter_name", "filter_id": saved.filter_id,
        })
        items: Any = [  # a plain list: the stubs' TypedDicts cannot type these items
            {"Put": {"TableName": self._table, "Item": item,
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": self._table, "Item": claim,
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {
                "TableName": self._table, "Key": self._key(user_id, FILTER_COUNT_SK),
                "UpdateExpression": "ADD filter_count :one, version :one",
                "ConditionExpression": "attribute_not_exists(filter_count) OR filter_count < :cap",
                "ExpressionAttributeValues": {":one": {"N": "1"},
                                              ":cap": {"N": str(self.max_filters)}},
            }},
        ]
        reasons = self._transact(items)
        if reasons is None:
            return saved
        if reasons[1] == "ConditionalCheckFailed":
            raise FilterNameTaken(saved.name)
        if reasons[2] == "ConditionalCheckFailed":
            raise FilterLimitReached(self.max_filters)
        raise RuntimeError(f"saving a filter was cancelled: {reasons}")

    def delete_filter(self, user_id: str, filter_id: str) -> SavedFilter:
        """Delete one of the user's filters (the deleted filter is returned); FilterNotFound
        when the user has no such filter, including when it is someone else's."""
        saved = self.get_filter(user_id, filter_id)
        items: Any = [
            {"Delete": {
                "TableName": self._table, "Key": self._key(user_id, filter_sk(filter_id)),
                "ConditionExpression": "version = :version",
                "ExpressionAttributeValues": {":version": {"N": str(saved.version)}},
            }},
            {"Delete": {
                # Only its own claim: a claim is never left pointing at a deleted filter.
                "TableName": self._table,
                "Key": self._key(user_id, filter_name_sk(name_key(saved.name))),
                "ConditionExpression": "attribute_not_exists(pk) OR filter_id = :id",
                "ExpressionAttributeValues": {":id": {"S": filter_id}},
            }},
            {"Update": {
                "TableName": self._table, "Key": self._key(user_id, FILTER_COUNT_SK),
                "UpdateExpression": "ADD filter_count :minus_one, version :one",
                "ConditionExpression": "filter_count > :zero",
                "ExpressionAttributeValues": {":minus_one": {"N": "-1"}, ":one": {"N": "1"},
                                              ":zero": {"N": "0"}},
            }},
        ]
        reasons = self._transact(items)
        if reasons is None:
            return saved
        if reasons[0] == "ConditionalCheckFailed":
            # Deleted (or changed) at the same time: gone now is what the caller asked for,
            # but only one of the two deletes did it.
            raise FilterNotFound(filter_id)
        raise RuntimeError(f"deleting a filter was cancelled: {reasons}")

    # -- internals -------------------------------------------------------------------------------

    def _key(self, user_id: str, sk: str) -> dict[str, Any]:
        return {"pk": {"S": user_pk(user_id)}, "sk": {"S": sk}}

    def _transact(self, items: Any) -> list[str | None] | None:
        """Run one transaction: None when it was written, else each item's cancellation code
        (`ConditionalCheckFailed` for a refused condition, None for an item that was fine)."""
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in
                       error.response.get("CancellationReasons", [])]
            if len(reasons) != len(items):
                raise
            return [None if code in (None, "None") else code for code in reasons]
        return None


def _from_item(item: dict[str, Any]) -> SavedFilter:
    return SavedFilter.model_validate(deserialize_item(item))

