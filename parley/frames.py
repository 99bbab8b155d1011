"""Frames as JSON text, fast: orjson for what goes to websockets and over the bus, with the
standard library as the fallback for the text orjson refuses (lone surrogates, which JSON
escapes allow and Python strings can hold)."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["frame_text"]


def frame_text(frame: dict[str, Any]) -> str:
    try:
        return orjson.dumps(frame).decode()
    except TypeError:  # a str with a lone surrogate, or a value orjson does not know
        return json.dumps(frame)
