"""The OpenAPI description of the console's operations endpoints: conversations and the human
handoff (``conversations_api``), dead letters (``deadletters_api``) and the overview
(``overview_api``). ``parley.web.openapi`` merges these paths and schemas into the document."""

from __future__ import annotations

from typing import Any

from parley.config.models import ID_PATTERN
from parley.overview import MAX_MINUTES
from parley.web.accounts_openapi import SECURITY
from parley.web.admin import ADMIN_PREFIX, DEFAULT_LIMIT, MAX_LIMIT
from parley.web.conversations_api import MAX_QUERY_CHARS, TRANSCRIPT_LIMIT

__all__ = ["openapi_paths", "openapi_schemas"]

_SECURITY = SECURITY  # the admin key, a personal API token, or a session (with its CSRF token on writes)
_ID = {"type": "string", "pattern": ID_PATTERN}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_FORBIDDEN = _error("`forbidden`: the role or the application scope does not allow it (viewers read, admins "
                    "write for their applications); `csrf_required`: a session cookie without `X-CSRF-Token`.")
_COMMON = {
    "401": _error("Missing or wrong credential (code `unauthorized`)."),
    "403": _FORBIDDEN,
    "503": _error("`admin_disabled`: PARLEY_ADMIN_API_KEY is not set; `unavailable`: the document store "
                  "or the broker did not answer (retry)."),
}
_BODY_ERRORS = {
    "400": _error("The body is not a JSON object, or a field is missing or invalid."),
    "413": _error("The body or the text is too large."),
    "422": _error("A field has the wrong type."),
}
_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}}
_CURSOR = {"name": "cursor", "in": "query", "schema": {"type": "string"},
           "description": "The previous page's `next_cursor`."}


def _conversation_paths() -> dict[str, Any]:
    base = f"{ADMIN_PREFIX}/applications/{{application_id}}/conversations"
    app_param = {"name": "application_id", "in": "path", "required": True, "schema": _ID}
    conv_param = {"name": "conversation_id", "in": "path", "required": True, "schema": _ID}
    tags = ["conversations"]
    not_found = _error("No such application, or no such conversation in it (code `not_found`).")
    handoff_answer = _json(_ref("HandoffState"), "Who holds the conversation now.")
    return {
        base: {
            "parameters": [app_param],
            "get": {
                "operationId": "list_conversations", "summary": "An application's conversations, newest first",
                "tags": tags, "security": _SECURITY,
                "parameters": [
                    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS},
                     "description": "Only conversations whose id, a sender or a message's text contains this (any case)."},
                    _LIMIT, _CURSOR,
                ],
                "responses": {
                    "200": _json(_ref("ConversationList"), "A page of conversations."),
                    "400": _error("A query parameter is invalid (code `invalid_parameter`)."),
                    "404": not_found, **_COMMON,
                },
            },
        },
        f"{base}/{{conversation_id}}": {
            "parameters": [app_param, conv_param],
            "get": {
                "operationId": "get_transcript", "summary": "A conversation's transcript", "tags": tags,
                "security": _SECURITY,
                "description": f"Its last {TRANSCRIPT_LIMIT} archived messages, oldest first: user messages "
                "(attachments), tool calls and results, replies (delivery status), operators' messages, "
                "take overs and hand backs, and messages re-created by a replay (`replayed`).",
                "responses": {
                    "200": _json(_ref("Transcript"), "The transcript."),
                    "400": _error("An id is invalid (code `invalid_parameter`)."),
                    "404": not_found, **_COMMON,
                },
            },
        },
        f"{base}/{{conversation_id}}/handoff": {
            "parameters": [app_param, conv_param],
            "post": {
                "operationId": "take_over", "summary": "Take the conversation over (human handoff)", "tags": tags,
                "security": _SECURITY,
                "description": "The assistant stops answering the conversation; the caller answers it with "
                "`POST …/messages`. Taking over a conversation one already holds changes nothing.",
                "responses": {
                    "200": handoff_answer,
                    "400": _error("An id is invalid (code `invalid_parameter`)."),
                    "404": not_found,
                    "409": _error("Another operator holds the conversation (code `taken_over`)."),
                    **_COMMON,
                },
            },
            "delete": {
                "operationId": "hand_back", "summary": "Hand the conversation back to the assistant", "tags": tags,
                "security": _SECURITY,
                "description": "The assistant answers the next user message, with the whole conversation "
                "(the messages of the handoff included) in its history. Idempotent: handing back a "
                "conversation nobody holds is harmless.",
                "responses": {
                    "200": handoff_answer,
                    "400": _error("An id is invalid (code `invalid_parameter`)."),
                    "404": not_found,
                    **_COMMON,
                },
            },
        },
        f"{base}/{{conversation_id}}/messages": {
            "parameters": [app_param, conv_param],
            "post": {
                "operationId": "send_operator_message", "summary": "Write to the user as the operator",
                "tags": tags, "security": _SECURITY,
                "description": "Delivered on the conversation's own channel (websocket, with the operator's "
                "name; the platform; the callback URL) and archived with the operator. The same `id` "
                "again is the same message (delivered once).",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("OperatorMessage")}}},
                "responses": {
                    "202": _json(_ref("OperatorMessageAccepted"), "On the broker; the processor sends it."),
                    **_BODY_ERRORS,
                    "404": not_found,
                    "409": _error("The conversation is not taken over (code `not_taken_over`)."),
                    **_COMMON,
                },
            },
        },
    }


