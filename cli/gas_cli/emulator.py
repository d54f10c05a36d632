"""The local AWS emulator (a moto server in this process), as `gas dev` and the tests run it.

The emulator's known defects are worked around here, nowhere else.

moto evaluates a DynamoDB conditional write's condition and applies the write without a lock,
so two truly simultaneous requests on one item can both pass their conditions, or one can
silently undo the other (seen in the chaos test: a successful `archived` transaction read back
as `archiving`; a `restoring` write lost under a concurrent update). DynamoDB serializes writes
per item, and every GAS state change relies on that, so the emulator serves one DynamoDB
request at a time: the local stack then has the atomicity production has.

 Its
`GET /moto-api/data.json` (where the dev outbox reads sent mail, see gas_web.app.outbox) reads
every attribute of every S3 key it tracks, and that includes the parts of multipart uploads,
which stay tracked after the upload completes. Reading a part's `status` makes moto look up
the part's bucket, which parts do not name, and the NoSuchBucket error fails the whole dump
with HTTP 500. So after any multipart upload (the annotator uploads results over 8 MB in parts;
the archiver copies results over 5 GiB in parts) the outbox broke. A part's status is answered
from the part itself instead.

The same dump has a worse effect: reading a key's `status` advances moto's simulated restore,
so every read completed pending restores and fired `ObjectRestore:Completed` events for keys
never restored. Sent mail (the dev outbox's only need) is therefore also served on its own at
`GET /moto-api/gas/ses.json` (`SES_MAIL_PATH`), in data.json's shape (`{"ses": {...}}`), read
from SES's models alone without touching S3.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from moto.server import ThreadedMotoServer

SES_MAIL_PATH = "/moto-api/gas/ses.json"


def start_emulator(port: int) -> ThreadedMotoServer:
    """A moto server on 127.0.0.1:`port`, started."""
    _serialize_dynamodb()
    _answer_part_status_without_bucket()
    _serve_ses_mail()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


_DYNAMODB_LOCK = threading.Lock()


def _serialize_dynamodb() -> None:
    from moto.dynamodb.responses import DynamoHandler

    original = DynamoHandler.call_action
    if getattr(original, "gas_serialized", False):
        return  # already applied (a second server in this process)

    def call_action(self: DynamoHandler) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    call_action.gas_serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def _answer_part_status_without_bucket() -> None:
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import FakeKey

    original = FakeKey.__dict__["status"]
    assert isinstance(original, property)
    if getattr(original.fget, "gas_tolerates_parts", False):
        return  # already applied (a second server in this process)

    def status(key: Any) -> Any:
        try:
            return original.fget(key)  # type: ignore[misc]
        except MissingBucket:
            if key.bucket_name is not None:
                raise
            return key._status  # a part: moto advanced it before the failed bucket lookup

    status.gas_tolerates_parts = True  # type: ignore[attr-defined]
    setattr(FakeKey, "status", property(status, original.fset))  # noqa: B010 - replaces a property


def _serve_ses_mail() -> None:
    # Routes under /moto-api belong to moto's own API app, built from this table when the
    # server first answers one of its requests.
    from moto.moto_api._internal import urls

    urls.url_paths["{0}" + SES_MAIL_PATH] = _ses_mail


def _ses_mail(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from moto.core.model_instances import model_data

    ses: dict[str, list[dict[str, Any]]] = {}
    for name, model in sorted(model_data.get("ses", {}).items()):
        ses[name] = [
            {attr: getattr(instance, attr) for attr in dir(instance)
             if not attr.startswith("_") and _is_json(getattr(instance, attr, None))}
            for instance in model.instances_tracked  # type: ignore[attr-defined]
        ]
    return 200, {"Content-Type": "application/json"}, json.dumps({"ses": ses})


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
