"""Conversion between the models and DynamoDB's typed attribute values; opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel

from gas_core.jobs.keys import is_job_id
from gas_core.jobs.models import InvalidCursor, Job, UserProfile

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()
# Stored as JSON text: nested numbers would otherwise need Decimal all the way down.
JSON_ATTRIBUTES = frozenset({"summary"})


def to_dynamo(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, BaseModel):
        return to_dynamo(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    return value


def serialize_attributes(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: SERIALIZER.serialize(to_dynamo(attribute_value(name, value)))
        for name, value in values.items()
    }


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: DESERIALIZER.deserialize(v) for k, v in item.items()}
    for name in JSON_ATTRIBUTES:
        if isinstance(plain.get(name), str):
            plain[name] = json.loads(plain[name])
    return plain


def job_from_item(item: dict[str, Any]) -> Job:
    return Job.model_validate(deserialize_item(item))


def profile_from_item(item: dict[str, Any]) -> UserProfile:
    return UserProfile.model_validate(deserialize_item(item))


def attribute_value(name: str, value: Any) -> Any:
    if name in JSON_ATTRIBUTES:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


def is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def encode_cursor(job_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"j": job_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        job_id = json.loads(base64.urlsafe_b64decode(padded))["j"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidCursor("invalid cursor") from error
    if not isinstance(job_id, str) or not is_job_id(job_id):
        raise InvalidCursor("invalid cursor")
    return job_id
