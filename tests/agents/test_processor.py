"""The processor agent on a fresh app: outputs before state, dead letters, redeliveries."""

from __future__ import annotations

import base64

from parley.app import ParleyApp
from parley.records import DeadLetter, IncomingEvent, ReplyEvent, UsageEvent
from parley.settings import Settings
from parley.streams.codec import decode, encode
from parley.streams.conversation import ConversationState
from tests.agents.harness import Configs, MemoryProducer, raw_channel, runner_of, table_of, until

KEY = "demo/c1"


def user(event_id: str, text: str) -> IncomingEvent:
    return IncomingEvent(
        event_id=event_id, conversation_id="c1", application_id="demo", created_at=1.0, text=text,
        channel="websocket",
    )


def state_of(app: ParleyApp) -> ConversationState | None:
    value = table_of(app, "conversations").get(KEY)
    return None if value is None else ConversationState.from_value(value)


def changelog(settings: Settings) -> str:
    return f"{settings.app_id}-conversations-changelog"


async def test_a_turns_outputs_are_on_the_broker_before_its_state_is_written(
    app: ParleyApp, broker: MemoryProducer, settings: Settings
) -> None:
    processor, runner = app.agents["parley.processor"], runner_of(app, "processor")
    broker.hold_acks()
    async with processor.test_context(channel=raw_channel(app)) as agent:
        event = await agent.put(encode(user("e1", "hello there")), key=KEY.encode())
        await until(lambda: "usage" in broker.topics(), what="the turn's outputs to be sent")

        # sent, not yet acked by the broker: no state, and the event is not acked either
        assert broker.topics() == ["outgoing", "usage"]
        assert state_of(app) is None
        assert not event.message.acked

        broker.release_acks()
        await until(lambda: event.message.acked, what="the event's ack")
        await runner.drain()

    assert broker.topics() == ["outgoing", "usage", changelog(settings)]
    [sent] = broker.to("outgoing")
    reply = decode(sent.value, ReplyEvent)
    assert (sent.key, reply.in_reply_to, reply.text) == (KEY.encode(), "e1", "echo: hello there")
    usage = decode(broker.to("usage")[0].value, UsageEvent)
    assert (usage.event_id, usage.turns) == ("e1", 1)
    state = state_of(app)
    assert state is not None and state.seen("e1")
    assert [m["content"] for m in state.history] == ["hello there", "echo: hello there"]


async def test_a_failing_handler_is_retried_then_dead_lettered_with_the_original_bytes(
    app: ParleyApp, broker: MemoryProducer, configs: Configs, settings: Settings
) -> None:
    configs.fail = ConnectionError("config store unreachable")
    value = encode(user("e1", "hello"))
    processor, runner = app.agents["parley.processor"], runner_of(app, "processor")
    broker.hold_acks()
    async with processor.test_context(channel=raw_channel(app)) as agent:
        event = await agent.put(value, key=KEY.encode())
        await until(lambda: broker.to("dead-letters"), what="the dead letter")
        assert not event.message.acked  # not before the dead letter is on the broker

        broker.release_acks()
        await until(lambda: event.message.acked, what="the event's ack")
        await runner.drain()

    assert configs.reads == settings.handler_max_attempts == 2
    assert broker.topics() == ["dead-letters"]  # no reply, no usage, no state
    [sent] = broker.to("dead-letters")
    letter = decode(sent.value, DeadLetter)
    assert sent.key == KEY.encode()
    assert (letter.stage, letter.error_type) == ("processor", "ConnectionError")
    assert letter.error == "config store unreachable"
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("incoming", 0, event.message.offset, KEY)
    assert letter.attempts == 2
    assert base64.b64decode(letter.original_b64) == value
    assert state_of(app) is None


async def test_bytes_that_do_not_decode_are_dead_lettered_at_once(
    app: ParleyApp, broker: MemoryProducer, configs: Configs
) -> None:
    garbage = b"\xff not an event"
    processor, runner = app.agents["parley.processor"], runner_of(app, "processor")
    async with processor.test_context(channel=raw_channel(app)) as agent:
        event = await agent.put(garbage, key=b"bad-conversation")
        await until(lambda: event.message.acked, what="the event's ack")
        await runner.drain()

    [sent] = broker.to("dead-letters")
    letter = decode(sent.value, DeadLetter)
    assert (letter.stage, letter.error_type, letter.attempts) == ("processor", "DecodeError", 1)
    assert base64.b64decode(letter.original_b64) == garbage
    assert configs.reads == 0 and broker.topics() == ["dead-letters"]


async def test_an_event_already_applied_is_skipped(
    app: ParleyApp, broker: MemoryProducer, settings: Settings
) -> None:
    value = encode(user("e1", "hello"))
    processor, runner = app.agents["parley.processor"], runner_of(app, "processor")
    async with processor.test_context(channel=raw_channel(app)) as agent:
        first = await agent.put(value, key=KEY.encode())
        await until(lambda: first.message.acked, what="the first delivery's ack")
        again = await agent.put(value, key=KEY.encode())  # redelivered, e.g. after a crash
        await until(lambda: again.message.acked, what="the redelivery's ack")
        await runner.drain()

    assert again.message.offset == first.message.offset + 1
    assert broker.topics() == ["outgoing", "usage", changelog(settings)]  # once, for the first
    state = state_of(app)
    assert state is not None and state.applied.count("e1") == 1
