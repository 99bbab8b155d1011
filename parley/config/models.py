"""Applications and chatbots as pydantic models: the one description of their fields.

``Application`` and ``Chatbot`` are the documents the admin API accepts (``/v1/admin/``) and
MongoDB stores. Each field's type, limits, default and description is written once, here, and
everything else comes from the models:

- ``validate_document``: one ``FieldError`` per offending field, named by its path
  (``temperature``, ``fallback_models[1]``, ``channels.slack``), with a message saying what is
  allowed. These are the admin API's 422 bodies and the loader's warnings.
- ``document_schema`` / ``view_schema``: the JSON Schemas (draft 2020-12) of what a client
  writes and what a response holds, served in ``/v1/openapi.json``.
- ``ChatbotConfig`` and ``ApplicationConfig``: the typed configs a turn and the edges read, with
  the documents' defaults (``Chatbot.config`` fills in the settings' ones).

Documents are read the way JSON Schema reads JSON, as they always were: ``5.0`` is an integer,
``true`` is not a number, a ``pattern`` means what ECMA-262 says (a final ``$`` is the end of
the string, so ``"app\\n"`` is not an id). Responses add read-only fields (``READ_ONLY_FIELDS``)
and never contain the write-only ``secret`` and ``channels`` (``WRITE_ONLY_FIELDS``).

Outbound URLs (``callback_url``, ``channels.<platform>.api_base``) are parsed and checked by the
egress guard (``parley.egress``): the admin API validates with the operator's policy
(``validate_document(..., egress=policy)``: private and loopback destinations refused unless
allowed), the loader only for well-formedness (a URL is checked in full again when used). The
admin API also gives the registry's tool names (``tools=``): a chatbot may list only those.

Foundation layer: imports nothing of Parley but the settings and the egress policy.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, cast, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationError,
)
from pydantic.config import JsonDict
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from parley.egress import WELL_FORMED, EgressPolicy, EgressRefused
from parley.settings import Settings

__all__ = [
    "APPLICATION_FIELDS",
    "CHATBOT_FIELDS",
    "ID_PATTERN",
    "MODELS",
    "READ_ONLY_FIELDS",
    "WRITE_ONLY_FIELDS",
    "Application",
    "ApplicationConfig",
    "Chatbot",
    "ChatbotConfig",
    "DoubleTexting",
    "FieldError",
    "Kind",
    "Provider",
    "Widget",
    "coerce_integers",
    "document_schema",
    "validate_document",
    "view_schema",
]

Kind = Literal["application", "chatbot"]

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$"
URL_PATTERN = r"^https?://[^\s/?#]+([/?#]\S*)?$"
ORIGIN_PATTERN = r"^(\*|https?://[^\s/?#]+)$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,64}$"
CHANNEL_NAME_PATTERN = r"^[a-z][a-z0-9_\-]{0,63}$"
MODEL_PATTERN = r"^\S+$"


# --- field types --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    """A string's JSON Schema ``pattern``, checked the way ECMA-262 reads it, and ``hint``: what
    a matching value looks like ("must be <hint>" when it does not match).

    Python's ``$`` also matches before a final newline, which would let ``"app\\n"`` pass as an
    id; a final ``$`` here is the end of the string."""

    regex: str
    hint: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        compiled, anchored, context = re.compile(self.regex), self.regex.endswith("$"), {"hint": self.hint}

        def check(value: str) -> str:
            match = compiled.search(value)
            if match is None or (anchored and match.end() != len(value)):
                raise PydanticCustomError("pattern_mismatch", "must be {hint}", context)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "pattern": self.regex}


@dataclass(frozen=True)
class MaxLen:
    """At most ``limit`` items (an array) or entries (an object). Unlike pydantic's
    ``max_length``, a value that is too long still has its items checked, so one answer names
    every offending field (``fallback_models`` and ``fallback_models[3]``)."""

    limit: int

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        limit, inner = self.limit, handler(source)
        container = list if inner["type"] == "list" else dict

        def check(value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
            if not isinstance(value, container) or len(value) <= limit:
                return validate(value)
            too_long = PydanticCustomError("too_long", "must have at most {max_length}", {"max_length": limit})
            try:
                validate(value)
            except ValidationError as exc:
                raise ValidationError.from_exception_data(
                    exc.title, [{"type": too_long, "loc": (), "input": value}, *map(_reraised, exc.errors())]
                ) from None
            raise too_long

        return core_schema.no_info_wrap_validator_function(check, inner)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        return {**json_schema, "maxItems" if json_schema.get("type") == "array" else "maxProperties": self.limit}


def _reraised(error: Any) -> Any:
    """A line of a caught ``ValidationError`` as pydantic takes it back, type and context kept."""
    kind = PydanticCustomError(error["type"], str(error["msg"]), error.get("ctx"))
    return {"type": kind, "loc": error["loc"], "input": error["input"]}


class _Omittable:
    """On ``X | None = None``: a client may leave the field out (its default is no value it could
    write, e.g. "the setting"), but not send null. Validated, and described, as ``X``."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        (present,) = (arg for arg in get_args(source) if arg is not type(None))
        return handler.generate_schema(present)


