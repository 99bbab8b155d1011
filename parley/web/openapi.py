"""``GET /v1/openapi.json``: the OpenAPI 3.1 description of Parley's HTTP API.

The documents' schemas are generated from the models the admin API validates with
(``parley.config.models``), so the description cannot drift from the code; the endpoints and
their descriptions are written here. A test checks every route under ``/v1/`` is in it.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from aiohttp import web

from parley.config.models import ID_PATTERN, document_schema, view_schema
from parley.web.accounts_openapi import SECURITY, account_paths, account_schemas
from parley.web.admin import ADMIN_PREFIX, DEFAULT_LIMIT, MAX_LIMIT
from parley.web.ops_openapi import openapi_paths as ops_paths
from parley.web.ops_openapi import openapi_schemas as ops_schemas
from parley.web.uploads import openapi_paths as upload_paths

__all__ = ["openapi_document", "openapi_handler"]

_ADMIN_SECURITY = SECURITY


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _patch_schema(schema: dict[str, Any], title: str) -> dict[str, Any]:
    """A merge patch of ``schema``: every field optional, null resets it to its default."""
    return {
        "title": title,
        "description": "An RFC 7396 merge patch: given fields replace, null resets a field to its "
        "default (removes it), objects merge. The result must be a valid document.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            name: {"anyOf": [spec, {"type": "null"}]}
            for name, spec in schema["properties"].items()
        },
    }


def _list_schema(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_after"],
        "properties": {
            "items": {"type": "array", "items": _ref(item)},
            "next_after": {
                "type": ["string", "null"],
                "description": "Pass as `after` for the next page; null on the last page.",
            },
        },
    }


def _admin_paths(plural: str, kind: str, schema: str) -> dict[str, Any]:
    view = f"{schema}View"
    id_param = {
        "name": "id", "in": "path", "required": True,
        "schema": {"type": "string", "pattern": ID_PATTERN},
    }
    common = {"401": _response("Unauthorized"), "403": _response("Forbidden"), "503": _response("Unavailable")}
    write = {"400": _response("InvalidJson"), "413": _response("TooLarge"), "422": _response("InvalidDocument")}
    tags = [plural]
    return {
        f"{ADMIN_PREFIX}/{plural}": {
            "get": {
                "operationId": f"list_{plural}", "summary": f"List {plural} by id", "tags": tags,
                "security": _ADMIN_SECURITY,
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {
                        "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}},
                    {"name": "after", "in": "query", "schema": {"type": "string"},
                     "description": "Only ids after this one (the previous page's `next_after`)."},
                ],
                "responses": {
                    "200": _json_body(_ref(f"{schema}List"), f"A page of {plural}, ordered by id."),
                    "400": _response("InvalidParameter"), **common,
                },
            },
            "post": {
                "operationId": f"create_{kind}", "summary": f"Create a {kind}", "tags": tags,
                "security": _ADMIN_SECURITY,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"allOf": [_ref(schema), {"required": ["id"]}]}}}},
                "responses": {
                    "201": _json_body(_ref(view), f"The created {kind}."),
                    "409": _response("Conflict"), **write, **common,
                },
            },
        },
        f"{ADMIN_PREFIX}/{plural}/{{id}}": {
            "parameters": [id_param],
            "get": {
                "operationId": f"get_{kind}", "summary": f"Read a {kind}", "tags": tags,
                "security": _ADMIN_SECURITY,
                "responses": {
                    "200": _json_body(_ref(view), f"The {kind}."),
                    "404": _response("NotFound"), **common,
                },
            },
            "put": {
                "operationId": f"put_{kind}",
                "summary": f"Create or replace a {kind}",
                "description": "Replaces the whole document. Write-only fields (`secret`, `channels`) "
                "that are omitted keep their stored value; null removes them.",
                "tags": tags, "security": _ADMIN_SECURITY,
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(schema)}}},
                "responses": {
                    "200": _json_body(_ref(view), f"The replaced {kind}."),
                    "201": _json_body(_ref(view), f"The created {kind}."),
                    "409": _response("Conflict"), **write, **common,
                },
            },
            "patch": {
                "operationId": f"patch_{kind}", "summary": f"Change fields of a {kind}", "tags": tags,
                "security": _ADMIN_SECURITY,
                "requestBody": {"required": True, "content": {
                    "application/merge-patch+json": {"schema": _ref(f"{schema}Patch")},
                    "application/json": {"schema": _ref(f"{schema}Patch")},
                }},
                "responses": {
                    "200": _json_body(_ref(view), f"The changed {kind}."),
                    "404": _response("NotFound"), "409": _response("Conflict"), **write, **common,
                },
            },
            "delete": {
                "operationId": f"delete_{kind}", "summary": f"Delete a {kind}", "tags": tags,
                "security": _ADMIN_SECURITY,
                "description": "A chatbot still used by an application is not deleted (409)."
                if kind == "chatbot" else "The application's archived messages are kept.",
                "responses": {
                    "204": {"description": "Deleted."},
                    "404": _response("NotFound"),
                    **({"409": _response("Conflict")} if kind == "chatbot" else {}),
                    **common,
                },
            },
        },
    }


def _tool_paths() -> dict[str, Any]:
    return {
        f"{ADMIN_PREFIX}/tools": {
            "get": {
                "operationId": "list_tools", "summary": "The registered tools a chatbot may list",
                "tags": ["chatbots"], "security": _ADMIN_SECURITY,
                "responses": {
                    "200": _json_body({
                        "type": "object", "required": ["items"],
                        "properties": {"items": {"type": "array", "items": {
                            "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}},
                        }}},
                    }, "The tool names, sorted."),
                    "401": _response("Unauthorized"), "403": _response("Forbidden"), "503": _response("Unavailable"),
                },
            }
        }
    }


def _error_response(description: str, schema: str = "Error") -> dict[str, Any]:
    return _json_body(_ref(schema), description)


def _platform_webhook_paths(id_schema: dict[str, Any]) -> dict[str, Any]:
    """The messaging platforms' webhooks (docs/channels.md): their bodies are the platforms'."""
    params = [{"name": "application_id", "in": "path", "required": True, "schema": id_schema}]
    platforms = {
        "telegram": ("a Telegram Bot API Update", "`X-Telegram-Bot-Api-Secret-Token`"),
        "whatsapp": ("a WhatsApp Cloud API webhook", "`X-Hub-Signature-256`"),
        "slack": ("a Slack Events API request", "`X-Slack-Signature` and `X-Slack-Request-Timestamp`"),
    }
    paths: dict[str, Any] = {}
    for name, (what, auth) in platforms.items():
        responses = {
            "200": _json_body(
                {"type": "object", "description": "`{\"ok\": true, \"event_ids\": [...]}` (also for "
                 "ignored events), or the platform's challenge answer."},
                "Accepted or ignored.",
            ),
            "400": _error_response("The body is not what the platform sends."),
            "401": _error_response(f"{auth} missing, forged or stale (nothing produced)."),
            "404": _error_response("No such application, or it has no `channels." + name + "`."),
            "413": _error_response("Body too large."),
            "503": _error_response("The broker or the document store did not answer: the platform retries."),
        }
        paths[f"/v1/webhooks/{name}/{{application_id}}"] = {
            "parameters": params,
            "post": {
                "operationId": f"{name}_webhook", "summary": f"Receive {what}", "tags": ["ingress"],
                "description": f"Verified with {auth}; see docs/channels.md. Each message becomes a user "
                "event keyed by the platform's message id, so redeliveries are answered once.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": responses,
            },
        }
    paths["/v1/webhooks/whatsapp/{application_id}"]["get"] = {
        "operationId": "whatsapp_subscription", "summary": "WhatsApp webhook verification", "tags": ["ingress"],
        "parameters": [
            {"name": "hub.mode", "in": "query", "required": True, "schema": {"const": "subscribe"}},
            {"name": "hub.verify_token", "in": "query", "required": True, "schema": {"type": "string"}},
            {"name": "hub.challenge", "in": "query", "required": True, "schema": {"type": "string"}},
        ],
        "responses": {
            "200": {"description": "`hub.challenge`, as text.", "content": {"text/plain": {"schema": {"type": "string"}}}},
            "400": _error_response("`application_id` is not a valid id (code `invalid_field`)."),
            "403": _error_response("Wrong `hub.verify_token`."),
            "404": _error_response("No such application, or it has no `channels.whatsapp`."),
        },
    }
    return paths


def _table_paths() -> dict[str, Any]:
    """Read-only table queries (parley/web/tables_api.py), answered by workers."""
    view = {"name": "view", "in": "path", "required": True,
            "schema": {"type": "string", "enum": ["conversations", "seen-events", "usage"]}}
    errors = {
        "401": _error_response("No valid credential (a session, a personal API token or the admin key)."),
        "403": _error_response("The key's application is outside your scope (code `forbidden`)."),
        "503": _error_response("Partitions not assigned yet, or the document store is down."),
    }
    not_found = _error_response("Unknown table (`unknown_table`), or asked of a gateway (`not_a_worker`).")
    entry = {
        "type": "object",
        "required": ["table", "key", "partition", "found", "value", "served_by"],
        "properties": {
            "table": {"type": "string"}, "key": {"type": "string"},
            "partition": {"type": "integer", "minimum": 0},
            "found": {"type": "boolean"},
            "value": {"description": "The key's state (null when not found)."},
            "served_by": {"type": "string", "description": "The worker that answered."},
        },
    }
    return {
        "/v1/tables": {"get": {
            "operationId": "listTables", "summary": "Queryable tables", "tags": ["operations"],
            "security": _ADMIN_SECURITY,
            "responses": {
                "200": _json_body({"type": "object", "required": ["tables"],
                                   "properties": {"tables": {"type": "object"}}},
                                  "Each table with what its keys and values are."),
                **errors,
            },
        }},
        "/v1/tables/{view}": {"get": {
            "operationId": "scanTable", "summary": "Scan a table across every worker", "tags": ["operations"],
            "security": _ADMIN_SECURITY,
            "parameters": [view,
                           {"name": "prefix", "in": "query", "schema": {"type": "string"}},
                           {"name": "limit", "in": "query",
                            "description": "At most this many rows (clamped to 1..1000; default 100).",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}],
            "responses": {
                "200": _json_body({
                    "type": "object", "required": ["rows"],
                    "properties": {
                        "rows": {"type": "array", "items": {"type": "object", "required": ["key"],
                                                            "properties": {"key": {"type": "string"}}}},
                        "members": {"type": "array", "items": {"type": "string"}},
                        "unreachable": {"type": "array", "items": {"type": "string"},
                                        "description": "Members that did not answer: their rows are missing."},
                    },
                }, "Rows ordered by key, merged from every worker."),
                "400": _error_response("`limit` is not an integer (code `invalid_field`)."),
                "404": not_found,
                **errors,
            },
        }},
        "/v1/tables/{view}/{key}": {"get": {
            "operationId": "getTableKey", "summary": "One key, from the worker that owns it", "tags": ["operations"],
            "security": _ADMIN_SECURITY,
            "parameters": [view, {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _json_body(entry, "The key's state (`found: true`)."),
                "404": _json_body(
                    {"oneOf": [entry, _ref("Error")]},
                    "The key has no state (the entry, with `found: false` and `value: null`), or an "
                    "unknown table / a gateway (an error).",
                ),
                "502": _error_response("The owning worker did not answer."),
                **errors,
            },
        }},
    }


def _version() -> str:
    try:
        return metadata.version("parley")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict; callers may change it)."""
    id_schema = {"type": "string", "pattern": ID_PATTERN}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Parley",
            "version": _version(),
            "description": "Kafka-native AI chat pipeline: webhook ingress, health, the admin API "
            "for applications and chatbots, and operator accounts (sign-in, tokens, users, audit). The websocket protocol (`/ws`) is described in "
            "docs/websocket-protocol.md; the admin API in docs/admin-api.md.",
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "tags": [
            {"name": "applications", "description": "Admin: clients of Parley."},
            {"name": "chatbots", "description": "Admin: how applications are answered."},
            {"name": "ingress", "description": "Messages in."},
            {"name": "operations", "description": "Health and API description."},
            {"name": "conversations", "description": "Console: archived conversations and the human handoff."},
            {"name": "dead letters", "description": "Console: events that failed, replayed or purged."},
            {"name": "auth", "description": "Operators: sign-in, sessions, password, personal API tokens."},
            {"name": "users", "description": "Owners: operator accounts; the audit log."},
            {"name": "widget", "description": "The embeddable chat widget (public)."},
        ],
        "paths": {
            **_admin_paths("applications", "application", "Application"),
            **_admin_paths("chatbots", "chatbot", "Chatbot"),
            **_tool_paths(),
            "/v1/webhooks/generic/{application_id}": {
                "post": {
                    "operationId": "generic_webhook",
                    "summary": "Submit a message from any HTTP system",
                    "description": "Answers 202 once the broker has the event. A redelivery with the same "
                    "`id` gets the same `event_id` and is answered once. The reply is POSTed to the "
                    "application's `callback_url`.",
                    "tags": ["ingress"],
                    "parameters": [
                        {"name": "application_id", "in": "path", "required": True, "schema": id_schema},
                        {"name": "X-Parley-Signature", "in": "header", "required": False,
                         "schema": {"type": "string", "examples": ["t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"]},
                         "description": "Required when the application has a secret: "
                         "`t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">`."},
                    ],
                    "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("WebhookMessage")}}},
                    "responses": {
                        "202": _json_body(_ref("WebhookAccepted"), "Accepted: the event is on the broker."),
                        "400": _error_response("Invalid JSON or a missing/invalid field."),
                        "401": _error_response("Missing, forged or stale signature (nothing produced)."),
                        "404": _error_response("No such application."),
                        "413": _error_response("Body or text too large."),
                        "503": _error_response("The broker did not acknowledge: retry later."),
                    },
                }
            },
            "/v1/widget/{application_id}": {
                "get": {
                    "operationId": "widget_presentation",
                    "summary": "What the chat widget shows for an application (public)",
                    "description": "Only the application's `widget` fields, with their defaults, the widget's "
                    "words in its language and the text limit; nothing else of the application. "
                    "CORS: any origin. See docs/widget.md.",
                    "tags": ["widget"],
                    "parameters": [{"name": "application_id", "in": "path", "required": True, "schema": id_schema}],
                    "responses": {
                        "200": _json_body(_ref("WidgetPresentation"), "The widget's look and words."),
                        "400": _error_response("The application id is malformed."),
                        "404": _error_response("No such application (the body also carries the English `strings`)."),
                        "503": _error_response("The document store did not answer: retry later."),
                    },
                }
            },
            **_platform_webhook_paths(id_schema),
            **_table_paths(),
            **upload_paths(id_schema),
            **ops_paths(),
            **account_paths(),
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi", "summary": "This document", "tags": ["operations"],
                    "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz", "summary": "Liveness", "tags": ["operations"],
                    "responses": {"200": _json_body(
                        {"type": "object", "properties": {"status": {"const": "alive"}}}, "The process is alive.")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz", "summary": "Readiness", "tags": ["operations"],
                    "responses": {
                        "200": _json_body(_ref("Readiness"), "Ready: partitions assigned, document store up."),
                        "503": _json_body(_ref("Readiness"), "Not ready; `checks` says why."),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "A personal API token (`pat_...`) or PARLEY_ADMIN_API_KEY"},
                "adminKey": {"type": "apiKey", "in": "header", "name": "X-Admin-Key",
                             "description": "PARLEY_ADMIN_API_KEY, as an alternative to the bearer header"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "parley_session",
                                  "description": "A signed-in operator's session (POST /v1/auth/login); "
                                  "POST, PUT, PATCH and DELETE also need `X-CSRF-Token`."},
            },
            "schemas": {
                "Application": document_schema("application"),
                "ApplicationView": view_schema("application"),
                "ApplicationPatch": _patch_schema(document_schema("application"), "ApplicationPatch"),
                "ApplicationList": _list_schema("ApplicationView"),
                "Chatbot": document_schema("chatbot"),
                "ChatbotView": view_schema("chatbot"),
                "ChatbotPatch": _patch_schema(document_schema("chatbot"), "ChatbotPatch"),
                "ChatbotList": _list_schema("ChatbotView"),
                **account_schemas(),
                "Error": {
                    "type": "object",
                    "required": ["type", "code", "message"],
                    "properties": {
                        "type": {"const": "error"},
                        "code": {"type": "string", "examples": ["unauthorized", "not_found", "invalid_json"]},
                        "message": {"type": "string", "description": "What was wrong and what to do."},
                    },
                },
                "ValidationError": {
                    "allOf": [
                        _ref("Error"),
                        {
                            "type": "object",
                            "required": ["errors"],
                            "properties": {
                                "code": {"const": "invalid_document"},
                                "errors": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["field", "message"],
                                        "properties": {
                                            "field": {"type": "string", "examples": ["temperature", "fallback_models[1]"]},
                                            "message": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    ]
                },
                "WebhookMessage": {
                    "type": "object",
                    "required": ["conversation_id", "id", "text"],
                    "properties": {
                        "conversation_id": id_schema,
                        "id": {"oneOf": [id_schema, {"type": "integer"}],
                               "description": "The sender's message id; the idempotency key."},
                        "text": {"type": "string", "minLength": 1, "description": "At most PARLEY_MAX_TEXT_BYTES bytes."},
                        "sender": {"type": "string", "maxLength": 256},
                    },
                },
                "WebhookAccepted": {
                    "type": "object", "required": ["event_id"],
                    "properties": {"event_id": {"type": "string"}},
                },
                "WidgetPresentation": {
                    "type": "object",
                    "required": ["application_id", "display_name", "accent_color", "welcome_message", "placeholder",
                                 "language", "max_text_bytes", "strings"],
                    "properties": {
                        "application_id": {"type": "string"},
                        "display_name": {"type": "string"},
                        "avatar_url": {"type": ["string", "null"]},
                        "accent_color": {"type": "string", "pattern": "^#[0-9A-Fa-f]{6}$"},
                        "welcome_message": {"type": "string"},
                        "placeholder": {"type": "string"},
                        "language": {"type": "string"},
                        "max_text_bytes": {"type": "integer"},
                        "strings": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "Readiness": {
                    "type": "object",
                    "properties": {"ready": {"type": "boolean"}, "checks": {"type": "object"}},
                },
                **ops_schemas(),
            },
            "responses": {
                "Unauthorized": _error_response(
                    "No valid credential: a session, a personal API token or the admin key (code `unauthorized`)."),
                "Forbidden": _error_response(
                    "The role or the application scope refuses it (`forbidden`), or a session cookie came "
                    "without its `X-CSRF-Token` (`csrf_required`)."),
                "Unavailable": _error_response("The document store is down (code `unavailable`), or, with "
                                               "Redis, the session store (`sessions_unavailable`, with `Retry-After`)."),
                "NotFound": _error_response("No such document (code `not_found`)."),
                "InvalidJson": _error_response("The body is not a JSON object (code `invalid_json`)."),
                "InvalidParameter": _error_response("A query parameter is invalid (code `invalid_parameter`)."),
                "TooLarge": _error_response("The body is larger than 256 KiB (code `too_large`)."),
                "InvalidDocument": _error_response(
                    "The document breaks the schema; `errors` names each field.", "ValidationError"
                ),
                "Conflict": _error_response(
                    "`conflict`: the id exists (POST); `in_use`: the chatbot is used by applications; "
                    "`concurrent_update`: the document kept changing during the write."
                ),
            },
        },
    }


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
