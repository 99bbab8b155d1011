"""Provider faults against the fake LLM, through a real worker: users always get one answer."""

from __future__ import annotations

import asyncio
import base64
import uuid

import aiohttp

from tests.e2e.test_pipeline import dead_letters
from tests.support.wsclient import ChatClient


def make_application(mongo_db, **chatbot) -> str:
    application_id = f"faults-{uuid.uuid4().hex[:8]}"
    mongo_db.chatbots.insert_one({"_id": application_id, "system_prompt": "Be brief.", **chatbot})
    mongo_db.applications.insert_one({"_id": application_id, "chatbot_id": application_id})
    return application_id


async def ask(worker, application_id: str, text: str):
    client = await ChatClient.connect(worker.ws, application_id=application_id)
    try:
        turn = await client.turn(text, timeout_s=30)
        extra = []
        try:
            while True:
                extra.append(await client.recv(timeout_s=1.0))
        except TimeoutError:
            pass
        return client.conversation_id, turn, extra
    finally:
        await client.close()


async def test_rate_limited_twice_then_answered_exactly_once(worker, mongo_db, fake_llm):
    application_id = make_application(mongo_db, model="flaky-429")
    text = f"are you there {uuid.uuid4().hex[:6]}"
    _, turn, extra = await ask(worker, application_id, text)
    assert turn.final["text"] == f"You said: {text}"
    assert fake_llm.failures[text] == 3  # two 429s, then the answer
    assert not [f for f in extra if f["type"] == "message"], "answered more than once"


async def test_every_attempt_timing_out_gives_an_apology_and_a_dead_letter(worker, mongo_db, services):
    application_id = make_application(mongo_db, model="always-slow")
    conversation_id, turn, _ = await ask(worker, application_id, "hello slow model")
    assert turn.final["text"].startswith("Sorry")
    letter = await dead_letters(
        services["broker"].url, lambda d: d["stage"] == "processor.llm" and d["key"] == f"{application_id}/{conversation_id}"
    )
    assert "timed out" in letter["error"] and "always-slow" in letter["error"]
    assert "hello slow model" in base64.b64decode(letter["original_b64"]).decode()


async def test_primary_model_down_the_fallback_answers(worker, mongo_db, fake_llm):
    application_id = make_application(mongo_db, model="down-500", fallback_models=["fake-model"])
    _, turn, _ = await ask(worker, application_id, "anyone home?")
    assert turn.final["text"] == "You said: anyone home?"
    models = [r["model"] for r in fake_llm.requests if r["messages"][-1].get("content") == "anyone home?"]
    assert models == ["down-500", "down-500", "down-500", "fake-model"]


async def test_a_platform_turn_whose_model_call_drops_mid_stream_is_retried(worker, mongo_db, fake_llm, callbacks):
    application_id = make_application(mongo_db, model="fake-model")
    mongo_db.applications.update_one({"_id": application_id}, {"$set": {"callback_url": callbacks.url(f"/{application_id}")}})
    text = f"drop-once {uuid.uuid4().hex[:6]}"
    body = {"conversation_id": f"wh-{uuid.uuid4().hex[:6]}", "id": uuid.uuid4().hex, "text": text}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{worker.http}/v1/webhooks/generic/{application_id}", json=body) as response:
            assert response.status == 202
    await asyncio.to_thread(callbacks.wait_for, lambda r: r["path"] == f"/{application_id}")
    await asyncio.sleep(1.0)  # give a second answer time to arrive
    replies = [r["body"]["text"] for r in callbacks.received if r["path"] == f"/{application_id}"]
    assert replies == [f"You said: {text}"]  # the retried answer, once; no apology
    assert fake_llm.failures[f"drop-once:{text}"] == 2


async def test_a_websocket_turn_that_streamed_before_the_drop_is_not_retried(worker, mongo_db, fake_llm):
    application_id = make_application(mongo_db, model="fake-model")
    text = f"drop-once {uuid.uuid4().hex[:6]}"
    _, turn, _ = await ask(worker, application_id, text)
    assert [d["text"] for d in turn.deltas] == ["You said"]
    assert turn.final["text"].startswith("Sorry")  # the client saw text: a retry would repeat it
    assert fake_llm.failures[f"drop-once:{text}"] == 1