OMITTABLE = _Omittable()


def _integral(value: Any) -> Any:
    """JSON Schema's integers include integral numbers written with a fraction (``5.0``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: on an ``int`` (after its bounds): an integer as JSON Schema reads one, ``5`` or ``5.0``, not
#: ``true`` nor ``5.5``
INTEGRAL = BeforeValidator(_integral)
Id = Annotated[str, Pattern(ID_PATTERN, "1-128 letters, digits and _.:@- starting with a letter or digit")]
@dataclass(frozen=True)
class _Outbound:
    """An outbound URL, checked by the validation context's ``egress`` policy (well-formedness
    only without one). Described in JSON Schema by its pattern (a necessary shape, not enough)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def check(value: str, info: core_schema.ValidationInfo) -> str:
            _check_outbound(value, info.context)
            return value

        return core_schema.with_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "format": "uri", "pattern": URL_PATTERN}


def _check_outbound(value: str, context: Any) -> None:
    policy = context.get("egress") if isinstance(context, dict) else None
    try:
        (policy if isinstance(policy, EgressPolicy) else WELL_FORMED).check_url(value)
    except EgressRefused as exc:
        raise PydanticCustomError("egress_refused", "{reason}", {"reason": exc.reason}) from None


@dataclass(frozen=True)
class _ApiBase:
    """On a platform's credentials: ``api_base``, when given, is an outbound URL (its error is
    named ``channels.<platform>.api_base``)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def check(value: Any, validate: core_schema.ValidatorFunctionWrapHandler, info: core_schema.ValidationInfo) -> Any:
            validated = validate(value)
            if isinstance(validated, dict) and "api_base" in validated:
                base = validated["api_base"]
                try:
                    if not isinstance(base, str):
                        raise PydanticCustomError("egress_refused", "must be an https:// URL string")
                    _check_outbound(base, info.context)
                except PydanticCustomError as exc:
                    raise ValidationError.from_exception_data(
                        "api_base", [{"type": exc, "loc": ("api_base",), "input": base}]
                    ) from None
            return validated

        return core_schema.with_info_wrap_validator_function(check, handler(source))


@dataclass(frozen=True)
class _KnownTool:
    """A tool name the validation context's ``tools`` (the registry's names) holds, when given."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        def check(value: str, info: core_schema.ValidationInfo) -> str:
            tools = info.context.get("tools") if isinstance(info.context, dict) else None
            if tools is not None and value not in tools:
                raise PydanticCustomError(
                    "unknown_tool", "no tool '{name}' is registered; the tools are: {known}",
                    {"name": value, "known": ", ".join(sorted(tools)) or "(none)"},
                )
            return value

        return core_schema.with_info_after_validator_function(check, handler(source))


