"""Slack Events API: v0 request signing with the five-minute window, url_verification, message
events shaped like Slack's documented examples (the bot's own messages ignored), and
chat.postMessage against a local fake of slack.com/api."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest

from parley.channels.base import (
    ChannelAuthError,
    DeliveryError,
    DeliveryRefused,
    DirectAnswer,
    Inbound,
    InboundMessage,
)
from parley.channels.slack import SlackChannel
from parley.records import ReplyEvent
from parley.validation import InputError
from tests.channels.conftest import FAST, FakeAPI

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
CHANNEL = SlackChannel()
APPLICATION: dict[str, Any] = {
    "_id": "shop", "channels": {"slack": {"signing_secret": SIGNING_SECRET, "bot_token": BOT_TOKEN}},
}

# https://api.slack.com/events/url_verification
URL_VERIFICATION = {
    "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
    "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    "type": "url_verification",
}

# https://api.slack.com/events/message : a message in a channel, in its event_callback wrapper
MESSAGE_EVENT: dict[str, Any] = {
    "token": "XXYYZZ",
    "team_id": "T123ABC456",
    "api_app_id": "A123ABC456",
    "event": {
        "type": "message",
        "channel": "C123ABC456",
        "user": "U123ABC456",
        "text": "Hello world",
        "ts": "1355517523.000005",
        "event_ts": "1355517523.000005",
        "channel_type": "channel",
    },
    "type": "event_callback",
    "authorizations": [{
        "enterprise_id": None, "team_id": "T123ABC456", "user_id": "U123ABC456",
        "is_bot": False, "is_enterprise_install": False,
    }],
    "event_id": "Ev123ABC456",
    "event_time": 1355517523,
}

THREAD_REPLY = {**MESSAGE_EVENT, "event": {
    **MESSAGE_EVENT["event"], "ts": "1355517600.000100", "thread_ts": "1355517523.000005", "text": "and in the thread?",
}}

# what the bot's own chat.postMessage comes back as
BOT_MESSAGE = {**MESSAGE_EVENT, "event": {
    "type": "message", "subtype": "bot_message", "channel": "C123ABC456", "text": "You said: Hello world",
    "ts": "1355517524.000006", "bot_id": "B123ABC456", "username": "Parley",
}}
BOT_USER_MESSAGE = {**MESSAGE_EVENT, "event": {
    "type": "message", "channel": "C123ABC456", "user": "U0BOTUSER", "text": "You said: Hello world",
    "ts": "1355517524.000007", "bot_id": "B123ABC456", "app_id": "A123ABC456",
}}
EDITED = {**MESSAGE_EVENT, "event": {
    "type": "message", "subtype": "message_changed", "channel": "C123ABC456", "hidden": True,
    "ts": "1355517530.000008", "message": {"type": "message", "user": "U123ABC456", "text": "Hello world!"},
}}
MENTION = {**MESSAGE_EVENT, "event": {
    "type": "app_mention", "user": "U123ABC456", "text": "<@U0LAN0Z89> is it everything?",
    "ts": "1515449522.000016", "channel": "C123ABC456", "event_ts": "1515449522000016",
}}


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def signed(data: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + data, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(stamp), "X-Slack-Signature": f"v0={digest}"}


def with_api(base: str) -> dict[str, Any]:
    return {"_id": "shop", "channels": {"slack": {**APPLICATION["channels"]["slack"], "api_base": base}}}


def reply(conversation_id: str, text: str = "Hello back") -> ReplyEvent:
    return ReplyEvent(
        event_id="r-1", conversation_id=conversation_id, application_id="shop",
        created_at=time.time(), text=text, channel="slack", in_reply_to="e-1",
    )


# --- verify -----------------------------------------------------------------------------------
def test_slacks_documented_signature_example_verifies() -> None:
    # https://api.slack.com/authentication/verifying-requests-from-slack
    data = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    CHANNEL.verify(headers, data, APPLICATION, now=1531420618 + 10)


def test_a_valid_signature_is_accepted() -> None:
    data = raw(MESSAGE_EVENT)
    CHANNEL.verify(signed(data), data, APPLICATION)


@pytest.mark.parametrize(
    ("make_headers", "code"),
    [
        (lambda data: signed(data, secret="another-workspace-secret"), "bad_signature"),
        (lambda data: signed(data + b"tampered"), "bad_signature"),
        (lambda data: {**signed(data), "X-Slack-Signature": "v0=" + "0" * 64}, "bad_signature"),
        (lambda data: {"X-Slack-Request-Timestamp": signed(data)["X-Slack-Request-Timestamp"]}, "missing_signature"),
        (lambda data: signed(data, timestamp=int(time.time()) - 301), "stale_timestamp"),
        (lambda data: signed(data, timestamp=int(time.time()) + 301), "stale_timestamp"),
        (lambda data: {"X-Slack-Signature": signed(data)["X-Slack-Signature"]}, "missing_timestamp"),
        (lambda data: {**signed(data), "X-Slack-Request-Timestamp": "yesterday"}, "invalid_timestamp"),
    ],
)
def test_forged_stale_or_missing_signatures_are_refused(make_headers: Any, code: str) -> None:
    data = raw(MESSAGE_EVENT)
    with pytest.raises(ChannelAuthError) as caught:
        CHANNEL.verify(make_headers(data), data, APPLICATION)
    assert caught.value.code == code


def test_a_signed_request_replayed_six_minutes_later_is_refused() -> None:
    data = raw(MESSAGE_EVENT)
    headers = signed(data, timestamp=1_700_000_000)
    CHANNEL.verify(headers, data, APPLICATION, now=1_700_000_000 + 60)
    with pytest.raises(ChannelAuthError, match="more than 300s"):
        CHANNEL.verify(headers, data, APPLICATION, now=1_700_000_000 + 360)


# --- parse ------------------------------------------------------------------------------------
def test_url_verification_is_answered_with_the_challenge() -> None:
    assert CHANNEL.parse(raw(URL_VERIFICATION), max_text_bytes=1000) == DirectAnswer(
        200, json={"challenge": URL_VERIFICATION["challenge"]}
    )


def test_a_channel_message_becomes_one_inbound_message() -> None:
    assert CHANNEL.parse(raw(MESSAGE_EVENT), max_text_bytes=1000) == Inbound(messages=(
        InboundMessage("1355517523.000005", "slack:C123ABC456", "U123ABC456", "Hello world"),
    ))


def test_a_thread_reply_is_its_own_conversation() -> None:
    parsed = CHANNEL.parse(raw(THREAD_REPLY), max_text_bytes=1000)
    assert isinstance(parsed, Inbound)
    [message] = parsed.messages
    assert message.conversation_id == "slack:C123ABC456:1355517523.000005"
    assert message.message_id == "1355517600.000100"


@pytest.mark.parametrize("payload", [BOT_MESSAGE, BOT_USER_MESSAGE, EDITED, MENTION, {"type": "app_rate_limited"}])
def test_the_bots_own_messages_edits_and_other_events_are_ignored(payload: dict[str, Any]) -> None:
    parsed = CHANNEL.parse(raw(payload), max_text_bytes=1000)
    assert isinstance(parsed, Inbound) and parsed.messages == () and parsed.ignored


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "url_verification"},
        {"type": "event_callback"},
        {"type": "event_callback", "event": {"type": "message", "channel": "C1", "text": "x"}},
        {"type": "event_callback", "event": {"type": "message", "ts": "1.2", "text": "x"}},
        {"type": "event_callback", "event": {"type": "message", "channel": "C 1!", "ts": "1.2", "text": "x"}},
        {"type": "event_callback", "event": {"type": "message", "channel": "C1", "ts": "1.2", "thread_ts": 5, "text": "x"}},
    ],
)
def test_a_malformed_event_is_an_input_error(payload: dict[str, Any]) -> None:
    with pytest.raises(InputError) as caught:
        CHANNEL.parse(raw(payload), max_text_bytes=1000)
    assert caught.value.status == 400


# --- send -------------------------------------------------------------------------------------
async def test_post_message_to_the_channel(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (200, {"ok": True, "channel": "C123ABC456", "ts": "1503435956.000247"}, {})
    await CHANNEL.send(session, with_api(api.base), reply("slack:C123ABC456"), FAST)
    [request] = api.requests
    assert (request["method"], request["path"]) == ("POST", "/chat.postMessage")
    assert request["headers"]["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert request["json"] == {"channel": "C123ABC456", "text": "Hello back"}


async def test_post_message_in_the_thread(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    await CHANNEL.send(session, with_api(api.base), reply("slack:C123ABC456:1355517523.000005"), FAST)
    assert api.requests[0]["json"] == {
        "channel": "C123ABC456", "text": "Hello back", "thread_ts": "1355517523.000005",
    }


async def test_an_ok_false_answer_is_refused_without_retry(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (200, {"ok": False, "error": "channel_not_found"}, {})
    with pytest.raises(DeliveryRefused, match="channel_not_found"):
        await CHANNEL.send(session, with_api(api.base), reply("slack:C123ABC456"), FAST)
    assert len(api.requests) == 1


async def test_a_400_is_not_retried(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (400, {"ok": False, "error": "invalid_arguments"}, {})
    with pytest.raises(DeliveryRefused):
        await CHANNEL.send(session, with_api(api.base), reply("slack:C123ABC456"), FAST)
    assert len(api.requests) == 1


async def test_429_5xx_and_transient_errors_are_retried(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.script = [
        (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"}),
        (503, {}, {}),
    ]
    await CHANNEL.send(session, with_api(api.base), reply("slack:C123ABC456"), FAST)
    assert len(api.requests) == 3

    api.requests.clear()
    api.default = (200, {"ok": False, "error": "internal_error"}, {})
    with pytest.raises(DeliveryError, match="internal_error"):
        await CHANNEL.send(session, with_api(api.base), reply("slack:C123ABC456"), FAST)
    assert len(api.requests) == FAST.max_attempts
