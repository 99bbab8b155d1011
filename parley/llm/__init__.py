"""LLM providers behind one port (``ChatModel``): OpenAI-compatible endpoints and the echo
model, chosen per chatbot and made resilient by ``ModelRouter``."""

from __future__ import annotations

from parley.llm.base import ChatModel, Completion, DeltaCallback, LLMError, ToolCall
from parley.llm.router import ModelRouter

__all__ = ["ChatModel", "Completion", "DeltaCallback", "LLMError", "ModelRouter", "ToolCall"]
