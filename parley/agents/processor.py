"""processor: incoming -> model -> outgoing (a reply) or function_call (a tool round)."""

from __future__ import annotations

import logging

import faust

from parley.agents import produce, produce_all, raw_event
from parley.records import DeadLetter, IncomingEvent
from parley.runtime import Runtime
from parley.settings import Settings
from parley.streams.codec import decode, encode
from parley.streams.conversation import ConversationState
from parley.streams.deadletters import RawEvent, dead_letter_for, guarded
from parley.streams.keyed import KeyedRunner
from parley.streams.platform_files import fetch_platform_files, has_platform_files
from parley.streams.turn_control import TurnControl, note_arrival
from parley.streams.turns import ChatbotConfig, TurnHandler
from parley.streams.usage import usage_event
from parley.tables import Tables
from parley.topics import Topics

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: faust.App, topics: Topics, tables: Tables, runtime: Runtime, settings: Settings) -> KeyedRunner:
    handler: TurnHandler | None = None
    control = TurnControl()

    async def send_dead_letter(letter: DeadLetter) -> None:
        await produce(topics.dead_letters, letter.key or letter.dead_letter_id, encode(letter))

    async def process(raw: RawEvent) -> None:
        nonlocal handler
        if handler is None:
            handler = TurnHandler(runtime.model, runtime.tools, runtime.publish, control=control)
        event = decode(raw.value, IncomingEvent)
        app_config = await runtime.configs.application(event.application_id)
        chatbot = app_config.chatbot if app_config is not None else ChatbotConfig()
        state = ConversationState.from_value(tables.conversations.get(event.key))
        if has_platform_files(event) and not state.seen(event.event_id):
            event.attachments = await fetch_platform_files(event, runtime, settings)
        output = await handler.handle(event, state, chatbot)
        if output.skipped:
            return
        messages = [(topics.function_call, c.key, encode(c)) for c in output.function_calls]
        messages += [(topics.outgoing, r.key, encode(r)) for r in output.replies]
        if output.prompt_tokens or output.completion_tokens or output.replies:
            record = usage_event(
                event_id=event.event_id, application_id=event.application_id,
                chatbot_id=chatbot.chatbot_id, model=output.model, prompt_tokens=output.prompt_tokens,
                completion_tokens=output.completion_tokens,
                turns=sum(1 for r in output.replies if not r.is_error),
            )
            messages.append((topics.usage, event.application_id, encode(record)))
        await produce_all(messages)
        # State is written only once its outputs are on the broker: a crash before this line
        # repeats the turn (same ids), never loses its reply.
        tables.conversations[event.key] = state.to_value()
        if output.failure is not None:
            await send_dead_letter(dead_letter_for(raw, "processor.llm", RuntimeError(output.failure), 1))

    runner = KeyedRunner(settings.max_turns_in_flight, "processor")

    @app.agent(topics.incoming, name="parley.processor")
    async def processor(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            raw = raw_event(event)
            note_arrival(control, raw)

            async def work(raw: RawEvent = raw) -> None:
                await guarded(
                    "processor", raw, lambda: process(raw), send_dead_letter,
                    max_attempts=settings.handler_max_attempts,
                )

            await runner.submit(event.key, work, event.ack)

    return runner
