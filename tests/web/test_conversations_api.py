"""The console's conversations API on the real aiohttp app and a real DocumentStore (embedded
MongoDB-protocol server): list and search, transcripts, and the handoff's events on ``incoming``."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.config.store import ConfigStore
from parley.records import KIND_HAND_BACK, KIND_HANDOFF, KIND_OPERATOR, FunctionCallEvent, IncomingEvent, ReplyEvent
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.streams.archive import document_for_calls, document_for_reply, documents_for_incoming
from parley.streams.codec import decode
from parley.streams.handoff import operator_reply_id
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.support.webapp import AUTH, always_ready
from tests.support.webdeps import web_deps

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]
APP_ID = "shop"


class Produced:
    """The ingress's broker: what was produced, or a failure."""

    def __init__(self) -> None:
        self.events: list[tuple[str, IncomingEvent]] = []
        self.fail = False

    async def __call__(self, key: str, value: bytes) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.events.append((key, decode(value, IncomingEvent)))

    def kinds(self) -> list[str]:
        return [e.kind for _, e in self.events]


@pytest.fixture
def produced() -> Produced:
    return Produced()


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, produced: Produced  # noqa: F811
) -> TestClient:
    await documents.put_application({"_id": APP_ID, "chatbot_id": "demo"})
    deps = web_deps(configs=ConfigStore(documents, settings), documents=documents, archive=documents)
    app = create_web_app(settings=settings, deps=deps, ingress=Ingress(produced, timeout_s=2), readiness=always_ready)
    return await aiohttp_client(app)


def user(conversation: str, event_id: str, text: str, at: float, sender: str = "ann", channel: str = "websocket", **fields: Any) -> IncomingEvent:
    return IncomingEvent(
        event_id=event_id, conversation_id=conversation, application_id=APP_ID, created_at=at, text=text,
        sender=sender, channel=channel, client_message_id=f"c-{event_id}", **fields,
    )


def reply(conversation: str, event_id: str, text: str, at: float, in_reply_to: str, **fields: Any) -> ReplyEvent:
    return ReplyEvent(
        event_id=event_id, conversation_id=conversation, application_id=APP_ID, created_at=at, text=text,
        in_reply_to=in_reply_to, **fields,
    )


async def archive(documents: DocumentStore, *events: Any) -> None:  # noqa: F811
    docs: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, IncomingEvent):
            docs += documents_for_incoming(event)
        elif isinstance(event, FunctionCallEvent):
            docs.append(document_for_calls(event))
        else:
            docs.append(document_for_reply(event))
    await documents.archive(docs)


async def get(client: TestClient, path: str, status: int = 200, **params: Any) -> Any:
    response = await client.get(path, params=params, headers=AUTH)
    assert response.status == status, await response.text()
    return await response.json()


BASE = f"/v1/admin/applications/{APP_ID}/conversations"


async def test_conversations_are_listed_newest_first_and_found_by_id_sender_or_text(
    client: TestClient, documents: DocumentStore  # noqa: F811
) -> None:
    await archive(
        documents,
        user("c-old", "u1", "where is my parcel", 100.0, sender="ann"), reply("c-old", "r1", "On its way.", 101.0, "u1"),
        user("c-mid", "u2", "refund please", 200.0, sender="bob"),
        user("telegram:42", "u3", "hello from telegram", 300.0, sender="tg-carol", channel="telegram"),
    )
    await documents.archive([{**documents_for_incoming(user("other-app-conv", "u9", "parcel", 400.0))[0], "application_id": "elsewhere"}])

    body = await get(client, BASE)
    assert [i["conversation_id"] for i in body["items"]] == ["telegram:42", "c-mid", "c-old"]
    assert body["items"][2] == {
        "conversation_id": "c-old", "sender": "ann", "last_message_at": 101.0, "last_text": "On its way.", "handoff": None,
    }
    assert body["next_cursor"] is None

    for query, expected in [("PARCEL", ["c-old"]), ("bob", ["c-mid"]), ("telegram:", ["telegram:42"]), ("nothing", [])]:
        found = await get(client, BASE, q=query)
        assert [i["conversation_id"] for i in found["items"]] == expected, query

    first = await get(client, BASE, limit=2)
    assert [i["conversation_id"] for i in first["items"]] == ["telegram:42", "c-mid"]
    rest = await get(client, BASE, limit=2, cursor=first["next_cursor"])
    assert [i["conversation_id"] for i in rest["items"]] == ["c-old"] and rest["next_cursor"] is None

    assert (await get(client, BASE, 400, cursor="not-ours"))["code"] == "invalid_parameter"
    assert (await get(client, "/v1/admin/applications/nope/conversations", 404))["code"] == "not_found"
    response = await client.get(BASE)
    assert response.status == 401


