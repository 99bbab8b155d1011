"""End to end on the real embedded broker and document server, through a real worker process
and a fake OpenAI-compatible server spoken to by the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.support.wsclient import ChatClient


def archived(mongo_db: Any, conversation_id: str, count: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    docs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        docs = list(mongo_db.messages.find({"conversation_id": conversation_id}).sort([("created_at", 1), ("order", 1)]))
        if len(docs) >= count:
            return docs
        time.sleep(0.1)
    raise AssertionError(f"expected {count} archived messages, found {docs!r}")


async def dead_letters(kafka_url: str, predicate: Any, timeout_s: float = 20.0) -> dict[str, Any]:
    consumer = AIOKafkaConsumer(
        "dead-letters", bootstrap_servers=kafka_url.removeprefix("kafka://"),
        auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    letter = json.loads(record.value)
                    if predicate(letter):
                        return letter
        raise AssertionError("no matching dead letter")
    finally:
        await consumer.stop()


async def test_websocket_message_gets_streamed_reply(worker):
    client = await ChatClient.connect(worker.ws)
    try:
        turn = await client.turn("hi there")
    finally:
        await client.close()
    assert turn.final is not None
    assert turn.final["role"] == "assistant"
    assert turn.final["text"] == "You said: hi there"
    assert turn.final["in_reply_to"] == turn.ack["event_id"]
    assert len(turn.deltas) >= 2, "the reply should arrive as several deltas"
    assert [d["seq"] for d in turn.deltas] == list(range(len(turn.deltas)))
    assert {d["message_id"] for d in turn.deltas} == {turn.final["message_id"]}
    assert "".join(d["text"] for d in turn.deltas) == turn.final["text"]


async def test_history_reaches_the_model(worker, fake_llm):
    client = await ChatClient.connect(worker.ws)
    try:
        await client.turn("my name is Ada")
        await client.turn("what is my name?")
    finally:
        await client.close()
    request = next(r for r in reversed(fake_llm.requests) if r["messages"][-1].get("content") == "what is my name?")
    contents = [m.get("content") for m in request["messages"]]
    assert "my name is Ada" in contents and "You said: my name is Ada" in contents
    assert request["messages"][0]["role"] == "system"


async def test_tool_call_turn_travels_the_whole_pipeline_and_is_archived_in_order(worker, mongo_db, fake_llm):
    client = await ChatClient.connect(worker.ws)
    try:
        turn = await client.turn("what is the time in Europe/Paris?")
    finally:
        await client.close()
    assert turn.final is not None
    assert turn.final["text"].startswith("The tool said: ")
    assert "Europe/Paris" in turn.final["text"]
    assert any(f["type"] == "tool" and f["name"] == "current_time" for f in turn.others)

    docs = archived(mongo_db, client.conversation_id, 4)
    assert [d["role"] for d in docs] == ["user", "tool_call", "tool", "assistant"]
    assert docs[0]["text"] == "what is the time in Europe/Paris?"
    assert docs[1]["calls"][0]["name"] == "current_time"
    assert json.loads(docs[1]["calls"][0]["arguments"]) == {"timezone": "Europe/Paris"}
    assert docs[2]["tool_call_id"] == "call_time_1" and not docs[2]["is_error"]
    assert docs[3]["text"] == turn.final["text"]
    # The model saw the tool result in the follow-up request.
    follow_up = next(r for r in fake_llm.requests if r["messages"][-1]["role"] == "tool"
                     and r["messages"][-1]["tool_call_id"] == "call_time_1")
    assert follow_up["messages"][-2]["tool_calls"][0]["function"]["name"] == "current_time"


async def test_parallel_tool_calls_and_a_failing_tool(worker, mongo_db):
    client = await ChatClient.connect(worker.ws)
    try:
        turn = await client.turn("calc both please")
    finally:
        await client.close()
    assert turn.final is not None
    # The failing tool (1/0) became an error result the model read, not a crash.
    assert turn.final["text"] == "The tool said: error: division by zero"
    docs = archived(mongo_db, client.conversation_id, 5)
    tools = sorted((d for d in docs if d["role"] == "tool"), key=lambda d: d["tool_call_id"])
    assert [(t["tool_call_id"], t["is_error"]) for t in tools] == [("call_a", False), ("call_b", True)]
    assert tools[0]["text"] == "6*7 = 42"


async def test_generic_webhook_is_answered_at_the_callback_url(worker, mongo_db, callbacks):
    application_id = f"hooks-{uuid.uuid4().hex[:8]}"
    mongo_db.applications.insert_one(
        {"_id": application_id, "chatbot_id": "demo", "callback_url": callbacks.url(f"/{application_id}")}
    )
    body = {"conversation_id": "wh-1", "id": "platform-msg-1", "text": "ping", "sender": "alice"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{worker.http}/v1/webhooks/generic/{application_id}", json=body) as response:
            assert response.status == 202
            event_id = (await response.json())["event_id"]
    hits = await asyncio.to_thread(callbacks.wait_for, lambda r: r["path"] == f"/{application_id}")
    reply = hits[0]["body"]
    assert reply["text"] == "You said: ping"
    assert reply["in_reply_to"] == event_id
    assert reply["conversation_id"] == "wh-1"


async def test_two_applications_with_the_same_conversation_id_do_not_share_history(worker, mongo_db, callbacks, fake_llm):
    # Conversation ids are the platform's (a Telegram chat id, a client's id): two applications
    # meet the same one. Neither may see the other's messages.
    conversation_id = f"shared-{uuid.uuid4().hex[:6]}"
    apps = [f"tenant-{name}-{uuid.uuid4().hex[:6]}" for name in ("a", "b")]
    for application_id in apps:
        mongo_db.applications.insert_one(
            {"_id": application_id, "chatbot_id": "demo", "callback_url": callbacks.url(f"/{application_id}")}
        )

    async def say(application_id: str, message_id: str, text: str) -> None:
        body = {"conversation_id": conversation_id, "id": message_id, "text": text}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{worker.http}/v1/webhooks/generic/{application_id}", json=body) as response:
                assert response.status == 202
        await asyncio.to_thread(
            callbacks.wait_for, lambda r: r["path"] == f"/{application_id}" and r["body"]["text"] == f"You said: {text}"
        )

    await say(apps[0], "m1", f"secret of {apps[0]}")
    await say(apps[1], "m1", f"secret of {apps[1]}")  # same platform message id, other application
    await say(apps[1], "m2", "what do you know?")
    request = next(r for r in reversed(fake_llm.requests) if r["messages"][-1].get("content") == "what do you know?")
    contents = [m.get("content") for m in request["messages"]]
    assert f"secret of {apps[1]}" in contents
    assert not [c for c in contents if apps[0] in str(c)], contents


async def test_webhook_for_an_unknown_application_is_404(worker):
    body = {"conversation_id": "wh-2", "id": "m-1", "text": "anyone?"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{worker.http}/v1/webhooks/generic/no-such-app", json=body) as response:
            assert response.status == 404
            assert (await response.json())["code"] == "unknown_application"


async def test_redelivered_webhook_message_is_answered_once(worker, mongo_db, callbacks):
    application_id = f"redeliver-{uuid.uuid4().hex[:8]}"
    mongo_db.applications.insert_one(
        {"_id": application_id, "chatbot_id": "demo", "callback_url": callbacks.url(f"/{application_id}")}
    )
    body = {"conversation_id": "wh-3", "id": "platform-dup-1", "text": "once please"}
    event_ids = set()
    async with aiohttp.ClientSession() as http:
        for _ in range(3):
            async with http.post(f"{worker.http}/v1/webhooks/generic/{application_id}", json=body) as response:
                assert response.status == 202
                event_ids.add((await response.json())["event_id"])
    assert len(event_ids) == 1
    await asyncio.to_thread(callbacks.wait_for, lambda r: r["path"] == f"/{application_id}")
    await asyncio.sleep(2.0)  # give any duplicate time to arrive
    replies = [r for r in callbacks.received if r["path"] == f"/{application_id}"]
    assert len(replies) == 1, replies
    assert len(list(mongo_db.messages.find({"conversation_id": "wh-3", "role": "user"}))) == 1


async def test_undecodable_event_goes_to_dead_letters_and_the_worker_keeps_answering(worker, services):
    garbage = b"\xff not json at all " + uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=services["broker"].url.removeprefix("kafka://"))
    await producer.start()
    try:
        await producer.send_and_wait("incoming", garbage, key=b"bad-conversation")
    finally:
        await producer.stop()
    expected = base64.b64encode(garbage).decode()
    letter = await dead_letters(
        services["broker"].url, lambda d: d["original_b64"] == expected and d["stage"] == "processor"
    )
    assert letter["error_type"] == "DecodeError"
    assert letter["topic"] == "incoming" and letter["key"] == "bad-conversation"

    client = await ChatClient.connect(worker.ws)
    try:
        turn = await client.turn("still there?")
    finally:
        await client.close()
    assert turn.final is not None and turn.final["text"] == "You said: still there?"


async def test_llm_failure_gives_an_apology_and_a_dead_letter(worker, services):
    client = await ChatClient.connect(worker.ws)
    try:
        turn = await client.turn("llm-down now", timeout_s=30)
    finally:
        await client.close()
    assert turn.final is not None
    assert turn.final["text"].startswith("Sorry")
    letter = await dead_letters(
        services["broker"].url,
        lambda d: d["stage"] == "processor.llm" and d["key"] == f"demo/{client.conversation_id}",
    )
    assert "fake-model" in letter["error"]
    assert "llm-down now" in base64.b64decode(letter["original_b64"]).decode()


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(worker):
    client = await ChatClient.connect(worker.ws)
    try:
        await client.send("{not json")
        assert (await client.recv())["code"] == "invalid_json"
        await client.send({"type": "shout"})
        assert (await client.recv())["code"] == "unknown_type"
        await client.send({"type": "message", "id": "m-big", "text": "x" * (16 * 1024 + 1)})
        assert (await client.recv())["code"] == "too_large"
        turn = await client.turn("after the errors")
    finally:
        await client.close()
    assert turn.final is not None and turn.final["text"] == "You said: after the errors"


async def metric_samples(base_url: str) -> dict[str, float]:
    """Every sample of a process's ``/metrics``, by name with labels."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def test_metrics_count_events_model_calls_and_tools(worker):
    client = await ChatClient.connect(worker.ws)
    try:
        await client.turn("calculate please: what is the time in UTC")
    finally:
        await client.close()
    samples = await metric_samples(worker.http)

    def value(prefix: str) -> float:
        return sum(v for k, v in samples.items() if k.startswith(prefix))

    assert value('parley_events_total{direction="in",topic="incoming"}') >= 2
    assert value('parley_events_total{direction="out",topic="outgoing"}') >= 1
    assert value('parley_llm_seconds_count{model="fake-model",provider="default"}') >= 2
    assert value('parley_tool_seconds_count{tool="current_time"}') >= 1
    assert value('parley_handler_seconds_count{stage="processor"}') >= 2
    assert "parley_websocket_connections" in samples


