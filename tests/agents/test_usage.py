"""The usage agent on a fresh app: the skeleton without a keyed runner (each event handled
inline, acked after), and a redelivered usage event counted once."""

from __future__ import annotations

import time

from parley.app import ParleyApp
from parley.streams.codec import encode
from parley.streams.usage import hour_of, usage_event
from tests.agents.harness import MemoryProducer, raw_channel, table_of, until


async def test_usage_is_counted_once_per_event(app: ParleyApp, broker: MemoryProducer) -> None:
    now = time.time()
    record = usage_event(
        event_id="e1", application_id="demo", chatbot_id="bot", model="m", prompt_tokens=10,
        completion_tokens=5, turns=1, at=now,
    )
    async with app.agents["parley.usage"].test_context(channel=raw_channel(app)) as agent:
        first = await agent.put(encode(record), key=b"demo")
        again = await agent.put(encode(record), key=b"demo")  # redelivered
        await until(lambda: first.message.acked and again.message.acked, what="both acks")

    counters = table_of(app, "usage")["demo"]["hours"][hour_of(now)]["bot"]
    assert counters == {"turns": 1, "prompt_tokens": 10, "completion_tokens": 5}
    assert broker.to("dead-letters") == []
