"""Metrics around any ``ChatModel``: latency, time to first token, tokens, errors."""

from __future__ import annotations

import time
from typing import Any

from parley import metrics
from parley.llm.base import ChatModel, Completion, DeltaCallback, LLMError

__all__ = ["InstrumentedModel"]


class InstrumentedModel:
    def __init__(self, inner: ChatModel, provider: str) -> None:
        self.inner = inner
        self.name = inner.name
        self._labels = (provider, inner.name)

    async def close(self) -> None:
        await self.inner.close()

    async def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], on_delta: DeltaCallback
    ) -> Completion:
        started = time.perf_counter()
        first = True

        async def timed_delta(text: str) -> None:
            nonlocal first
            if first:
                first = False
                metrics.LLM_FIRST_TOKEN_SECONDS.labels(*self._labels).observe(time.perf_counter() - started)
            await on_delta(text)

        try:
            completion = await self.inner.complete(messages, tools, timed_delta)
        except LLMError:
            metrics.LLM_ERRORS.labels(*self._labels).inc()
            raise
        finally:
            metrics.LLM_SECONDS.labels(*self._labels).observe(time.perf_counter() - started)
        metrics.LLM_TOKENS.labels(*self._labels, "prompt").inc(completion.prompt_tokens)
        metrics.LLM_TOKENS.labels(*self._labels, "completion").inc(completion.completion_tokens)
        return completion