Url = Annotated[str, StringConstraints(max_length=2048), _Outbound()]
Origin = Annotated[
    str,
    StringConstraints(max_length=2048),
    Pattern(ORIGIN_PATTERN, 'an origin such as "https://chat.example.com" (scheme and host, no path) or "*"'),
]
ToolName = Annotated[str, Pattern(TOOL_NAME_PATTERN, "a tool name: 1-64 letters, digits, _ and -"), _KnownTool()]
ChannelName = Annotated[str, Pattern(CHANNEL_NAME_PATTERN, "a platform name: lowercase letters, digits, _ and -")]
ModelName = Annotated[
    str, StringConstraints(min_length=1, max_length=200), Pattern(MODEL_PATTERN, "a model name without spaces")
]
Provider = Literal["openai", "gemini", "grok", "custom"]
DoubleTexting = Literal["queue", "interrupt", "merge"]
HistoryMessages = Annotated[int, Field(ge=2, le=1000), INTEGRAL]
ToolRounds = Annotated[int, Field(ge=1, le=50), INTEGRAL]

_WRITE_ONLY: JsonDict = {"writeOnly": True}
_READ_ONLY: JsonDict = {"readOnly": True}


# --- the documents ------------------------------------------------------------------------------
class _Document(BaseModel):
    # strict: a field is what JSON Schema says it is ("5" is no integer, 1 no boolean)
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


#: languages of the widget's own words (parley/web/static/strings.json has one entry per language)
WidgetLanguage = Literal["en", "fr"]
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
IMAGE_URL_PATTERN = r"^https?://[^\s\"'<>()\\]+$"


class Widget(_Document):
    """How the chat widget looks and speaks for an application: public, served to any browser
    by ``GET /v1/widget/{application_id}`` (nothing else of the application is)."""

    display_name: Annotated[str, StringConstraints(min_length=1, max_length=80)] | None = Field(
        None, description="The name in the widget's header; null: the application's name."
    )
    avatar_url: Annotated[str, StringConstraints(max_length=2048), Pattern(IMAGE_URL_PATTERN, "an http(s) URL of an image")] | None = Field(
        None, description="An image shown beside the name and the answers; null: the name's initial."
    )
    accent_color: Annotated[str, Pattern(COLOR_PATTERN, "a colour as #RRGGBB")] | None = Field(
        None, description="The launcher's, header's and user bubbles' colour (#RRGGBB); null: Parley blue."
    )
    welcome_message: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = Field(
        None, description="Shown first in a new conversation; null: the language's default greeting."
    )
    placeholder: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = Field(
        None, description="The input's placeholder; null: the language's default."
    )
    language: WidgetLanguage = Field("en", description="The language of the widget's own words (buttons, states, errors).")


class Application(_Document):
    """A client of Parley: where its conversations come from and which chatbot answers them."""

    id: Annotated[Id | None, OMITTABLE] = Field(
        None, description="The application id (taken from the URL when omitted on PUT/PATCH)."
    )
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(description="Display name.")
    chatbot_id: Id = Field(description="The chatbot that answers; it must exist.")
    callback_url: Url | None = Field(
        None, description="Where replies to webhook messages are POSTed; null: archived only."
    )
    allow_anonymous: bool = Field(True, description="Whether websocket clients may connect without a user token.")
    allowed_origins: Annotated[list[Origin], MaxLen(100)] = Field(
        [], description="Browser origins allowed to open the websocket and to embed the chat widget; empty: any."
    )
    widget: Widget | None = Field(None, description="The chat widget's look and words; null: the defaults.")
    secret: Annotated[str, StringConstraints(min_length=8, max_length=1024)] | None = Field(
        None,
        description="Shared secret (e.g. webhook signatures). Never returned: responses carry "
        "`secret_set`. Omitted on PUT: kept; null: removed.",
        json_schema_extra=_WRITE_ONLY,
    )
    channels: Annotated[dict[ChannelName, Annotated[dict[str, Any], MaxLen(50), _ApiBase()]], MaxLen(50)] | None = Field(
        None,
        description="Per-platform credentials, e.g. {\"telegram\": {\"bot_token\": \"...\"}}. "
        "Never returned: responses carry `channels_set`, the platform names. Omitted on PUT: kept; "
        "null: removed; PATCH merges per platform.",
        json_schema_extra=_WRITE_ONLY,
    )


