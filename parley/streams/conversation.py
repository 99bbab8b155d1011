"""A conversation's state as kept in the ``conversations`` table, and the prompt built from it.

The value is plain JSON: ``history`` (recent messages in OpenAI chat format, each with an
``id``), ``applied`` (ids of recently applied events, so a redelivered event is skipped:
table writes are not atomic with offset commits), ``awaiting`` (the tool round in progress)
``queued`` (user messages that arrived during a tool round, answered after it) and ``handoff``
(``{"operator_id", "operator_name", "since"}`` while an operator has taken the conversation
over: the model does not answer it; ``parley.streams.handoff``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parley.attachments import parse_all, prompt_content
from parley.streams.codec import message_id

__all__ = ["ConversationState", "build_prompt", "close_tool_round", "trim_history", "with_attachments"]

APPLIED_MEMORY = 500


@dataclass
class ConversationState:
    history: list[dict[str, Any]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    awaiting: dict[str, Any] | None = None
    queued: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""  # rolling summary of messages folded out of ``history``
    handoff: dict[str, Any] | None = None  # the operator who took the conversation over

    @classmethod
    def from_value(cls, value: Any) -> ConversationState:
        if not isinstance(value, dict):
            return cls()
        return cls(
            history=list(value.get("history") or []),
            applied=list(value.get("applied") or []),
            awaiting=value.get("awaiting"),
            queued=list(value.get("queued") or []),
            summary=str(value.get("summary") or ""),
            handoff=value.get("handoff") if isinstance(value.get("handoff"), dict) else None,
        )

    def to_value(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "applied": self.applied,
            "awaiting": self.awaiting,
            "queued": self.queued,
            "summary": self.summary,
            "handoff": self.handoff,
        }

    def seen(self, event_id: str) -> bool:
        return event_id in self.applied

    def mark_applied(self, event_id: str) -> None:
        self.applied.append(event_id)
        del self.applied[:-APPLIED_MEMORY]


def close_tool_round(state: ConversationState, reason: str) -> None:
    """Close the tool round in progress with a ``reason`` result for each call, so the history
    stays valid (every tool call answered); the round's late real results are then stale and
    ignored. A no-op when no round is awaited."""
    awaiting = state.awaiting
    if awaiting is None:
        return
    for call_id in awaiting.get("call_ids", []):
        state.history.append(
            {
                "id": message_id(str(awaiting.get("turn_id")), "cancelled", str(call_id)),
                "role": "tool",
                "tool_call_id": call_id,
                "content": reason,
            }
        )
    state.awaiting = None


def trim_history(history: list[dict[str, Any]], max_messages: int) -> list[dict[str, Any]]:
    """Keep at most ``max_messages`` recent messages, starting at a user message, so an
    assistant tool call is never separated from its tool results."""
    kept = history[-max_messages:]
    start = 0
    while start < len(kept) and kept[start].get("role") != "user":
        start += 1
    if start == len(kept):
        # No user message in the window: keep the last complete exchange we can.
        return [m for m in kept if m.get("role") == "assistant" and not m.get("tool_calls")][-1:]
    return kept[start:]


_WIRE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


def build_prompt(
    system_prompt: str, history: list[dict[str, Any]], max_messages: int, summary: str = ""
) -> list[dict[str, Any]]:
    """System prompt, the rolling summary, then recent history, in the OpenAI chat format."""
    from parley.streams.memory import SUMMARY_PREFIX

    messages: list[dict[str, Any]] = []
    if system_prompt:
        messages.append({"role": "system", "content": system_prompt})
    if summary:
        messages.append({"role": "system", "content": SUMMARY_PREFIX + summary})
    for message in trim_history(history, max_messages):
        wire = {k: message[k] for k in _WIRE_KEYS if k in message}
        if message.get("role") == "user" and message.get("attachments"):
            wire["content"] = with_attachments(str(message.get("content") or ""), message["attachments"])
        messages.append(wire)
    return messages


def with_attachments(text: str, wires: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A user message's content with its attachments (their wire dicts), as
    ``parley.attachments.prompt_content`` renders them: other files are lines of the text,
    images ``parley-file:`` references that the model port links right before the call."""
    return prompt_content(text, parse_all(wires))
