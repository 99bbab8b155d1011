"""The echo model, a dispatcher tool round, and archive documents."""

from __future__ import annotations

import json

import pytest

from parley.llm.echo import EchoModel
from parley.records import KIND_TOOL_RESULTS, FunctionCallEvent, IncomingEvent, ReplyEvent
from parley.streams.archive import document_for_calls, document_for_reply, documents_for_incoming
from parley.streams.dispatch import run_tool_round
from parley.tools import default_registry

TOOLS = default_registry().specs()
ENVELOPE = {"conversation_id": "c1", "application_id": "demo", "created_at": 5.0}


async def echo(messages: list[dict[str, str]], tools: list[dict]) -> tuple[str, list, list[str]]:
    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    completion = await EchoModel().complete(messages, tools, on_delta)
    return completion.text, completion.tool_calls, pieces


async def test_echo_streams_the_users_text() -> None:
    text, calls, pieces = await echo([{"role": "user", "content": "hello  there world"}], TOOLS)
    assert text == "echo: hello  there world" and calls == []
    assert len(pieces) > 1 and "".join(pieces) == text


@pytest.mark.parametrize(
    "question", ["what time is it in Asia/Tokyo?", "What's the time in Asia/Tokyo"]
)
async def test_echo_asks_for_the_time_tool(question: str) -> None:
    text, calls, pieces = await echo([{"role": "user", "content": question}], TOOLS)
    [call] = calls
    assert call.name == "current_time"
    assert json.loads(call.arguments) == {"timezone": "Asia/Tokyo"}
    assert text == "" and pieces == []


async def test_echo_calls_no_tool_when_none_is_offered() -> None:
    text, calls, _ = await echo([{"role": "user", "content": "what time is it in Asia/Tokyo"}], [])
    assert calls == [] and text == "echo: what time is it in Asia/Tokyo"


async def test_echo_reports_tool_results() -> None:
    messages = [
        {"role": "user", "content": "calculate 6*7"},
        {"role": "assistant", "content": None},
        {"role": "tool", "name": "calculate", "content": "6*7 = 42"},
    ]
    text, calls, _ = await echo(messages, TOOLS)
    assert text == "Tool results — calculate: 6*7 = 42" and calls == []


def function_call(event_id: str = "calls-1") -> FunctionCallEvent:
    return FunctionCallEvent(
        event_id=event_id,
        **ENVELOPE,
        turn_id="u1",
        tool_round=1,
        channel="generic",
        calls=[
            {"id": "a", "name": "calculate", "arguments": '{"expression": "2^8"}'},
            {"id": "b", "name": "current_time", "arguments": '{"timezone": "Europe/Paris"}'},
            {"id": "c", "name": "nope", "arguments": "{}"},
        ],
    )


async def test_a_tool_round_returns_one_result_per_call() -> None:
    registry = default_registry()
    results = await run_tool_round(function_call(), registry, timeout_s=1)

    assert isinstance(results, IncomingEvent) and results.kind == KIND_TOOL_RESULTS
    assert (results.turn_id, results.tool_round, results.channel) == ("u1", 1, "generic")
    assert (results.conversation_id, results.application_id) == ("c1", "demo")
    by_id = {r["tool_call_id"]: r for r in results.tool_results}
    assert list(by_id) == ["a", "b", "c"]
    assert (by_id["a"]["content"], by_id["a"]["is_error"]) == ("2^8 = 256", False)
    assert by_id["b"]["name"] == "current_time" and "Europe/Paris" in by_id["b"]["content"]
    assert by_id["c"]["is_error"] and "unknown tool" in by_id["c"]["content"]

    again = await run_tool_round(function_call(), registry, timeout_s=1)
    other = await run_tool_round(function_call("calls-2"), registry, timeout_s=1)
    assert again.event_id == results.event_id != other.event_id


async def test_archive_documents_for_a_whole_turn() -> None:
    user = IncomingEvent(event_id="u1", **ENVELOPE, text="2^8?", client_message_id="m1")
    calls = function_call()
    results = await run_tool_round(calls, default_registry(), timeout_s=1, clock=lambda: 5.0)
    reply = ReplyEvent(event_id="r1", **ENVELOPE, in_reply_to="u1", text="256")

    docs = [
        *documents_for_incoming(user),
        document_for_calls(calls),
        *documents_for_incoming(results),
        document_for_reply(reply),
    ]
    ids = [d["_id"] for d in docs]
    assert len(set(ids)) == len(docs)
    assert ids[0] == "u1" and ids[1] == "calls-1" and ids[-1] == "r1"
    turn = ["user", "tool_call", "tool", "tool", "tool", "assistant"]
    assert [d["role"] for d in docs] == turn
    # Same created_at throughout the turn: ``order`` alone restores it.
    in_order = sorted(reversed(docs), key=lambda d: (d["created_at"], d["order"]))  # noqa: C414 - from the wrong order
    assert [d["role"] for d in in_order] == turn
    assert docs[0]["text"] == "2^8?" and docs[-1]["text"] == "256"
    assert [d["tool_call_id"] for d in docs[2:5]] == ["a", "b", "c"]
    # Re-archiving the same events yields the same ids (upserts are no-ops).
    assert [d["_id"] for d in documents_for_incoming(results)] == ids[2:5]


async def test_echo_repeats_the_text_of_a_message_with_an_image() -> None:
    from parley.llm.echo import EchoModel

    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    content = [{"type": "text", "text": "look at this"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]
    completion = await EchoModel().complete([{"role": "user", "content": content}], [], on_delta)
    assert completion.text == "echo: look at this [image]"
