"""``/metrics``: open by default (for the internal network), behind a bearer token when
``PARLEY_METRICS_TOKEN`` is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.settings import Settings
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.support.webdeps import web_deps

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


async def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


async def _produce(key: str, value: bytes) -> None:
    raise AssertionError("nothing is produced")


def make_app(**settings: Any) -> web.Application:
    return create_web_app(
        settings=Settings(**settings), deps=web_deps(configs=None), ingress=Ingress(_produce, timeout_s=1), readiness=_ready
    )


async def test_metrics_are_open_without_a_token(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app())
    async with client.get("/metrics") as response:
        assert response.status == 200
        assert "parley_events_total" in await response.text()


async def test_a_metrics_token_is_required_when_set(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app(metrics_token="scrape-secret"))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scrape-secret"}):
        async with client.get("/metrics", headers=headers) as response:
            assert response.status == 401, headers
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "PARLEY_METRICS_TOKEN" in (await response.json())["message"]
            assert "parley_events_total" not in await response.text()
    async with client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}) as response:
        assert response.status == 200
        assert "parley_events_total" in await response.text()
