"""OpenAICompatibleModel against a scripted SSE server: the real SDK and its aiohttp transport,
the body parsed by Parley (tool calls, usage, errors and how they are classified for retries)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from parley.llm.base import LLMError, ToolCall
from parley.llm.openai_compat import OpenAICompatibleModel

#: What the server does for one request: writes pieces of the body, or answers a status.
Script = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def event(delta: dict[str, Any] | None = None, **chunk: Any) -> bytes:
    chunk.setdefault("choices", [{"index": 0, "delta": delta or {}, "finish_reason": None}])
    return f"data: {json.dumps({'id': 'c1', 'object': 'chat.completion.chunk', **chunk})}\n\n".encode()


def pieces(*parts: bytes) -> Script:
    async def write(request: web.Request, response: web.StreamResponse) -> None:
        for part in parts:
            await response.write(part)
            await asyncio.sleep(0.001)  # separate reads on the client side

    return write


class Server:
    def __init__(self) -> None:
        self.script: Script = pieces(b"data: [DONE]\n\n")
        self.status: int | None = None
        self.error_breaks_off = False  # the body of the error status is cut short
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.json()))
        if self.status is not None and self.error_breaks_off:
            broken = web.StreamResponse(status=self.status, headers={"Content-Type": "application/json",
                                                                     "Content-Length": "200"})
            await broken.prepare(request)
            await broken.write(b'{"error": {"mess')
            assert request.transport is not None
            request.transport.close()
            return broken
        if self.status is not None:
            return web.json_response({"error": {"message": f"status {self.status}"}}, status=self.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await self.script(request, response)
        if not request.transport or request.transport.is_closing():
            return response
        await response.write_eof()
        return response


@pytest.fixture
async def server(aiohttp_server: Any) -> Server:
    fake = Server()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    fake.url = str((await aiohttp_server(app)).make_url("/v1"))
    return fake


async def complete(server: Server, timeout_s: float = 5.0) -> tuple[Any, list[str]]:
    model = OpenAICompatibleModel(api_key="k", base_url=server.url, model="m", timeout_s=timeout_s)
    deltas: list[str] = []

    async def on_delta(text: str) -> None:
        deltas.append(text)

    try:
        return await model.complete([{"role": "user", "content": "hi"}], [], on_delta), deltas
    finally:
        await model.close()


async def test_tool_calls_split_across_chunks_text_and_usage(server: Server) -> None:
    half = event({"tool_calls": [{"index": 0, "function": {"arguments": '{"expression": '}}]})
    server.script = pieces(
        b": keep-alive\r\n\r\n",
        event({"role": "assistant", "content": "Let me check."}),
        event({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "calculate", "arguments": ""}}]}),
        event({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "current_time", "arguments": '{"timezone": '}}]}),
        half[:20], half[20:],  # one event cut in the middle of a line
        event({"tool_calls": [{"index": 1, "function": {"arguments": '"UTC"}'}}]}).replace(b"\n", b"\r\n"),
        event({"tool_calls": [{"index": 0, "function": {"arguments": '"6*7"}'}}]}),
        event({}, choices=[{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]),
        event(choices=[], usage={"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}),
        b"data: [DONE]\n\n",
    )
    completion, deltas = await complete(server)

    assert completion.tool_calls == [
        ToolCall("call_a", "calculate", '{"expression": "6*7"}'),
        ToolCall("call_b", "current_time", '{"timezone": "UTC"}'),
    ]
    assert (completion.text, deltas) == ("Let me check.", ["Let me check."])
    assert (completion.prompt_tokens, completion.completion_tokens) == (12, 7)
    # The SDK still made the request: auth, path, model, streaming with usage.
    [(headers, body)] = server.requests
    assert headers["Authorization"] == "Bearer k"
    assert (body["model"], body["stream"], body["stream_options"]) == ("m", True, {"include_usage": True})
    assert body["messages"] == [{"role": "user", "content": "hi"}]


async def test_the_options_of_a_call_reach_the_request(server: Server) -> None:
    tools = [{"type": "function", "function": {"name": "calculate", "parameters": {"type": "object"}}}]
    model = OpenAICompatibleModel(api_key="k", base_url=server.url, model="m", timeout_s=5)

    async def on_delta(text: str) -> None:
        pass

    try:
        await model.complete([{"role": "user", "content": "é \u2028"}], tools, on_delta,
                             model="other", temperature=0.25, max_tokens=64)
        await model.complete([{"role": "user", "content": "hi"}], [], on_delta)
    finally:
        await model.close()
    [(headers, body), (_, plain)] = server.requests
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("AsyncOpenAI/Python")  # the SDK sent it
    assert body == {"model": "other", "messages": [{"role": "user", "content": "é \u2028"}], "stream": True,
                    "stream_options": {"include_usage": True}, "tools": tools, "temperature": 0.25,
                    "max_tokens": 64}
    # options left out are not sent at all (a provider may refuse a null temperature)
    assert set(plain) == {"model", "messages", "stream", "stream_options"} and plain["model"] == "m"


async def test_text_streams_chunk_by_chunk(server: Server) -> None:
    server.script = pieces(
        event({"role": "assistant", "content": ""}),
        event({"content": "Hel"}), event({"content": "lo"}),
        event({}, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        b"data: [DONE]\n\n",
    )
    completion, deltas = await complete(server)
    assert (completion.text, deltas, completion.tool_calls) == ("Hello", ["Hel", "lo"], [])


async def test_chunks_that_arrive_in_one_read_are_one_delta(server: Server) -> None:
    # a client behind a fast stream (or a busy worker) reads several chunks at once: one frame
    server.script = pieces(
        event({"role": "assistant", "content": ""}) + event({"content": "Hel"}) + event({"content": "lo"}),
        event({"content": ", world"}),
        event({}, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]) + b"data: [DONE]\n\n",
    )
    completion, deltas = await complete(server)
    assert (completion.text, deltas) == ("Hello, world", ["Hello", ", world"])


ERROR_EVENT = b'data: {"error": {"message": "The server had an error while processing", "type": "server_error"}}\n\n'


@pytest.mark.parametrize(
    ("body", "retryable", "says"),
    [
        # OpenAI's way of failing once the stream began; the SDK's stream raises APIError for it,
        # which was never retried (it moves on to the fallback model): kept.
        (ERROR_EVENT, False, "APIError: The server had an error while processing"),
        (b'data: {"choices": [{"delta": {"content": "x"\n\n', True, "not JSON"),
        (b"data: [1, 2]\n\n", True, "not a JSON object"),
        (b'data: {"choices": ["x"]}\n\n', True, "unexpected shape"),
    ],
    ids=["error-event", "malformed-json", "not-an-object", "bad-shape"],
)
async def test_a_bad_event_after_some_text_is_a_classified_error(
    server: Server, body: bytes, retryable: bool, says: str
) -> None:
    server.script = pieces(event({"content": "Hel"}), body, b"data: [DONE]\n\n")
    with pytest.raises(LLMError) as caught:
        await complete(server)
    assert caught.value.retryable is retryable
    assert says in str(caught.value) and "'m'" in str(caught.value)


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (401, False)])
async def test_error_statuses_are_classified(server: Server, status: int, retryable: bool) -> None:
    server.status = status
    with pytest.raises(LLMError, match=f"status {status}") as caught:
        await complete(server)
    assert caught.value.retryable is retryable


async def test_an_error_status_whose_body_breaks_off_is_retryable(server: Server) -> None:
    server.status, server.error_breaks_off = 502, True
    with pytest.raises(LLMError, match="'m' failed") as caught:
        await complete(server)
    assert caught.value.retryable  # the router tries again, then the fallback model


async def test_a_prompt_no_model_takes_as_json_is_refused_before_sending(server: Server) -> None:
    model = OpenAICompatibleModel(api_key="k", base_url=server.url, model="m", timeout_s=5)

    async def on_delta(text: str) -> None:
        pass

    try:
        with pytest.raises(LLMError, match="not JSON a model takes") as caught:
            await model.complete([{"role": "user", "content": "hi", "n": 2**70}], [], on_delta)
    finally:
        await model.close()
    assert not caught.value.retryable and server.requests == []


async def test_a_connection_dropped_mid_stream_is_retryable(server: Server) -> None:
    async def drop(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(event({"content": "Hel"}))
        await asyncio.sleep(0.01)
        assert request.transport is not None
        request.transport.close()

    server.script = drop
    with pytest.raises(LLMError, match="broke off") as caught:
        await complete(server)
    assert caught.value.retryable


async def test_a_stalled_stream_times_out_retryably(server: Server) -> None:
    async def stall(request: web.Request, response: web.StreamResponse) -> None:
        await response.write(event({"content": "Hel"}))
        await asyncio.sleep(1.0)

    server.script = stall
    with pytest.raises(LLMError, match="Timeout") as caught:
        await complete(server, timeout_s=0.2)
    assert caught.value.retryable
