"""The provider port: a chat model that streams text and may ask for tool calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["ChatModel", "Completion", "DeltaCallback", "LLMError", "ToolCall"]

#: Called with each text chunk as the model produces it.
DeltaCallback = Callable[[str], Awaitable[None]]


class LLMError(RuntimeError):
    """A model call failed; the message names the provider, the model and the cause.

    ``retryable`` is True for rate limits, 5xx, timeouts and connection errors; ``streamed`` is
    True when text had already reached a client (a retry would show it twice): the router sets
    it, as only the router knows whether anyone received the deltas."""

    def __init__(self, message: str, *, retryable: bool = False, streamed: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.streamed = streamed


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text as the model wrote it

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass
class Completion:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""  # the model that answered (set by the router)


class ChatModel(Protocol):
    name: str

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
        """Answer ``messages`` (OpenAI chat format), streaming text through ``on_delta``.
        ``model`` overrides the model the instance was created with."""
        ...

    async def close(self) -> None: ...
