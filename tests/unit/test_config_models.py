"""The application and chatbot models: their messages (the admin API's 422 bodies), the JSON
Schemas generated from them, and the typed configs built from them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from parley.config.models import (
    MODELS,
    READ_ONLY_FIELDS,
    WRITE_ONLY_FIELDS,
    Chatbot,
    ChatbotConfig,
    Kind,
    document_schema,
    validate_document,
    view_schema,
)
from parley.settings import Settings
from parley.web.openapi import openapi_document

UNKNOWN_CHATBOT = (
    "unknown field; allowed: double_texting, fallback_models, history_messages, history_token_budget, id, "
    "max_tokens, max_tool_rounds, merge_window_s, model, provider, rate_limit_per_minute, system_prompt, "
    "temperature, tools"
)
UNKNOWN_APPLICATION = (
    "unknown field; allowed: allow_anonymous, allowed_origins, callback_url, channels, chatbot_id, id, name, secret, widget"
)
ID_HINT = "must be 1-128 letters, digits and _.:@- starting with a letter or digit"
PLATFORM_KEY = "key must be a platform name: lowercase letters, digits, _ and -"

#: (kind, document, the field errors clients get): the messages of every kind of violation, as
#: the admin API has answered them since it was written against hand-written JSON Schemas
MESSAGES: list[tuple[Kind, dict[str, Any], list[tuple[str, str]]]] = [
    ("chatbot", {"temperature": 5, "double_texting": "shout"}, [
        ("double_texting", "must be one of queue, interrupt, merge; got 'shout'"),
        ("id", "is required"),
        ("temperature", "must be at most 2"),
    ]),
    ("chatbot", {"temperature": "hot", "max_tokens": 5.5, "history_messages": True, "merge_window_s": -1}, [
        ("history_messages", "must be an integer, got a boolean"),
        ("id", "is required"),
        ("max_tokens", "must be an integer or null, got a number"),
        ("merge_window_s", "must be at least 0"),
        ("temperature", "must be a number or null, got a string"),
    ]),
    ("chatbot", {"provider": "acme", "model": "", "system_prompt": "x" * 20_001}, [
        ("id", "is required"),
        ("model", "must not be empty"),
        ("provider", "must be one of openai, gemini, grok, custom, null; got 'acme'"),
        ("system_prompt", "must be at most 20000 characters long (got 20001)"),
    ]),
    ("chatbot", {"fallback_models": ["m"] * 21 + ["has space"], "tools": "current_time"}, [
        ("fallback_models", "must have at most 20 items"),
        ("fallback_models[21]", "must be a model name without spaces"),
        ("id", "is required"),
        ("tools", "must be an array or null, got a string"),
    ]),
    ("chatbot", {"tools": ["bad name", 3], "rate_limit_per_minute": 0, "history_token_budget": float("inf")}, [
        ("history_token_budget", "must be an integer, got a number"),
        ("id", "is required"),
        ("rate_limit_per_minute", "must be at least 1"),
        ("tools[0]", "must be a tool name: 1-64 letters, digits, _ and -"),
        ("tools[1]", "must be a string, got an integer"),
    ]),
    ("chatbot", {"colour": "blue", "history_messages": None, "model": "gpt-4o\n"}, [
        ("colour", UNKNOWN_CHATBOT),
        ("history_messages", "must be an integer, got null"),
        ("id", "is required"),
        ("model", "must be a model name without spaces"),
    ]),
    ("chatbot", {"id": None, "max_tool_rounds": 51, "max_tokens": 512.0}, [
        ("id", "must be a string, got null"),
        ("max_tool_rounds", "must be at most 50"),
    ]),
    ("application", {"id": "bad id", "callback_url": "ftp://example.com", "allow_anonymous": "yes"}, [
        ("allow_anonymous", "must be true or false, got a string"),
        ("callback_url", "must be an http:// or https:// URL"),
        ("chatbot_id", "is required"),
        ("id", ID_HINT),
        ("name", "is required"),
    ]),
    ("application", {"name": "", "chatbot_id": "bot\n", "allowed_origins": ["https://a.example/path", None]}, [
        ("allowed_origins[0]", 'must be an origin such as "https://chat.example.com" (scheme and host, no path) or "*"'),
        ("allowed_origins[1]", "must be a string, got null"),
        ("chatbot_id", ID_HINT),
        ("id", "is required"),
        ("name", "must not be empty"),
    ]),
    ("application", {"name": "n", "chatbot_id": "b", "secret": "short",
                     "channels": {"telegram": "token", "Bad Name": {}, "": {}}}, [
        ("channels.", PLATFORM_KEY),
        ("channels.Bad Name", PLATFORM_KEY),
        ("channels.telegram", "must be an object, got a string"),
        ("id", "is required"),
        ("secret", "must be at least 8 characters long (got 5)"),
    ]),
    ("application", {"name": "n", "chatbot_id": "b", "channels": {f"p{i}": {} for i in range(51)}}, [
        ("channels", "must have at most 50 entries"),
        ("id", "is required"),
    ]),
    ("application", {"name": "n", "chatbot_id": "b",
                     "channels": {"slack": {f"k{i}": 1 for i in range(51)}, "telegram": {"k": float("inf")}}}, [
        ("channels.slack", "must have at most 50 entries"),
        ("channels.telegram.k", "must be a finite number"),
        ("id", "is required"),
    ]),
    ("application", {"name": "x" * 201, "chatbot_id": 7, "allowed_origins": "*", "secret": None, "": 1}, [
        ("", UNKNOWN_APPLICATION),
        ("allowed_origins", "must be an array, got a string"),
        ("chatbot_id", "must be a string, got an integer"),
        ("id", "is required"),
        ("name", "must be at most 200 characters long (got 201)"),
    ]),
    ("application", {"name": "n", "chatbot_id": "b", "widget": {
        "accent_color": "red", "avatar_url": "javascript:alert(1)", "language": "de", "placeholder": "",
        "welcome_message": 5, "shape": "round"}}, [
        ("id", "is required"),
        ("widget.accent_color", "must be a colour as #RRGGBB"),
        ("widget.avatar_url", "must be an http(s) URL of an image"),
        ("widget.language", "must be one of en, fr; got 'de'"),
        ("widget.placeholder", "must not be empty"),
        ("widget.shape", "unknown field; allowed: accent_color, avatar_url, display_name, language, placeholder, welcome_message"),
        ("widget.welcome_message", "must be a string or null, got an integer"),
    ]),
    ("application", {"name": "n", "chatbot_id": "b", "widget": "blue"}, [
        ("id", "is required"),
        ("widget", "must be an object or null, got a string"),
    ]),
]


@pytest.mark.parametrize(("kind", "doc", "expected"), MESSAGES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(MESSAGES)])
def test_each_offending_field_gets_one_message_saying_what_is_allowed(
    kind: Kind, doc: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert [(e.field, e.message) for e in validate_document(doc, kind, require_id=True)] == expected


@pytest.mark.parametrize(
    ("kind", "doc"),
    [
        ("chatbot", {}),
        ("chatbot", {"id": "bot", "max_tokens": 512.0, "temperature": 1, "tools": [], "provider": None}),
        ("application", {"id": "app", "name": "Shop", "chatbot_id": "bot", "channels": {"telegram": {"t": 1}}}),
        ("application", {"name": "x", "chatbot_id": "b", "callback_url": None, "secret": None, "channels": None}),
        ("application", {"name": "x", "chatbot_id": "b", "widget": {
            "display_name": "Shop helper", "avatar_url": "https://shop.example/bot.png", "accent_color": "#0a7D4f",
            "welcome_message": "Hi!", "placeholder": "Ask…", "language": "fr"}}),
        ("application", {"name": "x", "chatbot_id": "b", "widget": None}),
    ],
)
def test_valid_documents_have_no_errors(kind: Kind, doc: dict[str, Any]) -> None:
    assert validate_document(doc, kind) == []


# --- the schemas ------------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "name"), [("application", "Application"), ("chatbot", "Chatbot")])
def test_the_openapi_document_lists_every_field_with_the_models_description_and_default(kind: Kind, name: str) -> None:
    """Generated from the model: a field added to it is described in /v1/openapi.json."""
    model = MODELS[kind]
    schemas = openapi_document()["components"]["schemas"]
    document, view, patch = schemas[name], schemas[f"{name}View"], schemas[f"{name}Patch"]
    assert document["description"] == model.__doc__
    assert list(document["properties"]) == list(model.model_fields)
    assert set(patch["properties"]) == set(model.model_fields)
    assert set(view["properties"]) == (set(model.model_fields) - WRITE_ONLY_FIELDS) | {
        "created_at", "updated_at", "revision", *(("secret_set", "channels_set") if kind == "application" else ()),
    }
    for field_name, field in model.model_fields.items():
        spec = document["properties"][field_name]
        assert field.description and spec["description"] == field.description, field_name
        if field.is_required():
            assert field_name in document["required"] and "default" not in spec
        elif field_name in WRITE_ONLY_FIELDS:
            assert spec["writeOnly"] is True and "default" not in spec, "omitted on PUT means kept, not a default"
            assert field_name not in view["properties"]
        elif field_name in ("id", "history_messages", "max_tool_rounds"):
            # no value a client could write: the URL's id, or a setting (which the description names)
            assert "default" not in spec and "null" not in str(spec.get("type")), field_name
            assert field_name == "id" or "default PARLEY_" in spec["description"]
        else:
            assert spec["default"] == field.default, field_name
    for field_name in READ_ONLY_FIELDS & set(view["properties"]):
        assert view["properties"][field_name]["readOnly"] is True
        assert view["properties"][field_name]["description"]


@pytest.mark.parametrize("kind", ["application", "chatbot"])
def test_the_schemas_are_draft_2020_12(kind: Kind) -> None:
    for schema in (document_schema(kind), view_schema(kind)):
        Draft202012Validator.check_schema(schema)
    assert document_schema(kind) is not document_schema(kind), "callers get their own copy"


# --- the typed config -----------------------------------------------------------------------
def test_the_configs_defaults_are_the_documents_and_the_settings() -> None:
    settings = Settings()
    assert ChatbotConfig() == Chatbot().config(settings)
    assert (ChatbotConfig().history_messages, ChatbotConfig().max_tool_rounds) == (
        settings.history_messages, settings.max_tool_rounds,
    )
    shared = {f.name for f in dataclasses.fields(ChatbotConfig)} - {"chatbot_id"}
    assert shared == set(Chatbot.model_fields) - {"id"}


def test_a_chatbots_config_takes_its_values_and_the_settings_where_it_has_none() -> None:
    chatbot = Chatbot.model_validate({"fallback_models": ["a", "b"], "tools": [], "temperature": 1, "max_tokens": 64.0})
    config = chatbot.config(Settings(history_messages=12, max_tool_rounds=3), chatbot_id="bot")
    assert (config.chatbot_id, config.fallback_models, config.tools) == ("bot", ("a", "b"), ())
    assert (config.temperature, config.max_tokens) == (1.0, 64)
    assert isinstance(config.temperature, float) and isinstance(config.max_tokens, int)
    assert (config.history_messages, config.max_tool_rounds) == (12, 3)
    config = Chatbot.model_validate({"history_messages": 7, "max_tool_rounds": 2}).config(Settings())
    assert (config.chatbot_id, config.history_messages, config.max_tool_rounds) == ("default", 7, 2)
