"""TurnHandler: a scripted model, the real tool registry and a recording publisher."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from parley.config.models import ChatbotConfig
from parley.llm import Completion, LLMError, ToolCall
from parley.records import KIND_STOP, KIND_TOOL_RESULTS, FunctionCallEvent, IncomingEvent
from parley.streams.codec import encode
from parley.streams.conversation import ConversationState
from parley.streams.dispatch import run_tool_round
from parley.streams.turn_control import TurnControl, note_arrival
from parley.streams.turns import APOLOGY, TurnHandler, TurnOutput
from parley.tools import default_registry

CONFIG = ChatbotConfig(system_prompt="Be brief.", max_tool_rounds=2)
CALC = Completion(tool_calls=[ToolCall("call-1", "calculate", json.dumps({"expression": "6*7"}))])


class ScriptedModel:
    """Answers each call with the next scripted step: a text (streamed word by word), a
    Completion, or an exception to raise."""

    name = "scripted"

    def __init__(self, *steps: str | Completion | Exception) -> None:
        self.steps = list(steps)
        self.calls: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_delta: Any, **options: Any
    ) -> Completion:
        self.calls.append((messages, tools))
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        if isinstance(step, Completion):
            return step
        for word in step.split(" "):
            if on_delta is not None:  # None: nobody listens to this turn's deltas
                await on_delta(word + " ")
        return Completion(text=step)

    async def close(self) -> None:
        return None


class Harness:
    def __init__(self, *steps: str | Completion | Exception) -> None:
        self.model = ScriptedModel(*steps)
        self.tools = default_registry()
        self.frames: list[tuple[str, str, dict[str, Any]]] = []
        self.state = ConversationState()
        self.handler = TurnHandler(self.model, self.tools, self.publish, clock=lambda: 1000.0)

    async def publish(
        self, application_id: str, conversation_id: str, frame: dict[str, Any]
    ) -> None:
        self.frames.append((application_id, conversation_id, frame))

    async def handle(self, event: IncomingEvent) -> TurnOutput:
        return await self.handler.handle(event, self.state, CONFIG)

    async def results_for(self, call: FunctionCallEvent) -> IncomingEvent:
        return await run_tool_round(call, self.tools, timeout_s=1, clock=lambda: 1001.0)

    def deltas(self) -> list[dict[str, Any]]:
        return [f for _, _, f in self.frames if f["type"] == "delta"]


def user(event_id: str, text: str, channel: str = "websocket") -> IncomingEvent:
    return IncomingEvent(
        event_id=event_id, conversation_id="c1", application_id="demo", created_at=1.0, text=text,
        channel=channel,
    )


async def test_a_user_message_gets_one_streamed_reply() -> None:
    h = Harness("hello there friend")
    out = await h.handle(user("e1", "hi"))

    assert not out.function_calls and out.failure is None
    [reply] = out.replies
    assert (reply.in_reply_to, reply.text, reply.is_error) == ("e1", "hello there friend", False)
    assert (reply.application_id, reply.conversation_id) == ("demo", "c1")
    assert reply.channel == "websocket"
    deltas = h.deltas()
    assert [d["seq"] for d in deltas] == [0, 1, 2]
    assert {d["message_id"] for d in deltas} == {reply.event_id}
    assert "".join(d["text"] for d in deltas).strip() == reply.text
    assert {(a, c) for a, c, _ in h.frames} == {("demo", "c1")}
    prompt, tools = h.model.calls[0]
    assert prompt == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert {t["function"]["name"] for t in tools} == {"calculate", "current_time"}


@pytest.mark.parametrize("channel", ["telegram", "generic"])
async def test_a_platform_turn_publishes_no_frames(channel: str) -> None:
    # No socket can see a platform conversation's frames: the platform gets the final reply alone.
    h = Harness(CALC, "It is 42")
    [call] = (await h.handle(user("e1", "6*7?", channel))).function_calls
    out = await h.handle(await h.results_for(call))

    [reply] = out.replies
    assert (reply.text, reply.channel) == ("It is 42", channel)
    assert h.frames == [], "no delta or tool frame for a platform turn"


async def test_the_same_event_twice_is_answered_once() -> None:
    h = Harness("first answer")
    await h.handle(user("e1", "hi"))
    frames, history = len(h.frames), list(h.state.history)

    again = await h.handle(user("e1", "hi"))
    assert again.skipped and not again.replies and not again.function_calls
    assert len(h.frames) == frames and h.state.history == history
    assert len(h.model.calls) == 1


async def test_reply_ids_are_deterministic() -> None:
    first, second = Harness("same"), Harness("same")
    a = (await first.handle(user("e1", "hi"))).replies[0]
    b = (await second.handle(user("e1", "hi"))).replies[0]
    c = (await Harness("same").handle(user("e2", "hi"))).replies[0]
    assert a.event_id == b.event_id != c.event_id


async def test_a_tool_round_then_the_final_reply() -> None:
    h = Harness(CALC, "It is 42")
    out = await h.handle(user("e1", "what is 6*7?"))

    assert not out.replies
    [call] = out.function_calls
    assert (call.turn_id, call.tool_round) == ("e1", 0)
    assert call.calls == [CALC.tool_calls[0].to_dict()]
    assert h.state.awaiting is not None and h.state.awaiting["turn_id"] == "e1"
    assert [f["name"] for _, _, f in h.frames if f["type"] == "tool"] == ["calculate"]

    results = await h.results_for(call)
    assert (results.kind, results.turn_id, results.tool_round) == (KIND_TOOL_RESULTS, "e1", 0)
    out = await h.handle(results)

    [reply] = out.replies
    assert (reply.text, reply.in_reply_to) == ("It is 42", "e1")
    assert h.state.awaiting is None
    roles = [(m["role"], bool(m.get("tool_calls"))) for m in h.state.history]
    assert roles == [("user", False), ("assistant", True), ("tool", False), ("assistant", False)]
    tool_message = h.state.history[2]
    assert (tool_message["tool_call_id"], tool_message["content"]) == ("call-1", "6*7 = 42")
    # The model saw its own call and the result in OpenAI format.
    prompt, _ = h.model.calls[1]
    assert prompt[-2]["tool_calls"][0]["function"]["name"] == "calculate"
    assert prompt[-1] == {
        "role": "tool", "tool_call_id": "call-1", "name": "calculate", "content": "6*7 = 42"
    }


async def test_tool_round_ids_are_deterministic() -> None:
    a = (await Harness(CALC).handle(user("e1", "x"))).function_calls[0]
    b = (await Harness(CALC).handle(user("e1", "x"))).function_calls[0]
    assert a.event_id == b.event_id


@pytest.mark.parametrize("change", [{"turn_id": "other"}, {"tool_round": 1}])
async def test_stale_tool_results_are_ignored(change: dict[str, Any]) -> None:
    h = Harness(CALC, "It is 42")
    [call] = (await h.handle(user("e1", "6*7?"))).function_calls
    results = await h.results_for(call)
    stale = IncomingEvent.from_data({**results.asdict(), "event_id": "stale", **change})

    out = await h.handle(stale)
    assert out.skipped and not out.replies
    assert h.state.awaiting is not None and len(h.model.calls) == 1
    # The genuine results still complete the turn.
    assert [r.text for r in (await h.handle(results)).replies] == ["It is 42"]
    # Results arriving after the round is over are ignored too.
    late = IncomingEvent.from_data({**results.asdict(), "event_id": "late"})
    assert (await h.handle(late)).skipped


async def test_a_message_during_a_tool_round_is_answered_after_it() -> None:
    h = Harness(CALC, "It is 42", "You are welcome")
    [call] = (await h.handle(user("e1", "6*7?"))).function_calls

    queued = await h.handle(user("e2", "thanks"))
    assert not queued.replies and not queued.function_calls
    assert len(h.model.calls) == 1

    out = await h.handle(await h.results_for(call))
    assert [(r.in_reply_to, r.text) for r in out.replies] == [
        ("e1", "It is 42"),
        ("e2", "You are welcome"),
    ]
    assert out.replies[0].event_id != out.replies[1].event_id
    prompt, _ = h.model.calls[2]
    assert [m.get("content") for m in prompt[-2:]] == ["It is 42", "thanks"]
    assert h.state.queued == [] and h.state.awaiting is None


async def test_a_model_failure_becomes_an_apology() -> None:
    h = Harness(LLMError("openai: 503 Service Unavailable"))
    out = await h.handle(user("e1", "hi"))
    [reply] = out.replies
    assert (reply.text, reply.is_error, reply.in_reply_to) == (APOLOGY, True, "e1")
    assert out.failure is not None and "503" in out.failure


async def test_the_tool_round_limit_stops_a_model_that_keeps_calling_tools() -> None:
    h = Harness(CALC, CALC, CALC)
    [call] = (await h.handle(user("e1", "loop"))).function_calls
    [call] = (await h.handle(await h.results_for(call))).function_calls
    assert call.tool_round == 1
    out = await h.handle(await h.results_for(call))

    [reply] = out.replies
    assert not out.function_calls and not reply.is_error
    assert "stopped after 2 rounds" in reply.text
    assert h.model.calls[-1][1] == [], "no tools are offered once the limit is reached"
    assert h.state.awaiting is None


async def test_answers_are_never_stamped_before_their_question_when_clocks_disagree() -> None:
    # The gateway stamped the message at 5000.0; this worker's clock says 1000.0 (skewed).
    h = Harness(CALC, "it is 42")
    ahead = IncomingEvent(event_id="e1", conversation_id="c1", application_id="demo", created_at=5000.0, text="6*7?")
    out = await h.handle(ahead)
    [call] = out.function_calls
    assert call.created_at >= 5000.0
    results = await h.results_for(call)  # the dispatcher's clock says 1001.0
    assert results.created_at >= call.created_at
    [reply] = (await h.handle(results)).replies
    assert reply.created_at >= results.created_at


async def test_a_queued_message_is_answered_no_earlier_than_it_was_sent() -> None:
    h = Harness(CALC, "It is 42", "You are welcome")
    [call] = (await h.handle(user("e1", "6*7?"))).function_calls
    late = IncomingEvent(event_id="e2", conversation_id="c1", application_id="demo", created_at=5003.0, text="thanks")
    await h.handle(late)  # queued behind the tool round; its gateway's clock is ahead of everyone's
    out = await h.handle(await h.results_for(call))
    assert [r.in_reply_to for r in out.replies] == ["e1", "e2"]
    assert out.replies[1].created_at >= 5003.0


# --- stop ---------------------------------------------------------------------------------------
class DrippingModel:
    """Streams a word every 10 ms until cancelled: a long answer a user stops part way."""

    name = "dripping"

    def __init__(self) -> None:
        self.cancelled = False

    async def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_delta: Any, **options: Any) -> Completion:
        try:
            for i in range(1000):
                await on_delta(f"w{i} ")
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return Completion(text="never")

    async def close(self) -> None:
        return None


async def test_a_stop_cancels_the_streaming_turn_and_keeps_the_partial_answer() -> None:
    control = TurnControl()
    harness = Harness()
    model = DrippingModel()
    harness.handler = TurnHandler(model, harness.tools, harness.publish, clock=lambda: 1000.0, control=control)
    turn = asyncio.ensure_future(harness.handle(user("u1", "talk")))
    while len(harness.deltas()) < 3:
        await asyncio.sleep(0.005)
    reply_id = harness.deltas()[0]["message_id"]
    stop = IncomingEvent(event_id="s1", conversation_id="c1", application_id="demo", created_at=2.0, kind=KIND_STOP,
                         turn_id=reply_id)

    class Raw:
        value = encode(stop)

    note_arrival(control, Raw())  # as the processor's loop sees it, before its turn comes
    output = await asyncio.wait_for(turn, 1)
    assert model.cancelled
    [reply] = output.replies
    streamed = "".join(f["text"] for f in harness.deltas())
    assert reply.stopped and reply.text == streamed and reply.event_id == reply_id
    assert len(harness.deltas()) <= 5  # cancelled within a delta or so of the stop
    assert reply.html == f"<p>{streamed.strip()}</p>"
    assert harness.state.history[-1] == {"id": reply_id, "role": "assistant", "content": streamed}
    # the stop event itself, handled in its turn, does nothing
    assert (await harness.handle(stop)).skipped


async def test_a_stop_for_another_reply_stops_nothing() -> None:
    control = TurnControl()
    event = control.stoppable("demo/c1", "reply-1")
    assert not control.stop("demo/c1", "reply-2")
    assert not event.is_set()
    assert control.stop("demo/c1", "")
    assert event.is_set()
    control.done_streaming("demo/c1")
    assert not control.stop("demo/c1")


async def test_a_reply_carries_its_rendered_html() -> None:
    harness = Harness("**yes**")
    output = await harness.handle(user("u1", "hi"))
    assert output.replies[0].html == "<p><strong>yes</strong></p>"


async def test_an_answer_after_tools_names_them() -> None:
    harness = Harness(CALC, "It is 42.")
    first = await harness.handle(user("u1", "what is 6*7?"))
    [call] = first.function_calls
    second = await harness.handle(await harness.results_for(call))
    assert second.replies[0].tools == ["calculate"]
    third = Harness("plain")
    assert (await third.handle(user("u2", "hi"))).replies[0].tools == []
