"""The agents: thin loops that decode an event, call a handler, and route what it returns."""

from __future__ import annotations

from typing import Any

import asyncio

import faust

from parley import metrics

from parley.streams.deadletters import RawEvent

__all__ = ["raw_event", "produce", "produce_all"]


def raw_event(event: faust.EventT) -> RawEvent:
    message = event.message
    metrics.EVENTS.labels(message.topic, "in").inc()
    return RawEvent(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key if isinstance(message.key, bytes) else None,
        value=message.value if isinstance(message.value, bytes) else None,
    )


async def produce_all(messages: list[tuple[faust.TopicT, str, bytes]]) -> None:
    """Send every message in order, then wait for all the broker's acks at once (one round
    trip instead of one per message; the producer keeps the order within a partition)."""
    futures = [await topic.send(key=key.encode(), value=value) for topic, key, value in messages]
    await asyncio.gather(*futures)
    for topic, _, _ in messages:
        metrics.EVENTS.labels(topic.get_topic_name(), "out").inc()


async def produce(topic: faust.TopicT, key: str, value: bytes) -> Any:
    """Send and wait for the broker's ack."""
    fut = await topic.send(key=key.encode(), value=value)
    result = await fut
    metrics.EVENTS.labels(topic.get_topic_name(), "out").inc()
    return result
