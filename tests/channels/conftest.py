"""A local fake of a platform's HTTP API (one aiohttp test server per test) and a client session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from parley.channels.base import SendPolicy
from parley.channels.egress import guarded_session
from parley.egress import EgressPolicy

#: the egress policy of an operator whose platforms and receivers are on this machine
LOOPBACK_ALLOWED = EgressPolicy.from_entries(["127.0.0.0/8", "::1/128"])

#: fast retries for tests: the delays are a few milliseconds
FAST = SendPolicy(timeout_s=2.0, max_attempts=3, base_backoff_s=0.01, max_backoff_s=0.05, max_retry_after_s=0.2)


class FakeAPI:
    """Records every request; answers from ``script`` (status, json, headers) in order, then
    with ``default``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[tuple[int, Any, dict[str, str]]] = []
        self.default: tuple[int, Any, dict[str, str]] = (200, {"ok": True}, {})
        self.delay_s = 0.0
        self.base = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.requests.append({
            "method": request.method,
            "path": request.path,
            "headers": dict(request.headers),
            "raw": raw,
            "json": await request.json() if raw else None,
        })
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status, body, headers = self.script.pop(0) if self.script else self.default
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def api(aiohttp_server: Any) -> FakeAPI:
    fake = FakeAPI()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # the fakes listen on loopback: allowed as an operator would allow a private receiver
    async with guarded_session(LOOPBACK_ALLOWED) as http:
        yield http
