"""An idle consumer on the embedded broker: it stops polling every 10 ms, a message produced by
another process waits for its pause (bounded by PARLEY_CONSUMER_IDLE_FETCH_WAIT_MS), and one
produced by the same process (the web ingress, the agents) is fetched at once.

A real aiokafka consumer against the real broker, with Parley's pacing installed on its fetcher
as the worker installs it (the worker's own wiring is checked in tests/e2e/test_pipeline.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from parley.kafka_transport import EMPTY_FETCHES_BEFORE_PAUSING, FetchPacer, pace_fetches

IDLE_WAIT_MS = 60_000  # far longer than any timeout below: a message seen in time was not paced


class CountingPacer(FetchPacer):
    fetches = 0

    def fetched(self, node: Any, had_data: bool, wakes_before: int) -> float:
        self.fetches += 1
        return super().fetched(node, had_data, wakes_before)


@pytest.fixture
async def paced(services: Any) -> AsyncIterator[tuple[AIOKafkaConsumer, AIOKafkaProducer, CountingPacer, Any, str]]:
    servers = services["broker"].url.removeprefix("kafka://")
    topic = f"idle-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=servers, max_batch_size=1)  # see PARLEY_PRODUCER_MAX_BATCH_BYTES
    await producer.start()
    await producer.send_and_wait(topic, b"first")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, fetch_max_wait_ms=10, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    pacer = CountingPacer(10, IDLE_WAIT_MS)
    wake = pace_fetches(consumer._fetcher, pacer)
    try:
        assert (await asyncio.wait_for(consumer.getone(), 20)).value == b"first"
        yield consumer, producer, pacer, wake, topic
    finally:
        await consumer.stop()
        await producer.stop()


def broker_of(consumer: AIOKafkaConsumer, topic: str) -> Any:
    return consumer._client.cluster.leader_for_partition(TopicPartition(topic, 0))


def idle_for_long(pacer: FetchPacer, node: Any) -> None:
    """The state after a long silence: the pause before the next fetch is at its longest."""
    for _ in range(EMPTY_FETCHES_BEFORE_PAUSING + 40):
        pacer.fetched(node, False, pacer.wakes)
    assert pacer.remaining(node) > 50


async def test_an_idle_consumer_stops_polling_the_broker(paced):
    consumer, _, pacer, _, topic = paced
    before = pacer.fetches
    await asyncio.sleep(3)
    # unpaced, 3 s of 10 ms fetches are ~300; paced, the pauses (10, 20, 40 ms ... doubling)
    # leave about a dozen
    assert pacer.fetches - before < 40
    assert pacer.remaining(broker_of(consumer, topic)) > 0


async def test_a_message_from_another_process_waits_for_the_pause_and_one_from_this_process_does_not(paced):
    consumer, producer, pacer, wake, topic = paced
    idle_for_long(pacer, broker_of(consumer, topic))
    await producer.send_and_wait(topic, b"from elsewhere")
    # nothing tells this consumer: the message waits for the pause (here 60 s)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(fetch_one := asyncio.ensure_future(consumer.getone())), 2)
    # a produce from this process wakes it (the worker's producer does this once the broker acks)
    wake()
    assert (await asyncio.wait_for(fetch_one, 20)).value == b"from elsewhere"


async def test_data_brings_an_idle_consumer_back_to_full_speed(paced):
    consumer, producer, pacer, _, topic = paced
    node = broker_of(consumer, topic)
    while pacer.remaining(node) < 0.1:  # idle until pausing (10, 20, 40 ... ms): about a second
        await asyncio.sleep(0.05)
    await producer.send_and_wait(topic, b"after a while")  # another process: no wake
    assert (await asyncio.wait_for(consumer.getone(), 20)).value == b"after a while"
    # seen by the next fetch after the pause; that fetch had data, so no pause follows it
    assert pacer.remaining(node) == 0
    assert not pacer.may_pause
