"""The built-in ``echo`` model: answers without any API key, for ``parley dev`` and demos.

It repeats the user's text, streamed word by word. Two phrasings exercise the tool path:
"time in <IANA zone>" or "time is it in <IANA zone>" (the chat page's hint) calls
``current_time`` and "calculate <expression>" calls ``calculate``; after a tool result it
reports what the tool said.
"""

from __future__ import annotations

import json
import re
from typing import Any

from parley.llm.base import Completion, DeltaCallback, ToolCall

__all__ = ["EchoModel"]

_TIME = re.compile(r"\btime (?:is it )?in ([A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)*)", re.IGNORECASE)
_CALC = re.compile(r"\bcalculate\s+(.+)$", re.IGNORECASE | re.DOTALL)


MAX_DELTAS = 16


class EchoModel:
    name = "echo"

    async def close(self) -> None:
        return None

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_delta: DeltaCallback,
        **options: Any,
    ) -> Completion:
        last = messages[-1] if messages else {"role": "user", "content": ""}
        tool_names = {t["function"]["name"] for t in tools}
        if last["role"] == "tool":
            results = []
            for message in reversed(messages):
                if message["role"] != "tool":
                    break
                results.append(f"{message.get('name', 'tool')}: {message['content']}")
            text = "Tool results — " + "; ".join(reversed(results))
        else:
            content = _text_of(last.get("content"))
            call = self._tool_call(content, tool_names)
            if call is not None:
                return Completion(tool_calls=[call])
            text = f"echo: {content}"
        words = re.findall(r"\S+\s*|\s+", text) or [text]
        # Word by word, but at most MAX_DELTAS deltas: a long text streams in bigger pieces.
        per_delta = max(1, -(-len(words) // MAX_DELTAS))
        pieces = ["".join(words[i : i + per_delta]) for i in range(0, len(words), per_delta)]
        for piece in pieces:
            await on_delta(piece)
        return Completion(text=text, prompt_tokens=sum(len(str(m.get("content") or "")) for m in messages) // 4,
                          completion_tokens=len(words))

    @staticmethod
    def _tool_call(content: str, tool_names: set[str]) -> ToolCall | None:
        match = _TIME.search(content)
        if match and "current_time" in tool_names:
            args = json.dumps({"timezone": match.group(1)})
            return ToolCall(id="echo-call-0", name="current_time", arguments=args)
        match = _CALC.search(content)
        if match and "calculate" in tool_names:
            args = json.dumps({"expression": match.group(1).strip().rstrip("?")})
            return ToolCall(id="echo-call-0", name="calculate", arguments=args)
        return None


def _text_of(content: Any) -> str:
    """The text of a message: a string, or the text parts of a content-parts list (images are
    shown as ``[image]``)."""
    if isinstance(content, list):
        parts = [
            str(p.get("text", "")) if p.get("type") == "text" else "[image]"
            for p in content if isinstance(p, dict)
        ]
        return " ".join(p for p in parts if p)
    return str(content or "")
