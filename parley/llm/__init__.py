"""LLM providers behind one port (``ChatModel``): OpenAI-compatible and the built-in echo."""

from __future__ import annotations

from parley.llm.base import ChatModel, Completion, DeltaCallback, LLMError, ToolCall
from parley.settings import Settings

__all__ = ["ChatModel", "Completion", "DeltaCallback", "LLMError", "ToolCall", "model_from_settings"]


def provider_label(base_url: str | None) -> str:
    """A short provider name for metrics: the endpoint's host (``api.openai.com`` when unset)."""
    from urllib.parse import urlparse

    return (urlparse(base_url).hostname if base_url else None) or "api.openai.com"


def model_from_settings(settings: Settings) -> ChatModel:
    """The OpenAI-compatible model when an API key is set, else the echo model."""
    from parley.llm.instrumented import InstrumentedModel

    if settings.uses_echo_model:
        from parley.llm.echo import EchoModel

        return InstrumentedModel(EchoModel(), "echo")
    from parley.llm.openai_compat import OpenAICompatibleModel

    assert settings.llm_api_key is not None
    return InstrumentedModel(OpenAICompatibleModel(
        api_key=settings.llm_api_key.get_secret_value(),
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    ), provider_label(settings.llm_base_url))
