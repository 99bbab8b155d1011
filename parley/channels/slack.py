"""Slack Events API.

Application document::

    "channels": {"slack": {
        "signing_secret": "…",   # Basic Information > App Credentials > Signing Secret
        "bot_token": "xoxb-…",   # OAuth & Permissions; needs chat:write
        "api_base": "https://slack.com/api"   # optional
    }}

Inbound: every request is signed (``X-Slack-Signature: v0=<hex HMAC-SHA256 of
"v0:<X-Slack-Request-Timestamp>:<raw body>" with signing_secret>``) and refused when the
timestamp is more than five minutes from now. ``url_verification`` is answered with its
challenge. ``event_callback`` with an ``event`` of type ``message`` becomes a message, except
messages with a ``bot_id`` or a ``subtype`` other than ``file_share`` (the bot's own posts,
edits, joins…), which are acknowledged and ignored. The conversation id is ``slack:<channel>`` or, in a thread,
``slack:<channel>:<thread_ts>``; the platform message id is the message's ``ts``.

Outbound: ``POST {api_base}/chat.postMessage`` with a bearer bot token, ``channel``, ``text``
and ``thread_ts`` when the conversation is a thread. Slack answers HTTP 200 with
``{"ok": false, "error": …}`` for refusals: those are final, except Slack's own transient errors.

Files: a message's ``files`` are fetched from their ``url_private_download`` (or
``url_private``) with the bot token (scope ``files:read``), only from ``https://files.slack.com/``
(or ``api_base``, for tests): the token is never sent elsewhere.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp

from parley.channels.base import (
    Channel,
    ChannelAuthError,
    DeliveryRefused,
    DirectAnswer,
    Download,
    DownloadError,
    Inbound,
    InboundMessage,
    RetryableResponse,
    SendPolicy,
    accepted_text,
    check_timestamp,
    get_bytes,
    header,
    hmac_sha256_hex,
    post_json,
    same,
)
from parley.records import ReplyEvent
from parley.validation import InputError, parse_json_object

__all__ = ["SlackChannel", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "address"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
PREFIX = "slack:"
_CHANNEL = re.compile(r"^[A-Za-z0-9]{1,40}$")
_TS = re.compile(r"^[0-9]{1,20}\.[0-9]{1,10}$")
#: ``{"ok": false, "error": …}`` values worth another attempt
_TRANSIENT = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"})


def address(conversation_id: str) -> tuple[str, str | None]:
    """(channel, thread_ts or None) of a conversation."""
    if not conversation_id.startswith(PREFIX):
        raise DeliveryRefused(f"conversation {conversation_id!r} is not a Slack channel")
    channel, _, thread = conversation_id[len(PREFIX):].partition(":")
    if not channel:
        raise DeliveryRefused(f"conversation {conversation_id!r} is not a Slack channel")
    return channel, thread or None


def _malformed(message: str) -> InputError:
    return InputError("invalid_payload", f"not a Slack event: {message}")


def _check(data: Any) -> None:
    if not isinstance(data, dict) or data.get("ok") is True:
        return
    error = str(data.get("error", "unknown_error"))
    if error in _TRANSIENT:
        raise RetryableResponse(f"slack answered {error}")
    raise DeliveryRefused(f"slack chat.postMessage refused the reply: {error}")


class SlackChannel(Channel):
    name: ClassVar[str] = "slack"
    default_api_base: ClassVar[str] = "https://slack.com/api"

    def verify(
        self, headers: Mapping[str, str], body: bytes, application: Mapping[str, Any], *, now: float | None = None
    ) -> None:
        config = self.credentials(application)
        secret = config.get("signing_secret")
        if not isinstance(secret, str) or not secret:
            raise ChannelAuthError("not_configured", "channels.slack.signing_secret is not set")
        stamp = check_timestamp(header(headers, TIMESTAMP_HEADER), now=now)
        given = header(headers, SIGNATURE_HEADER)
        if not given:
            raise ChannelAuthError("missing_signature", f"{SIGNATURE_HEADER} is missing")
        expected = "v0=" + hmac_sha256_hex(secret, f"v0:{stamp}:".encode() + body)
        if not same(given, expected):
            raise ChannelAuthError("bad_signature", f"{SIGNATURE_HEADER} does not match the body and the signing secret")

    def parse(self, body: bytes, *, max_text_bytes: int) -> Inbound | DirectAnswer:
        payload = parse_json_object(body)
        kind = payload.get("type")
        if kind == "url_verification":
            challenge = payload.get("challenge")
            if not isinstance(challenge, str) or not challenge:
                raise _malformed("url_verification without a challenge")
            return DirectAnswer(200, json={"challenge": challenge})
        if kind != "event_callback":
            return Inbound(ignored=(f"type {kind!r}",))
        event = payload.get("event")
        if not isinstance(event, dict):
            raise _malformed("event_callback without an event object")
        if event.get("type") != "message":
            return Inbound(ignored=(f"event {event.get('type')!r}",))
        if event.get("bot_id") or event.get("subtype") not in (None, "file_share"):
            return Inbound(ignored=(f"message subtype {event.get('subtype')!r} bot {event.get('bot_id')!r}",))
        channel, ts, thread = event.get("channel"), event.get("ts"), event.get("thread_ts")
        if not isinstance(channel, str) or not _CHANNEL.match(channel):
            raise _malformed("event.channel is missing")
        if not isinstance(ts, str) or not _TS.match(ts):
            raise _malformed("event.ts is missing")
        if thread is not None and (not isinstance(thread, str) or not _TS.match(thread)):
            raise _malformed("event.thread_ts is not a timestamp")
        files = event.get("files")
        attachments = tuple(
            {k: v for k, v in {
                "type": "file", "file_id": f.get("id"), "file_name": f.get("name"),
                "mime_type": f.get("mimetype"), "size": f.get("size"),
                "url": f.get("url_private_download") or f.get("url_private"),
            }.items() if v is not None}
            for f in (files if isinstance(files, list) else []) if isinstance(f, dict)
        )
        given = event.get("text")
        text = accepted_text(given, attachments, max_text_bytes)
        if text is None:
            reason = "text too long" if isinstance(given, str) and given.strip() else "no text"
            return Inbound(ignored=(f"message {ts}: {reason}",))
        conversation = f"{PREFIX}{channel}" + (f":{thread}" if thread else "")
        user = event.get("user")
        return Inbound(messages=(
            InboundMessage(
                message_id=ts,
                conversation_id=conversation,
                sender=user if isinstance(user, str) else "",
                text=text,
                attachments=attachments,
            ),
        ))

    async def download(
        self,
        session: aiohttp.ClientSession,
        application: Mapping[str, Any],
        attachment: Mapping[str, Any],
        *,
        max_bytes: int,
        policy: SendPolicy,
    ) -> Download:
        config = self.credentials(application)
        token = self.required(config, "bot_token")
        url = attachment.get("url")
        allowed = ("https://files.slack.com/", f"{self.api_base(config)}/")
        if not isinstance(url, str) or not url.startswith(allowed):
            raise DownloadError("the slack file's url is not on files.slack.com")
        return await get_bytes(
            session, url, policy=policy, what="slack file download", max_bytes=max_bytes,
            headers={"Authorization": f"Bearer {token}"}, secrets=(token,),
        )

    async def send(
        self, session: aiohttp.ClientSession, application: Mapping[str, Any], reply: ReplyEvent, policy: SendPolicy
    ) -> None:
        config = self.credentials(application)
        token = self.required(config, "bot_token")
        channel, thread = address(reply.conversation_id)
        body: dict[str, Any] = {"channel": channel, "text": reply.text}
        if thread:
            body["thread_ts"] = thread
        await post_json(
            session, f"{self.api_base(config)}/chat.postMessage", body, policy=policy,
            what="slack chat.postMessage", headers={"Authorization": f"Bearer {token}"},
            check=_check, secrets=(token,),
        )
