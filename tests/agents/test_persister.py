"""The persister agent on a fresh app: an event is acked only once its documents are archived,
and a reply is delivered only after it is archived."""

from __future__ import annotations

import asyncio
import base64

from parley.app import ParleyApp
from parley.records import DeadLetter, IncomingEvent, ReplyEvent
from parley.storage.bus import InProcessBus, conversation_channel
from parley.streams.codec import decode, encode
from parley.streams.delivery import websocket_frame
from tests.agents.harness import Archive, MemoryProducer, put, raw_channel, runner_of, until

KEY = b"demo/c1"


def reply(event_id: str = "r1") -> ReplyEvent:
    return ReplyEvent(
        event_id=event_id, conversation_id="c1", application_id="demo", created_at=2.0,
        in_reply_to="e1", text="hi!", channel="websocket",
    )


async def test_a_reply_is_acked_only_after_it_is_archived_and_then_delivered(
    app: ParleyApp, archive: Archive, bus: InProcessBus, broker: MemoryProducer
) -> None:
    persister, runner = app.agents["parley.persister"], runner_of(app, "persister")
    archive.open.clear()  # the document store takes the write but has not answered yet
    async with bus.subscribe(conversation_channel("demo", "c1")) as client:
        async with persister.test_context(channel=raw_channel(app)) as agent:
            event = await put(agent, topic="outgoing", key=KEY, value=encode(reply()))
            await until(lambda: archive.writes, what="the archive write")
            await asyncio.sleep(0.05)  # time enough to ack or deliver, were it to do so early
            assert not event.message.acked
            assert client.queue.empty()

            archive.open.set()
            await until(lambda: event.message.acked, what="the event's ack")
            await runner.drain()

        assert client.queue.get_nowait() == websocket_frame(reply())
    assert list(archive.documents) == ["r1"]
    assert broker.sent == []  # nothing dead-lettered


async def test_a_user_message_is_acked_only_after_it_is_archived(app: ParleyApp, archive: Archive) -> None:
    persister, runner = app.agents["parley.persister"], runner_of(app, "persister")
    message = IncomingEvent(
        event_id="e1", conversation_id="c1", application_id="demo", created_at=1.0, text="hello",
    )
    archive.open.clear()
    async with persister.test_context(channel=raw_channel(app)) as agent:
        event = await put(agent, topic="incoming", key=KEY, value=encode(message))
        await until(lambda: archive.writes, what="the archive write")
        await asyncio.sleep(0.05)
        assert not event.message.acked

        archive.open.set()
        await until(lambda: event.message.acked, what="the event's ack")
        await runner.drain()

    assert archive.documents["e1"]["text"] == "hello"


async def test_what_cannot_be_archived_is_dead_lettered_under_its_topics_stage(
    app: ParleyApp, archive: Archive, broker: MemoryProducer
) -> None:
    persister, runner = app.agents["parley.persister"], runner_of(app, "persister")
    async with persister.test_context(channel=raw_channel(app)) as agent:
        event = await put(agent, topic="outgoing", key=KEY, value=b"{not json")
        await until(lambda: event.message.acked, what="the event's ack")
        await runner.drain()

    [sent] = broker.to("dead-letters")
    letter = decode(sent.value, DeadLetter)
    assert (letter.stage, letter.topic, letter.error_type) == ("persister.outgoing", "outgoing", "DecodeError")
    assert base64.b64decode(letter.original_b64) == b"{not json"
    assert archive.writes == []
