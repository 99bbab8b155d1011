"""What the agent tests put in place of Kafka and of the runtime's outside systems, and their helpers.

``MemoryProducer`` stands in for the broker at Faust's own producer port (``app.producer``):
the agents' ``topic.send`` and the tables' changelog writes go through Faust as in production
(serializers, keys, ``publish_message``) and end here, recorded in the order they were sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.transport.producer import Producer
from faust.types import EventT, HeadersArg
from faust.types.agents import AgentTestWrapperT
from faust.types.tuples import TP, FutureMessage, Message, RecordMetadata

from parley.app import ParleyApp
from parley.streams.keyed import KeyedRunner

__all__ = [
    "Archive", "Configs", "MemoryProducer", "Sent", "put", "raw_channel", "runner_of", "table_of", "until",
]


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None


class MemoryProducer(Producer):
    """A producer that keeps what it is sent, in order. Each send is acked at once, or, while
    ``hold_acks()`` is in force, only when ``release_acks()`` is called. A table write's
    changelog message (``send_soon``) is recorded when the table is written; it is never
    published (the memory store keeps no changelog offsets)."""

    def __init__(self, transport: Any) -> None:
        super().__init__(transport)
        self.sent: list[Sent] = []
        self._held: list[tuple[asyncio.Future[RecordMetadata], RecordMetadata]] | None = None

    def to(self, topic: str) -> list[Sent]:
        return [s for s in self.sent if s.topic == topic]

    def topics(self) -> list[str]:
        return [s.topic for s in self.sent]

    def hold_acks(self) -> None:
        self._held = []

    def release_acks(self) -> None:
        held, self._held = self._held or [], None
        for fut, metadata in held:
            fut.set_result(metadata)

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: HeadersArg | None,
        *,
        transactional_id: str | None = None,
    ) -> asyncio.Future[RecordMetadata]:
        self.sent.append(Sent(topic, key, value))
        metadata = RecordMetadata(topic, partition or 0, TP(topic, partition or 0), len(self.sent) - 1, timestamp)
        fut: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        if self._held is None:
            fut.set_result(metadata)
        else:
            self._held.append((fut, metadata))
        return fut

    def send_soon(self, fut: FutureMessage) -> None:
        message = fut.message
        self.sent.append(Sent(message.channel.get_topic_name(), message.key, message.value))


def raw_channel(app: faust.App) -> faust.ChannelT[Any]:
    """An in-memory channel that carries bytes as the agents' topics do (``raw`` both ways), for
    ``agent.test_context(channel=...)``: the default channel would decode values as JSON, and a
    payload that does not decode would never reach the agent."""
    schema: faust.Schema[bytes, bytes] = faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    return app.channel(schema=schema)


async def put(agent: AgentTestWrapperT, *, topic: str, key: bytes, value: bytes) -> EventT[Any]:
    """What ``agent.put(value, key=key, wait=False)`` does, with the message's topic named.
    Faust's wrapper names it after the agent's source topic, which a source over several topics
    (the persister's) has no single name for."""
    channel = cast(faust.ChannelT[Any], agent.stream().channel)
    message = Message(
        topic=topic, partition=0, offset=agent.sent_offset, timestamp=time.time(), timestamp_type=0,
        headers=None, key=key, value=value, checksum=b"", serialized_key_size=len(key),
        serialized_value_size=len(value), generation_id=agent.app.consumer_generation_id,
    )
    event: EventT[Any] = await channel.decode(message)
    await channel.put(event)
    agent.sent_offset += 1
    return event


async def until(condition: Callable[[], object], timeout_s: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")
        await asyncio.sleep(0.005)


class Configs:
    """``ConfigStore.application``: no application is configured (the default chatbot answers);
    ``fail`` makes every read raise it."""

    def __init__(self) -> None:
        self.reads = 0
        self.fail: Exception | None = None

    async def application(self, application_id: str) -> None:
        self.reads += 1
        if self.fail is not None:
            raise self.fail


class Archive:
    """``DocumentStore.archive`` as a dict; while ``open`` is cleared a write waits for it."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.writes: list[list[dict[str, Any]]] = []
        self.open = asyncio.Event()
        self.open.set()

    async def archive(self, docs: list[dict[str, Any]]) -> list[bool]:
        self.writes.append(docs)
        await self.open.wait()
        first = [doc["_id"] not in self.documents for doc in docs]
        for doc in docs:
            self.documents.setdefault(doc["_id"], doc)
        return first


def table_of(app: ParleyApp, name: str) -> faust.Table[Any, Any]:
    return cast(faust.Table[Any, Any], app.tables[name])


def runner_of(app: ParleyApp, name: str) -> KeyedRunner:
    runners: list[KeyedRunner] = [r for stage in app.parley_runner_stages for r in stage if r.name == name]
    [runner] = runners
    return runner
