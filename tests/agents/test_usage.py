"""The usage agent on a fresh app: the batching skeleton (the waiting events of an application
counted together, one table write per batch, each acked after), a redelivered usage event
counted once, and a payload that does not decode dead-lettered alone."""

from __future__ import annotations

import time

from parley.app import ParleyApp
from parley.streams.codec import encode
from parley.streams.usage import hour_of, usage_event
from tests.agents.harness import MemoryProducer, put, raw_channel, table_of, until


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


async def test_a_burst_is_counted_in_fewer_table_writes_than_events_and_a_bad_event_is_dead_lettered_alone(
    app: ParleyApp, broker: MemoryProducer,
) -> None:
    now = time.time()

    def record(n: int) -> bytes:
        return encode(usage_event(
            event_id=f"turn-{n}", application_id="demo", chatbot_id="bot", model="m", prompt_tokens=10,
            completion_tokens=5, turns=1, at=now,
        ))

    payloads = [record(n) for n in range(100)]
    payloads[40] = b"not json"
    payloads.append(record(7))  # turn 7 redelivered within the burst
    async with app.agents["parley.usage"].test_context(channel=raw_channel(app)) as agent:
        events = [await put(agent, topic="usage", key=b"demo", value=value) for value in payloads]
        await until(lambda: all(e.message.acked for e in events), what="every ack")

    counters = table_of(app, "usage")["demo"]["hours"][hour_of(now)]["bot"]
    assert counters == {"turns": 99, "prompt_tokens": 990, "completion_tokens": 495}
    [letter] = broker.to("dead-letters")
    assert b"not json" not in letter.value and b"usage" in letter.value  # the original bytes, in base64
    writes = [s for s in broker.sent if s.topic.endswith("usage-changelog")]
    assert len(writes) < 50, f"{len(writes)} table writes for 101 events"
