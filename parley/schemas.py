"""JSON Schemas (draft 2020-12) of the documents the admin API accepts, and their validation.

``APPLICATION_SCHEMA`` and ``CHATBOT_SCHEMA`` describe what a client writes. The chatbot schema
has exactly the fields of ``parley.streams.turns.ChatbotConfig`` (plus ``id``). Responses add
read-only fields (``*_VIEW_SCHEMA``) and never contain the write-only ``secret`` and ``channels``.
The same schemas are served in the OpenAPI document (``parley/web/openapi.py``).

``validate_document`` returns one ``FieldError`` per offending field, with the field's path
(``temperature``, ``fallback_models[1]``, ``channels.slack``) and a message saying what is
allowed.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

__all__ = [
    "APPLICATION_SCHEMA",
    "APPLICATION_VIEW_SCHEMA",
    "CHATBOT_SCHEMA",
    "CHATBOT_VIEW_SCHEMA",
    "ID_PATTERN",
    "READ_ONLY_FIELDS",
    "WRITE_ONLY_FIELDS",
    "FieldError",
    "Kind",
    "coerce_integers",
    "validate_document",
]

Kind = Literal["application", "chatbot"]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$"
URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"
ORIGIN_PATTERN = r"^(\*|https?://[^\s/?#]+)$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
CHANNEL_NAME_PATTERN = r"^[a-z][a-z0-9_\-]{0,63}$"
MODEL_PATTERN = r"^\S+$"

_PATTERN_HINTS = {
    ID_PATTERN: "1-128 letters, digits and _.:@- starting with a letter or digit",
    URL_PATTERN: "an http:// or https:// URL",
    ORIGIN_PATTERN: 'an origin such as "https://chat.example.com" (scheme and host, no path) or "*"',
    TOOL_NAME_PATTERN: "a tool name: 1-64 letters, digits, _ and -",
    CHANNEL_NAME_PATTERN: "a platform name: lowercase letters, digits, _ and -",
    MODEL_PATTERN: "a model name without spaces",
}

#: Fields a client may send but a response never contains.
WRITE_ONLY_FIELDS = frozenset({"secret", "channels"})
#: Fields only responses contain; a request may carry them (a GET result sent back) and they are ignored.
READ_ONLY_FIELDS = frozenset({"secret_set", "channels_set", "created_at", "updated_at", "revision"})

_ID = {"type": "string", "pattern": ID_PATTERN}

APPLICATION_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Application",
    "description": "A client of Parley: where its conversations come from and which chatbot answers them.",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "chatbot_id"],
    "properties": {
        "id": {**_ID, "description": "The application id (taken from the URL when omitted on PUT/PATCH)."},
        "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Display name."},
        "chatbot_id": {**_ID, "description": "The chatbot that answers; it must exist."},
        "callback_url": {
            "type": ["string", "null"],
            "maxLength": 2048,
            "pattern": URL_PATTERN,
            "description": "Where replies to webhook messages are POSTed; null: archived only.",
        },
        "allow_anonymous": {
            "type": "boolean",
            "default": True,
            "description": "Whether websocket clients may connect without a user token.",
        },
        "allowed_origins": {
            "type": "array",
            "maxItems": 100,
            "items": {"type": "string", "maxLength": 2048, "pattern": ORIGIN_PATTERN},
            "default": [],
            "description": "Browser origins allowed to open the websocket; empty: any.",
        },
        "secret": {
            "type": ["string", "null"],
            "minLength": 8,
            "maxLength": 1024,
            "writeOnly": True,
            "description": "Shared secret (e.g. webhook signatures). Never returned: responses carry "
            "`secret_set`. Omitted on PUT: kept; null: removed.",
        },
        "channels": {
            "type": ["object", "null"],
            "maxProperties": 50,
            "propertyNames": {"pattern": CHANNEL_NAME_PATTERN},
            "additionalProperties": {"type": "object", "maxProperties": 50},
            "writeOnly": True,
            "description": "Per-platform credentials, e.g. {\"telegram\": {\"bot_token\": \"...\"}}. "
            "Never returned: responses carry `channels_set`, the platform names. Omitted on PUT: kept; "
            "null: removed; PATCH merges per platform.",
        },
    },
}

CHATBOT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Chatbot",
    "description": "How a chatbot answers. Omitted fields take their defaults.",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": {**_ID, "description": "The chatbot id (taken from the URL when omitted on PUT/PATCH)."},
        "system_prompt": {"type": "string", "minLength": 1, "maxLength": 20_000},
        "provider": {
            "enum": ["openai", "gemini", "grok", "custom", None],
            "description": "Provider preset; null: the configured endpoint (PARLEY_LLM_BASE_URL).",
        },
        "model": {
            "type": ["string", "null"], "minLength": 1, "maxLength": 200, "pattern": MODEL_PATTERN,
            "description": "Model name; null: PARLEY_LLM_MODEL.",
        },
        "fallback_models": {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": MODEL_PATTERN},
            "default": [],
            "description": 'Tried in order when the primary fails: "model" or "provider:model".',
        },
        "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
        "max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": 200_000},
        "history_token_budget": {"type": "integer", "minimum": 200, "maximum": 1_000_000, "default": 6000},
        "tools": {
            "type": ["array", "null"],
            "maxItems": 128,
            "items": {"type": "string", "pattern": TOOL_NAME_PATTERN},
            "description": "Names of the tools the model may call; null: every registered tool; []: none.",
        },
        "double_texting": {
            "enum": ["queue", "interrupt", "merge"],
            "default": "queue",
            "description": "What a message arriving while the previous one is answered does.",
        },
        "merge_window_s": {"type": "number", "minimum": 0, "maximum": 30, "default": 1.5},
        "history_messages": {
            "type": "integer", "minimum": 2, "maximum": 1000,
            "description": "Recent messages kept; default PARLEY_HISTORY_MESSAGES.",
        },
        "max_tool_rounds": {
            "type": "integer", "minimum": 1, "maximum": 50,
            "description": "Tool round trips per user message; default PARLEY_MAX_TOOL_ROUNDS.",
        },
        "rate_limit_per_minute": {
            "type": ["integer", "null"], "minimum": 1,
            "description": "Websocket messages per application and minute, per gateway process; "
            "null: PARLEY_WS_APP_MESSAGES_PER_MINUTE.",
        },
    },
}

_TIMESTAMP = {"type": "string", "format": "date-time", "readOnly": True}
_READ_ONLY_PROPERTIES: dict[str, Any] = {
    "created_at": _TIMESTAMP,
    "updated_at": _TIMESTAMP,
    "revision": {"type": "integer", "minimum": 0, "readOnly": True, "description": "Incremented by every write."},
}


def _view(schema: dict[str, Any], title: str, extra: dict[str, Any]) -> dict[str, Any]:
    properties = {k: v for k, v in schema["properties"].items() if k not in WRITE_ONLY_FIELDS}
    return {
        "title": title,
        "type": "object",
        "required": ["id"],
        "properties": {**properties, **extra, **_READ_ONLY_PROPERTIES},
    }


APPLICATION_VIEW_SCHEMA = _view(
    APPLICATION_SCHEMA,
    "ApplicationView",
    {
        "secret_set": {"type": "boolean", "readOnly": True, "description": "Whether a secret is stored."},
        "channels_set": {
            "type": "array", "items": {"type": "string"}, "readOnly": True,
            "description": "Platforms with stored credentials (the credentials are never returned).",
        },
    },
)
CHATBOT_VIEW_SCHEMA = _view(CHATBOT_SCHEMA, "ChatbotView", {})

def _pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """``pattern`` as JSON Schema (ECMA-262) reads it: a final ``$`` is the end of the string.
    Python's ``$`` also matches before a final newline, which let ``"app\\n"`` pass as an id."""
    if not validator.is_type(instance, "string"):
        return
    match = re.search(pattern, instance)
    if match is None or (pattern.endswith("$") and match.end() != len(instance)):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})

