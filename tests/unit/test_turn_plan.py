"""The processor's policy (``streams.turn_plan``): what a turn's output becomes, without Kafka."""

from __future__ import annotations

import base64
from typing import Any

from parley.config.models import ChatbotConfig
from parley.records import FunctionCallEvent, IncomingEvent, ReplyEvent, UsageEvent
from parley.streams.codec import decode, encode
from parley.streams.conversation import ConversationState
from parley.streams.deadletters import RawEvent
from parley.streams.turn_plan import SKIP, Route, fetches_platform_files, plan_outputs
from parley.streams.turns import TurnOutput

ENVELOPE: dict[str, Any] = {"conversation_id": "c1", "application_id": "demo", "created_at": 1.0}
EVENT = IncomingEvent(event_id="e1", text="hello", **ENVELOPE)
RAW = RawEvent(topic="incoming", partition=3, offset=41, key=b"demo/c1", value=encode(EVENT))
BOT = ChatbotConfig(chatbot_id="bot-1")


def reply(event_id: str, *, is_error: bool = False) -> ReplyEvent:
    return ReplyEvent(event_id=event_id, in_reply_to="e1", text="hi", is_error=is_error, **ENVELOPE)


def calls(event_id: str) -> FunctionCallEvent:
    return FunctionCallEvent(
        event_id=event_id, turn_id="e1", tool_round=1, calls=[{"id": "a", "name": "calculate", "arguments": "{}"}],
        **ENVELOPE,
    )


def usage_in(plan_messages: list[tuple[Route, str, bytes]]) -> UsageEvent:
    [(_, key, value)] = [m for m in plan_messages if m[0] is Route.USAGE]
    assert key == "demo"  # the usage topic is keyed by application
    return decode(value, UsageEvent)


def test_a_reply_is_produced_then_its_usage_and_the_state_is_written() -> None:
    output = TurnOutput(replies=[reply("r1")], prompt_tokens=12, completion_tokens=3, model="m-1")
    plan = plan_outputs(RAW, EVENT, output, BOT)

    assert [(route, key) for route, key, _ in plan.messages] == [(Route.OUTGOING, "demo/c1"), (Route.USAGE, "demo")]
    assert decode(plan.messages[0][2], ReplyEvent).event_id == "r1"
    usage = usage_in(plan.messages)
    assert (usage.event_id, usage.chatbot_id, usage.model) == ("e1", "bot-1", "m-1")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.turns) == (12, 3, 1)
    assert plan.write_state and plan.dead_letter is None


def test_tool_calls_go_before_replies_and_usage_last() -> None:
    output = TurnOutput(replies=[reply("r1")], function_calls=[calls("k1")], prompt_tokens=1)
    plan = plan_outputs(RAW, EVENT, output, BOT)
    assert [route for route, _, _ in plan.messages] == [Route.FUNCTION_CALL, Route.OUTGOING, Route.USAGE]


def test_a_tool_round_without_tokens_or_replies_has_no_usage_record() -> None:
    plan = plan_outputs(RAW, EVENT, TurnOutput(function_calls=[calls("k1")]), BOT)
    assert [(route, key) for route, key, _ in plan.messages] == [(Route.FUNCTION_CALL, "demo/c1")]
    assert plan.write_state


def test_a_skipped_event_produces_nothing_and_writes_no_state() -> None:
    plan = plan_outputs(RAW, EVENT, TurnOutput(skipped=True), BOT)
    assert plan == SKIP and plan.messages == [] and not plan.write_state and plan.dead_letter is None


def test_a_model_failure_is_answered_and_also_dead_lettered_with_the_original_bytes() -> None:
    output = TurnOutput(replies=[reply("r1", is_error=True)], failure="model unavailable: 503")
    plan = plan_outputs(RAW, EVENT, output, BOT)

    assert [route for route, _, _ in plan.messages] == [Route.OUTGOING, Route.USAGE]
    assert usage_in(plan.messages).turns == 0  # an error reply is not an answered turn
    assert plan.write_state
    letter = plan.dead_letter
    assert letter is not None
    assert (letter.stage, letter.error, letter.error_type, letter.attempts) == (
        "processor.llm", "model unavailable: 503", "RuntimeError", 1,
    )
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("incoming", 3, 41, "demo/c1")
    assert base64.b64decode(letter.original_b64) == RAW.value


def test_platform_files_are_fetched_only_for_an_event_not_yet_applied() -> None:
    with_file = IncomingEvent(
        event_id="e2", text="", attachments=[{"platform": "telegram", "file_id": "f1"}], **ENVELOPE,
    )
    state = ConversationState()
    assert not fetches_platform_files(EVENT, state)  # no files
    assert fetches_platform_files(with_file, state)
    state.mark_applied("e2")
    assert not fetches_platform_files(with_file, state)  # a redelivery: the turn is skipped anyway
