"""Telegram Bot API.

Application document::

    "channels": {"telegram": {
        "bot_token": "123456:ABC-DEF…",        # from @BotFather
        "secret_token": "a-long-random-string",  # passed to setWebhook as secret_token
        "api_base": "https://api.telegram.org"   # optional
    }}

Inbound: an ``Update`` whose ``message`` has ``text``, or a photo, document, audio, voice or
video (with its ``caption`` as text, if any); the request must carry ``X-Telegram-Bot-Api-Secret-Token`` equal to
``secret_token``. Other updates (edits, channel posts, callback queries…) are acknowledged and
ignored. The conversation id is ``telegram:<chat id>`` (group chat ids are negative, which the
id pattern does not allow at the start); the platform message id is ``message_id``.

Outbound: ``POST {api_base}/bot{bot_token}/sendMessage`` with ``chat_id`` and ``text`` (split
into pieces of 4096 characters), and ``sendChatAction`` ``typing`` when a message arrives.

Files: ``getFile`` gives a ``file_path``, fetched from ``{api_base}/file/bot{bot_token}/<path>``
(the Bot API serves files up to 20 MB).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlencode

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
    SendPolicy,
    accepted_text,
    get_bytes,
    get_json,
    header,
    post_json,
    same,
    split_text,
)
from parley.records import ReplyEvent
from parley.validation import InputError, parse_json_object

__all__ = ["TelegramChannel", "SECRET_HEADER", "MAX_MESSAGE_CHARS", "chat_id"]

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MESSAGE_CHARS = 4096
PREFIX = "telegram:"

#: message fields holding a file, and the attachment type each becomes (stickers are ignored)
_FILES = {"document": "document", "audio": "audio", "voice": "audio", "video": "video"}


def chat_id(conversation_id: str) -> int | str:
    """The chat a conversation lives in (an int, or a ``@channel`` name)."""
    if not conversation_id.startswith(PREFIX):
        raise DeliveryRefused(f"conversation {conversation_id!r} is not a Telegram chat")
    value = conversation_id[len(PREFIX):]
    try:
        return int(value)
    except ValueError:
        return value


def _malformed(message: str) -> InputError:
    return InputError("invalid_payload", f"not a Telegram update: {message}")


def _attachments(message: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    found: list[dict[str, Any]] = []
    photos = message.get("photo")
    if isinstance(photos, list) and photos and isinstance(photos[-1], dict):
        largest = photos[-1]  # Telegram lists the sizes smallest first
        # the Bot API sends photos re-encoded as JPEG and gives no MIME type for them
        found.append({
            "type": "image", "file_id": largest.get("file_id"), "mime_type": "image/jpeg",
            "size": largest.get("file_size"),
        })
    for name, kind in _FILES.items():
        item = message.get(name)
        if isinstance(item, dict):
            found.append({
                "type": kind,
                "file_id": item.get("file_id"),
                "mime_type": item.get("mime_type"),
                "file_name": item.get("file_name"),
                "size": item.get("file_size"),
            })
    return tuple({k: v for k, v in a.items() if v is not None} for a in found)


class TelegramChannel(Channel):
    name: ClassVar[str] = "telegram"
    default_api_base: ClassVar[str] = "https://api.telegram.org"
    supports_typing: ClassVar[bool] = True

    def verify(
        self, headers: Mapping[str, str], body: bytes, application: Mapping[str, Any], *, now: float | None = None
    ) -> None:
        config = self.credentials(application)
        secret = config.get("secret_token")
        if not isinstance(secret, str) or not secret:
            raise ChannelAuthError(
                "not_configured",
                "channels.telegram.secret_token is not set: set it and pass it to setWebhook",
            )
        given = header(headers, SECRET_HEADER)
        if not given:
            raise ChannelAuthError("missing_secret", f"{SECRET_HEADER} is missing")
        if not same(given, secret):
            raise ChannelAuthError("bad_secret", f"{SECRET_HEADER} does not match the application's secret_token")

    def parse(self, body: bytes, *, max_text_bytes: int) -> Inbound | DirectAnswer:
        update = parse_json_object(body)
        if not isinstance(update.get("update_id"), int):
            raise _malformed("update_id is missing")
        message = update.get("message")
        if message is None:
            kinds = sorted(k for k in update if k != "update_id")
            return Inbound(ignored=(f"update {update['update_id']}: {', '.join(kinds) or 'empty'}",))
        if not isinstance(message, dict):
            raise _malformed("message is not an object")
        chat = message.get("chat")
        message_id = message.get("message_id")
        if not isinstance(chat, dict) or not isinstance(chat.get("id"), int) or isinstance(chat.get("id"), bool):
            raise _malformed("message.chat.id is missing")
        if not isinstance(message_id, int) or isinstance(message_id, bool):
            raise _malformed("message.message_id is missing")
        given = message.get("text")
        if not isinstance(given, str):
            given = message.get("caption")
        attachments = _attachments(message)
        text = accepted_text(given, attachments, max_text_bytes)
        if text is None:
            reason = "no text" if not isinstance(given, str) or not given.strip() else "text too long"
            return Inbound(ignored=(f"message {message_id}: {reason}",))
        sender = message.get("from")
        sender_id = str(sender.get("id", "")) if isinstance(sender, dict) else ""
        return Inbound(messages=(
            InboundMessage(
                message_id=str(message_id),
                conversation_id=f"{PREFIX}{chat['id']}",
                sender=sender_id,
                text=text,
                attachments=attachments,
            ),
        ))

    def _method_url(self, config: Mapping[str, Any], method: str) -> tuple[str, str]:
        token = self.required(config, "bot_token")
        return f"{self.api_base(config)}/bot{token}/{method}", token

    async def send(
        self, session: aiohttp.ClientSession, application: Mapping[str, Any], reply: ReplyEvent, policy: SendPolicy
    ) -> None:
        config = self.credentials(application)
        url, token = self._method_url(config, "sendMessage")
        chat = chat_id(reply.conversation_id)
        for piece in split_text(reply.text, MAX_MESSAGE_CHARS):
            await post_json(
                session, url, {"chat_id": chat, "text": piece},
                policy=policy, what="telegram sendMessage", check=_ok, secrets=(token,),
            )

    async def typing(
        self,
        session: aiohttp.ClientSession,
        application: Mapping[str, Any],
        message: InboundMessage,
        policy: SendPolicy,
    ) -> None:
        config = self.credentials(application)
        url, token = self._method_url(config, "sendChatAction")
        await post_json(
            session, url, {"chat_id": chat_id(message.conversation_id), "action": "typing"},
            policy=policy, what="telegram sendChatAction", check=_ok, secrets=(token,),
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
        file_id = self.file_ref(attachment, "file_id")
        config = self.credentials(application)
        url, token = self._method_url(config, "getFile")
        info = await get_json(
            session, f"{url}?{urlencode({'file_id': file_id})}", policy=policy, what="telegram getFile",
            secrets=(token,),
        )
        result = info.get("result")
        path = result.get("file_path") if isinstance(result, dict) else None
        if info.get("ok") is not True or not isinstance(path, str) or not path:
            raise DownloadError(f"telegram getFile gave no file: {str(info.get('description', ''))[:200]}")
        return await get_bytes(
            session, f"{self.api_base(config)}/file/bot{token}/{path}", policy=policy,
            what="telegram file download", max_bytes=max_bytes, secrets=(token,),
        )


def _ok(data: Any) -> None:
    if isinstance(data, dict) and data.get("ok") is False:
        raise DeliveryRefused(f"telegram refused the call: {data.get('description', data)}")
