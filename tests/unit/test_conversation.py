"""Conversation state, history trimming and prompt building."""

from __future__ import annotations

import json
from typing import Any

from parley.streams.conversation import (
    APPLIED_MEMORY,
    ConversationState,
    build_prompt,
    trim_history,
)


def _tool_turn(n: int, calls: int) -> list[dict[str, Any]]:
    ids = [f"call-{n}-{i}" for i in range(calls)]
    return [
        {"id": f"u{n}", "role": "user", "content": f"question {n}", "channel": "websocket"},
        {
            "id": f"c{n}",
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": i, "type": "function", "function": {"name": "calculate", "arguments": "{}"}}
                for i in ids
            ],
        },
        *({"id": f"t-{i}", "role": "tool", "tool_call_id": i, "name": "calculate", "content": "2"}
          for i in ids),
        {"id": f"a{n}", "role": "assistant", "content": f"answer {n}"},
    ]


# Plain turns and tool turns with 1-3 parallel calls, 19 messages in all.
HISTORY = [
    *_tool_turn(0, 2),
    {"id": "u1", "role": "user", "content": "hi"},
    {"id": "a1", "role": "assistant", "content": "hello"},
    *_tool_turn(2, 3),
    *_tool_turn(3, 1),
    {"id": "u4", "role": "user", "content": "bye"},
    {"id": "a4", "role": "assistant", "content": "bye!"},
]


def _assert_coherent(messages: list[dict[str, Any]]) -> None:
    """Every tool message answers a tool_calls message before it, and every tool_calls
    message is followed by all of its results."""
    if messages:
        assert messages[0]["role"] != "tool"
    pending: set[str] = set()
    for message in messages:
        if message["role"] == "tool":
            assert message["tool_call_id"] in pending, messages
            pending.discard(message["tool_call_id"])
        else:
            assert not pending, f"tool results {pending} split from their call"
            pending = {c["id"] for c in message.get("tool_calls") or []}
    assert not pending, f"tool results {pending} cut off"


def test_trim_history_never_splits_tool_calls_from_their_results() -> None:
    for max_messages in range(2, len(HISTORY) + 2):
        kept = trim_history(HISTORY, max_messages)
        assert len(kept) <= max_messages
        _assert_coherent(kept)
        assert kept == HISTORY[len(HISTORY) - len(kept):], "keeps a contiguous recent suffix"
        if any(m["role"] == "user" for m in HISTORY[-max_messages:]):
            assert kept[0]["role"] == "user"


def test_trim_history_keeps_the_most_recent_turns() -> None:
    assert trim_history(HISTORY, 2) == HISTORY[-2:]
    assert trim_history(HISTORY, 100) == HISTORY
    kept = trim_history(HISTORY, 7)  # the window starts at a2: dropped to start at u3
    assert [m["id"] for m in kept] == ["u3", "c3", "t-call-3-0", "a3", "u4", "a4"]


def test_build_prompt_puts_the_system_prompt_first_and_sends_only_wire_keys() -> None:
    prompt = build_prompt("Be brief.", HISTORY, 8)
    assert prompt[0] == {"role": "system", "content": "Be brief."}
    assert prompt[1] == {"role": "user", "content": "question 3"}
    allowed = {"role", "content", "tool_calls", "tool_call_id", "name"}
    assert all(set(m) <= allowed for m in prompt)
    assert prompt[2]["tool_calls"][0]["id"] == "call-3-0"
    assert prompt[3] == {
        "role": "tool", "tool_call_id": "call-3-0", "name": "calculate", "content": "2"
    }
    assert build_prompt("", HISTORY, 2) == [
        {"role": "user", "content": "bye"},
        {"role": "assistant", "content": "bye!"},
    ]


def test_state_round_trips_through_json() -> None:
    state = ConversationState(
        history=HISTORY[:4],
        applied=["e1", "e2"],
        awaiting={"turn_id": "u0", "tool_round": 1, "call_ids": ["x"], "channel": "generic"},
        queued=[{"id": "u9", "role": "user", "content": "later"}],
    )
    restored = ConversationState.from_value(json.loads(json.dumps(state.to_value())))
    assert restored == state
    assert restored.seen("e2") and not restored.seen("e3")
    assert ConversationState.from_value(None) == ConversationState()
    assert ConversationState.from_value("garbage") == ConversationState()


def test_applied_is_bounded_and_forgets_the_oldest() -> None:
    state = ConversationState()
    for i in range(APPLIED_MEMORY + 100):
        state.mark_applied(f"e{i}")
    assert len(state.applied) == APPLIED_MEMORY
    assert not state.seen("e0") and not state.seen("e99")
    assert state.seen("e100") and state.seen(f"e{APPLIED_MEMORY + 99}")
