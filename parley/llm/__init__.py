"""LLM providers behind one port (``ChatModel``): OpenAI-compatible and the built-in echo."""

from __future__ import annotations

from parley.llm.base import ChatModel, Completion, DeltaCallback, LLMError, ToolCall
from parley.settings import Settings

__all__ = ["ChatModel", "Completion", "DeltaCallback", "LLMError", "ToolCall", "model_from_settings"]


def model_from_settings(settings: Settings) -> ChatModel:
    """The OpenAI-compatible model when an API key is set, else the echo model."""
    if settings.uses_echo_model:
        from parley.llm.echo import EchoModel

        return EchoModel()
    from parley.llm.openai_compat import OpenAICompatibleModel

    assert settings.llm_api_key is not None
    return OpenAICompatibleModel(
        api_key=settings.llm_api_key.get_secret_value(),
        base_url=settings.llm_base_url,
        model=settings.llm_model,
        timeout_s=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
    )
