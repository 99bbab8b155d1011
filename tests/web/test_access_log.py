"""The access log (parley.web.server.ScrubbedAccessLogger) writes no secret query values."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from parley.web.server import ScrubbedAccessLogger


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def test_tokens_in_the_query_and_referer_never_reach_the_access_log(caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application()
    app.router.add_get("/{tail:.*}", ok)
    runner = web.AppRunner(app, access_log_class=ScrubbedAccessLogger)  # as WebServer and the gateway build it
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as client:
            with caplog.at_level(logging.INFO, logger="aiohttp.access"):
                for target in ("/ws?token=canary-ws-token&application_id=shop",
                               "/v1/webhooks/shop/whatsapp?hub.mode=subscribe&hub.verify_token=canary-verify&hub.challenge=7",
                               "/v1/auth/link/canary-signin-link"):
                    url = f"http://127.0.0.1:{port}{target}"
                    async with client.get(url, headers={"Referer": "https://u:canary-pw@site/page?token=canary-ref"}) as response:
                        assert response.status == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3, lines
    text = "\n".join(lines)
    assert "canary" not in text
    assert '"GET /ws?token=***&application_id=shop HTTP/1.1" 200' in lines[0]
    assert "hub.verify_token=***&hub.challenge=7" in lines[1] and "https://***@site/page?token=***" in lines[1]
    assert '"GET /v1/auth/link/*** HTTP/1.1" 200' in lines[2]


def test_the_logger_is_an_aiohttp_access_logger() -> None:
    logger: Any = ScrubbedAccessLogger(logging.getLogger("aiohttp.access"), "")
    assert logger.enabled