def _dead_letter_paths() -> dict[str, Any]:
    base = f"{ADMIN_PREFIX}/dead-letters"
    letter_param = {"name": "dead_letter_id", "in": "path", "required": True, "schema": {"type": "string"}}
    tags = ["dead letters"]
    not_found = _error("No such dead letter on the topic (code `not_found`).")
    unavailable = {"503": _error("`dead_letters_unavailable`: this process has no broker; `unavailable`: "
                                 "the topic or the document store did not answer; `admin_disabled`.")}
    return {
        base: {
            "get": {
                "operationId": "list_dead_letters", "summary": "Dead letters, newest first", "tags": tags,
                "security": _SECURITY,
                "parameters": [
                    {"name": "application_id", "in": "query", "schema": _ID},
                    {"name": "stage", "in": "query", "schema": {"type": "string"},
                     "description": "e.g. `processor`, `processor.llm`, `persister.outgoing`."},
                    {"name": "include_purged", "in": "query", "schema": {"type": "boolean", "default": False}},
                    _LIMIT, _CURSOR,
                ],
                "responses": {
                    "200": _json(_ref("DeadLetterList"), "A page of dead letters."),
                    "400": _error("A query parameter is invalid (code `invalid_parameter`)."),
                    "401": _COMMON["401"], "403": _FORBIDDEN, **unavailable,
                },
            },
        },
        f"{base}/{{dead_letter_id}}": {
            "parameters": [letter_param],
            "get": {
                "operationId": "get_dead_letter", "summary": "A dead letter with its original bytes", "tags": tags,
                "security": _SECURITY,
                "responses": {
                    "200": _json(_ref("DeadLetterDetail"), "The dead letter."),
                    "404": not_found, "401": _COMMON["401"], "403": _FORBIDDEN, **unavailable,
                },
            },
            "delete": {
                "operationId": "purge_dead_letter", "summary": "Purge: hide it from the list", "tags": tags,
                "security": _SECURITY,
                "description": "Topics are append-only: the record stays until the topic's retention removes it.",
                "responses": {
                    "200": _json({"type": "object", "required": ["dead_letter_id", "purged"], "properties": {
                        "dead_letter_id": {"type": "string"}, "purged": {"const": True}}}, "Purged."),
                    "404": not_found, "401": _COMMON["401"], "403": _FORBIDDEN, **unavailable,
                },
            },
        },
        f"{base}/{{dead_letter_id}}/replay": {
            "parameters": [letter_param],
            "post": {
                "operationId": "replay_dead_letter", "summary": "Replay a dead letter", "tags": tags,
                "security": _SECURITY,
                "description": "As `parley dlq replay`: the original bytes to the original topic, or, for a "
                "failed model call, a new replay event (delivered only with `deliver`). Once, unless `force`.",
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"force": {"type": "boolean"}, "deliver": {"type": "boolean"}}}}}},
                "responses": {
                    "200": _json({"type": "object", "required": ["dead_letter_id", "replay"], "properties": {
                        "dead_letter_id": {"type": "string"}, "replay": _ref("DeadLetterReplay")}}, "Replayed."),
                    **_BODY_ERRORS,
                    "404": not_found,
                    "409": _error("Replayed already (pass `force`), or it cannot be replayed (code `refused`)."),
                    "401": _COMMON["401"], "403": _FORBIDDEN, **unavailable,
                },
            },
        },
    }


