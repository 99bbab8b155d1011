"""persister: archives every message (incoming, function_call, outgoing) and delivers replies
to the websocket (over the bus) or to the application's callback URL."""

from __future__ import annotations

import logging

import faust

from parley.agents import produce, raw_event
from parley.records import DeadLetter, FunctionCallEvent, IncomingEvent, ReplyEvent
from parley.runtime import Runtime
from parley.settings import Settings
from parley.streams.archive import document_for_calls, document_for_reply, documents_for_incoming
from parley.streams.codec import decode, encode
from parley.streams.deadletters import RawEvent, guarded
from parley.streams.delivery import deliver
from parley.streams.keyed import KeyedRunner
from parley.topics import FUNCTION_CALL, INCOMING, OUTGOING, Topics

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: faust.App, topics: Topics, runtime: Runtime, settings: Settings) -> KeyedRunner:
    archived = app.topic(
        INCOMING, OUTGOING, FUNCTION_CALL,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
    )

    async def send_dead_letter(letter: DeadLetter) -> None:
        await produce(topics.dead_letters, letter.key or letter.dead_letter_id, encode(letter))

    async def persist(raw: RawEvent) -> None:
        if raw.topic == OUTGOING:
            reply = decode(raw.value, ReplyEvent)
            await runtime.documents.archive(document_for_reply(reply))
            await deliver(reply, runtime, settings)
        elif raw.topic == FUNCTION_CALL:
            await runtime.documents.archive(document_for_calls(decode(raw.value, FunctionCallEvent)))
        else:
            for doc in documents_for_incoming(decode(raw.value, IncomingEvent)):
                await runtime.documents.archive(doc)

    runner = KeyedRunner(settings.max_turns_in_flight, "persister")

    @app.agent(archived, name="parley.persister")
    async def persister(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            raw = raw_event(event)

            async def work(raw: RawEvent = raw) -> None:
                await guarded(
                    f"persister.{raw.topic}", raw, lambda: persist(raw), send_dead_letter,
                    max_attempts=settings.handler_max_attempts,
                )

            # Per topic and conversation: replies stay in order, and archiving a user message
            # never delays the delivery of a reply.
            await runner.submit((raw.topic, event.key), work, event.ack)

    return runner
