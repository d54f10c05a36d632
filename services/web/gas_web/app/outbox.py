"""The development outbox: emails the emulator's SES accepted, for the signed-in user only.

A mail belongs to the user whose job it is about: the notifier links every mail to its job
(`{web}/jobs/{job_id}`), and only mail linking to one of the signed-in user's own jobs is
shown. Not by recipient address: anyone can set his profile's email to another's address.

moto keeps sent mail in memory. Its `GET /moto-api/data.json` dumps every service, and reading
S3 keys there completes simulated restores (firing bogus `ObjectRestore:Completed` events), so
the outbox reads only SES at `GET {endpoint}/moto-api/gas/ses.json`, which the GAS emulator
(`gas_cli.emulator`, what `gas dev` and the tests run) adds, in data.json's shape:
`["ses"]["Message"]` holds `send_email` calls as `{id, source, destinations: {ToAddresses,
CcAddresses, BccAddresses}, subject, body}` and `["ses"]["RawMessage"]` holds `send_raw_email`
calls as `{id, source, destinations: [...], raw_data}` (checked against moto 5.2). moto keeps
one body per `send_email`: the HTML part when there is one, else the text.

An HTML body is shown as the mail's own page (`mail_page`) inside a sandboxed frame: its own
Content-Security-Policy runs no script at all and loads nothing but inline styles and data:
images, so a mail cannot act on the outbox page or reach anywhere.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Collection
from dataclasses import dataclass
from html import unescape
from typing import Any

import httpx


@dataclass(frozen=True)
class OutboxMail:
    id: str
    sender: str
    to: list[str]
    subject: str
    body: str  # the text part, or the HTML with its tags stripped when there is no text part
    html: str | None  # the HTML part, shown in a sandboxed frame


# The mail's own page: no script, no requests, nothing framing it but the outbox itself.
MAIL_PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                 "form-action 'none'; frame-ancestors 'self'; sandbox allow-popups "
                 "allow-popups-to-escape-sandbox")


SES_MAIL_PATH = "/moto-api/gas/ses.json"  # gas_cli.emulator.SES_MAIL_PATH
# A job link in a mail: `/jobs/` and a ULID (Crockford base32).
_JOB_LINK = re.compile(r"/jobs/([0-9A-HJKMNP-TV-Z]{26})\b")
_TAG = re.compile(r"<[^>]*>")
_HEAD = re.compile(r"<head[^>]*>", re.IGNORECASE)


class OutboxUnavailable(Exception):
    """The emulator does not serve SES mail on its own (not the GAS emulator)."""


def read_outbox(*, endpoint: str, job_ids: Collection[str],
                timeout: float = 5.0) -> list[OutboxMail]:
    """Mail about any of `job_ids`, newest first (moto keeps them in sending order)."""
    response = httpx.get(f"{endpoint.rstrip('/')}{SES_MAIL_PATH}", timeout=timeout)
    if response.status_code == 404:
        raise OutboxUnavailable
    response.raise_for_status()
    ses = response.json().get("ses", {})
    mails = [_from_message(m) for m in ses.get("Message", []) if isinstance(m, dict)]
    mails += [_from_raw(m) for m in ses.get("RawMessage", []) if isinstance(m, dict)]
    wanted = set(job_ids)
    mine = [m for m in mails
            if wanted.intersection(_JOB_LINK.findall("\n".join((m.subject, m.body, m.html or ""))))]
    return list(reversed(mine))


def mail_page(html: str) -> str:
    """The mail's HTML as a page of its own, its links opening outside the frame."""
    base = '<base target="_blank">'
    match = _HEAD.search(html)
    if match is None:
        return base + html
    return html[: match.end()] + base + html[match.end():]


def _text_of(html: str) -> str:
    """A readable text for an HTML-only mail (what the page searches and shows without it)."""
    lines = (line.strip() for line in unescape(_TAG.sub("", html)).splitlines())
    return "\n".join(line for line in lines if line)


def _from_message(message: dict[str, Any]) -> OutboxMail:
    destinations = message.get("destinations") or {}
    to = [str(a) for field in ("ToAddresses", "CcAddresses", "BccAddresses")
          for a in destinations.get(field, []) or []]
    body = str(message.get("body") or "")
    is_html = "<" in body and ">" in body
    return OutboxMail(id=str(message.get("id", "")), sender=str(message.get("source", "")),
                      to=to, subject=str(message.get("subject", "")),
                      body=_text_of(body) if is_html else body, html=body if is_html else None)


def _from_raw(message: dict[str, Any]) -> OutboxMail:
    parsed = email.message_from_string(str(message.get("raw_data", "")),
                                       policy=email.policy.default)
    text = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    html_body = str(html.get_content()) if html is not None else None
    if text is not None:
        body = str(text.get_content())
    else:
        body = _text_of(html_body) if html_body is not None else ""
    destinations = message.get("destinations") or []
    return OutboxMail(id=str(message.get("id", "")), sender=str(message.get("source", "")),
                      to=[str(a) for a in destinations], subject=str(parsed.get("subject", "")),
                      body=body, html=html_body)