def _overview_paths() -> dict[str, Any]:
    return {
        f"{ADMIN_PREFIX}/overview": {
            "get": {
                "operationId": "overview", "summary": "Turns, answer times, errors and lag: the pipeline's (Prometheus) or this process's",
                "tags": ["operations"], "security": _SECURITY,
                "parameters": [{"name": "minutes", "in": "query", "schema": {
                    "type": "integer", "minimum": 1, "maximum": MAX_MINUTES, "default": 60}}],
                "responses": {
                    "200": _json(_ref("Overview"), "Per-minute series, oldest first, and the figures now."),
                    "400": _error("`minutes` is invalid (code `invalid_parameter`)."),
                    **_COMMON,
                },
            },
        },
    }


def openapi_paths() -> dict[str, Any]:
    return {**_conversation_paths(), **_dead_letter_paths(), **_overview_paths()}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _points(value: dict[str, Any]) -> dict[str, Any]:
    """``[[minute start, value], ...]``."""
    return {"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2,
                                       "items": {"anyOf": [{"type": "integer"}, value]}}}


def openapi_schemas() -> dict[str, Any]:
    handoff = {
        "type": "object", "required": ["operator_id", "operator_name", "since"],
        "properties": {"operator_id": {"type": "string"}, "operator_name": {"type": "string"},
                       "since": {"type": ["number", "null"]}},
    }
    person = {"type": "object", "required": ["id", "name"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
    letter = {
        "type": "object",
        "required": ["dead_letter_id", "stage", "error", "error_type", "topic", "partition", "offset", "key",
                     "failed_at", "application_id", "replay_count"],
        "properties": {
            "dead_letter_id": {"type": "string"}, "stage": {"type": "string"}, "error": {"type": "string"},
            "error_type": {"type": "string"}, "topic": {"type": "string"}, "partition": {"type": "integer"},
            "offset": {"type": "integer"}, "key": {"type": "string"}, "original_b64": {"type": "string"},
            "failed_at": {"type": "number"}, "attempts": {"type": "integer"},
            "application_id": {"type": ["string", "null"]},
            "dead_letter_partition": {"type": "integer"}, "dead_letter_offset": {"type": "integer"},
            "replayed_at": {"type": ["number", "null"]}, "replay_count": {"type": "integer"},
            "purged_at": {"type": ["number", "null"]},
        },
    }
    return {
        "Handoff": handoff,
        "HandoffState": {
            "type": "object", "required": ["conversation_id", "handoff"],
            "properties": {"conversation_id": {"type": "string"}, "handoff": _nullable(_ref("Handoff"))},
        },
        "ConversationList": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {
                "items": {"type": "array", "items": {
                    "type": "object", "required": ["conversation_id", "sender", "last_message_at", "last_text", "handoff"],
                    "properties": {
                        "conversation_id": {"type": "string"}, "sender": {"type": "string"},
                        "last_message_at": {"type": "number"}, "last_text": {"type": "string"},
                        "handoff": _nullable(_ref("Handoff")),
                    },
                }},
                "next_cursor": {"type": ["string", "null"]},
            },
        },
        "TranscriptMessage": {
            "type": "object", "required": ["message_id", "role", "text", "sender", "created_at"],
            "properties": {
                "message_id": {"type": "string"},
                "role": {"enum": ["user", "assistant", "tool", "operator", "handoff"]},
                "text": {"type": "string"}, "sender": {"type": "string"}, "created_at": {"type": ["number", "null"]},
                "channel": {"type": "string"},
                "in_reply_to": {"type": "string"},
                "tool_calls": {"type": "array", "items": {"type": "object", "required": ["id", "name", "arguments"]}},
                "tool_results": {"type": "array", "items": {"type": "object", "required": ["call_id", "name", "content"]}},
                "attachments": {"type": "array", "items": {"type": "object"}},
                "delivery": {"type": "object", "required": ["channel", "status", "delivered_at"], "properties": {
                    "channel": {"type": "string"}, "status": {"enum": ["delivered", "published", "pending"]},
                    "delivered_at": {"type": ["number", "null"]}}},
                "is_error": {"type": "boolean"},
                "replayed": {"type": "boolean"}, "replay_id": {"type": "string"},
                "operator": person,
                "action": {"enum": ["take_over", "hand_back", ""]},
            },
        },
        "Transcript": {
            "type": "object", "required": ["conversation_id", "application_id", "channel", "handoff", "truncated", "messages"],
            "properties": {
                "conversation_id": {"type": "string"}, "application_id": {"type": "string"},
                "channel": {"type": "string"}, "handoff": _nullable(_ref("Handoff")),
                "truncated": {"type": "boolean"},
                "messages": {"type": "array", "items": _ref("TranscriptMessage")},
            },
        },
        "OperatorMessage": {
            "type": "object", "required": ["text"],
            "properties": {
                "text": {"type": "string", "minLength": 1, "description": "At most PARLEY_MAX_TEXT_BYTES bytes."},
                "id": {**_ID, "description": "The console's own id for this message: a retry with the same id is the same message."},
            },
        },
        "OperatorMessageAccepted": {
            "type": "object", "required": ["message_id", "event_id", "accepted_at"],
            "properties": {"message_id": {"type": "string", "description": "The id the message is archived and delivered with."},
                           "event_id": {"type": "string"}, "accepted_at": {"type": "number"}},
        },
        "DeadLetter": letter,
        "DeadLetterDetail": {"allOf": [letter, {
            "type": "object", "required": ["original_b64", "original_json", "original_text"],
            "properties": {"original_json": {"description": "The original bytes as JSON; null when they are not."},
                           "original_text": {"type": "string"}},
        }]},
        "DeadLetterList": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": _ref("DeadLetter")}, "next_cursor": {"type": ["string", "null"]}},
        },
        "DeadLetterReplay": {
            "type": "object", "required": ["mode", "topic"],
            "properties": {"mode": {"enum": ["as-is", "regenerate"]}, "topic": {"type": "string"},
                           "event_id": {"type": ["string", "null"]}, "replay_id": {"type": ["string", "null"]}},
        },
        "Overview": {
            "type": "object", "required": ["series", "now"],
            "properties": {
                "series": {
                    "type": "object", "required": ["turns", "answer_p50_ms", "answer_p95_ms", "errors"],
                    "description": "`[minute start (epoch seconds), value]` pairs; the last minute is the current one.",
                    "properties": {
                        "turns": _points({"type": "integer"}), "errors": _points({"type": "integer"}),
                        "answer_p50_ms": _points({"type": ["integer", "null"]}),
                        "answer_p95_ms": _points({"type": ["integer", "null"]}),
                    },
                },
                "now": {
                    "type": "object", "required": ["dead_letters", "consumer_lag", "sockets", "turns_per_minute"],
                    "properties": {
                        "dead_letters": {"type": ["integer", "null"], "description": "Not purged; null when not countable."},
                        "consumer_lag": {"type": "integer"}, "sockets": {"type": "integer"},
                        "turns_per_minute": {"type": "integer"},
                    },
                },
                "minute_s": {"type": "integer"},
                "scope": {"enum": ["pipeline", "process"], "description": "`pipeline`: every worker and gateway, from "
                          "PARLEY_PROMETHEUS_URL; `process`: the process that answered."},
                "prometheus_error": {"type": "string", "description": "Why Prometheus was not used (it is configured)."},
            },
        },
    }
