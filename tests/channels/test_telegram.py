"""Telegram Bot API: the secret-token header, Updates as the Bot API documents them, and
sendMessage / sendChatAction against a local fake of api.telegram.org."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from parley.channels.base import (
    ChannelAuthError,
    ChannelNotConfigured,
    DeliveryError,
    DeliveryRefused,
    Inbound,
    InboundMessage,
)
from parley.channels.telegram import TelegramChannel
from parley.records import ReplyEvent
from parley.validation import InputError
from tests.channels.conftest import FAST, FakeAPI

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
SECRET = "s3cret_Token-value"
CHANNEL = TelegramChannel()

# https://core.telegram.org/bots/webhooks#testing-your-bot-with-updates : a text message
TEXT_UPDATE: dict[str, Any] = {
    "update_id": 10000,
    "message": {
        "date": 1441645532,
        "chat": {
            "last_name": "Test Lastname", "id": 1111111, "type": "private",
            "first_name": "Test Firstname", "username": "Testusername",
        },
        "message_id": 1365,
        "from": {
            "last_name": "Test Lastname", "id": 1111111, "is_bot": False,
            "first_name": "Test Firstname", "username": "Testusername", "language_code": "en",
        },
        "text": "/start",
    },
}

# a photo with a caption, in a supergroup (negative chat id)
PHOTO_UPDATE: dict[str, Any] = {
    "update_id": 10001,
    "message": {
        "message_id": 52,
        "from": {"id": 2222222, "is_bot": False, "first_name": "Ann"},
        "chat": {"id": -1001234567890, "title": "Team", "type": "supergroup"},
        "date": 1441645600,
        "photo": [
            {"file_id": "AgACAgQAAxkBAAMGsmall", "file_unique_id": "AQADs", "file_size": 1203, "width": 90, "height": 67},
            {"file_id": "AgACAgQAAxkBAAMGlarge", "file_unique_id": "AQADl", "file_size": 48211, "width": 800, "height": 600},
        ],
        "caption": "what is in this picture?",
    },
}

# an edit of an earlier message: acknowledged, not answered again
EDITED_UPDATE: dict[str, Any] = {
    "update_id": 10002,
    "edited_message": {
        "message_id": 1365, "date": 1441645532, "edit_date": 1441645540,
        "chat": {"id": 1111111, "type": "private"}, "from": {"id": 1111111, "is_bot": False, "first_name": "T"},
        "text": "/start again",
    },
}

APPLICATION: dict[str, Any] = {
    "_id": "shop",
    "channels": {"telegram": {"bot_token": TOKEN, "secret_token": SECRET}},
}


def body(update: dict[str, Any]) -> bytes:
    return json.dumps(update).encode()


def reply(conversation_id: str, text: str = "Hello back") -> ReplyEvent:
    return ReplyEvent(
        event_id="r-1", conversation_id=conversation_id, application_id="shop",
        created_at=time.time(), text=text, channel="telegram", in_reply_to="e-1",
    )


def with_api(base: str) -> dict[str, Any]:
    return {"_id": "shop", "channels": {"telegram": {**APPLICATION["channels"]["telegram"], "api_base": base}}}


# --- verify -----------------------------------------------------------------------------------
def test_the_right_secret_token_is_accepted() -> None:
    CHANNEL.verify({"X-Telegram-Bot-Api-Secret-Token": SECRET}, body(TEXT_UPDATE), APPLICATION)
    CHANNEL.verify({"x-telegram-bot-api-secret-token": SECRET}, body(TEXT_UPDATE), APPLICATION)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_secret"),
        ({"X-Telegram-Bot-Api-Secret-Token": "forged"}, "bad_secret"),
        ({"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"}, "bad_secret"),
    ],
)
def test_a_wrong_or_missing_secret_token_is_refused(headers: dict[str, str], code: str) -> None:
    with pytest.raises(ChannelAuthError) as caught:
        CHANNEL.verify(headers, body(TEXT_UPDATE), APPLICATION)
    assert caught.value.code == code


def test_an_application_without_a_secret_token_accepts_nothing() -> None:
    application = {"_id": "shop", "channels": {"telegram": {"bot_token": TOKEN}}}
    with pytest.raises(ChannelAuthError) as caught:
        CHANNEL.verify({"X-Telegram-Bot-Api-Secret-Token": ""}, body(TEXT_UPDATE), application)
    assert caught.value.code == "not_configured"


def test_an_application_without_telegram_is_not_configured() -> None:
    with pytest.raises(ChannelNotConfigured):
        CHANNEL.verify({"X-Telegram-Bot-Api-Secret-Token": SECRET}, body(TEXT_UPDATE), {"_id": "shop"})


# --- parse ------------------------------------------------------------------------------------
def test_a_text_message_becomes_one_inbound_message() -> None:
    parsed = CHANNEL.parse(body(TEXT_UPDATE), max_text_bytes=1000)
    assert parsed == Inbound(messages=(
        InboundMessage(message_id="1365", conversation_id="telegram:1111111", sender="1111111", text="/start"),
    ))


def test_a_captioned_photo_in_a_group_keeps_the_caption_and_the_file() -> None:
    parsed = CHANNEL.parse(body(PHOTO_UPDATE), max_text_bytes=1000)
    assert isinstance(parsed, Inbound)
    [message] = parsed.messages
    assert (message.conversation_id, message.message_id, message.text) == (
        "telegram:-1001234567890", "52", "what is in this picture?"
    )
    assert message.attachments == (
        {"type": "image", "file_id": "AgACAgQAAxkBAAMGlarge", "mime_type": "image/jpeg", "size": 48211},
    )


@pytest.mark.parametrize(
    "update",
    [
        EDITED_UPDATE,
        {"update_id": 3, "callback_query": {"id": "4382bfdwdsb323b2d9", "data": "x"}},
        {"update_id": 4, "message": {**TEXT_UPDATE["message"], "text": None,
                                     "sticker": {"file_id": "CAAC", "width": 512, "height": 512}}},
        {"update_id": 5, "message": {**TEXT_UPDATE["message"], "text": "x" * 101}},
    ],
)
def test_updates_without_an_answerable_text_are_ignored(update: dict[str, Any]) -> None:
    parsed = CHANNEL.parse(body(update), max_text_bytes=100)
    assert isinstance(parsed, Inbound)
    assert parsed.messages == () and parsed.ignored


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        json.dumps({"message": TEXT_UPDATE["message"]}).encode(),
        json.dumps({"update_id": 1, "message": "hi"}).encode(),
        json.dumps({"update_id": 1, "message": {"message_id": 1, "text": "hi"}}).encode(),
        json.dumps({"update_id": 1, "message": {"chat": {"id": 1}, "text": "hi"}}).encode(),
    ],
)
def test_a_malformed_update_is_an_input_error(raw: bytes) -> None:
    with pytest.raises(InputError) as caught:
        CHANNEL.parse(raw, max_text_bytes=100)
    assert caught.value.status == 400


# --- send -------------------------------------------------------------------------------------
async def test_send_message_posts_chat_id_and_text(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (200, {"ok": True, "result": {"message_id": 1366}}, {})
    await CHANNEL.send(session, with_api(api.base), reply("telegram:-1001234567890"), FAST)
    [request] = api.requests
    assert (request["method"], request["path"]) == ("POST", f"/bot{TOKEN}/sendMessage")
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert request["json"] == {"chat_id": -1001234567890, "text": "Hello back"}


async def test_a_long_reply_is_sent_in_pieces(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    text = "\n".join(f"line {i} {'y' * 60}" for i in range(200))
    await CHANNEL.send(session, with_api(api.base), reply("telegram:1111111", text), FAST)
    pieces = [r["json"]["text"] for r in api.requests]
    assert len(pieces) > 1 and all(len(p) <= 4096 for p in pieces)
    assert "\n".join(pieces) == text


async def test_send_retries_5xx_and_429(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.script = [
        (502, {"ok": False}, {}),
        (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 0",
               "parameters": {"retry_after": 0}}, {}),
    ]
    await CHANNEL.send(session, with_api(api.base), reply("telegram:1111111"), FAST)
    assert len(api.requests) == 3


async def test_send_does_not_retry_a_400(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, {})
    with pytest.raises(DeliveryRefused) as caught:
        await CHANNEL.send(session, with_api(api.base), reply("telegram:1111111"), FAST)
    assert len(api.requests) == 1
    assert TOKEN not in str(caught.value)


async def test_send_gives_up_after_the_attempts(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (500, {"ok": False}, {})
    with pytest.raises(DeliveryError):
        await CHANNEL.send(session, with_api(api.base), reply("telegram:1111111"), FAST)
    assert len(api.requests) == FAST.max_attempts


async def test_a_conversation_of_another_channel_is_refused(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    with pytest.raises(DeliveryRefused):
        await CHANNEL.send(session, with_api(api.base), reply("whatsapp:16505551234"), FAST)
    assert api.requests == []


async def test_typing_sends_a_chat_action(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    message = InboundMessage("1365", "telegram:1111111", "1111111", "hi")
    await CHANNEL.typing(session, with_api(api.base), message, FAST)
    [request] = api.requests
    assert request["path"] == f"/bot{TOKEN}/sendChatAction"
    assert request["json"] == {"chat_id": 1111111, "action": "typing"}


def test_the_default_api_base_is_telegrams() -> None:
    assert CHANNEL.api_base(APPLICATION["channels"]["telegram"]) == "https://api.telegram.org"