async def test_a_transcript_shows_tool_calls_results_attachments_delivery_and_replays(
    client: TestClient, documents: DocumentStore  # noqa: F811
) -> None:
    conv = f"c-{uuid.uuid4().hex[:6]}"
    attachment = {"file_id": "f1", "content_type": "image/png", "size": 10, "name": "a.png"}
    calls = FunctionCallEvent(
        event_id="calls-1", conversation_id=conv, application_id=APP_ID, created_at=10.0, turn_id="u1",
        calls=[{"id": "call-1", "name": "calculate", "arguments": '{"expression": "6*7"}'}],
    )
    results = IncomingEvent(
        event_id="res-1", conversation_id=conv, application_id=APP_ID, created_at=10.0, kind="tool_results",
        turn_id="u1", tool_results=[{"tool_call_id": "call-1", "name": "calculate", "content": "42"}],
    )
    await archive(
        documents,
        user(conv, "u1", "what is 6*7", 10.0, attachments=[attachment]), calls, results,
        reply(conv, "r1", "42", 10.0, "u1"),
        user(conv, "u1-replay", "what is 6*7", 20.0, replay_id="rp-1"),
        reply(conv, "op-1", "Alice here", 30.0, "u1", role="operator", operator_id="u-7", operator_name="Alice"),
    )
    await documents.mark_delivered("r1", 11.0)

    body = await get(client, f"{BASE}/{conv}")
    assert (body["conversation_id"], body["channel"], body["handoff"], body["truncated"]) == (conv, "websocket", None, False)
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "user", "operator"]
    first, call, result, answer, replayed, operator = messages
    assert first["attachments"] == [attachment] and first["sender"] == "ann"
    assert call["tool_calls"] == [{"id": "call-1", "name": "calculate", "arguments": '{"expression": "6*7"}'}]
    assert result["tool_results"] == [{"call_id": "call-1", "name": "calculate", "content": "42", "is_error": False}]
    assert answer["delivery"] == {"channel": "websocket", "status": "delivered", "delivered_at": 11.0}
    assert (replayed["replayed"], replayed["replay_id"]) == (True, "rp-1")
    assert "replayed" not in first
    assert operator["operator"] == {"id": "u-7", "name": "Alice"} and operator["text"] == "Alice here"
    assert (await get(client, f"{BASE}/nope", 404))["code"] == "not_found"


async def test_take_over_operator_messages_and_hand_back_travel_as_events_on_incoming(
    client: TestClient, documents: DocumentStore, produced: Produced  # noqa: F811
) -> None:
    conv = "telegram:77"
    await archive(documents, user(conv, "u1", "hi", 10.0, channel="telegram"))
    path = f"{BASE}/{conv}"

    early = await client.post(f"{path}/messages", json={"text": "hello?"}, headers=AUTH)
    assert early.status == 409 and (await early.json())["code"] == "not_taken_over"
    assert produced.events == []

    taken = await client.post(f"{path}/handoff", headers=AUTH)
    assert taken.status == 200, await taken.text()
    handoff = (await taken.json())["handoff"]
    assert (handoff["operator_id"], handoff["operator_name"]) == ("admin-key", "Administrator")
    [(key, event)] = produced.events
    assert key == f"{APP_ID}/{conv}" and event.kind == KIND_HANDOFF and event.channel == "telegram"
    assert (await get(client, path))["handoff"] == handoff
    assert (await get(client, BASE))["items"][0]["handoff"] == handoff
    again = await client.post(f"{path}/handoff", headers=AUTH)  # the same operator again: nothing new
    assert again.status == 200 and len(produced.events) == 1

    sent = await client.post(f"{path}/messages", json={"text": "Alice here", "id": "m-1"}, headers=AUTH)
    assert sent.status == 202, await sent.text()
    body = await sent.json()
    _, message = produced.events[-1]
    assert (message.kind, message.text, message.channel, message.operator_id) == (KIND_OPERATOR, "Alice here", "telegram", "admin-key")
    assert body["message_id"] == operator_reply_id(message.event_id)
    retried = await client.post(f"{path}/messages", json={"text": "Alice here", "id": "m-1"}, headers=AUTH)
    assert (await retried.json())["message_id"] == body["message_id"]  # a retry is the same event

    for bad, status in [({"text": ""}, 400), ({}, 400), ({"text": "x" * 20000}, 413), ({"text": "ok", "id": "no spaces"}, 400)]:
        response = await client.post(f"{path}/messages", json=bad, headers=AUTH)
        assert response.status == status, (bad, await response.text())

    back = await client.delete(f"{path}/handoff", headers=AUTH)
    assert back.status == 200 and (await back.json())["handoff"] is None
    assert produced.kinds()[-1] == KIND_HAND_BACK
    assert (await get(client, path))["handoff"] is None
    twice = await client.delete(f"{path}/handoff", headers=AUTH)  # harmless: it may undo a half-done take over
    assert twice.status == 200 and produced.kinds()[-2:] == [KIND_HAND_BACK, KIND_HAND_BACK]

    missing = await client.post(f"{BASE}/never-seen/handoff", headers=AUTH)
    assert missing.status == 404
    assert (await client.post(f"{path}/handoff")).status == 401


async def test_a_take_over_the_broker_does_not_take_is_503_and_changes_nothing(
    client: TestClient, documents: DocumentStore, produced: Produced  # noqa: F811
) -> None:
    await archive(documents, user("c1", "u1", "hi", 10.0))
    produced.fail = True
    response = await client.post(f"{BASE}/c1/handoff", headers=AUTH)
    assert response.status == 503 and (await response.json())["code"] == "unavailable"
    assert (await get(client, f"{BASE}/c1"))["handoff"] is None
