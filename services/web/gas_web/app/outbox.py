"""The development outbox: emails the emulator's SES accepted, for the signed-in user only.

moto keeps sent mail in memory and shows it at `GET {endpoint}/moto-api/data.json`:
`["ses"]["Message"]` holds `send_email` calls as `{id, source, destinations: {ToAddresses,
CcAddresses, BccAddresses}, subject, body}` and `["ses"]["RawMessage"]` holds `send_raw_email`
calls as `{id, source, destinations: [...], raw_data}` (checked against moto 5.2).
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class OutboxMail:
    id: str
    sender: str
    to: list[str]
    subject: str
    body: str
    is_html: bool


def read_outbox(*, endpoint: str, recipient: str, timeout: float = 5.0) -> list[OutboxMail]:
    """Mail sent to `recipient`, newest first (moto keeps them in sending order)."""
    if not recipient:
        return []
    response = httpx.get(f"{endpoint.rstrip('/')}/moto-api/data.json", timeout=timeout)
    response.raise_for_status()
    ses = response.json().get("ses", {})
    wanted = recipient.strip().lower()
    mails = [_from_message(m) for m in ses.get("Message", []) if isinstance(m, dict)]
    mails += [_from_raw(m) for m in ses.get("RawMessage", []) if isinstance(m, dict)]
    mine = [m for m in mails if wanted in (address.lower() for address in m.to)]
    return list(reversed(mine))


def _from_message(message: dict[str, Any]) -> OutboxMail:
    destinations = message.get("destinations") or {}
    to = [str(a) for field in ("ToAddresses", "CcAddresses", "BccAddresses")
          for a in destinations.get(field, []) or []]
    body = str(message.get("body") or "")
    return OutboxMail(id=str(message.get("id", "")), sender=str(message.get("source", "")),
                      to=to, subject=str(message.get("subject", "")), body=body,
                      is_html="<" in body and ">" in body)


def _from_raw(message: dict[str, Any]) -> OutboxMail:
    parsed = email.message_from_string(str(message.get("raw_data", "")),
                                       policy=email.policy.default)
    text = parsed.get_body(preferencelist=("plain", "html"))
    body = text.get_content() if text is not None else ""
    destinations = message.get("destinations") or []
    return OutboxMail(id=str(message.get("id", "")), sender=str(message.get("source", "")),
                      to=[str(a) for a in destinations], subject=str(parsed.get("subject", "")),
                      body=str(body),
                      is_html=text is not None and text.get_content_subtype() == "html")
