"""dispatcher: function_call -> tools -> tool results back on incoming."""

from __future__ import annotations

import faust

from parley.agents import produce, raw_event
from parley.records import DeadLetter, FunctionCallEvent
from parley.runtime import Runtime
from parley.settings import Settings
from parley.streams.codec import decode, encode
from parley.streams.deadletters import RawEvent, guarded
from parley.streams.dispatch import run_tool_round
from parley.streams.keyed import KeyedRunner
from parley.topics import Topics

__all__ = ["register"]


def register(app: faust.App, topics: Topics, runtime: Runtime, settings: Settings) -> KeyedRunner:
    async def send_dead_letter(letter: DeadLetter) -> None:
        await produce(topics.dead_letters, letter.key or letter.dead_letter_id, encode(letter))

    async def dispatch(raw: RawEvent) -> None:
        event = decode(raw.value, FunctionCallEvent)
        result = await run_tool_round(event, runtime.tools, timeout_s=settings.tool_timeout_s)
        await produce(topics.incoming, result.key, encode(result))

    runner = KeyedRunner(settings.max_turns_in_flight, "dispatcher")

    @app.agent(topics.function_call, name="parley.dispatcher")
    async def dispatcher(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            raw = raw_event(event)

            async def work(raw: RawEvent = raw) -> None:
                await guarded(
                    "dispatcher", raw, lambda: dispatch(raw), send_dead_letter,
                    max_attempts=settings.handler_max_attempts,
                )

            await runner.submit(event.key, work, event.ack)

    return runner
