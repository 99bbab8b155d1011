"""The frames clients get, in one place: the ``message`` frame of a reply or an archived
message (websocket, resume and history, the generic webhook's callback), and frames as JSON
text, fast: orjson for what goes to websockets and over the bus, with the standard library as
the fallback for the text orjson refuses (lone surrogates, which JSON escapes allow and Python
strings can hold)."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["frame_text", "message_frame"]


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
