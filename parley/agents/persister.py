"""persister: archives every message (incoming, function_call, outgoing) and delivers replies
to the websocket (over the bus) or to the application's callback URL (``streams.persist``).

Archive writes of all events in flight go out together in batches (``DocumentStore.archive``);
each event is acked only once its own documents are written.
"""

from __future__ import annotations

import logging

import faust

from parley.agents import produce, raw_event
from parley.records import DeadLetter, ReplyEvent
from parley.runtime import Runtime
from parley.settings import Settings
from parley.streams.codec import encode
from parley.streams.deadletters import RawEvent, guarded
from parley.streams.delivery import deliver
from parley.streams.keyed import KeyedRunner
from parley.streams.persist import ArchiveWriter, persist
from parley.topics import FUNCTION_CALL, INCOMING, OUTGOING, Topics

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: faust.App, topics: Topics, runtime: Runtime, settings: Settings) -> KeyedRunner:
    archived = app.topic(
        INCOMING, OUTGOING, FUNCTION_CALL,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
    )
    writer: ArchiveWriter | None = None

    async def send_dead_letter(letter: DeadLetter) -> None:
        await produce(topics.dead_letters, letter.key or letter.dead_letter_id, encode(letter))

    async def deliver_reply(reply: ReplyEvent, maybe_delivered: bool) -> None:
        await deliver(reply, runtime, settings, maybe_delivered=maybe_delivered)

    async def work_for(raw: RawEvent) -> None:
        nonlocal writer
        if writer is None:  # the runtime's clients exist once the app has started
            writer = ArchiveWriter(runtime.documents.archive, budget_s=settings.archive_retry_budget_s)
        await persist(raw, writer, deliver_reply)

    runner = KeyedRunner(settings.max_turns_in_flight, "persister")

    @app.agent(archived, name="parley.persister")
    async def persister(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            raw = raw_event(event)

            async def work(raw: RawEvent = raw) -> None:
                await guarded(
                    f"persister.{raw.topic}", raw, lambda: work_for(raw), send_dead_letter,
                    max_attempts=settings.handler_max_attempts,
                )

            # Per topic and conversation: replies stay in order, and archiving a user message
            # never delays the delivery of a reply.
            await runner.submit((raw.topic, event.key), work, event.ack)

    return runner
