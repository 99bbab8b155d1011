"""WhatsApp Cloud API: the subscription challenge, X-Hub-Signature-256, message and status
webhooks shaped like Meta's documented examples, and the messages endpoint against a local fake
of graph.facebook.com."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest

from parley.channels.base import ChannelAuthError, DeliveryRefused, Inbound, InboundMessage, Receipt
from parley.channels.whatsapp import WhatsAppChannel
from parley.records import ReplyEvent
from parley.validation import InputError
from tests.channels.conftest import FAST, FakeAPI

APP_SECRET = "0123456789abcdef0123456789abcdef"
ACCESS_TOKEN = "EAAGm0PX4ZCpsBAPZCZA"
PHONE_NUMBER_ID = "106540352242922"
CHANNEL = WhatsAppChannel()
APPLICATION: dict[str, Any] = {
    "_id": "shop",
    "channels": {"whatsapp": {
        "app_secret": APP_SECRET, "verify_token": "meatyhamhock",
        "access_token": ACCESS_TOKEN, "phone_number_id": PHONE_NUMBER_ID,
    }},
}

# https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples : text message
TEXT_MESSAGE: dict[str, Any] = {
    "object": "whatsapp_business_account",
    "entry": [{
        "id": "102290129340398",
        "changes": [{
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
                "messages": [{
                    "from": "16505551234",
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                    "timestamp": "1749416383",
                    "type": "text",
                    "text": {"body": "Does it come in another color?"},
                }],
            },
            "field": "messages",
        }],
    }],
}

# image message with a caption
IMAGE_MESSAGE: dict[str, Any] = copy.deepcopy(TEXT_MESSAGE)
IMAGE_MESSAGE["entry"][0]["changes"][0]["value"]["messages"] = [{
    "from": "16505551234",
    "id": "wamid.HBgLMTY1MDUwNzY1MjAVAgASGBQzQUQ1RDRGMTY2RDU5NjU5NjBCRgA=",
    "timestamp": "1750090702",
    "type": "image",
    "image": {
        "caption": "Is this the right one?",
        "mime_type": "image/jpeg",
        "sha256": "1ZGs4WVa3v0aAhI2Mw2C1kGFmPbjYiFmlhxI7vlOZg4=",
        "id": "2754859441498128",
    },
}]

# status webhook: a message we sent was delivered
STATUS_DELIVERED: dict[str, Any] = {
    "object": "whatsapp_business_account",
    "entry": [{
        "id": "102290129340398",
        "changes": [{
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                "statuses": [{
                    "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA",
                    "status": "delivered",
                    "timestamp": "1750263773",
                    "recipient_id": "16505551234",
                    "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility"},
                }],
            },
            "field": "messages",
        }],
    }],
}


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def signature(data: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def with_api(base: str) -> dict[str, Any]:
    return {"_id": "shop", "channels": {"whatsapp": {**APPLICATION["channels"]["whatsapp"], "api_base": base}}}


def reply(conversation_id: str, text: str = "Yes, in blue and red.") -> ReplyEvent:
    return ReplyEvent(
        event_id="r-1", conversation_id=conversation_id, application_id="shop",
        created_at=time.time(), text=text, channel="whatsapp", in_reply_to="e-1",
    )


# --- subscription -----------------------------------------------------------------------------
def test_the_subscription_challenge_is_echoed_for_the_right_token() -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "meatyhamhock", "hub.challenge": "1158201444"}
    assert CHANNEL.verify_subscription(query, APPLICATION) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "meatyhamhock", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
    ],
)
def test_a_bad_subscription_is_refused(query: dict[str, str]) -> None:
    with pytest.raises(ChannelAuthError):
        CHANNEL.verify_subscription(query, APPLICATION)


# --- verify -----------------------------------------------------------------------------------
def test_a_valid_signature_is_accepted() -> None:
    data = raw(TEXT_MESSAGE)
    CHANNEL.verify({"X-Hub-Signature-256": signature(data)}, data, APPLICATION)


@pytest.mark.parametrize(
    ("make_headers", "code"),
    [
        (lambda data: {}, "missing_signature"),
        (lambda data: {"X-Hub-Signature-256": signature(data, "another-apps-secret")}, "bad_signature"),
        (lambda data: {"X-Hub-Signature-256": signature(data + b" ")}, "bad_signature"),
        (lambda data: {"X-Hub-Signature-256": signature(data).removeprefix("sha256=")}, "bad_signature"),
        (lambda data: {"X-Hub-Signature-256": "sha256=" + "0" * 64}, "bad_signature"),
    ],
)
def test_forged_or_missing_signatures_are_refused(make_headers: Any, code: str) -> None:
    data = raw(TEXT_MESSAGE)
    with pytest.raises(ChannelAuthError) as caught:
        CHANNEL.verify(make_headers(data), data, APPLICATION)
    assert caught.value.code == code


# --- parse ------------------------------------------------------------------------------------
def test_a_text_message_becomes_one_inbound_message() -> None:
    parsed = CHANNEL.parse(raw(TEXT_MESSAGE), max_text_bytes=1000)
    assert parsed == Inbound(messages=(
        InboundMessage(
            message_id="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            conversation_id="whatsapp:16505551234",
            sender="16505551234",
            text="Does it come in another color?",
        ),
    ))


def test_an_image_with_a_caption_keeps_the_caption_and_the_media() -> None:
    parsed = CHANNEL.parse(raw(IMAGE_MESSAGE), max_text_bytes=1000)
    assert isinstance(parsed, Inbound)
    [message] = parsed.messages
    assert message.text == "Is this the right one?"
    assert message.attachments == ({
        "type": "image", "media_id": "2754859441498128", "mime_type": "image/jpeg",
        "sha256": "1ZGs4WVa3v0aAhI2Mw2C1kGFmPbjYiFmlhxI7vlOZg4=",
    },)


def test_statuses_become_receipts() -> None:
    parsed = CHANNEL.parse(raw(STATUS_DELIVERED), max_text_bytes=1000)
    assert parsed == Inbound(receipts=(
        Receipt("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA", "16505551234", "delivered", 1750263773.0),
    ))


def test_messages_without_text_are_ignored() -> None:
    payload = copy.deepcopy(TEXT_MESSAGE)
    payload["entry"][0]["changes"][0]["value"]["messages"][0] = {
        "from": "16505551234", "id": "wamid.X", "timestamp": "1", "type": "reaction",
        "reaction": {"message_id": "wamid.Y", "emoji": "👍"},
    }
    parsed = CHANNEL.parse(raw(payload), max_text_bytes=1000)
    assert isinstance(parsed, Inbound) and parsed.messages == () and parsed.ignored


def test_several_entries_and_messages_are_all_read() -> None:
    payload = copy.deepcopy(TEXT_MESSAGE)
    second = copy.deepcopy(payload["entry"][0])
    second["changes"][0]["value"]["messages"][0].update({"id": "wamid.2", "from": "4915112345678"})
    payload["entry"].append(second)
    parsed = CHANNEL.parse(raw(payload), max_text_bytes=1000)
    assert isinstance(parsed, Inbound)
    assert [m.conversation_id for m in parsed.messages] == ["whatsapp:16505551234", "whatsapp:4915112345678"]


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "whatsapp_business_account", "entry": "nope"},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages"}]}]},
        {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {"messages": [{"type": "text"}]}}]}]},
        {"object": "whatsapp_business_account",
         "entry": [{"changes": [{"value": {"messages": [{"id": "wamid.1", "from": "not a number"}]}}]}]},
    ],
)
def test_a_malformed_payload_is_an_input_error(payload: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        CHANNEL.parse(raw(payload), max_text_bytes=1000)
    assert caught.value.status == 400


# --- send -------------------------------------------------------------------------------------
async def test_send_posts_a_text_message_with_the_bearer_token(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (200, {
        "messaging_product": "whatsapp",
        "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBI1RjQyNUE3NEYxMzAzMzQ5MkEA"}],
    }, {})
    await CHANNEL.send(session, with_api(api.base), reply("whatsapp:16505551234"), FAST)
    [request] = api.requests
    assert (request["method"], request["path"]) == ("POST", f"/{PHONE_NUMBER_ID}/messages")
    assert request["headers"]["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request["json"] == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
        "type": "text", "text": {"preview_url": False, "body": "Yes, in blue and red."},
    }


async def test_send_retries_5xx_and_429(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.script = [(500, {"error": {"code": 1}}, {}), (429, {"error": {"code": 130429}}, {"Retry-After": "0"})]
    await CHANNEL.send(session, with_api(api.base), reply("whatsapp:16505551234"), FAST)
    assert len(api.requests) == 3


async def test_send_does_not_retry_a_400(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (400, {"error": {"message": "(#131030) Recipient phone number not in allowed list",
                                   "type": "OAuthException", "code": 131030}}, {})
    with pytest.raises(DeliveryRefused, match="131030"):
        await CHANNEL.send(session, with_api(api.base), reply("whatsapp:16505551234"), FAST)
    assert len(api.requests) == 1


async def test_typing_marks_the_message_read_with_an_indicator(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    message = InboundMessage("wamid.ABC", "whatsapp:16505551234", "16505551234", "hi")
    await CHANNEL.typing(session, with_api(api.base), message, FAST)
    [request] = api.requests
    assert request["path"] == f"/{PHONE_NUMBER_ID}/messages"
    assert request["json"] == {
        "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.ABC",
        "typing_indicator": {"type": "text"},
    }
