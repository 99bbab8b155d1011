"""WhatsApp Cloud API (Meta Graph API).

Application document::

    "channels": {"whatsapp": {
        "app_secret": "…",         # the Meta app's secret: signs every webhook POST
        "verify_token": "…",       # any string; typed into the webhook settings in the App Dashboard
        "access_token": "EAAG…",   # a system-user token with whatsapp_business_messaging
        "phone_number_id": "106540352242922",
        "api_base": "https://graph.facebook.com/v23.0"   # optional
    }}

Subscription: ``GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`` answers the
challenge as text when the token matches, 403 otherwise.

Inbound: ``POST`` signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body
with app_secret>``; ``entry[].changes[].value.messages[]`` become messages (``text.body``; the
caption of an image, video or document; the title of a button or list reply) and
``value.statuses[]`` (sent / delivered / read / failed) become receipts. The conversation id is
``whatsapp:<from>`` (the user's number); the platform message id is the ``wamid``.

Outbound: ``POST {api_base}/{phone_number_id}/messages`` with a bearer token and
``{"messaging_product": "whatsapp", "to": …, "type": "text", "text": {"body": …}}``; a typing
indicator (which also marks the user's message read) when a message arrives.

Files: an image, video, document or audio message is taken with its caption (or no text); ``GET {api_base}/{media id}`` gives the media ``url``, fetched with the same bearer token only when it is on the API host, on ``lookaside.fbsbx.com`` or on ``PARLEY_EGRESS_ALLOW``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp
from yarl import URL

from parley.channels.base import (
    Channel,
    ChannelAuthError,
    DeliveryRefused,
    DirectAnswer,
    Download,
    DownloadError,
    Inbound,
    InboundMessage,
    Receipt,
    SendPolicy,
    accepted_text,
    get_bytes,
    get_json,
    header,
    hmac_sha256_hex,
    post_json,
    same,
    split_text,
)
from parley.channels.egress import policy_of
from parley.records import ReplyEvent
from parley.validation import InputError, parse_json_object

__all__ = ["WhatsAppChannel", "SIGNATURE_HEADER", "MAX_MESSAGE_CHARS", "recipient"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_MESSAGE_CHARS = 4096
PREFIX = "whatsapp:"
_MEDIA = ("image", "video", "document", "audio")  # stickers are ignored
#: where the Graph API's media lookups point (besides the API host): the token may go there
MEDIA_HOSTS = frozenset({"lookaside.fbsbx.com"})


def recipient(conversation_id: str) -> str:
    """The number a conversation's replies go to."""
    if not conversation_id.startswith(PREFIX) or len(conversation_id) == len(PREFIX):
        raise DeliveryRefused(f"conversation {conversation_id!r} is not a WhatsApp chat")
    return conversation_id[len(PREFIX):]


def _malformed(message: str) -> InputError:
    return InputError("invalid_payload", f"not a WhatsApp webhook: {message}")


def _list(obj: dict[str, Any], name: str, where: str) -> list[Any]:
    value = obj.get(name, [])
    if not isinstance(value, list):
        raise _malformed(f"{where}.{name} is not a list")
    return value


def _text(message: dict[str, Any]) -> str | None:
    kind = message.get("type")
    if kind == "text":
        body = message.get("text")
        return body.get("body") if isinstance(body, dict) else None
    if kind in _MEDIA:
        media = message.get(kind)
        return media.get("caption") if isinstance(media, dict) else None
    if kind == "button":
        button = message.get("button")
        return button.get("text") if isinstance(button, dict) else None
    if kind == "interactive":
        interactive = message.get("interactive")
        if isinstance(interactive, dict):
            reply = interactive.get("button_reply") or interactive.get("list_reply")
            if isinstance(reply, dict):
                return reply.get("title")
    return None