_SCHEMAS: dict[str, dict[str, Any]] = {"application": APPLICATION_SCHEMA, "chatbot": CHATBOT_SCHEMA}
for _schema in _SCHEMAS.values():
    Draft202012Validator.check_schema(_schema)
_VALIDATORS = {kind: _Validator(schema) for kind, schema in _SCHEMAS.items()}


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def validate_document(doc: dict[str, Any], kind: Kind, *, require_id: bool = False) -> list[FieldError]:
    """Every schema violation of ``doc``, one per field, sorted by field."""
    errors: dict[str, FieldError] = {}
    if require_id and "id" not in doc:
        errors["id"] = FieldError("id", "is required")
    for error in _VALIDATORS[kind].iter_errors(doc):
        for field_error in _field_errors(error):
            errors.setdefault(field_error.field, field_error)
    for field, value in _floats(doc):
        if not math.isfinite(value):
            errors.setdefault(field, FieldError(field, "must be a finite number"))
    return sorted(errors.values(), key=lambda e: e.field)


def coerce_integers(doc: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """A copy of a valid ``doc`` with integral floats (``5.0``) of integer fields made ints."""
    out = copy.deepcopy(doc)
    for name, spec in _SCHEMAS[kind]["properties"].items():
        types = spec.get("type")
        types = [types] if isinstance(types, str) else (types or [])
        value = out.get(name)
        if "integer" in types and isinstance(value, float) and value.is_integer():
            out[name] = int(value)
    return out


# --- messages ---------------------------------------------------------------------------------
def _path(parts: Any) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


_TYPE_NAMES = {
    "string": "a string", "number": "a number", "integer": "an integer", "boolean": "true or false",
    "array": "an array", "object": "an object", "null": "null",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _field_errors(error: ValidationError) -> list[FieldError]:
    parent = _path(error.absolute_path)
    kind = error.validator
    value = error.validator_value
    instance = error.instance
    if kind == "required":
        return [FieldError(_join(parent, name), "is required") for name in value if name not in instance]
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
        return [
            FieldError(_join(parent, name), f"unknown field{hint}")
            for name in sorted(set(instance) - set(allowed))
        ]
    if "propertyNames" in error.relative_schema_path:  # instance is the offending key
        hint = _PATTERN_HINTS.get(str(value), f"match {value}") if kind == "pattern" else error.message
        return [FieldError(_join(parent, str(instance)), f"key must be {hint}")]
    field = parent or "(document)"
    if kind == "type":
        types = [value] if isinstance(value, str) else list(value)
        return [FieldError(field, f"must be {_or([_TYPE_NAMES[t] for t in types])}, got {_json_type(instance)}")]
    if kind == "enum":
        shown = ["null" if v is None else str(v) for v in value]
        return [FieldError(field, f"must be one of {', '.join(shown)}; got {instance!r}")]
    messages = {
        "minimum": f"must be at least {value}",
        "maximum": f"must be at most {value}",
        "exclusiveMinimum": f"must be greater than {value}",
        "exclusiveMaximum": f"must be less than {value}",
        "minLength": f"must be at least {value} characters long",
        "maxLength": f"must be at most {value} characters long",
        "minItems": f"must have at least {value} items",
        "maxItems": f"must have at most {value} items",
        "maxProperties": f"must have at most {value} entries",
        "pattern": f"must be {_PATTERN_HINTS.get(str(value), f'match {value}')}",
    }
    if kind in messages:
        message = messages[kind]
        if kind == "minLength" and value == 1:
            message = "must not be empty"
        elif kind in ("minLength", "maxLength") and isinstance(instance, str):
            message += f" (got {len(instance)})"
        return [FieldError(field, message)]
    return [FieldError(field, error.message)]


def _floats(value: Any, path: str = "") -> list[tuple[str, float]]:
    if isinstance(value, float):
        return [(path or "(document)", value)]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _floats(v, _join(path, str(k)))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _floats(v, f"{path}[{i}]")]
    return []
