"""The console's dead letters and overview on the real aiohttp app: ``parley dlq`` 's desk
(``parley.ops.dlq_desk``) over an in-memory dead-letters topic and sink, and the real
``dead_letter_actions`` collection on the embedded document server."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley import metrics
from parley.config.store import ConfigStore
from parley.ops.dlq_desk import DeadLetterService
from parley.records import DeadLetter, IncomingEvent
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.streams.codec import encode
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.ops.fakes import FakeSink, FakeTopic
from tests.support.webapp import AUTH, always_ready, never_produced
from tests.support.webdeps import web_deps

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


def letter(dead_letter_id: str, *, key: str, stage: str = "processor", failed_at: float, original: bytes) -> bytes:
    return encode(DeadLetter(
        dead_letter_id=dead_letter_id, stage=stage, error="boom at https://api.example.com/send?token=abc123", error_type="RuntimeError",
        topic="incoming", partition=1, offset=9, key=key, original_b64=base64.b64encode(original).decode(),
        failed_at=failed_at,
    ))


ORIGINAL = encode(IncomingEvent(event_id="e1", conversation_id="c1", application_id="shop", created_at=1.0, text="hi"))


@pytest.fixture
def topic() -> FakeTopic:
    topic = FakeTopic(partitions=1)
    topic.append(0, letter("dl-1", key="shop/c1", failed_at=100.0, original=ORIGINAL))
    topic.append(0, letter("dl-2", key="other/c9", stage="persister.outgoing", failed_at=200.0, original=b"\xff raw"))
    topic.append(0, letter("dl-3", key="shop/c2", failed_at=300.0, original=ORIGINAL))
    return topic


@pytest.fixture
def sink() -> FakeSink:
    return FakeSink()


def opener(thing: Any) -> Callable[[], contextlib.AbstractAsyncContextManager[Any]]:
    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[Any]:
        yield thing

    return opened


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, topic: FakeTopic, sink: FakeSink  # noqa: F811
) -> TestClient:
    desk = DeadLetterService(documents.database, source=opener(topic), sink=opener(sink))
    deps = web_deps(configs=ConfigStore(documents, settings), documents=documents, archive=documents, dead_letters=desk)
    app = create_web_app(settings=settings, deps=deps, ingress=Ingress(never_produced, timeout_s=1), readiness=always_ready)
    return await aiohttp_client(app)


async def call(client: TestClient, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
    response = await client.request(method, path, headers=AUTH, **kwargs)
    assert response.status == status, await response.text()
    return await response.json()


async def test_dead_letters_are_listed_newest_first_by_application_and_stage_and_paged(client: TestClient) -> None:
    body = await call(client, "GET", "/v1/admin/dead-letters")
    assert [i["dead_letter_id"] for i in body["items"]] == ["dl-3", "dl-2", "dl-1"]
    first = body["items"][0]
    assert (first["application_id"], first["stage"], first["key"], first["replay_count"]) == ("shop", "processor", "shop/c2", 0)
    assert "abc123" not in first["error"] and "api.example.com" in first["error"]  # scrubbed as `parley dlq` does
    shop = await call(client, "GET", "/v1/admin/dead-letters", params={"application_id": "shop"})
    assert [i["dead_letter_id"] for i in shop["items"]] == ["dl-3", "dl-1"]
    staged = await call(client, "GET", "/v1/admin/dead-letters", params={"stage": "persister.outgoing"})
    assert [i["dead_letter_id"] for i in staged["items"]] == ["dl-2"]
    page = await call(client, "GET", "/v1/admin/dead-letters", params={"limit": 2})
    assert [i["dead_letter_id"] for i in page["items"]] == ["dl-3", "dl-2"]
    rest = await call(client, "GET", "/v1/admin/dead-letters", params={"limit": 2, "cursor": page["next_cursor"]})
    assert [i["dead_letter_id"] for i in rest["items"]] == ["dl-1"] and rest["next_cursor"] is None
    assert (await client.get("/v1/admin/dead-letters")).status == 401


async def test_a_dead_letter_shows_its_error_stage_and_original_bytes(client: TestClient) -> None:
    shown = await call(client, "GET", "/v1/admin/dead-letters/dl-1")
    assert base64.b64decode(shown["original_b64"]) == ORIGINAL
    assert shown["original_json"]["text"] == "hi" and shown["stage"] == "processor"
    raw = await call(client, "GET", "/v1/admin/dead-letters/dl-2")
    assert raw["original_json"] is None and raw["original_text"].endswith(" raw")
    assert (await call(client, "GET", "/v1/admin/dead-letters/nope", 404))["code"] == "not_found"


async def test_a_replay_sends_the_original_bytes_once_unless_forced_and_a_purge_hides_the_letter(
    client: TestClient, sink: FakeSink
) -> None:
    done = await call(client, "POST", "/v1/admin/dead-letters/dl-1/replay")
    assert done["replay"]["mode"] == "as-is"
    assert sink.sent == [("incoming", b"shop/c1", ORIGINAL)]
    again = await call(client, "POST", "/v1/admin/dead-letters/dl-1/replay", 409)
    assert "already replayed" in again["message"] and len(sink.sent) == 1
    await call(client, "POST", "/v1/admin/dead-letters/dl-1/replay", json={"force": True})
    assert len(sink.sent) == 2
    assert (await call(client, "GET", "/v1/admin/dead-letters/dl-1"))["replay_count"] == 2
    assert (await call(client, "POST", "/v1/admin/dead-letters/dl-1/replay", 422, json={"force": "yes"}))["code"] == "invalid_field"

    assert (await call(client, "DELETE", "/v1/admin/dead-letters/dl-3"))["purged"] is True
    listed = await call(client, "GET", "/v1/admin/dead-letters")
    assert [i["dead_letter_id"] for i in listed["items"]] == ["dl-2", "dl-1"]
    everything = await call(client, "GET", "/v1/admin/dead-letters", params={"include_purged": "true"})
    assert everything["items"][0]["purged_at"] is not None
    assert (await call(client, "DELETE", "/v1/admin/dead-letters/nope", 404))["code"] == "not_found"


async def test_without_a_broker_the_dead_letters_are_unavailable(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore  # noqa: F811
) -> None:
    deps = web_deps(configs=ConfigStore(documents, settings), documents=documents, archive=documents)
    client = await aiohttp_client(create_web_app(settings=settings, deps=deps, ingress=Ingress(never_produced, timeout_s=1), readiness=always_ready))
    assert (await call(client, "GET", "/v1/admin/dead-letters", 503))["code"] == "dead_letters_unavailable"
    overview = await call(client, "GET", "/v1/admin/overview")
    assert overview["now"]["dead_letters"] is None


async def test_the_overview_counts_this_minutes_turns_answer_times_and_dead_letters(client: TestClient) -> None:
    before = await call(client, "GET", "/v1/admin/overview", params={"minutes": 5})
    assert [len(before["series"][name]) for name in ("turns", "answer_p50_ms", "answer_p95_ms", "errors")] == [5, 5, 5, 5]
    for seconds in (0.3, 0.4, 0.45, 7.0):
        metrics.ANSWER_SECONDS.observe(seconds)
    metrics.DEAD_LETTERS.labels("processor").inc()
    after = await call(client, "GET", "/v1/admin/overview", params={"minutes": 5})
    minute, turns = after["series"]["turns"][-1]
    assert minute == before["series"]["turns"][-1][0] or minute > before["series"]["turns"][-1][0]
    if minute == before["series"]["turns"][-1][0]:  # (not across a minute's boundary)
        assert turns - before["series"]["turns"][-1][1] == 4
        assert after["series"]["errors"][-1][1] - before["series"]["errors"][-1][1] == 1
    p50, p95 = after["series"]["answer_p50_ms"][-1][1], after["series"]["answer_p95_ms"][-1][1]
    assert p50 is not None and p95 is not None and p50 <= p95  # (the figures: tests/unit/test_overview.py)
    assert after["now"]["dead_letters"] == 3 and after["now"]["sockets"] >= 0
    json.dumps(after)  # plain JSON
    assert (await call(client, "GET", "/v1/admin/overview", 400, params={"minutes": 0}))["code"] == "invalid_parameter"
