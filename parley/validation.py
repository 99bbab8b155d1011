"""Validation of everything clients send, before anything is produced (layer 0: the channels
parse with it, the web edge answers with it).

Each check raises ``InputError`` with a stable ``code``, a message that says what was wrong,
and the HTTP status a webhook answers with.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["InputError", "parse_json_object", "require_id", "require_text", "optional_str"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class InputError(ValueError):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message}


def parse_json_object(data: str | bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except RecursionError:
        raise InputError("invalid_json", "body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer over the digit limit
        raise InputError("invalid_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InputError("invalid_json", f"expected a JSON object, got a {type(value).__name__}")
    if _has_lone_surrogate(value):
        raise InputError("invalid_json", "body has a lone surrogate (a \\ud800-\\udfff escape): not valid Unicode")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string in ``value`` (keys included) holds a lone surrogate, which JSON escapes
    can carry but UTF-8 cannot encode. Iterative: the value may be nested deeply."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def require_id(obj: dict[str, Any], name: str) -> str:
    if name not in obj or obj[name] is None:
        raise InputError("missing_field", f"field {name!r} is required")
    value = obj[name]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _ID.fullmatch(value):  # ($ alone lets a final "\n" in)
        raise InputError(
            "invalid_field",
            f"field {name!r} must be 1-128 characters of letters, digits and _.:@- "
            "starting with a letter or digit",
        )
    return value


def require_text(obj: dict[str, Any], name: str, max_bytes: int, *, allow_empty: bool = False) -> str:
    """The text field ``name``: a non-blank string of at most ``max_bytes`` UTF-8 bytes; with
    ``allow_empty`` (a message carrying files) it may be missing or blank, and is then ""."""
    if name not in obj or obj[name] is None:
        if allow_empty:
            return ""
        raise InputError("missing_field", f"field {name!r} is required")
    value = obj[name]
    if not isinstance(value, str):
        raise InputError("invalid_field", f"field {name!r} must be a string")
    if not value.strip():
        if allow_empty:
            return ""
        raise InputError("invalid_field", f"field {name!r} must not be empty")
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise InputError(
            "too_large", f"field {name!r} is {size} bytes; the limit is {max_bytes}", status=413
        )
    return value


def optional_str(obj: dict[str, Any], name: str, max_chars: int = 256) -> str:
    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_chars:
        raise InputError("invalid_field", f"field {name!r} must be a string of at most {max_chars} characters")
    return value