async def test_an_idle_worker_pauses_its_fetches_and_its_own_ingress_wakes_it(worker):
    # Idle, the worker's consumer pauses between fetches (up to PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS)
    # instead of polling the broker every 10 ms ...
    deadline = time.monotonic() + 30
    while (await metric_samples(worker.http)).get("parley_consumer_fetch_pause_seconds", 0) <= 0:
        assert time.monotonic() < deadline, "an idle worker never paused its fetches"
        await asyncio.sleep(0.05)
    wakeups = (await metric_samples(worker.http))["parley_consumer_wakeups_total"]
    # ... and a message its websocket ingress accepts ends the pause (no wait for it)
    client = await ChatClient.connect(worker.ws)
    try:
        turn = await client.turn("are you awake?")
    finally:
        await client.close()
    assert turn.final is not None and turn.final["text"] == "You said: are you awake?"
    assert (await metric_samples(worker.http))["parley_consumer_wakeups_total"] > wakeups


async def test_usage_is_counted_per_application_and_readable_over_http(worker, mongo_db):
    from tests.conftest import ADMIN_KEY
    from tests.e2e.test_llm_faults import make_application

    application_id = make_application(mongo_db)
    client = await ChatClient.connect(worker.ws, application_id=application_id)
    try:
        await client.turn("count me")
        await client.turn("and me")
    finally:
        await client.close()
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession(headers=headers) as http:
        while True:
            async with http.get(f"{worker.http}/v1/tables/usage/{application_id}") as response:
                body = await response.json()
            bots = next(iter((body.get("value") or {}).get("hours", {}).values()), {})
            if bots.get(application_id, {}).get("turns") == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    counters = bots[application_id]
    assert counters["turns"] == 2
    assert counters["prompt_tokens"] > 0 and counters["completion_tokens"] > 0
