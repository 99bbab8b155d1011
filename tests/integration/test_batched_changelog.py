"""Table recovery when producers batch on the embedded broker: it reports the end of a changelog
partition whose last batch holds several records too small (the base offset of that batch + 1).
Faust's recovery stops at the end it is given and refuses a table store past it
(``ConsistencyError``); Parley takes the ends from a fetch's high watermark instead, so a worker
restarted on its own table stores comes back with its conversations."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from parley.kafka_offsets import fetched_ends
from tests.integration.test_scaling import start_worker
from tests.support.wsclient import ChatClient

BATCHING = {"PARLEY_PRODUCER_MAX_BATCH_BYTES": "65536"}


async def test_end_offsets_come_from_the_fetch_high_watermark(services):
    servers = services["broker"].url.removeprefix("kafka://")
    topic = f"batched-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=50)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"alone", key=b"k", partition=0)
        await asyncio.gather(*[await producer.send(topic, b"x", key=b"k", partition=0) for _ in range(10)])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=None, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        reported = await consumer.end_offsets([tp])
        assert reported[tp] < 11, "the broker reports the last batch's base offset + 1"
        assert (await fetched_ends(consumer, reported)) == {tp: 11}
    finally:
        await consumer.stop()


async def test_a_worker_restarted_on_batched_changelogs_keeps_its_conversations(
    services, fake_llm, redis_url, tmp_path
):
    app_id = f"parley-batched-{uuid.uuid4().hex[:6]}"
    data_dir = tmp_path / "worker"
    worker = start_worker(services, fake_llm, redis_url, data_dir, app_id, **BATCHING).start()
    try:
        clients = await asyncio.gather(*(ChatClient.connect(worker.ws) for _ in range(200)))
        # two hundred turns at once: the table's changelog records go out several per batch
        await asyncio.gather(*(c.turn(f"remember {i}") for i, c in enumerate(clients)))
        await asyncio.gather(*(c.close() for c in clients))
        await asyncio.sleep(1.0)
    finally:
        assert worker.stop() == 0
    again = start_worker(services, fake_llm, redis_url, data_dir, app_id, **BATCHING).start(timeout_s=60)
    try:
        conversation = clients[7].conversation_id
        client = await ChatClient.connect(again.ws, conversation_id=conversation)
        turn = await client.turn("what did I say?")
        assert turn.final is not None
        prompt = next(r for r in reversed(fake_llm.requests) if r["messages"][-1]["content"] == "what did I say?")
        assert any(m.get("content") == "remember 7" for m in prompt["messages"]), "history restored"
        await client.close()
    finally:
        assert again.stop() == 0
    assert "ConsistencyError" not in again.log_path.read_text()
