"""Messaging platforms end to end: a signed webhook reaches a real worker (embedded broker and
document server, fake LLM), and the reply reaches a local fake of the platform's send API.
Forged requests get 401 and nothing reaches the platform; a redelivered message is answered once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.support.fake_platforms import FakePlatforms, Request

TELEGRAM_TOKEN = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
WHATSAPP_TOKEN = "EAAGm0PX4ZCpsBAPZCZA-e2e"
PHONE_NUMBER_ID = "106540352242922"
SLACK_TOKEN = "xoxb-17653672481-19874698323-e2e"


@pytest.fixture(scope="module")
def platforms() -> Iterator[FakePlatforms]:
    server = FakePlatforms()
    server.start()
    yield server
    server.stop()


def new_application(mongo_db: Any, platforms: FakePlatforms, **fields: Any) -> dict[str, Any]:
    secret = uuid.uuid4().hex
    doc = {
        "_id": f"ch-{uuid.uuid4().hex[:10]}",
        "chatbot_id": "demo",
        "channels": {
            "telegram": {
                "bot_token": TELEGRAM_TOKEN, "secret_token": f"tg-{secret}", "api_base": platforms.base("telegram"),
            },
            "whatsapp": {
                "app_secret": f"wa-{secret}", "verify_token": f"verify-{secret}", "access_token": WHATSAPP_TOKEN,
                "phone_number_id": PHONE_NUMBER_ID, "api_base": platforms.base("whatsapp"),
            },
            "slack": {"signing_secret": f"sl-{secret}", "bot_token": SLACK_TOKEN, "api_base": platforms.base("slack")},
        },
        **fields,
    }
    mongo_db.applications.insert_one(doc)
    return doc


def hmac_hex(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


async def post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=data, headers={"Content-Type": "application/json", **headers}) as response:
            text = await response.text()
            return response.status, json.loads(text) if response.content_type == "application/json" else text


async def wait_for(platforms: FakePlatforms, predicate: Any, timeout_s: float = 20.0) -> list[Request]:
    return await asyncio.to_thread(platforms.wait_for, predicate, timeout_s)


# --- Telegram -----------------------------------------------------------------------------------
def telegram_update(chat_id: int, message_id: int, text: str) -> bytes:
    return json.dumps({
        "update_id": random.randint(1, 10**9),
        "message": {
            "message_id": message_id,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
            "chat": {"id": chat_id, "first_name": "Ann", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }).encode()


def send_message_to(chat_id: int) -> Any:
    return lambda r: r["path"].endswith("/sendMessage") and (r["body"] or {}).get("chat_id") == chat_id


async def test_a_telegram_message_is_answered_through_send_message(worker: Any, mongo_db: Any, platforms: FakePlatforms) -> None:
    app = new_application(mongo_db, platforms)
    chat_id = random.randint(10**8, 10**9)
    status, body = await post(
        f"{worker.http}/v1/webhooks/telegram/{app['_id']}", telegram_update(chat_id, 11, "hello telegram"),
        {"X-Telegram-Bot-Api-Secret-Token": app["channels"]["telegram"]["secret_token"]},
    )
    assert status == 200 and len(body["event_ids"]) == 1
    [sent] = await wait_for(platforms, send_message_to(chat_id))
    assert sent["method"] == "POST" and sent["path"] == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert sent["body"] == {"chat_id": chat_id, "text": "You said: hello telegram"}
    typing = platforms.matching(lambda r: r["path"].endswith("/sendChatAction") and r["body"]["chat_id"] == chat_id)
    assert [t["body"]["action"] for t in typing] == ["typing"]
    user = mongo_db.messages.find_one({"conversation_id": f"telegram:{chat_id}", "role": "user"})
    assert user is not None and user["text"] == "hello telegram"


async def test_the_same_telegram_update_delivered_five_times_is_answered_once(
    worker: Any, mongo_db: Any, platforms: FakePlatforms
) -> None:
    app = new_application(mongo_db, platforms)
    chat_id = random.randint(10**8, 10**9)
    update = telegram_update(chat_id, 77, "only once please")
    headers = {"X-Telegram-Bot-Api-Secret-Token": app["channels"]["telegram"]["secret_token"]}
    event_ids = set()
    for _ in range(5):
        status, body = await post(f"{worker.http}/v1/webhooks/telegram/{app['_id']}", update, headers)
        assert status == 200
        event_ids.update(body["event_ids"])
    assert len(event_ids) == 1
    await wait_for(platforms, send_message_to(chat_id))
    await asyncio.sleep(2.0)  # give any duplicate time to arrive
    sent = platforms.matching(send_message_to(chat_id))
    assert [s["body"]["text"] for s in sent] == ["You said: only once please"]


async def test_a_forged_telegram_update_gets_401_and_nothing_reaches_telegram(
    worker: Any, mongo_db: Any, platforms: FakePlatforms
) -> None:
    app = new_application(mongo_db, platforms)
    chat_id = random.randint(10**8, 10**9)
    url = f"{worker.http}/v1/webhooks/telegram/{app['_id']}"
    for headers in ({"X-Telegram-Bot-Api-Secret-Token": "forged"}, {}):
        status, body = await post(url, telegram_update(chat_id, 5, "let me in"), headers)
        assert status == 401 and body["type"] == "error"
    await asyncio.sleep(1.5)
    assert platforms.matching(lambda r: (r["body"] or {}).get("chat_id") == chat_id) == []
    assert mongo_db.messages.find_one({"conversation_id": f"telegram:{chat_id}"}) is None


# --- WhatsApp -----------------------------------------------------------------------------------
def whatsapp_message(number: str, wamid: str, text: str) -> bytes:
    return json.dumps({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "102290129340398",
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                    "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": number}],
                    "messages": [{
                        "from": number, "id": wamid, "timestamp": str(int(time.time())),
                        "type": "text", "text": {"body": text},
                    }],
                },
                "field": "messages",
            }],
        }],
    }).encode()


async def test_whatsapp_subscription_message_and_reply(worker: Any, mongo_db: Any, platforms: FakePlatforms) -> None:
    app = new_application(mongo_db, platforms)
    config = app["channels"]["whatsapp"]
    url = f"{worker.http}/v1/webhooks/whatsapp/{app['_id']}"
    async with aiohttp.ClientSession() as http:
        query = {"hub.mode": "subscribe", "hub.verify_token": config["verify_token"], "hub.challenge": "1158201444"}
        async with http.get(url, params=query) as response:
            assert (response.status, await response.text()) == (200, "1158201444")
        async with http.get(url, params={**query, "hub.verify_token": "guess"}) as response:
            assert response.status == 403

    number = str(random.randint(10**10, 10**11))
    data = whatsapp_message(number, f"wamid.{uuid.uuid4().hex}", "hola whatsapp")
    status, _ = await post(url, data, {"X-Hub-Signature-256": "sha256=" + hmac_hex(config["app_secret"], data)})
    assert status == 200
    [sent] = await wait_for(platforms, lambda r: (r["body"] or {}).get("to") == number)
    assert sent["path"] == f"/{PHONE_NUMBER_ID}/messages"
    assert sent["headers"]["Authorization"] == f"Bearer {WHATSAPP_TOKEN}"
    assert sent["body"] == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": number,
        "type": "text", "text": {"preview_url": False, "body": "You said: hola whatsapp"},
    }


async def test_a_forged_whatsapp_webhook_gets_401_and_nothing_reaches_whatsapp(
    worker: Any, mongo_db: Any, platforms: FakePlatforms
) -> None:
    app = new_application(mongo_db, platforms)
    number = str(random.randint(10**10, 10**11))
    wamid = f"wamid.{uuid.uuid4().hex}"
    data = whatsapp_message(number, wamid, "forged")
    status, body = await post(
        f"{worker.http}/v1/webhooks/whatsapp/{app['_id']}", data,
        {"X-Hub-Signature-256": "sha256=" + hmac_hex("not-the-app-secret", data)},
    )
    assert (status, body["code"]) == (401, "bad_signature")
    await asyncio.sleep(1.5)
    assert platforms.matching(lambda r: (r["body"] or {}).get("to") == number
                              or (r["body"] or {}).get("message_id") == wamid) == []


# --- Slack --------------------------------------------------------------------------------------
def slack_headers(secret: str, data: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": "v0=" + hmac_hex(secret, f"v0:{stamp}:".encode() + data),
    }


def slack_event(event: dict[str, Any]) -> bytes:
    return json.dumps({
        "token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456", "event": event,
        "type": "event_callback", "event_id": f"Ev{uuid.uuid4().hex[:10]}", "event_time": int(time.time()),
    }).encode()


async def test_slack_verification_thread_message_and_reply(worker: Any, mongo_db: Any, platforms: FakePlatforms) -> None:
    app = new_application(mongo_db, platforms)
    secret = app["channels"]["slack"]["signing_secret"]
    url = f"{worker.http}/v1/webhooks/slack/{app['_id']}"
    challenge = json.dumps({"token": "x", "challenge": "3eZbrw1aBm2rZg", "type": "url_verification"}).encode()
    assert await post(url, challenge, slack_headers(secret, challenge)) == (200, {"challenge": "3eZbrw1aBm2rZg"})

    channel = f"C{uuid.uuid4().hex[:10].upper()}"
    thread = f"{int(time.time())}.000100"
    data = slack_event({
        "type": "message", "channel": channel, "user": "U123ABC456", "text": "hi slack",
        "ts": f"{int(time.time())}.000200", "thread_ts": thread, "channel_type": "channel",
    })
    status, _ = await post(url, data, slack_headers(secret, data))
    assert status == 200
    [sent] = await wait_for(platforms, lambda r: (r["body"] or {}).get("channel") == channel)
    assert sent["path"] == "/chat.postMessage"
    assert sent["headers"]["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert sent["body"] == {"channel": channel, "text": "You said: hi slack", "thread_ts": thread}

    # the bot's own post comes back as an event: acknowledged, never answered
    echo = slack_event({
        "type": "message", "subtype": "bot_message", "bot_id": "B123", "channel": channel,
        "text": "You said: hi slack", "ts": f"{int(time.time())}.000300", "thread_ts": thread,
    })
    assert await post(url, echo, slack_headers(secret, echo)) == (200, {"ok": True, "event_ids": []})
    await asyncio.sleep(1.5)
    assert len(platforms.matching(lambda r: (r["body"] or {}).get("channel") == channel)) == 1


async def test_forged_and_stale_slack_events_get_401_and_nothing_reaches_slack(
    worker: Any, mongo_db: Any, platforms: FakePlatforms
) -> None:
    app = new_application(mongo_db, platforms)
    secret = app["channels"]["slack"]["signing_secret"]
    channel = f"C{uuid.uuid4().hex[:10].upper()}"
    data = slack_event({"type": "message", "channel": channel, "user": "U1", "text": "hi", "ts": "1700000000.000100"})
    url = f"{worker.http}/v1/webhooks/slack/{app['_id']}"
    status, body = await post(url, data, slack_headers("another-secret", data))
    assert (status, body["code"]) == (401, "bad_signature")
    status, body = await post(url, data, slack_headers(secret, data, int(time.time()) - 301))
    assert (status, body["code"]) == (401, "stale_timestamp")
    await asyncio.sleep(1.5)
    assert platforms.matching(lambda r: (r["body"] or {}).get("channel") == channel) == []


# --- generic, signed ------------------------------------------------------------------------------
async def test_a_signed_generic_webhook_gets_a_signed_reply(worker: Any, mongo_db: Any, platforms: FakePlatforms) -> None:
    secret = f"whsec-{uuid.uuid4().hex}"
    app = new_application(
        mongo_db, platforms, secret=secret, callback_url=f"{platforms.base('generic')}/hook-{uuid.uuid4().hex[:6]}"
    )
    path = app["callback_url"].removeprefix(platforms.base("generic"))
    data = json.dumps({"conversation_id": f"g-{uuid.uuid4().hex[:8]}", "id": "m-1", "text": "signed ping"}).encode()
    url = f"{worker.http}/v1/webhooks/generic/{app['_id']}"

    status, body = await post(url, data, {})
    assert (status, body["code"]) == (401, "missing_signature")
    stamp = int(time.time())
    status, body = await post(url, data, {"X-Parley-Signature": f"t={stamp},v1={hmac_hex(secret, f'{stamp}.'.encode() + data)}"})
    assert status == 202

    [reply] = await wait_for(platforms, lambda r: r["path"] == path)
    assert reply["body"]["text"] == "You said: signed ping"
    assert reply["body"]["in_reply_to"] == body["event_id"]
    t, v1 = (part.split("=", 1)[1] for part in reply["headers"]["X-Parley-Signature"].split(","))
    assert abs(int(t) - time.time()) < 60
    assert hmac.compare_digest(v1, hmac_hex(secret, f"{t}.".encode() + reply["raw"]))
    await asyncio.sleep(0.5)
    assert len(platforms.matching(lambda r: r["path"] == path)) == 1, "the unsigned attempt produced nothing"
