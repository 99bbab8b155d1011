"""Bytes <-> records for every topic. A payload that does not decode raises ``DecodeError``."""

from __future__ import annotations

import json
from typing import TypeVar

import faust

__all__ = ["DecodeError", "decode", "encode", "message_id"]

R = TypeVar("R", bound=faust.Record)

_NAMESPACE = __import__("uuid").UUID("8f6f1d3e-4a1b-4c55-9a51-6b0c8d2e7f10")


class DecodeError(ValueError):
    """The bytes are not a valid record of the expected type (never retried)."""


def encode(record: faust.Record) -> bytes:
    return record.dumps(serializer="json")


def decode(raw: bytes | None, cls: type[R]) -> R:
    if raw is None:
        raise DecodeError(f"empty payload where a {cls.__name__} was expected")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"payload is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"payload is a JSON {type(data).__name__}, not an object")
    data.pop("__faust", None)
    try:
        record = cls.from_data(data)
    except (TypeError, ValueError, KeyError) as exc:
        raise DecodeError(f"payload is not a {cls.__name__}: {exc}") from exc
    for name in ("event_id", "conversation_id", "application_id"):
        if name in cls._options.fields and not isinstance(getattr(record, name), str):
            raise DecodeError(f"{cls.__name__}.{name} must be a string")
    return record


def message_id(*parts: str) -> str:
    """A deterministic id from its parts: a repeated event yields the same ids downstream."""
    import uuid

    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))
