"""The dispatcher agent on a fresh app: a tool round's results, failures included, go back on
``incoming`` as one tool-results event."""

from __future__ import annotations

from parley.app import ParleyApp
from parley.records import KIND_TOOL_RESULTS, FunctionCallEvent, IncomingEvent
from parley.streams.codec import decode, encode
from parley.tools import Tool
from tests.agents.harness import MemoryProducer, raw_channel, runner_of, until


async def explode() -> str:
    raise RuntimeError("the tool's backend is down")


async def test_a_failing_tool_becomes_an_error_result(app: ParleyApp, broker: MemoryProducer) -> None:
    app.parley_runtime.tools.add(Tool("explode", "always fails", {"type": "object", "properties": {}}, explode))
    call = FunctionCallEvent(
        event_id="calls-1", conversation_id="c1", application_id="demo", created_at=5.0,
        turn_id="e1", tool_round=1, channel="websocket",
        calls=[
            {"id": "a", "name": "explode", "arguments": "{}"},
            {"id": "b", "name": "calculate", "arguments": '{"expression": "6*7"}'},
        ],
    )
    dispatcher, runner = app.agents["parley.dispatcher"], runner_of(app, "dispatcher")
    async with dispatcher.test_context(channel=raw_channel(app)) as agent:
        event = await agent.put(encode(call), key=b"demo/c1")
        await until(lambda: event.message.acked, what="the event's ack")
        await runner.drain()

    assert broker.topics() == ["incoming"]  # the results; no dead letter
    [sent] = broker.to("incoming")
    results = decode(sent.value, IncomingEvent)
    assert sent.key == b"demo/c1"
    assert (results.kind, results.turn_id, results.tool_round) == (KIND_TOOL_RESULTS, "e1", 1)
    failed, worked = results.tool_results
    assert failed == {
        "tool_call_id": "a", "name": "explode", "content": "error: explode failed: RuntimeError", "is_error": True,
    }
    assert worked["tool_call_id"] == "b" and not worked["is_error"] and "42" in worked["content"]
