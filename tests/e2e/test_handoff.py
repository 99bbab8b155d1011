"""Human handoff end to end on a real ``parley worker`` (embedded broker and document server,
fake LLM): an admin takes a conversation over through the API, the model stops answering it,
the operator's messages reach the user on the conversation's own channel (the websocket, with
the operator's name; Telegram, through the fake platform's sendMessage), and after the hand
back the model answers again with the whole exchange in its prompt."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.test_channels import new_application, post, send_message_to, telegram_update, wait_for
from tests.support.fake_llm import FakeLLM
from tests.support.fake_platforms import FakePlatforms
from tests.support.wsclient import ChatClient

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def platforms() -> Iterator[FakePlatforms]:
    server = FakePlatforms()
    server.start()
    yield server
    server.stop()


async def api(method: str, url: str, status: int, **kwargs: Any) -> Any:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
        async with http.request(method, url, headers=AUTH, **kwargs) as response:
            body = await response.json()
            assert response.status == status, body
            return body


async def archived(worker: Any, application_id: str, conversation_id: str, predicate: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    """The transcript once ``predicate`` holds for it."""
    url = f"{worker.http}/v1/admin/applications/{application_id}/conversations/{conversation_id}"
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        async with aiohttp.ClientSession() as http:
            async with http.get(url, headers=AUTH) as response:
                body = await response.json()
        if response.status == 200 and predicate(body):
            return dict(body)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"transcript never matched: {body}")
        await asyncio.sleep(0.2)


def prompts_with(fake_llm: FakeLLM, text: str) -> list[dict[str, Any]]:
    return [r for r in fake_llm.requests if any(text in str(m.get("content")) for m in r["messages"])]


async def next_frame(client: ChatClient, kind: str, timeout_s: float = 20.0) -> dict[str, Any]:
    while True:
        frame = await client.recv(timeout_s)
        if frame["type"] == kind:
            return frame


async def test_a_websocket_conversation_is_taken_over_answered_by_the_operator_and_handed_back(
    worker: Any, fake_llm: FakeLLM
) -> None:
    client = await ChatClient.connect(worker.ws)
    conv = client.conversation_id
    base = f"{worker.http}/v1/admin/applications/demo/conversations/{conv}"
    try:
        first = await client.turn("hello there")
        assert first.final is not None and first.final["role"] == "assistant"
        await archived(worker, "demo", conv, lambda t: any(m["role"] == "user" for m in t["messages"]))

        taken = await api("POST", f"{base}/handoff", 200)
        assert taken["handoff"]["operator_name"] == "Administrator"
        joined = await next_frame(client, "handoff")
        assert (joined["state"], joined["operator"]) == ("operator", {"name": "Administrator"})

        secret_word = f"held-{uuid.uuid4().hex[:6]}"
        await client.send({"type": "message", "id": "m-held", "text": f"is a person there? {secret_word}"})
        ack = await next_frame(client, "ack")
        await asyncio.sleep(2.0)  # time enough for the model to answer, were it asked
        assert prompts_with(fake_llm, secret_word) == []

        sent = await api("POST", f"{base}/messages", 202, json={"text": "Hi, a human here. How can I help?"})
        frame = await next_frame(client, "message")
        assert (frame["role"], frame["text"], frame["message_id"]) == ("operator", "Hi, a human here. How can I help?", sent["message_id"])
        assert frame["operator"] == {"name": "Administrator"} and frame["in_reply_to"] == ack["event_id"]

        transcript = await archived(worker, "demo", conv, lambda t: any(m["role"] == "operator" for m in t["messages"]))
        roles = [m["role"] for m in transcript["messages"]]
        assert roles == ["user", "assistant", "handoff", "user", "operator"], roles
        operator = transcript["messages"][-1]
        assert operator["operator"] == {"id": "admin-key", "name": "Administrator"}
        assert transcript["handoff"]["operator_id"] == "admin-key"

        await api("DELETE", f"{base}/handoff", 200)
        left = await next_frame(client, "handoff")
        assert left["state"] == "assistant"

        after = await client.turn("thanks, bye")
        assert after.final is not None and after.final["role"] == "assistant"
        [prompt] = prompts_with(fake_llm, "thanks, bye")
        said = [str(m.get("content")) for m in prompt["messages"]]
        assert any(secret_word in s for s in said)  # the user's message during the handoff
        assert "Hi, a human here. How can I help?" in said  # and the operator's answer
    finally:
        await client.close()


async def test_a_telegram_conversation_is_taken_over_and_the_operator_answers_through_send_message(
    worker: Any, mongo_db: Any, platforms: FakePlatforms, fake_llm: FakeLLM
) -> None:
    app = new_application(mongo_db, platforms)
    chat_id = random.randint(10**8, 10**9)
    conv = f"telegram:{chat_id}"
    webhook = f"{worker.http}/v1/webhooks/telegram/{app['_id']}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": app["channels"]["telegram"]["secret_token"]}
    base = f"{worker.http}/v1/admin/applications/{app['_id']}/conversations/{conv}"

    status, _ = await post(webhook, telegram_update(chat_id, 1, "hello bot"), headers)
    assert status == 200
    await wait_for(platforms, send_message_to(chat_id))
    await archived(worker, app["_id"], conv, lambda t: len(t["messages"]) >= 2)

    await api("POST", f"{base}/handoff", 200)
    status, _ = await post(webhook, telegram_update(chat_id, 2, "I need a human"), headers)
    assert status == 200
    await archived(worker, app["_id"], conv, lambda t: any(m["text"] == "I need a human" for m in t["messages"]))
    await asyncio.sleep(1.5)
    assert [s["body"]["text"] for s in platforms.matching(send_message_to(chat_id))] == ["You said: hello bot"]

    await api("POST", f"{base}/messages", 202, json={"text": "A human here: what happened?"})
    sent = await wait_for(platforms, lambda r: send_message_to(chat_id)(r) and r["body"]["text"].startswith("A human"))
    assert sent[0]["body"] == {"chat_id": chat_id, "text": "A human here: what happened?"}
    transcript = await archived(
        worker, app["_id"], conv, lambda t: any(m["role"] == "operator" and m["delivery"]["status"] == "delivered" for m in t["messages"])
    )
    assert transcript["channel"] == "telegram"

    await api("DELETE", f"{base}/handoff", 200)
    status, _ = await post(webhook, telegram_update(chat_id, 3, "all sorted, thanks"), headers)
    assert status == 200
    await wait_for(platforms, lambda r: send_message_to(chat_id)(r) and r["body"]["text"] == "You said: all sorted, thanks")
    [prompt] = prompts_with(fake_llm, "all sorted, thanks")
    said = [str(m.get("content")) for m in prompt["messages"]]
    assert "I need a human" in said and "A human here: what happened?" in said
