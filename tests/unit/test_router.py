"""ModelRouter: presets, fallback chain, bounded retries with backoff, timeouts, and no retry
once text reached a client (only websocket turns stream it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from parley.config.models import ChatbotConfig
from parley.llm.base import Completion, LLMError
from parley.llm.router import ModelRouter, Target, targets_for
from parley.records import IncomingEvent
from parley.settings import Settings
from parley.streams.conversation import ConversationState
from parley.streams.turns import APOLOGY, TurnHandler
from parley.tools import default_registry


class ScriptedClient:
    """Answers per model from a script of outcomes: an exception, "slow", or text."""

    def __init__(self, script: dict[str, list[Any]]) -> None:
        self.script = script
        self.calls: list[str] = []

    async def close(self) -> None:
        return None

    async def complete(self, messages, tools, on_delta, *, model=None, temperature=None, max_tokens=None):
        self.calls.append(model)
        outcome = self.script[model].pop(0) if len(self.script[model]) > 1 else self.script[model][0]
        if isinstance(outcome, Exception):
            raise outcome
        if outcome == "slow":
            await asyncio.sleep(10)
        if outcome == "partial-then-fail":
            await on_delta("Hel")
            raise LLMError("connection dropped", retryable=True)  # the router knows if it was streamed
        await on_delta(outcome)
        return Completion(text=outcome)


def router_with(client: ScriptedClient, **settings: Any) -> tuple[ModelRouter, list[float]]:
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    base = {"llm_api_key": "k", "llm_model": "main", "llm_max_attempts": 3, "llm_backoff_base_s": 0.5, "llm_timeout_s": 0.2}
    router = ModelRouter(Settings(**{**base, **settings}), sleep=sleep)
    router._clients["default"] = client
    return router, sleeps


async def noop(text: str) -> None:
    return None


def rate_limited() -> LLMError:
    return LLMError("429", retryable=True)


async def test_rate_limits_are_retried_with_growing_jittered_backoff_then_answered_once():
    client = ScriptedClient({"main": [rate_limited(), rate_limited(), "hi"]})
    router, sleeps = router_with(client)
    completion = await router.complete([], [], noop, chatbot=ChatbotConfig())
    assert completion.text == "hi"
    assert client.calls == ["main", "main", "main"]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


async def test_attempts_are_bounded_and_the_error_names_the_model():
    client = ScriptedClient({"main": [rate_limited()]})
    router, _ = router_with(client, llm_max_attempts=2)
    with pytest.raises(LLMError, match="default:main"):
        await router.complete([], [], noop, chatbot=ChatbotConfig())
    assert client.calls == ["main", "main"]


async def test_a_timeout_counts_as_a_retryable_failure():
    client = ScriptedClient({"main": ["slow"]})
    router, _ = router_with(client, llm_max_attempts=2, llm_timeout_s=0.05)
    with pytest.raises(LLMError, match="timed out"):
        await router.complete([], [], noop, chatbot=ChatbotConfig())
    assert len(client.calls) == 2


async def test_primary_down_falls_back_to_the_next_model_without_retrying_a_client_error():
    client = ScriptedClient({"main": [LLMError("404 model not found", retryable=False)], "backup": ["from backup"]})
    router, sleeps = router_with(client)
    completion = await router.complete([], [], noop, chatbot=ChatbotConfig(fallback_models=("backup",)))
    assert completion.text == "from backup"
    assert client.calls == ["main", "backup"]
    assert sleeps == []


async def test_no_retry_once_text_reached_the_client():
    client = ScriptedClient({"main": ["partial-then-fail"], "backup": ["never"]})
    router, _ = router_with(client)
    with pytest.raises(LLMError, match="after streaming"):
        await router.complete([], [], noop, chatbot=ChatbotConfig(fallback_models=("backup",)))
    assert client.calls == ["main"]


async def test_a_call_that_fails_part_way_is_retried_when_no_client_listens():
    client = ScriptedClient({"main": ["partial-then-fail", "hi"]})
    router, _ = router_with(client)
    completion = await router.complete([], [], None, chatbot=ChatbotConfig())
    assert completion.text == "hi"
    assert client.calls == ["main", "main"]


async def answer_turn(router: ModelRouter, channel: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """One user message through the turn handler and the real router; the replies and frames."""
    frames: list[dict[str, Any]] = []

    async def publish(application_id: str, conversation_id: str, frame: dict[str, Any]) -> None:
        frames.append(frame)

    handler = TurnHandler(router, default_registry(), publish)
    event = IncomingEvent(event_id="e1", conversation_id="c1", application_id="demo", created_at=1.0,
                          text="hi", channel=channel)
    out = await handler.handle(event, ConversationState(), ChatbotConfig())
    return out.replies, frames


@pytest.mark.parametrize("channel", ["telegram", "generic"])
async def test_a_platform_turn_gets_the_retried_answer_after_a_call_failed_part_way(channel):
    client = ScriptedClient({"main": ["partial-then-fail", "Hello again"]})
    router, _ = router_with(client)
    replies, frames = await answer_turn(router, channel)
    assert [(r.text, r.is_error) for r in replies] == [("Hello again", False)]
    assert client.calls == ["main", "main"] and frames == []


async def test_a_websocket_turn_streams_and_is_not_retried_after_streaming():
    client = ScriptedClient({"main": ["partial-then-fail", "never shown"]})
    router, _ = router_with(client)
    replies, frames = await answer_turn(router, "websocket")
    assert [(r.text, r.is_error) for r in replies] == [(APOLOGY, True)]
    assert [(f["type"], f["text"]) for f in frames] == [("delta", "Hel")]
    assert client.calls == ["main"]


async def test_total_time_budget_bounds_every_attempt():
    client = ScriptedClient({"main": ["slow"]})
    router, _ = router_with(client, llm_max_attempts=10, llm_timeout_s=0.05, llm_total_timeout_s=0.12)
    with pytest.raises(LLMError):
        await router.complete([], [], noop, chatbot=ChatbotConfig())
    assert len(client.calls) <= 3


def test_targets_follow_presets_and_fallback_syntax():
    settings = Settings(llm_api_key="k", llm_model="gpt-x")
    bot = ChatbotConfig(provider="gemini", model="gemini-2.0-flash", fallback_models=("gemini-1.5", "grok:grok-3", "custom:local"))
    assert targets_for(bot, settings) == [
        Target("gemini", "gemini-2.0-flash"), Target("gemini", "gemini-1.5"),
        Target("grok", "grok-3"), Target("default", "local"),
    ]
    assert targets_for(ChatbotConfig(), settings) == [Target("default", "gpt-x")]
    assert targets_for(ChatbotConfig(), Settings()) == [Target("echo", "echo")]


async def test_a_preset_without_its_key_fails_clearly_and_falls_back():
    client = ScriptedClient({"main": ["default answers"]})
    router, _ = router_with(client)
    bot = ChatbotConfig(provider="gemini", model="g", fallback_models=("custom:main",))
    completion = await router.complete([], [], noop, chatbot=bot)
    assert completion.text == "default answers"
    with pytest.raises(LLMError, match="PARLEY_GEMINI_API_KEY"):
        router.client("gemini")
