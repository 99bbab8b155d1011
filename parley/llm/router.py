"""Chooses the model for a chatbot and makes the call resilient.

A chatbot names a provider preset (``openai``, ``gemini``, ``grok``) or none (the endpoint of
``PARLEY_LLM_BASE_URL``/``PARLEY_LLM_API_KEY``), a model, and an ordered fallback chain. Each
model is tried up to ``PARLEY_LLM_MAX_ATTEMPTS`` times on retryable failures (429, 5xx,
timeouts, connection errors) with exponential backoff and full jitter; a non-retryable failure
moves on to the next model at once. Every attempt has a timeout (``PARLEY_LLM_TIMEOUT_S``) and the
whole answer a budget (``PARLEY_LLM_TOTAL_TIMEOUT_S``). Once text has been streamed to the client
the call is not retried (the client would see it twice): the turn fails with an apology instead.
A caller with no client listening (a platform turn, a silent replay) passes no delta callback:
nothing is streamed then, so a call that fails part way is retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from parley import metrics
from parley.llm.base import ChatModel, Completion, DeltaCallback, LLMError
from parley.redact import scrub
from parley.settings import Settings

__all__ = ["PRESETS", "ModelRouter", "Target", "targets_for"]

logger = logging.getLogger(__name__)

#: OpenAI-compatible endpoints of the provider presets.
PRESETS = {
    "openai": "https://api.openai.com/v1",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/openai/",
    "grok": "https://api.x.ai/v1",
}
_PRESET_KEYS = {"openai": "openai_api_key", "gemini": "gemini_api_key", "grok": "xai_api_key"}
DEFAULT = "default"  # the endpoint configured by PARLEY_LLM_BASE_URL / PARLEY_LLM_API_KEY
ECHO = "echo"


@dataclass(frozen=True)
class Target:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def targets_for(chatbot: Any, settings: Settings) -> list[Target]:
    """The models to try for ``chatbot``, in order."""
    provider = chatbot.provider if chatbot.provider not in (None, "custom") else DEFAULT
    if provider == DEFAULT and settings.uses_echo_model:
        return [Target(ECHO, ECHO)]
    chain = [Target(provider, chatbot.model or settings.llm_model)]
    for entry in chatbot.fallback_models:
        name, sep, model = entry.partition(":")
        if sep and (name in PRESETS or name in (DEFAULT, "custom")):
            chain.append(Target(DEFAULT if name == "custom" else name, model))
        else:
            chain.append(Target(provider, entry))
    return chain


class ModelRouter:
    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._clock = clock
        self._clients: dict[str, ChatModel] = {}

    @property
    def name(self) -> str:
        return ECHO if self._settings.uses_echo_model else self._settings.llm_model

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def prepare(self) -> None:
        """Build the default provider's client now (the SDK import and client set-up take a few
        hundred milliseconds), so a worker's first turn does not pay for them."""
        if self._settings.uses_echo_model:
            return
        try:
            self.client(DEFAULT)
        except LLMError as exc:  # no key: the first turn says so (and dead-letters), as before
            logger.warning("%s", exc)

    def client(self, provider: str) -> ChatModel:
        if provider not in self._clients:
            self._clients[provider] = self._new_client(provider)
        return self._clients[provider]

    def _new_client(self, provider: str) -> ChatModel:
        s = self._settings
        if provider == ECHO:
            from parley.llm.echo import EchoModel

            return EchoModel()
        from parley.llm.openai_compat import OpenAICompatibleModel

        if provider == DEFAULT:
            key, base_url = s.llm_api_key, s.llm_base_url
        else:
            key, base_url = getattr(s, _PRESET_KEYS[provider]), PRESETS[provider]
        if key is None or not key.get_secret_value():
            raise LLMError(f"no API key for provider {provider!r}: set PARLEY_{_PRESET_KEYS.get(provider, 'llm_api_key').upper()}")
        return OpenAICompatibleModel(
            api_key=key.get_secret_value(), base_url=base_url, model=s.llm_model,
            timeout_s=s.llm_timeout_s, provider=provider,
        )

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_delta: DeltaCallback | None,
        *,
        chatbot: Any,
    ) -> Completion:
        s = self._settings
        deadline = self._clock() + s.llm_total_timeout_s
        failures: list[str] = []
        for target in targets_for(chatbot, s):
            for attempt in range(1, s.llm_max_attempts + 1):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    failures.append(f"time budget of {s.llm_total_timeout_s:g}s spent")
                    raise LLMError("; ".join(failures))
                try:
                    return await self._attempt(target, messages, tools, on_delta, chatbot, min(s.llm_timeout_s, remaining))
                except LLMError as exc:
                    failures.append(f"{target} attempt {attempt}: {exc}")
                    logger.warning("model call failed: %s (attempt %d of %d)", scrub(str(exc)), attempt, s.llm_max_attempts)
                    if exc.streamed:
                        raise LLMError(f"{target} failed after streaming part of its answer: {exc}") from exc
                    if not exc.retryable or attempt == s.llm_max_attempts:
                        break
                    delay = min(s.llm_backoff_max_s, s.llm_backoff_base_s * 2 ** (attempt - 1))
                    await self._sleep(min(random.uniform(0, delay), max(0.0, deadline - self._clock())))
        raise LLMError("every model failed: " + "; ".join(failures))

    async def _attempt(
        self,
        target: Target,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_delta: DeltaCallback | None,
        chatbot: Any,
        timeout_s: float,
    ) -> Completion:
        labels = (target.provider, target.model)
        started = self._clock()
        first = True
        streamed = False  # text reached a client: this attempt must not be repeated

        async def tracked(text: str) -> None:
            nonlocal first, streamed
            if first:
                first = False
                metrics.LLM_FIRST_TOKEN_SECONDS.labels(*labels).observe(self._clock() - started)
            if on_delta is not None:
                streamed = True
                await on_delta(text)

        client = self.client(target.provider)
        try:
            completion = await asyncio.wait_for(
                client.complete(
                    messages, tools, tracked, model=target.model,
                    temperature=chatbot.temperature, max_tokens=chatbot.max_tokens,
                ),
                timeout_s,
            )
        except TimeoutError as exc:
            metrics.LLM_ERRORS.labels(*labels).inc()
            raise LLMError(f"{target} timed out after {timeout_s:g}s", retryable=True, streamed=streamed) from exc
        except LLMError as exc:
            metrics.LLM_ERRORS.labels(*labels).inc()
            exc.streamed = streamed  # the client model cannot know whether its text reached anyone
            raise
        finally:
            metrics.LLM_SECONDS.labels(*labels).observe(self._clock() - started)
        completion.model = target.model
        metrics.LLM_TOKENS.labels(*labels, "prompt").inc(completion.prompt_tokens)
        metrics.LLM_TOKENS.labels(*labels, "completion").inc(completion.completion_tokens)
        return completion