class Chatbot(_Document):
    """How a chatbot answers. Omitted fields take their defaults."""

    id: Annotated[Id | None, OMITTABLE] = Field(
        None, description="The chatbot id (taken from the URL when omitted on PUT/PATCH)."
    )
    system_prompt: Annotated[str, StringConstraints(min_length=1, max_length=20_000)] = Field(
        "You are a helpful assistant.", description="The system message every prompt starts with."
    )
    provider: Provider | None = Field(
        None, description="Provider preset; null: the configured endpoint (PARLEY_LLM_BASE_URL)."
    )
    model: ModelName | None = Field(None, description="Model name; null: PARLEY_LLM_MODEL.")
    fallback_models: Annotated[list[ModelName], MaxLen(20)] = Field(
        [], description='Tried in order when the primary fails: "model" or "provider:model".'
    )
    temperature: Annotated[float, Field(ge=0, le=2)] | None = Field(
        None, description="Sampling temperature; null: the provider's default."
    )
    max_tokens: Annotated[int, Field(ge=1, le=200_000), INTEGRAL] | None = Field(
        None, description="Most tokens in one answer; null: the provider's limit."
    )
    history_token_budget: Annotated[int, Field(ge=200, le=1_000_000), INTEGRAL] = Field(
        6000, description="Tokens of recent history sent with each prompt; older messages are folded into a summary."
    )
    tools: Annotated[list[ToolName], MaxLen(128)] | None = Field(
        None, description="Names of the tools the model may call; null: every registered tool; []: none."
    )
    double_texting: DoubleTexting = Field(
        "queue", description="What a message arriving while the previous one is answered does."
    )
    merge_window_s: Annotated[float, Field(ge=0, le=30)] = Field(
        1.5, description="With `merge`: how long a conversation must be quiet before its messages are answered together."
    )
    history_messages: Annotated[HistoryMessages | None, OMITTABLE] = Field(
        None, description="Recent messages kept; default PARLEY_HISTORY_MESSAGES."
    )
    max_tool_rounds: Annotated[ToolRounds | None, OMITTABLE] = Field(
        None, description="Tool round trips per user message; default PARLEY_MAX_TOOL_ROUNDS."
    )
    rate_limit_per_minute: Annotated[int, Field(ge=1), INTEGRAL] | None = Field(
        None,
        description="Websocket messages per application and minute, per gateway process; "
        "null: PARLEY_WS_APP_MESSAGES_PER_MINUTE.",
    )

    def config(self, settings: Settings, *, chatbot_id: str | None = None) -> ChatbotConfig:
        """What a turn reads: this chatbot, with the settings' defaults where it has none."""
        return ChatbotConfig(
            chatbot_id=chatbot_id or self.id or "default",
            system_prompt=self.system_prompt,
            provider=self.provider,
            model=self.model,
            fallback_models=tuple(self.fallback_models),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            history_token_budget=self.history_token_budget,
            tools=tuple(self.tools) if self.tools is not None else None,
            double_texting=self.double_texting,
            merge_window_s=self.merge_window_s,
            history_messages=self.history_messages if self.history_messages is not None else settings.history_messages,
            max_tool_rounds=self.max_tool_rounds if self.max_tool_rounds is not None else settings.max_tool_rounds,
            rate_limit_per_minute=self.rate_limit_per_minute,
        )


MODELS: dict[Kind, type[_Document]] = {"application": Application, "chatbot": Chatbot}
#: the fields of each document (``id`` aside): what the loader reads from a stored one
APPLICATION_FIELDS = tuple(name for name in Application.model_fields if name != "id")
CHATBOT_FIELDS = tuple(name for name in Chatbot.model_fields if name != "id")


class _Stored(BaseModel):
    """What the admin API adds to every document it stores."""

    created_at: datetime = Field(description="When the document was created (UTC).", json_schema_extra=_READ_ONLY)
    updated_at: datetime = Field(description="When the document was last written (UTC).", json_schema_extra=_READ_ONLY)
    revision: int = Field(ge=0, description="Incremented by every write.", json_schema_extra=_READ_ONLY)


class _ApplicationView(BaseModel):
    """What an application's responses show instead of its write-only fields."""

    secret_set: bool = Field(description="Whether a secret is stored.", json_schema_extra=_READ_ONLY)
    channels_set: list[str] = Field(
        description="Platforms with stored credentials (the credentials are never returned).",
        json_schema_extra=_READ_ONLY,
    )


