"""The real aiohttp app: bad input gets a clear error and nothing is produced."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.settings import Settings
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from parley.web.keys import DEPS
from tests.support.produced import Produced
from tests.support.webdeps import web_deps

MAX_TEXT = 64
WEBHOOK = "/v1/webhooks/generic/demo"
MESSAGE = {"conversation_id": "c1", "id": "m1", "text": "hi"}
ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


class Configs:
    async def application_document(self, application_id: str) -> dict[str, Any] | None:
        return await Documents().get_application(application_id)

    async def application(self, application_id: str) -> object | None:
        return object() if application_id == "demo" else None


class Documents:
    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        return {"_id": "demo"} if application_id == "demo" else None






class Ready:
    def __init__(self) -> None:
        self.ready = True

    async def __call__(self) -> tuple[bool, dict[str, Any]]:
        return self.ready, {"broker": "ok" if self.ready else "down"}


def make_app(produce: Any, timeout_s: float = 1, readiness: Any = None) -> web.Application:
    return create_web_app(
        settings=Settings(max_text_bytes=MAX_TEXT),
        deps=web_deps(configs=Configs()),
        ingress=Ingress(produce, timeout_s=timeout_s),
        readiness=readiness or Ready(),
    )


@pytest.fixture
def produced() -> Produced:
    return Produced()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, produced: Produced) -> TestClient:
    return await aiohttp_client(make_app(produced))


async def hello(ws: Any) -> None:
    await ws.send_json({"type": "hello", "application_id": "demo", "conversation_id": "c1"})
    assert (await ws.receive_json(timeout=2))["type"] == "ready"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "invalid_json"),
        ("[1, 2]", "invalid_json"),
        ('{"type": "shout"}', "unknown_type"),
        ('{"type": "message", "text": "hi"}', "missing_field"),
        ('{"type": "message", "id": "m1"}', "missing_field"),
        ('{"type": "message", "id": "m1", "text": 42}', "invalid_field"),
        ('{"type": "message", "id": "m1", "text": "   "}', "invalid_field"),
        ('{"type": "message", "id": "bad id!", "text": "hi"}', "invalid_field"),
        ('{"type": "message", "id": "m1", "text": "%s"}' % ("x" * (MAX_TEXT + 1)), "too_large"),
        ('{"type": "hello", "application_id": "x", "conversation_id": "c"}', "unknown_application"),
        ('{"type": "hello", "application_id": "demo"}', "missing_field"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_socket_stays_open(
    client: TestClient, produced: Produced, frame: str, code: str
) -> None:
    async with client.ws_connect("/ws") as ws:
        await hello(ws)
        await ws.send_str(frame)
        error = await ws.receive_json(timeout=2)
        assert (error["type"], error["code"]) == ("error", code)
        assert error["message"]

        await ws.send_json({"type": "message", "id": "m1", "text": "x" * MAX_TEXT})
        ack = await ws.receive_json(timeout=2)
        assert (ack["type"], ack["id"]) == ("ack", "m1")
    [event] = produced.events
    assert (event.event_id, event.text) == (ack["event_id"], "x" * MAX_TEXT)
    assert (event.channel, event.client_message_id) == ("websocket", "m1")
    assert (event.application_id, event.conversation_id) == ("demo", "c1")


async def test_a_message_before_hello_and_a_binary_frame_are_refused(
    client: TestClient, produced: Produced
) -> None:
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"type": "message", "id": "m1", "text": "hi"})
        assert (await ws.receive_json(timeout=2))["code"] == "not_ready"
        await ws.send_bytes(b'{"type": "ping"}')
        assert (await ws.receive_json(timeout=2))["code"] == "invalid_frame"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=2)) == {"type": "pong"}
        await hello(ws)
        await ws.send_json({"type": "message", "id": "m1", "text": "hi"})
        assert (await ws.receive_json(timeout=2))["type"] == "ack"
    assert [e.text for e in produced.events] == ["hi"]


async def test_the_socket_receives_frames_published_on_its_conversation(client: TestClient) -> None:
    bus = client.app[DEPS].bus
    async with client.ws_connect("/ws") as ws:
        await hello(ws)
        await bus.publish("parley:conv:demo:other", {"type": "delta", "text": "not mine"})
        await bus.publish("parley:conv:demo:c1", {"type": "delta", "text": "mine"})
        assert (await ws.receive_json(timeout=2)) == {"type": "delta", "text": "mine"}


async def _raises(key: str, value: bytes) -> None:
    raise ConnectionError("broker down")


async def _hangs(key: str, value: bytes) -> None:
    await asyncio.Event().wait()


@pytest.mark.parametrize("produce", [_raises, _hangs])
async def test_a_broker_that_does_not_ack_gives_unavailable(
    aiohttp_client: ClientFactory, produce: Any
) -> None:
    client = await aiohttp_client(make_app(produce, timeout_s=0.1))
    async with client.ws_connect("/ws") as ws:
        await hello(ws)
        await ws.send_json({"type": "message", "id": "m1", "text": "hi"})
        error = await ws.receive_json(timeout=2)
        assert (error["type"], error["code"]) == ("error", "unavailable")
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=2)) == {"type": "pong"}, "no ack follows"
    response = await client.post(WEBHOOK, json=MESSAGE)
    assert response.status == 503
    assert (await response.json())["code"] == "unavailable"


TOO_LONG = '{"conversation_id": "c1", "id": "m1", "text": "%s"}' % ("é" * 33)  # 66 bytes > 64


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ("{nope", 400, "invalid_json", None),
        ('"just a string"', 400, "invalid_json", None),
        ('{"conversation_id": "c1", "text": "hi"}', 400, "missing_field", "'id'"),
        ('{"id": "m1", "text": "hi"}', 400, "missing_field", "'conversation_id'"),
        ('{"conversation_id": "c1", "id": "m1"}', 400, "missing_field", "'text'"),
        ('{"conversation_id": "c1", "id": "m1", "text": ["hi"]}', 400, "invalid_field", "'text'"),
        (TOO_LONG, 413, "too_large", "'text'"),
        ("x" * 10_000, 413, "too_large", None),
        # a platform's conversation: the reply would go to this caller, the text into that user's history
        ('{"conversation_id": "telegram:42", "id": "m1", "text": "hi"}', 403, "forbidden_conversation", "telegram"),
        ('{"conversation_id": "slack:C1:1.2", "id": "m1", "text": "hi"}', 403, "forbidden_conversation", "slack"),
        ('{"conversation_id": "whatsapp:15551234", "id": "m1", "text": "hi"}', 403, "forbidden_conversation", "whatsapp"),
    ],
)
async def test_webhook_refuses_bad_input(
    client: TestClient, produced: Produced, body: str, status: int, code: str, field: str | None
) -> None:
    response = await client.post(WEBHOOK, data=body, headers={"Content-Type": "application/json"})
    assert response.status == status
    payload = await response.json()
    assert (payload["type"], payload["code"]) == ("error", code)
    if field:
        assert field in payload["message"]
    assert produced.events == []


async def test_webhook_for_an_unknown_application_is_404(
    client: TestClient, produced: Produced
) -> None:
    response = await client.post("/v1/webhooks/generic/nope", json=MESSAGE)
    assert response.status == 404
    assert (await response.json())["code"] == "unknown_application"
    assert produced.events == []


async def test_webhook_accepts_a_message_and_redelivery_keeps_its_event_id(
    client: TestClient, produced: Produced
) -> None:
    body = {"conversation_id": "c1", "id": 12345, "text": "hello", "sender": "ann"}
    first = await client.post(WEBHOOK, json=body)
    second = await client.post(WEBHOOK, json=body)
    other = await client.post(WEBHOOK, json={**body, "id": 12346})

    assert [first.status, second.status, other.status] == [202, 202, 202]
    ids = [(await r.json())["event_id"] for r in (first, second, other)]
    assert ids[0] == ids[1] != ids[2]
    assert [e.event_id for e in produced.events] == ids
    event = produced.events[0]
    assert (event.text, event.sender, event.channel, event.client_message_id) == (
        "hello", "ann", "generic", "12345"
    )


async def test_health_readiness_and_chat_page(
    aiohttp_client: ClientFactory, produced: Produced
) -> None:
    ready = Ready()
    client = await aiohttp_client(make_app(produced, readiness=ready))

    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    assert response.status == 200 and (await response.json())["ready"] is True
    ready.ready = False
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json()) == {"ready": False, "checks": {"broker": "down"}}

    page = await client.get("/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "'/ws'" in await page.text()
