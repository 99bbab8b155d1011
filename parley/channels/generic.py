"""The generic webhook channel: any HTTP system that POSTs messages and takes replies at a
callback URL configured on the application.

Signing (optional): when the application has ``channels.generic.secret`` (or, failing that, its
``secret``), every inbound request must carry
``X-Parley-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`` with ``t`` within
five minutes of now, and every reply POSTed to ``callback_url`` is signed the same way.
Applications without a secret keep working unsigned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from parley.channels.base import (
    Channel,
    ChannelAuthError,
    ChannelNotConfigured,
    DeliveryError,
    DirectAnswer,
    Inbound,
    InboundMessage,
    SendPolicy,
    check_timestamp,
    header,
    hmac_sha256_hex,
    post_json,
    same,
)
from parley.frames import answer_html
from parley.records import ReplyEvent
from parley.redact import redact_url
from parley.validation import optional_str, parse_json_object, require_id, require_text

__all__ = [
    "IDEMPOTENCY_HEADER",
    "SIGNATURE_HEADER",
    "DeliveryError",
    "GenericChannel",
    "post_callback",
    "reply_payload",
    "sign",
    "signing_secret",
]


SIGNATURE_HEADER = "X-Parley-Signature"
#: the reply's message id, the same on every attempt and every redelivery: receivers drop repeats
IDEMPOTENCY_HEADER = "Idempotency-Key"


def reply_payload(reply: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "message_id": reply.event_id,
        "conversation_id": reply.conversation_id,
        "application_id": reply.application_id,
        "role": reply.role,
        "text": reply.text,
        "html": answer_html(reply.text, getattr(reply, "html", "")),
        "in_reply_to": reply.in_reply_to,
        "created_at": reply.created_at,
        **({"operator": {"name": reply.operator_name}} if getattr(reply, "operator_id", "") else {}),
    }


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``X-Parley-Signature`` value for ``body``: ``t=<ts>,v1=<hex>``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={hmac_sha256_hex(secret, str(stamp).encode() + b'.' + body)}"


def signing_secret(application: Mapping[str, Any]) -> str | None:
    """``channels.generic.secret``, else the application's ``secret``, else None (unsigned)."""
    channels = application.get("channels")
    config = channels.get("generic") if isinstance(channels, dict) else None
    if isinstance(config, dict) and isinstance(config.get("secret"), str) and config["secret"]:
        return str(config["secret"])
    secret = application.get("secret")
    return secret if isinstance(secret, str) and secret else None


def _signature_parts(value: str) -> tuple[str | None, list[str]]:
    stamp: str | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            stamp = item
        elif key == "v1":
            signatures.append(item)
    return stamp, signatures


_NO_CALLBACK = "the application has no callback_url"


def _callback_url(application: Mapping[str, Any]) -> str | None:
    url = application.get("callback_url")
    return url if isinstance(url, str) and url else None


class GenericChannel(Channel):
    name: ClassVar[str] = "generic"

    def verify(
        self, headers: Mapping[str, str], body: bytes, application: Mapping[str, Any], *, now: float | None = None
    ) -> None:
        secret = signing_secret(application)
        if secret is None:
            return
        value = header(headers, SIGNATURE_HEADER)
        if not value:
            raise ChannelAuthError(
                "missing_signature", f"this application signs its webhooks: send {SIGNATURE_HEADER}"
            )
        stamp, signatures = _signature_parts(value)
        check_timestamp(stamp, now=now)
        expected = hmac_sha256_hex(secret, f"{stamp}.".encode() + body)
        if not any(same(expected, candidate) for candidate in signatures):
            raise ChannelAuthError(
                "bad_signature", f"{SIGNATURE_HEADER} does not match the body and the application's secret"
            )

    def parse(self, body: bytes, *, max_text_bytes: int) -> Inbound | DirectAnswer:
        payload = parse_json_object(body)
        conversation_id = require_id(payload, "conversation_id")
        message_id = require_id(payload, "id")
        text = require_text(payload, "text", max_text_bytes)
        sender = optional_str(payload, "sender")
        return Inbound(messages=(InboundMessage(message_id, conversation_id, sender, text),))

    def unsent_reason(self, application: Mapping[str, Any]) -> str | None:
        return None if _callback_url(application) else _NO_CALLBACK

    async def send(
        self, session: aiohttp.ClientSession, application: Mapping[str, Any], reply: ReplyEvent, policy: SendPolicy
    ) -> None:
        url = _callback_url(application)
        if url is None:
            raise ChannelNotConfigured(_NO_CALLBACK)
        await post_callback(session, url, reply_payload(reply), policy=policy, secret=signing_secret(application))


async def post_callback(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    *,
    policy: SendPolicy,
    secret: str | None = None,
) -> None:
    """POST ``payload`` as JSON to ``url``, signed when ``secret`` is set (a fresh timestamp per
    attempt), with ``Idempotency-Key: <message_id>``; retry connection errors, 429 and 5xx with
    backoff."""
    body = json.dumps(payload).encode("utf-8")
    key = {IDEMPOTENCY_HEADER: str(payload["message_id"])} if payload.get("message_id") else {}

    def headers() -> dict[str, str]:
        return {**key, SIGNATURE_HEADER: sign(secret, body)} if secret else dict(key)

    await post_json(session, url, body, policy=policy, what=f"callback {redact_url(url)}", headers=headers)
