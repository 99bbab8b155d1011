"""The admin API on the real aiohttp app, against a real DocumentStore on the embedded
MongoDB-protocol server (one fresh database per test)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from jsonschema import Draft202012Validator

from parley.config.store import ConfigStore
from parley.embedded import EmbeddedServer
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.web.admin import merge_patch
from parley.web.app import create_web_app
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress
from parley.web.openapi import openapi_document
from tests.support.net import free_port
from tests.support.webapp import ADMIN_KEY, AUTH, always_ready, never_produced
from tests.support.webdeps import web_deps

KEY = ADMIN_KEY
ClientFactory = Callable[[web.Application], Awaitable[TestClient]]

BOT = {"id": "bot", "system_prompt": "You are terse.", "temperature": 0.2, "tools": ["current_time"]}
APP = {"id": "app", "name": "Shop", "chatbot_id": "bot", "callback_url": "https://example.com/cb"}


def admin_deps(documents: DocumentStore, configs: ConfigStore) -> WebDeps:
    """What the admin API reads: the document store and the configs."""
    return web_deps(configs=configs, documents=documents, archive=documents)


def make_app(settings: Settings, documents: DocumentStore, configs: ConfigStore | None = None) -> web.Application:
    configs = configs or ConfigStore(documents, settings)
    return create_web_app(
        settings=settings,
        deps=admin_deps(documents, configs),
        ingress=Ingress(never_produced, timeout_s=1),
        readiness=always_ready,
    )


@pytest.fixture
def configs(documents: DocumentStore, settings: Settings) -> ConfigStore:
    return ConfigStore(documents, settings)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, configs: ConfigStore) -> TestClient:
    return await aiohttp_client(make_app(settings, documents, configs))


async def create(client: TestClient, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/v1/admin/{plural}", json=body, headers=AUTH)
    assert response.status == 201, await response.text()
    return dict(await response.json())


# --- authentication ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer "},
        {"X-Admin-Key": "wrong-key"},
        {"Authorization": f"Bearer {KEY}x"},
    ],
    ids=["missing", "wrong-bearer", "not-bearer", "empty-bearer", "wrong-x-admin-key", "longer"],
)
async def test_a_missing_or_wrong_key_is_401_and_nothing_is_written(
    client: TestClient, documents: DocumentStore, headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/v1/admin/chatbots"),
        ("POST", "/v1/admin/chatbots"),
        ("GET", "/v1/admin/chatbots/bot"),
        ("PUT", "/v1/admin/chatbots/bot"),
        ("PATCH", "/v1/admin/applications/app"),
        ("DELETE", "/v1/admin/applications/app"),
    ]:
        response = await client.request(method, path, json=BOT, headers=headers)
        assert response.status == 401, (method, path)
        body = await response.json()
        assert (body["type"], body["code"]) == ("error", "unauthorized")
        assert body["message"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await documents.get_chatbot("bot") is None


async def test_the_key_is_accepted_as_bearer_or_x_admin_key(client: TestClient) -> None:
    for headers in (AUTH, {"authorization": f"bearer {KEY}"}, {"X-Admin-Key": KEY}):
        response = await client.get("/v1/admin/chatbots", headers=headers)
        assert response.status == 200, headers
        assert response.headers["Cache-Control"] == "no-store"


async def test_without_a_configured_key_no_key_is_accepted(
    aiohttp_client: ClientFactory, services: dict[str, EmbeddedServer], documents: DocumentStore, database: str,
) -> None:
    """With PARLEY_ADMIN_API_KEY unset, any bearer key is refused and the message says the key is
    not enabled (operator sessions and tokens still work: tests/web/test_access_matrix.py)."""
    settings = Settings(
        mongo_url=services["documents"].url, mongo_database=database, seed_demo=True, admin_api_key=None
    )
    client = await aiohttp_client(make_app(settings, documents))
    for headers in ({}, AUTH, {"X-Admin-Key": KEY}):
        response = await client.post("/v1/admin/chatbots", json=BOT, headers=headers)
        assert response.status == 401
        body = await response.json()
        assert (body["type"], body["code"]) == ("error", "unauthorized")
        assert ("PARLEY_ADMIN_API_KEY" in body["message"]) if headers else ("sign in" in body["message"])
    assert await documents.get_chatbot("bot") is None
    assert (await client.get("/v1/openapi.json")).status == 200, "the API description stays public"


# --- validation -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"temperature": 5}, ["temperature"]),
        ({"temperature": "hot"}, ["temperature"]),
        ({"double_texting": "shout"}, ["double_texting"]),
        ({"colour": "blue"}, ["colour"]),
        ({"max_tokens": 0, "history_messages": 1}, ["history_messages", "max_tokens"]),
        ({"max_tool_rounds": True}, ["max_tool_rounds"]),
        ({"fallback_models": ["gpt-4o", "has space"]}, ["fallback_models[1]"]),
        ({"provider": "acme"}, ["provider"]),
        ({"system_prompt": "x" * 20_001}, ["system_prompt"]),
        ({"merge_window_s": 31, "rate_limit_per_minute": 0}, ["merge_window_s", "rate_limit_per_minute"]),
        ({"tools": "current_time"}, ["tools"]),
        ({"history_token_budget": 100}, ["history_token_budget"]),
    ],
)
async def test_a_chatbot_breaking_the_schema_is_422_naming_each_field(
    client: TestClient, documents: DocumentStore, body: dict[str, Any], fields: list[str]
) -> None:
    response = await client.post("/v1/admin/chatbots", json={"id": "bot", **body}, headers=AUTH)
    assert response.status == 422
    payload = await response.json()
    assert (payload["type"], payload["code"]) == ("error", "invalid_document")
    assert [e["field"] for e in payload["errors"]] == fields
    assert all(e["message"] for e in payload["errors"])
    for field in fields:
        assert field in payload["message"]
    assert await documents.get_chatbot("bot") is None


async def test_patch_and_put_are_validated_too(client: TestClient, documents: DocumentStore) -> None:
    await create(client, "chatbots", BOT)
    response = await client.patch("/v1/admin/chatbots/bot", json={"temperature": 5}, headers=AUTH)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["temperature"]
    response = await client.put("/v1/admin/chatbots/bot", json={"double_texting": "shout"}, headers=AUTH)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["double_texting"]
    response = await client.put("/v1/admin/chatbots/bad id", json={}, headers=AUTH)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["id"]
    response = await client.patch("/v1/admin/chatbots/bot", json={"id": "other"}, headers=AUTH)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["id"]
    stored = await documents.get_chatbot("bot")
    assert stored is not None and stored["temperature"] == 0.2 and "double_texting" not in stored


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"id": "app"}, ["chatbot_id", "name"]),
        ({**APP, "chatbot_id": "nope"}, ["chatbot_id"]),
        ({**APP, "callback_url": "ftp://example.com"}, ["callback_url"]),
        ({**APP, "allowed_origins": ["https://a.example/path"]}, ["allowed_origins[0]"]),
        ({**APP, "allow_anonymous": "yes"}, ["allow_anonymous"]),
        ({**APP, "channels": {"telegram": "token"}}, ["channels.telegram"]),
        # keys MongoDB cannot store, or would read as an operator
        ({**APP, "channels": {"telegram": {"to\x00ken": "x"}}}, ["channels.telegram.'to\\x00ken'"]),
        ({**APP, "channels": {"telegram": {"$where": "x"}}}, ["channels.telegram.'$where'"]),
        ({**APP, "id": "bad id"}, ["id"]),
        ({k: v for k, v in APP.items() if k != "id"}, ["id"]),
    ],
)
async def test_an_application_breaking_the_schema_is_422_naming_each_field(
    client: TestClient, documents: DocumentStore, body: dict[str, Any], fields: list[str]
) -> None:
    await create(client, "chatbots", BOT)
    response = await client.post("/v1/admin/applications", json=body, headers=AUTH)
    assert response.status == 422, await response.text()
    payload = await response.json()
    assert payload["code"] == "invalid_document"
    assert [e["field"] for e in payload["errors"]] == fields
    assert await documents.get_application("app") is None


@pytest.mark.parametrize(
    "body",
    ["{nope", "[1, 2]", '"text"', '{"id": "bot", "temperature": NaN}', "\xff\xfe", ""],
    ids=["broken", "array", "string", "nan", "not-utf8", "empty"],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    client: TestClient, documents: DocumentStore, body: str
) -> None:
    data = body.encode("latin-1")
    for method, path in [("POST", "/v1/admin/chatbots"), ("PUT", "/v1/admin/chatbots/bot")]:
        response = await client.request(method, path, data=data, headers={**AUTH, "Content-Type": "application/json"})
        assert response.status == 400
        payload = await response.json()
        assert (payload["type"], payload["code"]) == ("error", "invalid_json")
    assert await documents.get_chatbot("bot") is None


async def chunks(body: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    """A body sent in pieces (chunked transfer encoding, no Content-Length)."""
    for start in range(0, len(body), size):
        yield body[start : start + size]
        await asyncio.sleep(0.001)


async def test_a_body_over_the_limit_is_413(client: TestClient) -> None:
    body = json.dumps({"id": "bot", "system_prompt": "x" * 300_000}).encode()
    response = await client.post("/v1/admin/chatbots", data=body, headers=AUTH)
    assert response.status == 413
    assert (await response.json())["code"] == "too_large"
    response = await client.post("/v1/admin/chatbots", data=chunks(body), headers=AUTH)
    assert response.status == 413, "without a Content-Length too"
    assert (await response.json())["code"] == "too_large"


async def test_a_large_body_sent_in_pieces_is_read_whole(client: TestClient, documents: DocumentStore) -> None:
    prompt = "é" * 20_000  # the longest prompt, 40 kB of UTF-8
    body = json.dumps({"id": "bot", "system_prompt": prompt, "fallback_models": ["m"] * 20}).encode()
    response = await client.post("/v1/admin/chatbots", data=chunks(body), headers=AUTH)
    assert response.status == 201, await response.text()
    stored = await documents.get_chatbot("bot")
    assert stored is not None and stored["system_prompt"] == prompt


# --- CRUD -------------------------------------------------------------------------------------
async def test_chatbot_crud_round_trip(client: TestClient, documents: DocumentStore) -> None:
    created = await create(client, "chatbots", {**BOT, "max_tokens": 512.0})
    assert created["id"] == "bot" and created["revision"] == 1
    assert created["max_tokens"] == 512 and isinstance(created["max_tokens"], int)
    assert {"created_at", "updated_at"} <= set(created)

    response = await client.get("/v1/admin/chatbots/bot", headers=AUTH)
    assert response.status == 200
    assert await response.json() == created

    response = await client.patch(
        "/v1/admin/chatbots/bot", json={"temperature": None, "double_texting": "merge"}, headers=AUTH
    )
    assert response.status == 200
    patched = await response.json()
    assert "temperature" not in patched, "null resets a field to its default"
    assert (patched["double_texting"], patched["system_prompt"], patched["revision"]) == ("merge", "You are terse.", 2)
    assert patched["created_at"] == created["created_at"]

    # a GET result sent back with a change is accepted (read-only fields are ignored)
    response = await client.put("/v1/admin/chatbots/bot", json={**patched, "system_prompt": "Be kind."}, headers=AUTH)
    assert response.status == 200
    replaced = await response.json()
    assert (replaced["system_prompt"], replaced["double_texting"], replaced["revision"]) == ("Be kind.", "merge", 3)

    response = await client.put("/v1/admin/chatbots/bot", json={"system_prompt": "Only this."}, headers=AUTH)
    assert response.status == 200
    replaced = await response.json()
    assert "double_texting" not in replaced and "tools" not in replaced, "PUT replaces the whole document"
    stored = await documents.get_chatbot("bot")
    assert stored is not None and stored["system_prompt"] == "Only this." and "tools" not in stored

    response = await client.delete("/v1/admin/chatbots/bot", headers=AUTH)
    assert response.status == 204
    assert (await client.get("/v1/admin/chatbots/bot", headers=AUTH)).status == 404
    assert await documents.get_chatbot("bot") is None

    response = await client.put("/v1/admin/chatbots/fresh", json={"system_prompt": "New."}, headers=AUTH)
    assert response.status == 201, "PUT on an unknown id creates it"
    assert (await response.json())["id"] == "fresh"


async def test_application_crud_and_listing_pages(client: TestClient, documents: DocumentStore) -> None:
    await create(client, "chatbots", BOT)
    await create(client, "chatbots", {"id": "other"})
    for name in ("a3", "a1", "a2", "a4", "a5"):
        await create(client, "applications", {**APP, "id": name, "name": f"App {name}"})

    seen: list[str] = []
    after: str | None = None
    for _ in range(5):
        query = {"limit": "2"} | ({"after": after} if after else {})
        response = await client.get("/v1/admin/applications", params=query, headers=AUTH)
        assert response.status == 200
        page = await response.json()
        seen += [item["id"] for item in page["items"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == ["a1", "a2", "a3", "a4", "a5"]

    response = await client.patch("/v1/admin/applications/a1", json={"chatbot_id": "other"}, headers=AUTH)
    assert response.status == 200 and (await response.json())["chatbot_id"] == "other"
    response = await client.patch("/v1/admin/applications/a1", json={"chatbot_id": "ghost"}, headers=AUTH)
    assert response.status == 422
    assert [e["field"] for e in (await response.json())["errors"]] == ["chatbot_id"]

    for bad in ("0", "201", "x"):
        response = await client.get("/v1/admin/applications", params={"limit": bad}, headers=AUTH)
        assert response.status == 400 and (await response.json())["code"] == "invalid_parameter"

    assert (await client.delete("/v1/admin/applications/a1", headers=AUTH)).status == 204
    assert await documents.get_application("a1") is None


async def test_creating_an_existing_id_is_409_and_changes_nothing(client: TestClient, documents: DocumentStore) -> None:
    await create(client, "chatbots", BOT)
    response = await client.post("/v1/admin/chatbots", json={"id": "bot", "system_prompt": "Other."}, headers=AUTH)
    assert response.status == 409
    body = await response.json()
    assert (body["type"], body["code"]) == ("error", "conflict")
    assert "PUT or PATCH" in body["message"]
    stored = await documents.get_chatbot("bot")
    assert stored is not None and stored["system_prompt"] == "You are terse."


async def test_a_chatbot_in_use_is_not_deleted(client: TestClient, documents: DocumentStore) -> None:
    await create(client, "chatbots", BOT)
    await create(client, "applications", APP)
    response = await client.delete("/v1/admin/chatbots/bot", headers=AUTH)
    assert response.status == 409
    body = await response.json()
    assert body["code"] == "in_use" and "application(s) app;" in body["message"]
    assert await documents.get_chatbot("bot") is not None


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("plural", ["applications", "chatbots"])
async def test_an_unknown_id_is_404(client: TestClient, method: str, plural: str) -> None:
    response = await client.request(method, f"/v1/admin/{plural}/nope", json={"name": "x"}, headers=AUTH)
    assert response.status == 404
    body = await response.json()
    assert (body["type"], body["code"]) == ("error", "not_found")
    assert "'nope'" in body["message"]


# --- secrets ----------------------------------------------------------------------------------
async def test_secrets_and_channel_credentials_are_never_returned(client: TestClient, documents: DocumentStore) -> None:
    secret, token = "s3cret-value-123", "123456:telegram-token"
    await create(client, "chatbots", BOT)
    body = {**APP, "secret": secret, "channels": {"telegram": {"bot_token": token}, "slack": {"t": "x"}}}
    response = await client.post("/v1/admin/applications", json=body, headers=AUTH)
    assert response.status == 201
    responses = [response]
    responses.append(await client.get("/v1/admin/applications/app", headers=AUTH))
    responses.append(await client.get("/v1/admin/applications", headers=AUTH))
    responses.append(await client.patch("/v1/admin/applications/app", json={"name": "Renamed"}, headers=AUTH))
    responses.append(await client.put("/v1/admin/applications/app", json={**APP, "name": "Again"}, headers=AUTH))
    for r in responses:
        assert r.status in (200, 201)
        text = await r.text()
        assert secret not in text and token not in text
    view = await responses[1].json()
    assert "secret" not in view and "channels" not in view
    assert (view["secret_set"], view["channels_set"]) == (True, ["slack", "telegram"])

    stored = await documents.get_application("app")
    assert stored is not None
    assert stored["secret"] == secret, "PUT without the write-only secret keeps it"
    assert stored["channels"]["telegram"] == {"bot_token": token}

    response = await client.patch(
        "/v1/admin/applications/app", json={"secret": None, "channels": {"slack": None}}, headers=AUTH
    )
    view = await response.json()
    assert (view["secret_set"], view["channels_set"]) == (False, ["telegram"])
    stored = await documents.get_application("app")
    assert stored is not None and "secret" not in stored and stored["channels"] == {"telegram": {"bot_token": token}}


# --- an update is used by the next turn -------------------------------------------------------
async def test_an_update_is_what_the_next_config_read_returns(
    client: TestClient, documents: DocumentStore, configs: ConfigStore
) -> None:
    await create(client, "chatbots", BOT)
    await create(client, "chatbots", {"id": "bot2", "system_prompt": "Second bot.", "double_texting": "interrupt"})
    assert await configs.application("app") is None
    await create(client, "applications", APP)
    config = await configs.application("app")
    assert config is not None, "creating the application replaced the cached 'no such application'"
    assert (config.chatbot.system_prompt, config.chatbot.temperature) == ("You are terse.", 0.2)

    # the config is cached: a write behind the admin API's back is not seen...
    await documents.put_chatbot({"_id": "bot", "system_prompt": "Sneaky."})
    config = await configs.application("app")
    assert config is not None and config.chatbot.system_prompt == "You are terse."

    # ...a write through the admin API is seen at once
    response = await client.patch(
        "/v1/admin/chatbots/bot", json={"system_prompt": "You are verbose.", "max_tool_rounds": 7}, headers=AUTH
    )
    assert response.status == 200
    config = await configs.application("app")
    assert config is not None
    assert (config.chatbot.system_prompt, config.chatbot.max_tool_rounds) == ("You are verbose.", 7)

    response = await client.patch(
        "/v1/admin/applications/app", json={"chatbot_id": "bot2", "callback_url": None}, headers=AUTH
    )
    assert response.status == 200
    config = await configs.application("app")
    assert config is not None
    assert (config.chatbot.chatbot_id, config.chatbot.system_prompt) == ("bot2", "Second bot.")
    assert (config.chatbot.double_texting, config.callback_url) == ("interrupt", None)

    assert (await client.delete("/v1/admin/applications/app", headers=AUTH)).status == 204
    assert await configs.application("app") is None


# --- one error envelope ------------------------------------------------------------------------
async def test_errors_of_the_admin_and_table_apis_share_one_envelope_and_are_never_cached(client: TestClient) -> None:
    await create(client, "chatbots", BOT)
    for method, path, body, headers, status, code in [
        ("GET", "/v1/admin/chatbots", None, {}, 401, "unauthorized"),
        ("GET", "/v1/admin/chatbots/nope", None, AUTH, 404, "not_found"),
        ("GET", "/v1/admin/chatbots?limit=0", None, AUTH, 400, "invalid_parameter"),
        ("POST", "/v1/admin/chatbots", {"id": "bot"}, AUTH, 409, "conflict"),
        ("POST", "/v1/admin/chatbots", {"id": "b2", "temperature": 5}, AUTH, 422, "invalid_document"),
        ("GET", "/v1/tables", None, {}, 401, "unauthorized"),
        ("GET", "/v1/tables/conversations", None, AUTH, 404, "not_a_worker"),
    ]:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status == status, (method, path, await response.text())
        payload = await response.json()
        assert (payload["type"], payload["code"]) == ("error", code)
        assert set(payload) == {"type", "code", "message"} | ({"errors"} if status == 422 else set())
        assert response.headers["Cache-Control"] == "no-store", (method, path)


# --- the document store is down ---------------------------------------------------------------
async def test_a_document_store_that_is_down_gives_503(aiohttp_client: ClientFactory) -> None:
    url = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    settings = Settings(mongo_url=url, admin_api_key=KEY)
    documents = DocumentStore(url, "nothing", timeout_s=0.3)
    try:
        client = await aiohttp_client(make_app(settings, documents))
        response = await client.get("/v1/admin/chatbots", headers=AUTH)
        assert response.status == 503
        body = await response.json()
        assert (body["type"], body["code"]) == ("error", "unavailable")
    finally:
        await documents.close()


# --- OpenAPI ----------------------------------------------------------------------------------
async def test_every_v1_route_is_in_the_openapi_document(client: TestClient) -> None:
    response = await client.get("/v1/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.1")
    routes = {
        (route.resource.canonical, route.method.lower())
        for route in client.app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v1/") and route.method != "HEAD"
    }
    assert len(routes) >= 14, sorted(routes)  # 12 admin, the generic webhook, this document
    documented = {(path, method) for path, item in document["paths"].items() for method in item if method != "parameters"}
    assert routes - documented == set(), "routes missing from /v1/openapi.json"
    assert documented - routes - {("/healthz", "get"), ("/readyz", "get")} == set(), "documented routes that do not exist"
    for path in ("/healthz", "/readyz"):
        assert path in document["paths"]
    for path, item in document["paths"].items():
        if path.startswith("/v1/admin/"):
            for method, operation in item.items():
                if method != "parameters":
                    assert operation["security"], (path, method)
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_the_openapi_schemas_are_valid_json_schemas_and_resolve() -> None:
    document = openapi_document()
    for schema in document["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    for ref in refs:
        target: Any = document
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


# --- merge patch (RFC 7396, appendix A) -------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


@pytest.mark.parametrize("key", ["\u0000", "a\u0000b", "$set"])
async def test_keys_mongodb_cannot_store_are_422_not_500(client: TestClient, key: str) -> None:
    body = {"name": "x", "channels": {"telegram": {key: None}}}
    response = await client.put("/v1/admin/applications/nul-key-app", json=body, headers=AUTH)
    assert response.status == 422, await response.text()
    assert (await response.json())["code"] == "invalid_document"