_VIEW_EXTRAS: dict[Kind, type[BaseModel] | None] = {"application": _ApplicationView, "chatbot": None}

#: Fields a client may send but a response never contains.
WRITE_ONLY_FIELDS = frozenset(
    name for model in MODELS.values() for name, field in model.model_fields.items()
    if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("writeOnly")
)
#: Fields only responses contain; a request may carry them (a GET result sent back) and they are ignored.
READ_ONLY_FIELDS = frozenset(_Stored.model_fields) | frozenset(_ApplicationView.model_fields)


# --- the typed configs ------------------------------------------------------------------------
_DEFAULTS: dict[str, Any] = {name: field.default for name, field in Chatbot.model_fields.items()}
_SETTINGS_DEFAULTS: dict[str, Any] = {name: field.default for name, field in Settings.model_fields.items()}


@dataclass(frozen=True)
class ChatbotConfig:
    """How one chatbot answers, as a turn reads it: a ``Chatbot`` with every default filled in
    (``Chatbot.config``). Its defaults are the document's, and the settings' defaults for
    ``history_messages`` and ``max_tool_rounds``. Not validated: tests may set any value."""

    chatbot_id: str = "default"
    system_prompt: str = _DEFAULTS["system_prompt"]
    provider: Provider | None = _DEFAULTS["provider"]  # None: the configured endpoint
    model: str | None = _DEFAULTS["model"]  # None: PARLEY_LLM_MODEL
    fallback_models: tuple[str, ...] = ()  # "model" or "provider:model"
    temperature: float | None = _DEFAULTS["temperature"]
    max_tokens: int | None = _DEFAULTS["max_tokens"]
    history_token_budget: int = _DEFAULTS["history_token_budget"]
    tools: tuple[str, ...] | None = _DEFAULTS["tools"]  # None: every registered tool
    double_texting: DoubleTexting = _DEFAULTS["double_texting"]
    merge_window_s: float = _DEFAULTS["merge_window_s"]
    history_messages: int = _SETTINGS_DEFAULTS["history_messages"]
    max_tool_rounds: int = _SETTINGS_DEFAULTS["max_tool_rounds"]
    rate_limit_per_minute: int | None = _DEFAULTS["rate_limit_per_minute"]


@dataclass(frozen=True)
class ApplicationConfig:
    """What the pipeline and the edges read of an application (never its credentials)."""

    application_id: str
    callback_url: str | None
    chatbot: ChatbotConfig
    name: str = ""
    allow_anonymous: bool = Application.model_fields["allow_anonymous"].default
    allowed_origins: tuple[str, ...] = ()
    #: the widget's presentation fields, validated (``Widget``); empty: the defaults
    widget: dict[str, Any] = dataclasses.field(default_factory=dict)


# --- JSON Schema --------------------------------------------------------------------------------
class _SchemaGenerator(GenerateJsonSchema):
    """pydantic's JSON Schema in the shape Parley has always published: ``"type": ["string",
    "null"]`` rather than an ``anyOf`` for a nullable field, ``propertyNames`` for the keys of an
    object (pydantic writes ``patternProperties``, which lets other keys through), and no
    per-field titles or ``type`` beside an ``enum``."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        inner = self.generate_inner(schema["schema"])
        if "enum" in inner:
            return {**inner, "enum": [*inner["enum"], None]}
        if isinstance(inner.get("type"), str):
            return {**inner, "type": [inner["type"], "null"]}
        return super().nullable_schema(schema)

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        json_schema = super().literal_schema(schema)
        json_schema.pop("type", None)
        return json_schema

    def dict_schema(self, schema: core_schema.DictSchema) -> JsonSchemaValue:
        json_schema: JsonSchemaValue = {"type": "object"}
        keys = self.generate_inner(schema["keys_schema"]) if "keys_schema" in schema else {}
        names = {k: v for k, v in keys.items() if k not in ("type", "title")}
        if names:
            json_schema["propertyNames"] = names
        values = self.generate_inner(schema["values_schema"]) if "values_schema" in schema else {}
        if values:
            json_schema["additionalProperties"] = values
        return json_schema

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


#: the order of keywords in a published schema (others follow), as they were written by hand
_KEY_ORDER = (
    "title", "type", "enum", "const", "format", "minimum", "maximum", "minLength", "maxLength", "maxItems",
    "maxProperties", "pattern", "propertyNames", "additionalProperties", "required", "items", "properties",
    "default", "readOnly", "writeOnly", "description",
)


def _published(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's schema, keywords in their usual order; no ``default: null`` on a field that
    cannot be null (its default is the setting's) nor any default on a write-only field
    (omitted on PUT means kept)."""
    properties = {}
    for name, spec in schema.get("properties", {}).items():
        spec = dict(spec)
        nullable = "null" in (spec.get("type") or []) or None in (spec.get("enum") or [])
        if spec.get("writeOnly") or ("default" in spec and spec["default"] is None and not nullable):
            spec.pop("default", None)
        properties[name] = _ordered(spec)
    title, description = schema.get("title"), schema.get("description")
    head = {k: v for k, v in (("title", title), ("description", description)) if v is not None}
    published: dict[str, Any] = {**head, **_ordered({**schema, "properties": properties})}
    return published


