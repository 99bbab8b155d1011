"""Any OpenAI-compatible chat completions endpoint (OpenAI, Gemini, Grok, vLLM, Ollama...).

The SDK's own retries are off: ``parley.llm.router`` retries with backoff and falls back, so
there is one retry policy. Errors are classified as retryable or not.

The SDK sends the request (auth, base URL, timeouts, its headers) and turns error statuses
into its exceptions, through its public ``post`` with a body already encoded by orjson: the
typed ``chat.completions.create`` walks its parameters and the SDK's encoder serialises the
prompt with the standard library on every call, which cost ~15 % of a call's CPU in a burst of
1,000 (docs/benchmarks.md). The body is read raw and each SSE chunk parsed with orjson into
plain dicts: the SDK's own stream builds a pydantic object per chunk, which cost ~6x the CPU of
everything else in a long streamed answer (``bench/llm_stream.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
import orjson

from parley.llm.base import Completion, DeltaCallback, LLMError, ToolCall
from parley.redact import SECRETS, scrub

__all__ = ["OpenAICompatibleModel"]

logger = logging.getLogger(__name__)

#: How long the rest of a body may take to arrive after ``[DONE]``; reading it to its end lets
#: HTTP/1.1 reuse the connection (aiohttp closes one released mid-body).
DRAIN_TIMEOUT_S = 0.1


def _retryable(exc: openai.OpenAIError | httpx2.TransportError) -> bool:
    # httpx2's transport errors get through where the SDK reads the body of an error status (it
    # broke off or stalled): as with a dropped stream, another attempt may answer
    if isinstance(exc, (httpx2.TransportError, openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)):
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


class _BrokenStream(Exception):
    """The body broke off, or a chunk is not what a chat completion chunk looks like: as with
    a dropped connection, another attempt (or the fallback model) may answer."""


async def _read(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in body:
            yield chunk
    except Exception as exc:
        # httpx2's read errors, or whatever else the SDK's transport raises mid-body
        raise _BrokenStream(f"the stream broke off: {type(exc).__name__}: {exc}") from exc


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read what follows ``[DONE]`` (usually just the end of the body)."""
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in body:
                pass
    except (TimeoutError, _BrokenStream):
        pass  # the answer is complete; only the connection is not reused


async def _sse_data(body: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The ``data`` of the server-sent events in ``body``, until ``[DONE]``: a list per read
    that completed at least one event (a fast stream delivers several chunks per read). Other
    fields (``event:``, ``id:``, ``: keep-alive`` comments) mean nothing to chat completions."""
    pending = b""
    data: list[bytes] = []
    async for chunk in body:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()  # an incomplete line waits for the next chunk
        events: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif not line and data:  # a blank line ends an event
                event = data[0] if len(data) == 1 else b"\n".join(data)
                data = []
                if event == b"[DONE]":
                    if events:
                        yield events
                    return
                events.append(event)
        if events:
            yield events
    if data:  # the body ended without the blank line
        yield [b"\n".join(data)]


class _Chunks:
    """What the chunks of one completion add up to."""

    def __init__(self, request: Any) -> None:
        self.request = request  # the SDK's request, which its APIError names
        self.text: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.prompt_tokens = 0
        self.completion_tokens = 0

    def add(self, data: bytes) -> str:
        """Take in one event's JSON; return the text it adds (empty if none)."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _BrokenStream(f"a chunk is not JSON ({exc}): {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise _BrokenStream(f"a chunk is not a JSON object: {data[:200]!r}")
        error = chunk.get("error")
        if error:
            # How OpenAI reports a failure once the stream has begun; the SDK's own stream
            # raises APIError for it, so it is classified as before (not retryable).
            message = error.get("message") if isinstance(error, dict) else None
            raise openai.APIError(str(message or "the stream reported an error"), self.request, body=error)
        try:
            return self._take(chunk)
        except (AttributeError, TypeError) as exc:  # e.g. a choice that is not an object
            raise _BrokenStream(f"a chunk has an unexpected shape ({exc}): {data[:200]!r}") from exc

    def _take(self, chunk: dict[str, Any]) -> str:
        usage = chunk.get("usage")
        if usage:  # the last chunk when stream_options.include_usage is set
            self.prompt_tokens = usage.get("prompt_tokens") or 0
            self.completion_tokens = usage.get("completion_tokens") or 0
        text = ""
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta")
            if not delta:
                continue
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                # A call's id and name come in its first delta, its arguments in pieces after.
                slot = self.calls.setdefault(call.get("index") or 0, {"id": "", "name": "", "arguments": ""})
                if call.get("id"):
                    slot["id"] = call["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
        if text:
            self.text.append(text)
        return text

    def completion(self) -> Completion:
        return Completion(
            text="".join(self.text),
            tool_calls=[
                ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"] or "{}")
                for i, c in sorted(self.calls.items())
            ],
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
        )


class OpenAICompatibleModel:
    def __init__(self, *, api_key: str, base_url: str | None, model: str, timeout_s: float, provider: str = "openai") -> None:
        self.name = model
        self.provider = provider
        self._model = model
        SECRETS.add(api_key, fixed=True)
        # The aiohttp transport costs about half the CPU per call of the SDK's default one
        # (1,000 concurrent streamed calls: 6.7 s vs 13.6 s on 2 cores; bench/concurrency.py).
        self._client = openai.AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0,
            http_client=openai.DefaultAioHttpClient(timeout=timeout_s),
        )

    async def close(self) -> None:
        await self._client.close()

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_delta: DeltaCallback,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        model = model or self._model
        # include_usage: the last chunk carries token counts (usage accounting).
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": True,
                                "stream_options": {"include_usage": True}}
        if tools:
            body["tools"] = tools
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        try:
            # The SDK's encoder refuses NaN and sends integers of any size; orjson refuses
            # integers over 64 bits (no provider takes them) and sends NaN as null.
            content = orjson.dumps(body)
        except TypeError as exc:  # orjson.JSONEncodeError
            raise LLMError(f"{self.provider} model {model!r}: the prompt is not JSON a model takes: {exc}",
                           retryable=False) from exc
        try:
            # Error statuses raise here, as the SDK's APIStatusError subclasses; the body is
            # closed however the block ends (cancellation too). The options are what
            # ``chat.completions.create`` asks of the SDK: its bearer auth, the API key (a new
            # dict per call: the SDK may keep what it is given; its JSON Content-Type is a
            # default header).
            response = await self._client.post(
                "/chat/completions", cast_to=httpx2.Response, content=content, stream=True,
                options={"security": {"bearer_auth": True}},
            )
            try:
                chunks = _Chunks(response.request)
                body_bytes = _read(response.aiter_bytes())
                async for events in _sse_data(body_bytes):
                    # the events of one read are one delta: as soon as it arrived, in fewer frames
                    text = "".join([chunks.add(data) for data in events])
                    if text:
                        await on_delta(text)
                await _drain(body_bytes)
            finally:
                await response.aclose()
        except (openai.OpenAIError, httpx2.TransportError) as exc:
            # Some providers echo the key in the error of a bad key: scrubbed before it is
            # logged or dead-lettered.
            raise LLMError(
                self._scrub(f"{self.provider} model {model!r} failed: {type(exc).__name__}: {exc}"),
                retryable=_retryable(exc),
            ) from exc
        except _BrokenStream as exc:
            raise LLMError(self._scrub(f"{self.provider} model {model!r} failed: {exc}"), retryable=True) from exc
        return chunks.completion()

    def _scrub(self, text: str) -> str:
        return scrub(text)  # the key is in SECRETS (a key shorter than MIN_SECRET_LENGTH is no real key)
