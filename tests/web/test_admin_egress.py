"""The admin API refuses outbound URLs Parley must not call, at save, with a 422 naming the
field; and a chatbot may list only registered tools."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.config.store import ConfigStore
from parley.egress import EgressPolicy
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.channels.test_egress import SSRF_URLS, fake_lookup
from tests.support.webapp import AUTH, always_ready, never_produced
from tests.support.webdeps import web_deps
from tests.web.test_admin import BOT, create

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


def _client_app(settings: Settings, documents: DocumentStore, egress: EgressPolicy) -> web.Application:
    deps = web_deps(
        configs=ConfigStore(documents, settings), documents=documents, archive=documents, egress=egress
    )
    return create_web_app(
        settings=settings, deps=deps, ingress=Ingress(never_produced, timeout_s=1), readiness=always_ready
    )


@pytest.fixture
async def strict_client(aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore) -> TestClient:
    return await aiohttp_client(_client_app(settings, documents, EgressPolicy(lookup=fake_lookup)))


async def _refused(client: TestClient, body: dict[str, Any]) -> list[dict[str, str]]:
    response = await client.post("/v1/admin/applications", json=body, headers=AUTH)
    assert response.status == 422, await response.text()
    errors: list[dict[str, str]] = (await response.json())["errors"]
    return errors


@pytest.mark.parametrize("template", SSRF_URLS)
async def test_every_spelling_is_refused_at_save_naming_the_field(strict_client: TestClient, template: str) -> None:
    await create(strict_client, "chatbots", BOT)
    url = template.format(port=8080)
    errors = await _refused(strict_client, {"id": "app", "name": "Shop", "chatbot_id": "bot", "callback_url": url})
    assert [e["field"] for e in errors] == ["callback_url"]
    errors = await _refused(strict_client, {
        "id": "app", "name": "Shop", "chatbot_id": "bot", "channels": {"telegram": {"bot_token": "t", "api_base": url}},
    })
    assert [e["field"] for e in errors] == ["channels.telegram.api_base"]
    missing = await strict_client.get("/v1/admin/applications/app", headers=AUTH)
    assert missing.status == 404  # nothing was stored


async def test_a_public_https_url_and_an_unresolvable_name_are_accepted(strict_client: TestClient) -> None:
    await create(strict_client, "chatbots", BOT)
    await create(strict_client, "applications", {
        "id": "app", "name": "Shop", "chatbot_id": "bot", "callback_url": "https://receiver.example.com/cb",
        "channels": {"telegram": {"bot_token": "t", "api_base": "https://api.telegram.org"}},
    })


async def test_the_allow_list_lets_a_private_receiver_be_saved(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore
) -> None:
    allowed = EgressPolicy.from_entries(["127.0.0.0/8", "rebind.example"], lookup=fake_lookup)
    client = await aiohttp_client(_client_app(settings, documents, allowed))
    await create(client, "chatbots", BOT)
    await create(client, "applications", {
        "id": "app", "name": "Shop", "chatbot_id": "bot", "callback_url": "http://127.0.0.1:9/cb",
    })
    await create(client, "applications", {
        "id": "app2", "name": "Shop", "chatbot_id": "bot", "callback_url": "http://rebind.example:9/cb",
    })


async def test_a_chatbot_with_an_unknown_tool_is_a_422_naming_it(strict_client: TestClient) -> None:
    response = await strict_client.post(
        "/v1/admin/chatbots", json={"id": "bot", "tools": ["current_time", "get_weather"]}, headers=AUTH
    )
    assert response.status == 422
    [error] = (await response.json())["errors"]
    assert error["field"] == "tools[1]"
    assert "get_weather" in error["message"]
