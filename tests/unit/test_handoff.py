"""Human handoff in TurnHandler: while an operator holds a conversation the model is silent,
the operator's messages become replies, and after the hand back the model reads it all."""

from __future__ import annotations

from parley.config.models import ChatbotConfig
from parley.records import KIND_HAND_BACK, KIND_HANDOFF, KIND_TOOL_RESULTS, IncomingEvent
from parley.streams.codec import encode
from parley.streams.deadletters import RawEvent
from parley.streams.handoff import control_event, operator_event, operator_reply_id
from parley.streams.turn_plan import plan_outputs
from tests.unit.test_turns import CALC, Harness

CONFIG = ChatbotConfig(system_prompt="Be brief.", max_tool_rounds=2)


def user(event_id: str, text: str, channel: str = "websocket") -> IncomingEvent:
    return IncomingEvent(
        event_id=event_id, conversation_id="c1", application_id="app", created_at=10.0, text=text,
        channel=channel, sender="ann",
    )


def take_over(request: str = "r1") -> IncomingEvent:
    return control_event(
        KIND_HANDOFF, application_id="app", conversation_id="c1", operator_id="u-7", operator_name="Alice",
        channel="websocket", request_id=request,
    )


def hand_back(request: str = "r2") -> IncomingEvent:
    return control_event(
        KIND_HAND_BACK, application_id="app", conversation_id="c1", operator_id="u-7", operator_name="Alice",
        channel="websocket", request_id=request,
    )


def operator(text: str, client_id: str = "o1") -> IncomingEvent:
    return operator_event(
        application_id="app", conversation_id="c1", operator_id="u-7", operator_name="Alice", text=text,
        channel="websocket", client_message_id=client_id,
    )


async def test_during_a_handoff_the_model_is_not_called_and_the_operator_answers() -> None:
    h = Harness("Hello! How can I help?", "Glad Alice could help.")
    await h.handler.handle(user("u1", "hi"), h.state, CONFIG)
    assert len(h.model.calls) == 1

    taken = take_over()
    out = await h.handler.handle(taken, h.state, CONFIG)
    assert (out.replies, out.skipped) == ([], False)
    assert h.state.handoff == {"operator_id": "u-7", "operator_name": "Alice", "since": taken.created_at}
    assert h.frames[-1] == (
        "app", "c1", {"type": "handoff", "state": "operator", "operator": {"name": "Alice"}, "created_at": taken.created_at},
    )

    out = await h.handler.handle(user("u2", "I want a human"), h.state, CONFIG)
    assert out.replies == [] and len(h.model.calls) == 1  # archived, held, not answered

    event = operator("Hi, Alice here. Let me check.")
    out = await h.handler.handle(event, h.state, CONFIG)
    [reply] = out.replies
    assert reply.event_id == operator_reply_id(event.event_id)
    assert (reply.role, reply.operator_id, reply.operator_name) == ("operator", "u-7", "Alice")
    assert (reply.text, reply.in_reply_to, reply.channel) == ("Hi, Alice here. Let me check.", "u2", "websocket")
    # an operator's message is no model turn: no usage record
    plan = plan_outputs(RawEvent("incoming", 0, 0, b"k", encode(event)), event, out, CONFIG)
    assert [route for route, _, _ in plan.messages] == ["outgoing"]

    again = await h.handler.handle(operator("Hi, Alice here. Let me check."), h.state, CONFIG)
    assert again.skipped  # the same event redelivered is applied once

    await h.handler.handle(hand_back(), h.state, CONFIG)
    assert h.state.handoff is None
    assert h.frames[-1][2]["state"] == "assistant"

    out = await h.handler.handle(user("u3", "thanks, all good"), h.state, CONFIG)
    assert [r.text for r in out.replies] == ["Glad Alice could help."]
    prompt, _ = h.model.calls[-1]
    said = [(m["role"], m["content"]) for m in prompt if m["role"] != "system"]
    assert said == [
        ("user", "hi"), ("assistant", "Hello! How can I help?"), ("user", "I want a human"),
        ("assistant", "Hi, Alice here. Let me check."), ("user", "thanks, all good"),
    ]


async def test_a_take_over_during_a_tool_round_closes_it_and_its_late_results_are_ignored() -> None:
    h = Harness(CALC)
    out = await h.handler.handle(user("u1", "what is 6*7"), h.state, CONFIG)
    [calls] = out.function_calls
    assert h.state.awaiting is not None

    await h.handler.handle(take_over(), h.state, CONFIG)
    assert h.state.awaiting is None
    tool_messages = [m for m in h.state.history if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_messages] == ["call-1"]
    assert "operator took over" in tool_messages[0]["content"]

    late = IncomingEvent(
        event_id="results-1", conversation_id="c1", application_id="app", created_at=11.0, kind=KIND_TOOL_RESULTS,
        turn_id=calls.turn_id, tool_round=calls.tool_round,
        tool_results=[{"tool_call_id": "call-1", "name": "calculate", "content": "42"}],
    )
    out = await h.handler.handle(late, h.state, CONFIG)
    assert out.skipped and out.replies == [] and len(h.model.calls) == 1


async def test_a_platform_conversation_gets_its_operator_reply_on_its_own_channel_and_no_frames() -> None:
    h = Harness()
    h.state.handoff = {"operator_id": "u-7", "operator_name": "Alice", "since": 1.0}
    await h.handler.handle(user("t1", "hello", channel="telegram"), h.state, CONFIG)
    out = await h.handler.handle(operator("Alice here"), h.state, CONFIG)
    [reply] = out.replies
    assert reply.channel == "telegram"
    await h.handler.handle(hand_back(), h.state, CONFIG)
    assert h.frames == []  # a platform has no socket to tell


def test_an_operators_reply_names_them_on_the_websocket_and_the_callback_but_not_their_account() -> None:
    from parley.channels.generic import reply_payload
    from parley.records import ReplyEvent
    from parley.streams.delivery import websocket_frame

    reply = ReplyEvent(
        event_id="r1", conversation_id="c1", application_id="app", created_at=1.0, text="Alice here",
        role="operator", operator_id="usr_123", operator_name="Alice",
    )
    for frame in (websocket_frame(reply), reply_payload(reply)):
        assert (frame["role"], frame["operator"], frame["text"]) == ("operator", {"name": "Alice"}, "Alice here")
        assert "usr_123" not in str(frame)
    assistant = ReplyEvent(event_id="r2", conversation_id="c1", application_id="app", created_at=1.0, text="hi")
    assert "operator" not in websocket_frame(assistant) and "operator" not in reply_payload(assistant)
