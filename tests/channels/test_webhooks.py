"""The webhook routes on the real aiohttp app: every platform's request is verified before
anything is produced, parsed into user events keyed by the platform's message id, and answered
the way the platform expects."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.settings import Settings
from parley.web.app import create_web_app
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress
from tests.channels import test_slack as slack
from tests.channels import test_telegram as telegram
from tests.channels import test_whatsapp as whatsapp
from tests.channels.conftest import FakeAPI
from tests.channels.test_generic import BODY as GENERIC_BODY
from tests.channels.test_generic import SECRET as GENERIC_SECRET
from tests.channels.test_generic import signature as generic_signature
from tests.support.produced import Produced
from tests.support.stores import DocumentConfigs
from tests.support.webdeps import web_deps

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


class Documents:
    def __init__(self) -> None:
        self.applications: dict[str, dict[str, Any]] = {}
        self.down = False

    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        if self.down:
            raise ConnectionError("mongo is down")
        doc = self.applications.get(application_id)
        return copy.deepcopy(doc) if doc is not None else None




async def ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


@pytest.fixture
def produced() -> Produced:
    return Produced()


@pytest.fixture
async def deps(session: aiohttp.ClientSession, api: FakeAPI) -> WebDeps:
    documents = Documents()
    deps = web_deps(configs=DocumentConfigs(documents), documents=documents, http=session)
    apps = documents.applications
    apps["tg"] = telegram.with_api(api.base) | {"_id": "tg"}
    apps["wa"] = whatsapp.with_api(api.base) | {"_id": "wa"}
    apps["sl"] = slack.with_api(api.base) | {"_id": "sl"}
    apps["plain"] = {"_id": "plain"}
    apps["signed"] = {"_id": "signed", "secret": GENERIC_SECRET}
    return deps


@pytest.fixture
async def client(aiohttp_client: ClientFactory, deps: WebDeps, produced: Produced) -> TestClient:
    app = create_web_app(
        settings=Settings(max_text_bytes=1000, delivery_timeout_s=2.0),
        deps=deps, ingress=Ingress(produced, timeout_s=1), readiness=ready,
    )
    return await aiohttp_client(app)


def tg_headers(secret: str = telegram.SECRET) -> dict[str, str]:
    return {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}


def wa_headers(data: bytes, secret: str = whatsapp.APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": whatsapp.signature(data, secret), "Content-Type": "application/json"}


async def post(client: TestClient, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    response = await client.post(path, data=data, headers=headers)
    text = await response.text()
    return response.status, json.loads(text) if response.content_type == "application/json" else text


# --- accepted messages -------------------------------------------------------------------------
async def test_a_telegram_update_becomes_a_user_event_and_shows_typing(
    client: TestClient, produced: Produced, api: FakeAPI
) -> None:
    status, body = await post(client, "/v1/webhooks/telegram/tg", telegram.body(telegram.TEXT_UPDATE), tg_headers())
    assert status == 200 and body["ok"] is True
    [event] = produced.events
    assert body["event_ids"] == [event.event_id]
    assert (event.application_id, event.conversation_id, event.channel) == ("tg", "telegram:1111111", "telegram")
    assert (event.client_message_id, event.text, event.sender) == ("1365", "/start", "1111111")
    for _ in range(100):
        if api.requests:
            break
        await asyncio.sleep(0.02)
    [typing] = api.requests
    assert typing["path"] == f"/bot{telegram.TOKEN}/sendChatAction"


async def test_a_redelivered_update_keeps_its_event_id(client: TestClient, produced: Produced) -> None:
    data = telegram.body(telegram.TEXT_UPDATE)
    for _ in range(3):
        status, _ = await post(client, "/v1/webhooks/telegram/tg", data, tg_headers())
        assert status == 200
    assert len({e.event_id for e in produced.events}) == 1


async def test_a_whatsapp_message_becomes_a_user_event(client: TestClient, produced: Produced) -> None:
    data = whatsapp.raw(whatsapp.TEXT_MESSAGE)
    status, _body = await post(client, "/v1/webhooks/whatsapp/wa", data, wa_headers(data))
    assert status == 200
    [event] = produced.events
    assert (event.conversation_id, event.channel, event.text) == (
        "whatsapp:16505551234", "whatsapp", "Does it come in another color?"
    )
    assert event.client_message_id.startswith("wamid.")


async def test_a_whatsapp_status_is_acknowledged_and_produces_nothing(client: TestClient, produced: Produced) -> None:
    data = whatsapp.raw(whatsapp.STATUS_DELIVERED)
    status, body = await post(client, "/v1/webhooks/whatsapp/wa", data, wa_headers(data))
    assert (status, body) == (200, {"ok": True, "event_ids": []})
    assert produced.events == []


async def test_a_slack_message_becomes_a_user_event(client: TestClient, produced: Produced) -> None:
    data = slack.raw(slack.THREAD_REPLY)
    status, _ = await post(client, "/v1/webhooks/slack/sl", data, slack.signed(data))
    assert status == 200
    [event] = produced.events
    assert (event.conversation_id, event.client_message_id, event.sender) == (
        "slack:C123ABC456:1355517523.000005", "1355517600.000100", "U123ABC456"
    )


async def test_slack_url_verification_gets_the_challenge(client: TestClient, produced: Produced) -> None:
    data = slack.raw(slack.URL_VERIFICATION)
    status, body = await post(client, "/v1/webhooks/slack/sl", data, slack.signed(data))
    assert (status, body) == (200, {"challenge": slack.URL_VERIFICATION["challenge"]})
    assert produced.events == []


async def test_the_slack_bots_own_message_is_acknowledged_and_ignored(client: TestClient, produced: Produced) -> None:
    data = slack.raw(slack.BOT_MESSAGE)
    status, body = await post(client, "/v1/webhooks/slack/sl", data, slack.signed(data))
    assert (status, body) == (200, {"ok": True, "event_ids": []})
    assert produced.events == []


async def test_the_generic_webhook_checks_signatures_when_the_application_has_a_secret(
    client: TestClient, produced: Produced
) -> None:
    json_type = {"Content-Type": "application/json"}
    status, body = await post(client, "/v1/webhooks/generic/signed", GENERIC_BODY, json_type)
    assert (status, body["code"]) == (401, "missing_signature")
    status, body = await post(
        client, "/v1/webhooks/generic/signed", GENERIC_BODY,
        {**json_type, "X-Parley-Signature": generic_signature(GENERIC_BODY)},
    )
    assert status == 202
    [event] = produced.events
    assert body == {"event_id": event.event_id}
    status, _ = await post(client, "/v1/webhooks/generic/plain", GENERIC_BODY, json_type)
    assert status == 202, "applications without a secret take unsigned webhooks"


# --- refused requests: nothing produced ---------------------------------------------------------
def _forged() -> list[tuple[str, bytes, dict[str, str], str]]:
    tg = telegram.body(telegram.TEXT_UPDATE)
    wa = whatsapp.raw(whatsapp.TEXT_MESSAGE)
    sl = slack.raw(slack.MESSAGE_EVENT)
    stale = int(time.time()) - 600
    return [
        ("/v1/webhooks/telegram/tg", tg, tg_headers("forged"), "bad_secret"),
        ("/v1/webhooks/telegram/tg", tg, {}, "missing_secret"),
        ("/v1/webhooks/whatsapp/wa", wa, wa_headers(wa, "wrong-app-secret"), "bad_signature"),
        ("/v1/webhooks/whatsapp/wa", wa, wa_headers(wa + b" "), "bad_signature"),
        ("/v1/webhooks/slack/sl", sl, slack.signed(sl, secret="wrong-signing-secret"), "bad_signature"),
        ("/v1/webhooks/slack/sl", sl, slack.signed(sl, timestamp=stale), "stale_timestamp"),
        ("/v1/webhooks/generic/signed", GENERIC_BODY,
         {"X-Parley-Signature": generic_signature(GENERIC_BODY, "wrong-secret")}, "bad_signature"),
        ("/v1/webhooks/generic/signed", GENERIC_BODY,
         {"X-Parley-Signature": generic_signature(GENERIC_BODY, timestamp=stale)}, "stale_timestamp"),
    ]


@pytest.mark.parametrize(("path", "data", "headers", "code"), _forged())
async def test_forged_stale_or_unsigned_requests_get_401_and_nothing_is_produced(
    client: TestClient, produced: Produced, api: FakeAPI, path: str, data: bytes, headers: dict[str, str], code: str
) -> None:
    status, body = await post(client, path, data, headers)
    assert status == 401
    assert (body["type"], body["code"]) == ("error", code)
    assert body["message"]
    assert produced.events == []
    await asyncio.sleep(0.05)
    assert api.requests == [], "no typing indicator for a refused request"


@pytest.mark.parametrize("channel", ["telegram", "whatsapp", "slack", "generic"])
async def test_an_unknown_application_is_404(client: TestClient, produced: Produced, channel: str) -> None:
    status, body = await post(client, f"/v1/webhooks/{channel}/nope", b"{}", {})
    assert (status, body["code"]) == (404, "unknown_application")
    assert produced.events == []


@pytest.mark.parametrize("channel", ["telegram", "whatsapp", "slack"])
async def test_an_application_without_the_channel_is_404(client: TestClient, produced: Produced, channel: str) -> None:
    status, body = await post(client, f"/v1/webhooks/{channel}/plain", b"{}", {})
    assert (status, body["code"]) == (404, "channel_not_configured")
    assert produced.events == []


async def test_signed_but_malformed_bodies_are_400(client: TestClient, produced: Produced) -> None:
    bad = b'{"update_id": "one"}'
    status, body = await post(client, "/v1/webhooks/telegram/tg", bad, tg_headers())
    assert (status, body["code"]) == (400, "invalid_payload")
    bad = b"{nope"
    status, body = await post(client, "/v1/webhooks/whatsapp/wa", bad, wa_headers(bad))
    assert (status, body["code"]) == (400, "invalid_json")
    bad = b'{"type": "event_callback", "event": {"type": "message", "text": "x"}}'
    status, body = await post(client, "/v1/webhooks/slack/sl", bad, slack.signed(bad))
    assert (status, body["code"]) == (400, "invalid_payload")
    assert produced.events == []


async def test_a_body_over_the_limit_is_413(client: TestClient, produced: Produced) -> None:
    status, body = await post(client, "/v1/webhooks/telegram/tg", b"x" * 10_000, tg_headers())
    assert (status, body["code"]) == (413, "too_large")


async def test_a_document_store_outage_is_503_so_the_platform_retries(
    client: TestClient, deps: WebDeps, produced: Produced
) -> None:
    deps.documents.down = True
    response = await client.post(
        "/v1/webhooks/telegram/tg", data=telegram.body(telegram.TEXT_UPDATE), headers=tg_headers()
    )
    assert (response.status, (await response.json())["code"]) == (503, "unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert produced.events == []
    deps.documents.down = False  # back: the platform's retry goes through
    status, _ = await post(client, "/v1/webhooks/telegram/tg", telegram.body(telegram.TEXT_UPDATE), tg_headers())
    assert status == 200 and len(produced.events) == 1


async def test_an_unexpected_failure_is_503_with_retry_after_not_a_500(
    client: TestClient, deps: WebDeps, produced: Produced, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(application_id: str) -> None:
        raise KeyError("nobody expected this")

    deps.configs.application_document = broken  # type: ignore[method-assign]
    for _ in range(5):
        response = await client.post(
            "/v1/webhooks/telegram/tg", data=telegram.body(telegram.TEXT_UPDATE), headers=tg_headers()
        )
        assert response.status == 503 and response.headers["Retry-After"]
        assert (await response.json())["code"] == "unavailable"
    assert produced.events == []
    assert "Traceback" not in caplog.text
    assert sum("nobody expected this" in r.getMessage() for r in caplog.records) == 1


async def test_a_broker_that_does_not_ack_is_503(aiohttp_client: ClientFactory, deps: WebDeps) -> None:
    async def down(key: str, value: bytes) -> None:
        raise ConnectionError("broker down")

    app = create_web_app(
        settings=Settings(), deps=deps, ingress=Ingress(down, timeout_s=0.5), readiness=ready,
    )
    client = await aiohttp_client(app)
    data = slack.raw(slack.MESSAGE_EVENT)
    status, body = await post(client, "/v1/webhooks/slack/sl", data, slack.signed(data))
    assert (status, body["code"]) == (503, "unavailable")


# --- WhatsApp subscription ----------------------------------------------------------------------
async def test_whatsapp_subscription_echoes_the_challenge(client: TestClient) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "meatyhamhock", "hub.challenge": "1158201444"}
    response = await client.get("/v1/webhooks/whatsapp/wa", params=query)
    assert response.status == 200 and response.content_type == "text/plain"
    assert await response.text() == "1158201444"


@pytest.mark.parametrize(("app_id", "status"), [("wa", 403), ("plain", 404), ("nope", 404)])
async def test_whatsapp_subscription_with_a_wrong_token_is_refused(client: TestClient, app_id: str, status: int) -> None:
    query = {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"}
    response = await client.get(f"/v1/webhooks/whatsapp/{app_id}", params=query)
    assert response.status == status
    assert "1158201444" not in await response.text()


async def test_a_deeply_nested_body_is_400_not_a_crash(client: TestClient, produced: Produced) -> None:
    data = b"[" * 3000 + b"]" * 3000
    status, body = await post(client, "/v1/webhooks/generic/plain", data, {"Content-Type": "application/json"})
    assert (status, body["code"]) == (400, "invalid_json")
    assert produced.events == []


@pytest.mark.parametrize("encoding", ["br", "zstd", "gzip", "deflate", "x-unknown"])
async def test_a_bad_content_encoding_is_a_4xx_and_one_info_line_not_an_error_traceback(
    deps: WebDeps, produced: Produced, caplog: pytest.LogCaptureFixture, encoding: str
) -> None:
    from parley.web.server import runner_options

    app = create_web_app(
        settings=Settings(max_text_bytes=1000), deps=deps, ingress=Ingress(produced, timeout_s=1), readiness=ready
    )
    runner = web.AppRunner(app, **runner_options())  # the server a worker and `parley web` run
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        # a fresh connection per request: the server closes one whose body it could not read
        async with aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(force_close=True)) as http:
            with caplog.at_level(logging.DEBUG):
                for channel, app_id, headers in (("telegram", "tg", tg_headers()), ("generic", "plain", {})):
                    async with http.post(
                        f"http://127.0.0.1:{port}/v1/webhooks/{channel}/{app_id}", data=b"not compressed at all",
                        headers={**headers, "Content-Type": "application/json", "Content-Encoding": encoding},
                    ) as response:
                        assert 400 <= response.status < 500, (channel, response.status)
    finally:
        await runner.cleanup()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    assert produced.events == []
