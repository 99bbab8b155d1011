"""The frames clients get, in one place: the ``message`` frame of a reply or an archived
message (websocket, resume and history, the generic webhook's callback), and frames as JSON
text, fast: orjson for what goes to websockets and over the bus, with the standard library as
the fallback for the text orjson refuses (lone surrogates, which JSON escapes allow and Python
strings can hold).

An assistant's ``message`` frame carries ``html`` beside ``text``: the reply's markdown rendered
and sanitised once, where the reply is produced (``ReplyEvent.html``, archived with it);
``answer_html`` renders it here only for replies produced before that field existed."""

from __future__ import annotations

import json
from typing import Any

import orjson

from parley.rendering import render_markdown

__all__ = ["answer_html", "frame_text", "message_frame"]


def answer_html(text: str, html: str | None) -> str:
    """An assistant message's ``html``: as rendered when it was produced, else rendered now."""
    return html if html else render_markdown(text)


def message_frame(
    *, message_id: str, role: str, text: str, in_reply_to: str | None, created_at: float | None, **extra: Any
) -> dict[str, Any]:
    """A ``message`` frame (docs/websocket-protocol.md); ``extra`` fields follow the common ones."""
    return {
        "type": "message", "message_id": message_id, "role": role, "text": text,
        "in_reply_to": in_reply_to, "created_at": created_at, **extra,
    }


def frame_text(frame: dict[str, Any]) -> str:
    try:
        return orjson.dumps(frame).decode()
    except TypeError:  # a str with a lone surrogate, or a value orjson does not know
        return json.dumps(frame)
