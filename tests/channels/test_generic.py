"""Generic webhook: optional HMAC signing of inbound requests (t=<ts>,v1=<hex>) and of the
replies POSTed to the application's callback URL."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp
import pytest

from parley.channels.base import ChannelAuthError, ChannelNotConfigured, DeliveryRefused, Inbound, InboundMessage
from parley.channels.generic import GenericChannel, sign
from parley.records import ReplyEvent
from parley.validation import InputError
from tests.channels.conftest import FAST, FakeAPI

SECRET = "whsec-0123456789"
CHANNEL = GenericChannel()
BODY = json.dumps({"conversation_id": "order-1234", "id": "msg-77", "text": "Where is my parcel?", "sender": "alice"}).encode()


def signature(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


@pytest.mark.parametrize(
    "application",
    [
        {"_id": "shop", "secret": SECRET},
        {"_id": "shop", "channels": {"generic": {"secret": SECRET}}},
        {"_id": "shop", "secret": "the-websocket-one", "channels": {"generic": {"secret": SECRET}}},
    ],
)
def test_a_valid_signature_is_accepted(application: dict[str, Any]) -> None:
    CHANNEL.verify({"X-Parley-Signature": signature(BODY)}, BODY, application)


def test_our_own_sign_matches_the_documented_scheme() -> None:
    assert sign(SECRET, BODY, 1_700_000_000) == signature(BODY, timestamp=1_700_000_000)


def test_a_rotated_secret_can_send_two_signatures() -> None:
    stamp = int(time.time())
    old = signature(BODY, "old-secret-value", stamp).split(",")[1]
    CHANNEL.verify({"X-Parley-Signature": f"{signature(BODY, timestamp=stamp)},{old}"}, BODY, {"secret": SECRET})


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_signature"),
        ({"X-Parley-Signature": signature(BODY, secret="wrong-secret")}, "bad_signature"),
        ({"X-Parley-Signature": signature(BODY + b" ")}, "bad_signature"),
        ({"X-Parley-Signature": signature(BODY, timestamp=int(time.time()) - 600)}, "stale_timestamp"),
        ({"X-Parley-Signature": "v1=" + "0" * 64}, "missing_timestamp"),
        ({"X-Parley-Signature": "garbage"}, "missing_timestamp"),
    ],
)
def test_forged_stale_or_missing_signatures_are_refused(headers: dict[str, str], code: str) -> None:
    with pytest.raises(ChannelAuthError) as caught:
        CHANNEL.verify(headers, BODY, {"_id": "shop", "secret": SECRET})
    assert caught.value.code == code


def test_an_application_without_a_secret_takes_unsigned_webhooks() -> None:
    CHANNEL.verify({}, BODY, {"_id": "shop"})
    CHANNEL.verify({"X-Parley-Signature": "anything"}, BODY, {"_id": "shop", "channels": {"generic": {}}})


def test_parse_reads_the_documented_body() -> None:
    assert CHANNEL.parse(BODY, max_text_bytes=100) == Inbound(messages=(
        InboundMessage("msg-77", "order-1234", "alice", "Where is my parcel?"),
    ))


def test_parse_refuses_what_the_webhook_always_refused() -> None:
    with pytest.raises(InputError, match="'id'"):
        CHANNEL.parse(b'{"conversation_id": "c1", "text": "hi"}', max_text_bytes=100)
    with pytest.raises(InputError) as caught:
        CHANNEL.parse(BODY, max_text_bytes=5)
    assert caught.value.status == 413


def reply() -> ReplyEvent:
    return ReplyEvent(
        event_id="r-1", conversation_id="order-1234", application_id="shop", created_at=1795596204.4,
        text="It ships today.", channel="generic", in_reply_to="e-1",
    )


async def test_replies_to_a_signing_application_are_signed(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    application = {"_id": "shop", "callback_url": f"{api.base}/hook", "secret": SECRET}
    await CHANNEL.send(session, application, reply(), FAST)
    [request] = api.requests
    assert (request["method"], request["path"]) == ("POST", "/hook")
    assert request["json"]["text"] == "It ships today."
    assert request["json"]["in_reply_to"] == "e-1"
    header = request["headers"]["X-Parley-Signature"]
    stamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(stamp - time.time()) < 60
    assert header == signature(request["raw"], timestamp=stamp)
    # and the receiver can check it with the same verification Parley uses
    CHANNEL.verify({"X-Parley-Signature": header}, request["raw"], application)


async def test_replies_to_an_application_without_a_secret_are_unsigned(
    api: FakeAPI, session: aiohttp.ClientSession
) -> None:
    await CHANNEL.send(session, {"_id": "shop", "callback_url": f"{api.base}/hook"}, reply(), FAST)
    [request] = api.requests
    assert "X-Parley-Signature" not in request["headers"]


async def test_every_retry_is_signed_afresh_and_a_400_is_final(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    application = {"_id": "shop", "callback_url": f"{api.base}/hook", "secret": SECRET}
    api.script = [(500, {}, {}), (400, {"error": "no such order"}, {})]
    with pytest.raises(DeliveryRefused):
        await CHANNEL.send(session, application, reply(), FAST)
    assert len(api.requests) == 2
    for request in api.requests:
        CHANNEL.verify({"X-Parley-Signature": request["headers"]["X-Parley-Signature"]}, request["raw"], application)


async def test_no_callback_url_means_archived_only(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    # delivery asks first and sends nothing (tests/channels/test_delivery.py); a send regardless is refused
    assert CHANNEL.unsent_reason({"_id": "shop"}) == "the application has no callback_url"
    assert CHANNEL.unsent_reason({"_id": "shop", "callback_url": f"{api.base}/hook"}) is None
    with pytest.raises(ChannelNotConfigured, match="callback_url"):
        await CHANNEL.send(session, {"_id": "shop"}, reply(), FAST)
    assert api.requests == []
