"""dispatcher: function_call -> tools -> tool results back on incoming."""

from __future__ import annotations

import faust

from parley.agents.clients import Clients
from parley.agents.skeleton import guarded_agent, produce
from parley.records import FunctionCallEvent
from parley.settings import Settings
from parley.streams.codec import decode, encode
from parley.streams.deadletters import RawEvent
from parley.streams.dispatch import run_tool_round
from parley.streams.keyed import KeyedRunner
from parley.topics import Topics

__all__ = ["register"]


def register(app: faust.App, topics: Topics, runtime: Clients, settings: Settings) -> KeyedRunner:
    async def dispatch(raw: RawEvent) -> None:
        event = decode(raw.value, FunctionCallEvent)
        result = await run_tool_round(event, runtime.tools, timeout_s=settings.tool_timeout_s)
        await produce(topics.incoming, result.key, encode(result))

    runner = KeyedRunner(settings.max_turns_in_flight, "dispatcher")
    guarded_agent(
        app, topics.function_call, name="dispatcher", handler=dispatch, runner=runner,
        dead_letters=topics.dead_letters, settings=settings,
    )
    return runner
