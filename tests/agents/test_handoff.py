"""Human handoff through the agents on a fresh app: the processor applies take over, operator
message and hand back to the conversations table in order with the user's messages; the
persister archives them and delivers the operator's message with their name."""

from __future__ import annotations

from parley.app import ParleyApp
from parley.records import KIND_HAND_BACK, KIND_HANDOFF, IncomingEvent, ReplyEvent
from parley.storage.bus import InProcessBus, conversation_channel
from parley.streams.codec import decode, encode
from parley.streams.conversation import ConversationState
from parley.streams.handoff import control_event, operator_event
from tests.agents.harness import Archive, MemoryProducer, put, raw_channel, runner_of, table_of, until

KEY = "demo/c1"


def user(event_id: str, text: str) -> IncomingEvent:
    return IncomingEvent(
        event_id=event_id, conversation_id="c1", application_id="demo", created_at=1.0, text=text,
        channel="websocket", sender="ann",
    )


def control(kind: str, request: str) -> IncomingEvent:
    return control_event(
        kind, application_id="demo", conversation_id="c1", operator_id="u-7", operator_name="Alice",
        channel="websocket", request_id=request,
    )


OPERATOR = operator_event(
    application_id="demo", conversation_id="c1", operator_id="u-7", operator_name="Alice",
    text="Alice here, I can help.", channel="websocket", client_message_id="o-1",
)


def state(app: ParleyApp) -> ConversationState:
    return ConversationState.from_value(table_of(app, "conversations").get(KEY))


async def test_the_processor_holds_a_taken_over_conversation_and_sends_the_operators_message(
    app: ParleyApp, broker: MemoryProducer, bus: InProcessBus
) -> None:
    processor, runner = app.agents["parley.processor"], runner_of(app, "processor")
    async with bus.subscribe(conversation_channel("demo", "c1")) as socket:
        async with processor.test_context(channel=raw_channel(app)) as agent:
            events = [
                await agent.put(encode(user("e1", "hello")), key=KEY.encode()),
                await agent.put(encode(control(KIND_HANDOFF, "r1")), key=KEY.encode()),
                await agent.put(encode(user("e2", "a person please")), key=KEY.encode()),
                await agent.put(encode(OPERATOR), key=KEY.encode()),
                await agent.put(encode(OPERATOR), key=KEY.encode()),  # redelivered
            ]
            await until(lambda: all(e.message.acked for e in events), what="every event's ack")
            await runner.drain()
            held = state(app)
            assert held.handoff is not None and held.handoff["operator_name"] == "Alice"

            back = await agent.put(encode(control(KIND_HAND_BACK, "r2")), key=KEY.encode())
            after = await agent.put(encode(user("e3", "thanks")), key=KEY.encode())
            await until(lambda: back.message.acked and after.message.acked, what="the hand back and the next turn")
            await runner.drain()

        frames = []
        while not socket.queue.empty():
            frames.append(socket.queue.get_nowait())
    replies = [decode(s.value, ReplyEvent) for s in broker.to("outgoing")]
    # the model answered e1 and e3 only; the operator's message was sent once
    assert [(r.role, r.in_reply_to, r.text) for r in replies] == [
        ("assistant", "e1", "echo: hello"),
        ("operator", "e2", "Alice here, I can help."),
        ("assistant", "e3", "echo: thanks"),
    ]
    assert (replies[1].operator_id, replies[1].operator_name, replies[1].channel) == ("u-7", "Alice", "websocket")
    assert len(broker.to("usage")) == 2  # an operator's message is no model turn
    final = state(app)
    assert final.handoff is None
    assert [(m["role"], m["content"]) for m in final.history] == [
        ("user", "hello"), ("assistant", "echo: hello"), ("user", "a person please"),
        ("assistant", "Alice here, I can help."), ("user", "thanks"), ("assistant", "echo: thanks"),
    ]
    handoffs = [f for f in frames if f["type"] == "handoff"]
    assert [(f["state"], f["operator"]) for f in handoffs] == [("operator", {"name": "Alice"}), ("assistant", None)]


async def test_the_persister_archives_the_handoff_and_delivers_the_operators_message_with_their_name(
    app: ParleyApp, archive: Archive, bus: InProcessBus
) -> None:
    persister, runner = app.agents["parley.persister"], runner_of(app, "persister")
    taken = control(KIND_HANDOFF, "r1")
    reply = ReplyEvent(
        event_id="op-reply", conversation_id="c1", application_id="demo", created_at=3.0, in_reply_to="e2",
        text="Alice here.", role="operator", channel="websocket", operator_id="u-7", operator_name="Alice",
    )
    async with bus.subscribe(conversation_channel("demo", "c1")) as socket:
        async with persister.test_context(channel=raw_channel(app)) as agent:
            events = [
                await put(agent, topic="incoming", key=KEY.encode(), value=encode(taken)),
                await put(agent, topic="incoming", key=KEY.encode(), value=encode(OPERATOR)),
                await put(agent, topic="outgoing", key=KEY.encode(), value=encode(reply)),
            ]
            await until(lambda: all(e.message.acked for e in events), what="every event's ack")
            await runner.drain()
        frame = socket.queue.get_nowait()
    assert frame["type"] == "message" and frame["role"] == "operator"
    assert (frame["text"], frame["operator"]) == ("Alice here.", {"name": "Alice"})
    docs = archive.documents
    assert docs[taken.event_id]["role"] == "handoff" and docs[taken.event_id]["action"] == "take_over"
    assert docs[taken.event_id]["operator"] == {"id": "u-7", "name": "Alice"}
    assert OPERATOR.event_id not in docs  # archived once, as its reply
    assert docs["op-reply"]["operator"] == {"id": "u-7", "name": "Alice"}
    assert (docs["op-reply"]["role"], docs["op-reply"]["channel"]) == ("operator", "websocket")
