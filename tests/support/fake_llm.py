"""A fake OpenAI-compatible chat completions server, run in a thread, so tests exercise the real
``openai`` SDK over HTTP with SSE streaming and tool calls.

Behaviour, chosen by the last message:
- role ``tool``: streams "The tool said: <content>".
- user text containing "time in <Zone>": streams a ``tool_calls`` response for current_time.
- user text containing "calc both": two tool calls in one response (calculate twice).
- user text containing "llm-down", or model "down-500": HTTP 500 every time.
- model "flaky-429": HTTP 429 for the first two calls of each conversation text, then answers.
- model "always-slow": never answers within any sane timeout.
- model "echo-key": HTTP 401 whose message quotes the API key it was sent, as some providers
  do for a bad key (whatever the key: the canary test checks it never reaches a log).
- model "slow-Ns" (slow-2s, slow-6s…): answers normally after N seconds.
- model "words-N" (words-200…): streams N words, one chunk each (a long answer, for benchmarks).
- model "drip-N" (drip-40…): streams N words, one chunk every 0.15 s (an answer slow enough to
  be stopped part way).
- user text containing "hang-once": the first call for that text never answers (until its
  client goes away); later calls answer normally.
- user text containing "drop-once": the first call for that text streams "You said" and then
  drops the connection mid-stream; later calls answer normally.
- otherwise: streams "You said: <text>" in three chunks, ``token_gap_s`` apart.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from typing import Any, ClassVar

from aiohttp import web

from tests.support.threaded import ThreadedServer

#: Between the pieces of a streamed answer in the tests: a model streams its tokens over time, and
#: a client turns the chunks of one read into one delta, so tests of streaming need reads apart.
#: The benchmarks send the pieces back to back (``--token-gap 0``), as in every recorded figure.
TOKEN_GAP_S = 0.02


class FakeLLM(ThreadedServer):
    # Cancel a handler when its client goes away (a timed-out call), and don't wait long for
    # sleeping handlers at shutdown.
    runner_options: ClassVar[dict[str, Any]] = {"shutdown_timeout": 1.0, "handler_cancellation": True}

    def __init__(self, delay_s: float = 0.0, token_gap_s: float = TOKEN_GAP_S) -> None:
        super().__init__()
        self.delay_s = delay_s  # added before every answer (benchmarks: a model that takes 1 s)
        self.token_gap_s = token_gap_s
        self.requests: list[dict[str, Any]] = []
        self.failures: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("model") == "echo-key":
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            return web.json_response({"error": {"message": f"Incorrect API key provided: {key}. You can find your API key at https://platform.example/account/api-keys?key={key}"}}, status=401)
        if request.headers.get("Authorization") != "Bearer test-key":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        self.requests.append(body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        messages = body["messages"]
        last = messages[-1]
        if body["model"] == "down-500" or (last["role"] == "user" and "llm-down" in last["content"]):
            return web.json_response({"error": {"message": "upstream exploded"}}, status=500)
        if body["model"] == "flaky-429":
            key = str(last.get("content"))
            self.failures[key] = self.failures.get(key, 0) + 1
            if self.failures[key] <= 2:
                return web.json_response({"error": {"message": "slow down"}}, status=429)
        if body["model"] == "always-slow":
            await asyncio.sleep(30)
        slow = re.fullmatch(r"slow-(\d+)s", body["model"])
        if slow:
            await asyncio.sleep(int(slow.group(1)))
        if last["role"] == "user" and "hang-once" in str(last.get("content")):
            key = "hang-once:" + str(last["content"])
            self.failures[key] = self.failures.get(key, 0) + 1
            if self.failures[key] == 1:
                await asyncio.sleep(3600)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            await response.write(f"data: {json.dumps(data)}\n\n".encode())

        tool_names = {t["function"]["name"] for t in body.get("tools", [])}
        text_content = last.get("content") if isinstance(last.get("content"), str) else ""  # not parts
        if last["role"] == "user" and "drop-once" in text_content:
            key = "drop-once:" + text_content
            self.failures[key] = self.failures.get(key, 0) + 1
            if self.failures[key] == 1:
                await chunk({"role": "assistant", "content": "You said"})
                assert request.transport is not None
                request.transport.close()  # no [DONE], no end of the chunked body
                return response
        match = re.search(r"time in ([A-Za-z_/]+)", text_content)
        words = re.fullmatch(r"words-(\d+)", body["model"])
        drip = re.fullmatch(r"drip-(\d+)", body["model"])
        if last["role"] == "tool":
            text = "The tool said: " + last["content"]
            await self._stream_text(chunk, text, self.token_gap_s)
        elif last["role"] == "user" and match and "current_time" in tool_names:
            args = json.dumps({"timezone": match.group(1)})
            await chunk({"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_time_1", "type": "function",
                 "function": {"name": "current_time", "arguments": ""}}]})
            await chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[:7]}}]})
            await chunk({"tool_calls": [{"index": 0, "function": {"arguments": args[7:]}}]})
            await chunk({}, "tool_calls")
        elif last["role"] == "user" and "calc both" in last["content"] and "calculate" in tool_names:
            await chunk({"role": "assistant", "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function",
                 "function": {"name": "calculate", "arguments": json.dumps({"expression": "6*7"})}},
                {"index": 1, "id": "call_b", "type": "function",
                 "function": {"name": "calculate", "arguments": json.dumps({"expression": "1/0"})}}]})
            await chunk({}, "tool_calls")
        elif drip and last["role"] == "user":
            await chunk({"role": "assistant", "content": ""})
            for i in range(int(drip.group(1))):
                await chunk({"content": f"word{i} "})
                await asyncio.sleep(0.15)
            await chunk({}, "stop")
        elif words:
            await chunk({"role": "assistant", "content": ""})
            for i in range(int(words.group(1))):
                await chunk({"content": f"w{i} "})
            await chunk({}, "stop")
        else:
            await self._stream_text(chunk, "You said: " + str(last.get("content")), self.token_gap_s)
        await self._usage(response, body, 40)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    @staticmethod
    async def _usage(response: web.StreamResponse, body: dict[str, Any], completion_chars: int) -> None:
        """The usage chunk OpenAI sends last when ``stream_options.include_usage`` is set."""
        if not (body.get("stream_options") or {}).get("include_usage"):
            return
        prompt = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4 + 1
        data = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion_chars // 4 + 1,
                                         "total_tokens": prompt + completion_chars // 4 + 1}}
        await response.write(f"data: {json.dumps(data)}\n\n".encode())

    @staticmethod
    async def _stream_text(chunk: Any, text: str, gap_s: float) -> None:
        third = max(1, len(text) // 3)
        pieces = [text[:third], text[third : 2 * third], text[2 * third :]]
        await chunk({"role": "assistant", "content": ""})
        for n, piece in enumerate(pieces):
            if piece:
                if n and gap_s:
                    await asyncio.sleep(gap_s)
                await chunk({"content": piece})
        await chunk({}, "stop")


def main() -> None:
    """Run the fake server as its own process (benchmarks): `python -m tests.support.fake_llm`."""
    import argparse
    import signal

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--token-gap", type=float, default=TOKEN_GAP_S, help="seconds between streamed pieces")
    args = parser.parse_args()
    server = FakeLLM(delay_s=args.delay, token_gap_s=args.token_gap)
    server.port = args.port
    server.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
