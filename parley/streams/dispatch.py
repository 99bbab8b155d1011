"""Running a tool round: the dispatcher's logic, free of Kafka.

All calls of one round run concurrently, each bounded by the tool timeout; every outcome,
error or not, goes back to the model as a tool result on ``incoming``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from parley.records import KIND_TOOL_RESULTS, FunctionCallEvent, IncomingEvent
from parley.streams.codec import message_id
from parley.tools import ToolRegistry

__all__ = ["run_tool_round"]


async def run_tool_round(
    event: FunctionCallEvent,
    tools: ToolRegistry,
    *,
    timeout_s: float,
    clock: Callable[[], float] = time.time,
) -> IncomingEvent:
    outcomes = await asyncio.gather(
        *(
            tools.run(str(call.get("name", "")), str(call.get("arguments", "")), timeout_s=timeout_s)
            for call in event.calls
        )
    )
    results = [
        {
            "tool_call_id": str(call.get("id", "")),
            "name": str(call.get("name", "")),
            "content": outcome.content,
            "is_error": outcome.is_error,
        }
        for call, outcome in zip(event.calls, outcomes, strict=True)
    ]
    return IncomingEvent(
        event_id=message_id(event.event_id, "results"),
        conversation_id=event.conversation_id,
        application_id=event.application_id,
        created_at=max(clock(), event.created_at),  # never before the call, whatever the clocks say
        kind=KIND_TOOL_RESULTS,
        channel=event.channel,
        turn_id=event.turn_id,
        tool_round=event.tool_round,
        tool_results=results,
        replay_id=event.replay_id,
        deliver=event.deliver,
    )