def _ordered(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    rank = {key: i for i, key in enumerate(_KEY_ORDER)}
    items = sorted(spec.items(), key=lambda item: rank.get(item[0], len(rank)))
    return {k: v if k in ("properties", "default", "enum") else _ordered(v) for k, v in items}


@functools.cache
def _schema(kind: Kind) -> dict[str, Any]:
    return _published(_inlined(MODELS[kind].model_json_schema(schema_generator=_SchemaGenerator)))


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` (nested documents: ``widget``) written in place, so it reads
    the same wherever it is embedded (the OpenAPI document), and a nullable one as
    ``"type": ["object", "null"]`` like every other nullable field."""
    defs = schema.pop("$defs", {})
    null = {"type": "null"}

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        rest = {k: walk(v) for k, v in node.items() if k not in ("$ref", "anyOf")}
        if "$ref" in node:
            target = walk(copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]]))
            target.pop("title", None)
            return {**target, **rest}
        options = node.get("anyOf")
        if isinstance(options, list) and len(options) == 2 and null in options:
            other = walk(next(option for option in options if option != null))
            if isinstance(other.get("type"), str):
                return {**other, **rest, "type": [other["type"], "null"]}
        return {**rest, "anyOf": walk(options)} if options is not None else rest

    return cast(dict[str, Any], walk(schema))


def document_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of the document a client writes (a fresh copy)."""
    return copy.deepcopy(_schema(kind))


def view_schema(kind: Kind) -> dict[str, Any]:
    """The JSON Schema of a response: the document without write-only fields, with the
    read-only ones."""
    document = _schema(kind)
    extras = [model for model in (_VIEW_EXTRAS[kind], _Stored) if model is not None]
    properties = {k: v for k, v in document["properties"].items() if k not in WRITE_ONLY_FIELDS}
    for model in extras:
        properties.update(_published(model.model_json_schema(schema_generator=_SchemaGenerator))["properties"])
    return copy.deepcopy({
        "title": f"{document['title']}View",
        "type": "object",
        "required": ["id"],
        "properties": properties,
    })


# --- validation ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


def validate_document(
    doc: dict[str, Any],
    kind: Kind,
    *,
    require_id: bool = False,
    egress: EgressPolicy | None = None,
    tools: Collection[str] | None = None,
) -> list[FieldError]:
    """Every way ``doc`` is not a valid ``kind``, one ``FieldError`` per field, sorted by field.

    ``egress``: the policy outbound URLs must pass (None: well-formed is enough); ``tools``: the
    names a chatbot may list (None: any well-formed name)."""
    errors: dict[str, FieldError] = {}
    if require_id and "id" not in doc:
        errors["id"] = FieldError("id", "is required")
    try:
        MODELS[kind].model_validate(doc, context={"egress": egress, "tools": tools})
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            field_error = _field_error(error, _schema(kind))
            errors.setdefault(field_error.field, field_error)
    for field, value in _floats(doc):
        if not math.isfinite(value):
            errors.setdefault(field, FieldError(field, "must be a finite number"))
    return sorted(errors.values(), key=lambda e: e.field)


@functools.cache
def _integer_fields(kind: Kind) -> frozenset[str]:
    types = {name: spec.get("type") for name, spec in _schema(kind)["properties"].items()}
    return frozenset(name for name, t in types.items() if t == "integer" or (isinstance(t, list) and "integer" in t))


def coerce_integers(doc: dict[str, Any], kind: Kind) -> dict[str, Any]:
    """A copy of a valid ``doc`` with integral floats (``5.0``) of integer fields made ints."""
    out = copy.deepcopy(doc)
    for name in _integer_fields(kind):
        value = out.get(name)
        if isinstance(value, float) and value.is_integer():
            out[name] = int(value)
    return out


# --- messages -----------------------------------------------------------------------------------
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
_TYPE_ERRORS = frozenset({"string_type", "int_type", "float_type", "bool_type", "list_type", "dict_type", "model_type"})
#: pydantic's comparison errors, and the JSON Schema keyword holding each bound
_BOUNDS = {
    "greater_than_equal": ("minimum", "must be at least {}"),
    "less_than_equal": ("maximum", "must be at most {}"),
    "greater_than": ("exclusiveMinimum", "must be greater than {}"),
    "less_than": ("exclusiveMaximum", "must be less than {}"),
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


def _node(schema: dict[str, Any], loc: list[Any]) -> dict[str, Any]:
    """The part of ``schema`` that describes the value at ``loc``."""
    node = schema
    for part in loc:
        if isinstance(part, int):
            node = node.get("items", {})
        else:
            node = node.get("properties", {}).get(part) or node.get("additionalProperties") or {}
    return node


def _field_error(error: Any, schema: dict[str, Any]) -> FieldError:
    """A pydantic error line as the field and message clients have always been given."""
    loc, kind, value = list(error["loc"]), error["type"], error["input"]
    context: dict[str, Any] = error.get("ctx") or {}
    if loc and loc[-1] == "[key]":  # a key of an object: the value is the key
        field = _path(loc[:-1])
        hint = context.get("hint")
        return FieldError(field, f"key must be {hint}" if hint else f"key {error['msg']}")
    field = _path(loc) if loc else "(document)"
    node = _node(schema, loc)
    message: Callable[[], str] | None = {
        "missing": lambda: "is required",
        "extra_forbidden": lambda: "unknown field; allowed: " + ", ".join(sorted(_node(schema, loc[:-1])["properties"])),
        "literal_error": lambda: "must be one of {}; got {!r}".format(
            ", ".join("null" if v is None else str(v) for v in node["enum"]), value
        ),
        "pattern_mismatch": lambda: f"must be {context['hint']}",
        "egress_refused": lambda: str(error["msg"]),
        "unknown_tool": lambda: str(error["msg"]),
        "string_too_short": lambda: (
            "must not be empty" if context["min_length"] == 1
            else f"must be at least {context['min_length']} characters long (got {len(value)})"
        ),
        # (unreachable from the edges, which refuse lone surrogates first, nor from MongoDB)
        "string_unicode": lambda: "must be valid Unicode (no lone surrogates)",
        "string_too_long": lambda: f"must be at most {context['max_length']} characters long (got {len(value)})",
        "too_long": lambda: "must have at most {} {}".format(
            context["max_length"], "items" if isinstance(value, list) else "entries"
        ),
    }.get(kind)
    if message is not None:
        return FieldError(field, message())
    if kind in _TYPE_ERRORS and "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        return FieldError(field, f"must be {_or([_TYPE_NAMES[t] for t in types])}, got {_json_type(value)}")
    if kind in _BOUNDS:
        if isinstance(value, float) and math.isnan(value):
            return FieldError(field, "must be a finite number")  # no bound is broken by NaN
        keyword, template = _BOUNDS[kind]
        return FieldError(field, template.format(node.get(keyword, next(iter(context.values()), "?"))))
    return FieldError(field, str(error["msg"]))


def _floats(value: Any, path: str = "") -> list[tuple[str, float]]:
    if isinstance(value, float):
        return [(path or "(document)", value)]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _floats(v, _join(path, str(k)))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _floats(v, f"{path}[{i}]")]
    return []
