"""The one agent skeleton every Parley agent is built from.

An agent module says only which topic it reads, how its events are keyed and what its handler
does with one event; ``guarded_agent`` supplies the rest, the same way for all of them:

- ``stream.noack().events()``: Faust does not ack an event when the loop moves on; the event is
  acked only once its handler has finished (or its dead letter is on the broker), so a crash
  repeats unfinished work instead of dropping it (DESIGN rule 2).
- ``raw_event``: the event's topic, partition, offset and original bytes (counted in
  ``parley_events_total``); handlers decode the bytes themselves, so a payload that does not
  decode is dead-lettered like any other failure.
- ``guarded``: bounded retries, then a ``DeadLetter`` with the original bytes on ``dead-letters``;
  an exception never reaches Faust, which would ack and drop the event and restart the agent
  (DESIGN rule 3).
- with a ``KeyedRunner``: one task per key, events of a key in order, at most
  ``PARLEY_MAX_TURNS_IN_FLIGHT`` in flight; without one, each event is handled inline, in the
  order of its partition.

``guarded_batch_agent`` is the same skeleton for work whose cost is per call rather than per
event: the events of a key that are waiting are decoded and handed over together
(``KeyedBatcher``); an event that does not decode, and every event of a batch that fails, is
handled on its own under ``guarded``, so one bad event is dead-lettered alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar, cast

import faust
from faust.types import AgentT

from parley import metrics
from parley.records import DeadLetter
from parley.settings import Settings
from parley.streams.codec import encode
from parley.streams.deadletters import RawEvent, guarded
from parley.streams.keyed import KeyedBatcher, KeyedRunner

__all__ = [
    "Handler",
    "KeyOf",
    "by_message_key",
    "dead_letter_sender",
    "guarded_agent",
    "guarded_batch_agent",
    "produce",
    "produce_all",
    "raw_event",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: The work for one event; it raises to have the event retried and, in the end, dead-lettered.
Handler = Callable[[RawEvent], Awaitable[None]]
#: The key that serialises events in a ``KeyedRunner`` (events of one key run in order).
KeyOf = Callable[[faust.EventT[Any], RawEvent], Hashable]


@functools.lru_cache(maxsize=256)
def _events_counted(topic: str, direction: str) -> Any:
    """``parley_events_total`` for one topic and direction (``labels`` costs more than ``inc``)."""
    return metrics.EVENTS.labels(topic, direction)


def raw_event(event: faust.EventT[Any]) -> RawEvent:
    message = event.message
    _events_counted(message.topic, "in").inc()
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
        _events_counted(topic.get_topic_name(), "out").inc()


async def produce(topic: faust.TopicT, key: str, value: bytes) -> Any:
    """Send and wait for the broker's ack."""
    fut = await topic.send(key=key.encode(), value=value)
    result = await fut
    _events_counted(topic.get_topic_name(), "out").inc()
    return result


def dead_letter_sender(dead_letters: faust.TopicT) -> Callable[[DeadLetter], Awaitable[None]]:
    """Produce a dead letter, keyed by its event's key (or its own id when the event had none),
    and wait for the broker's ack."""

    async def send_dead_letter(letter: DeadLetter) -> None:
        await produce(dead_letters, letter.key or letter.dead_letter_id, encode(letter))

    return send_dead_letter


def by_message_key(event: faust.EventT[Any], raw: RawEvent) -> Hashable:
    """Serialise by the message key: the conversation key on every conversation topic."""
    key: Hashable = event.key
    return key


def guarded_agent(
    app: faust.App,
    source: faust.TopicT,
    *,
    name: str,
    handler: Handler,
    dead_letters: faust.TopicT,
    settings: Settings,
    runner: KeyedRunner | None = None,
    key_of: KeyOf = by_message_key,
    stage_of: Callable[[RawEvent], str] | None = None,
    on_consumed: Callable[[RawEvent], None] | None = None,
) -> AgentT[Any]:
    """Register the agent ``parley.<name>`` on ``source`` and return it.

    ``runner``: events go to it under ``key_of(event, raw)`` and are acked when their work is
    done; ``None`` handles each event inline before the next one is read. ``stage_of``: the
    dead-letter stage of an event (default ``name``). ``on_consumed``: called for every event as
    it is read, before it waits for its turn (the processor notes user messages arriving).
    """
    send_dead_letter = dead_letter_sender(dead_letters)

    async def work_for(raw: RawEvent) -> None:
        stage = stage_of(raw) if stage_of is not None else name
        await guarded(
            stage, raw, lambda: handler(raw), send_dead_letter, max_attempts=settings.handler_max_attempts
        )

    async def loop(stream: faust.StreamT[Any]) -> None:
        # (``StreamT`` does not declare ``noack``; Faust hands every agent a ``Stream``.)
        async for event in cast(faust.Stream[Any], stream).noack().events():
            raw = raw_event(event)
            if on_consumed is not None:
                on_consumed(raw)
            if runner is None:
                await work_for(raw)
                event.ack()
            else:
                # Submitted from inside the loop, so the event's task inherits Faust's
                # current-event context (a table write goes to the event's partition).
                await runner.submit(key_of(event, raw), functools.partial(work_for, raw), event.ack)

    return app.agent(source, name=f"parley.{name}")(loop)


def guarded_batch_agent(
    app: faust.App,
    source: faust.TopicT,
    *,
    name: str,
    decode: Callable[[RawEvent], T],
    handler: Callable[[list[T]], Awaitable[None]],
    dead_letters: faust.TopicT,
    settings: Settings,
    batcher: KeyedBatcher,
    key_of: KeyOf = by_message_key,
) -> AgentT[Any]:
    """Register the agent ``parley.<name>`` on ``source``: the events of a key are decoded and go
    to ``handler`` in batches (in order), each acked once its batch is handled. An event that
    does not decode is dead-lettered on its own; a batch that raises is handled again one event
    at a time, each under ``guarded`` (retries, then its own dead letter)."""
    send_dead_letter = dead_letter_sender(dead_letters)

    async def one(raw: RawEvent) -> None:
        async def handle() -> None:
            await handler([decode(raw)])

        await guarded(name, raw, handle, send_dead_letter, max_attempts=settings.handler_max_attempts)

    async def work_for(batch: list[RawEvent]) -> None:
        if len(batch) > 1:
            decoded: list[tuple[RawEvent, T]] = []
            for raw in batch:
                try:
                    decoded.append((raw, decode(raw)))
                except Exception:  # noqa: BLE001 - it fails again under guarded: a dead letter
                    await one(raw)
            started = time.perf_counter()
            try:
                await handler([item for _, item in decoded])
                metrics.HANDLER_SECONDS.labels(name).observe(time.perf_counter() - started)
                return
            except Exception as exc:  # noqa: BLE001 - each event then gets its own retries and dead letter
                logger.warning("%s: a batch of %d events failed (%s: %s); handling them one by one",
                               name, len(decoded), type(exc).__name__, exc)
            batch = [raw for raw, _ in decoded]
        for raw in batch:
            await one(raw)

    async def loop(stream: faust.StreamT[Any]) -> None:
        async for event in cast(faust.Stream[Any], stream).noack().events():
            raw = raw_event(event)
            await batcher.submit(key_of(event, raw), raw, event.ack, work_for)

    return app.agent(source, name=f"parley.{name}")(loop)
