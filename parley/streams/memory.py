"""Conversation memory: which messages go into the prompt, and folding older ones into a
rolling summary written by the model.

Tokens are estimated as ``ceil(characters / 4) + 4`` per message (OpenAI's rule of thumb for
English; tool calls count their name and arguments). tiktoken is not used: its encodings are
downloaded at first use, which production images and offline machines cannot rely on. The
estimate errs on the large side for English and is only used to fit a budget.

The prompt always starts at a user message, so an assistant tool call is never separated from
its results, and the newest user exchange is kept even when it alone exceeds the budget.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "estimate_tokens", "split_for_budget", "should_fold", "summary_request", "clip_summary",
    "SUMMARY_PREFIX",
]

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4
MAX_SUMMARY_CHARS = 4000
SUMMARY_PREFIX = "Summary of the earlier conversation: "
_SUMMARY_INSTRUCTIONS = (
    "You maintain the memory of a chat. Write a concise summary (at most 200 words) of the "
    "conversation below, merged with the previous summary if there is one. Keep names, facts, "
    "decisions, open questions and tool results the user may refer to. Reply with the summary only."
)


def estimate_tokens(message: dict[str, Any]) -> int:
    chars = len(str(message.get("content") or ""))
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        chars += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    return math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


def split_for_budget(
    history: list[dict[str, Any]], token_budget: int, max_messages: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(older, recent): ``recent`` is the longest suffix that starts at a user message and fits
    both the token budget and ``max_messages``; it is never empty when history has a user message."""
    user_starts = [i for i, m in enumerate(history) if m.get("role") == "user"]
    if not user_starts:
        return [], list(history[-1:]) if history and not history[-1].get("tool_calls") else []
    suffix_tokens = [0] * (len(history) + 1)
    for i in range(len(history) - 1, -1, -1):
        suffix_tokens[i] = suffix_tokens[i + 1] + estimate_tokens(history[i])
    cut = user_starts[-1]
    for start in reversed(user_starts):
        if suffix_tokens[start] > token_budget or len(history) - start > max_messages:
            break
        cut = start
    return history[:cut], history[cut:]


def should_fold(older: list[dict[str, Any]], token_budget: int) -> bool:
    """Fold once enough has fallen out of the window, so summaries are not rewritten every turn."""
    return bool(older) and (
        len(older) >= 8 or sum(estimate_tokens(m) for m in older) >= token_budget // 4
    )


def summary_request(previous: str, older: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = []
    for m in older:
        role = m.get("role")
        if role == "tool":
            lines.append(f"tool {m.get('name') or ''}: {m.get('content')}")
        elif m.get("tool_calls"):
            calls = ", ".join(
                f"{c['function']['name']}({c['function'].get('arguments', '')})" for c in m["tool_calls"]
            )
            lines.append(f"assistant called tools: {calls}")
        else:
            lines.append(f"{role}: {m.get('content')}")
    body = (f"Previous summary: {previous}\n\n" if previous else "") + "Conversation:\n" + "\n".join(lines)
    return [
        {"role": "system", "content": _SUMMARY_INSTRUCTIONS},
        {"role": "user", "content": body},
    ]


def clip_summary(text: str) -> str:
    return text.strip()[:MAX_SUMMARY_CHARS]