def _attachments(message: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    kind = message.get("type")
    media = message.get(kind) if kind in _MEDIA else None
    if not isinstance(media, dict):
        return ()
    found = {
        "type": kind,
        "media_id": media.get("id"),
        "mime_type": media.get("mime_type"),
        "file_name": media.get("filename"),
        "sha256": media.get("sha256"),
    }
    return ({k: v for k, v in found.items() if v is not None},)


class WhatsAppChannel(Channel):
    name: ClassVar[str] = "whatsapp"
    default_api_base: ClassVar[str] = "https://graph.facebook.com/v23.0"
    supports_typing: ClassVar[bool] = True

    def verify_subscription(self, query: Mapping[str, str], application: Mapping[str, Any]) -> str:
        """The ``hub.challenge`` to echo, or ``ChannelAuthError`` (answered 403)."""
        config = self.credentials(application)
        token = config.get("verify_token")
        given = query.get("hub.verify_token")
        if query.get("hub.mode") != "subscribe" or not given or not isinstance(token, str) or not token:
            raise ChannelAuthError("bad_verify_token", "hub.mode must be subscribe, with the verify_token")
        if not same(given, token):
            raise ChannelAuthError("bad_verify_token", "hub.verify_token does not match channels.whatsapp.verify_token")
        challenge = query.get("hub.challenge")
        if not challenge:
            raise ChannelAuthError("missing_challenge", "hub.challenge is missing")
        return challenge

    def verify(
        self, headers: Mapping[str, str], body: bytes, application: Mapping[str, Any], *, now: float | None = None
    ) -> None:
        config = self.credentials(application)
        secret = config.get("app_secret")
        if not isinstance(secret, str) or not secret:
            raise ChannelAuthError("not_configured", "channels.whatsapp.app_secret is not set")
        given = header(headers, SIGNATURE_HEADER)
        if not given:
            raise ChannelAuthError("missing_signature", f"{SIGNATURE_HEADER} is missing")
        if not same(given, "sha256=" + hmac_sha256_hex(secret, body)):
            raise ChannelAuthError("bad_signature", f"{SIGNATURE_HEADER} does not match the body and the app secret")

    def parse(self, body: bytes, *, max_text_bytes: int) -> Inbound | DirectAnswer:
        payload = parse_json_object(body)
        if payload.get("object") != "whatsapp_business_account":
            return Inbound(ignored=(f"object {payload.get('object')!r}",))
        messages: list[InboundMessage] = []
        receipts: list[Receipt] = []
        ignored: list[str] = []
        for entry in _list(payload, "entry", "payload"):
            if not isinstance(entry, dict):
                raise _malformed("an entry is not an object")
            for change in _list(entry, "changes", "entry"):
                if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                    raise _malformed("a change has no value object")
                if change.get("field", "messages") != "messages":
                    ignored.append(f"field {change.get('field')!r}")
                    continue
                value = change["value"]
                for message in _list(value, "messages", "value"):
                    parsed = self._message(message, max_text_bytes, ignored)
                    if parsed is not None:
                        messages.append(parsed)
                for status in _list(value, "statuses", "value"):
                    if not isinstance(status, dict) or not isinstance(status.get("id"), str):
                        raise _malformed("a status has no id")
                    try:
                        stamp = float(status.get("timestamp") or 0)
                    except (TypeError, ValueError):
                        stamp = 0.0
                    receipts.append(Receipt(
                        platform_message_id=status["id"],
                        recipient=str(status.get("recipient_id", "")),
                        status=str(status.get("status", "")),
                        timestamp=stamp,
                    ))
        return Inbound(messages=tuple(messages), receipts=tuple(receipts), ignored=tuple(ignored))

    @staticmethod
    def _message(message: Any, max_text_bytes: int, ignored: list[str]) -> InboundMessage | None:
        if not isinstance(message, dict):
            raise _malformed("a message is not an object")
        wamid, sender = message.get("id"), message.get("from")
        if not isinstance(wamid, str) or not wamid or len(wamid) > 512:
            raise _malformed("a message has no id")
        if not isinstance(sender, str) or not sender.isdigit() or len(sender) > 32:
            raise _malformed("a message has no valid from number")
        given = _text(message)
        attachments = _attachments(message)
        text = accepted_text(given, attachments, max_text_bytes)
        if text is None:
            reason = "text too long" if isinstance(given, str) and given.strip() else f"type {message.get('type')!r}"
            ignored.append(f"message {wamid}: {reason}")
            return None
        return InboundMessage(
            message_id=wamid,
            conversation_id=PREFIX + sender,
            sender=sender,
            text=text,
            attachments=attachments,
        )

    def _endpoint(self, config: Mapping[str, Any]) -> tuple[str, str]:
        token = self.required(config, "access_token")
        phone = self.required(config, "phone_number_id")
        return f"{self.api_base(config)}/{phone}/messages", token

    async def send(
        self, session: aiohttp.ClientSession, application: Mapping[str, Any], reply: ReplyEvent, policy: SendPolicy
    ) -> None:
        url, token = self._endpoint(self.credentials(application))
        to = recipient(reply.conversation_id)
        for piece in split_text(reply.text, MAX_MESSAGE_CHARS):
            body = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": False, "body": piece},
            }
            await post_json(
                session, url, body, policy=policy, what="whatsapp messages",
                headers={"Authorization": f"Bearer {token}"}, secrets=(token,),
            )

    async def download(
        self,
        session: aiohttp.ClientSession,
        application: Mapping[str, Any],
        attachment: Mapping[str, Any],
        *,
        max_bytes: int,
        policy: SendPolicy,
    ) -> Download:
        media_id = self.file_ref(attachment, "media_id")
        config = self.credentials(application)
        token = self.required(config, "access_token")
        auth = {"Authorization": f"Bearer {token}"}
        info = await get_json(
            session, f"{self.api_base(config)}/{quote(media_id, safe='')}", policy=policy,
            what="whatsapp media lookup", headers=auth, secrets=(token,),
        )
        url = info.get("url")
        if not isinstance(url, str) or not self._media_host_ok(session, config, url):
            raise DownloadError(
                "whatsapp media lookup gave a url outside the platform's hosts: the access token is not sent there"
            )
        return await get_bytes(
            session, url, policy=policy, what="whatsapp media download", max_bytes=max_bytes,
            headers=auth, secrets=(token,),
        )

    def _media_host_ok(self, session: aiohttp.ClientSession, config: Mapping[str, Any], url: str) -> bool:
        """Whether the access token may go to ``url``: the API host, Meta's media host, or a
        host the operator allowed; never another scheme than the API's (the egress guard then
        checks the address like any other)."""
        api, target = URL(self.api_base(config)), URL(url)
        policy = policy_of(session)
        hosts = {api.host, *MEDIA_HOSTS}
        allowed = target.host in hosts or (policy is not None and policy.allows_destination(target.host or ""))
        return allowed and target.scheme in ("https", api.scheme)

    async def typing(
        self,
        session: aiohttp.ClientSession,
        application: Mapping[str, Any],
        message: InboundMessage,
        policy: SendPolicy,
    ) -> None:
        url, token = self._endpoint(self.credentials(application))
        body = {
            "messaging_product": "whatsapp",
            "status": "read",
            "message_id": message.message_id,
            "typing_indicator": {"type": "text"},
        }
        await post_json(
            session, url, body, policy=policy, what="whatsapp typing indicator",
            headers={"Authorization": f"Bearer {token}"}, secrets=(token,),
        )
