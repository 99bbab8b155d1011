"""Resume: a client saying which message it saw last gets what it missed from the archive, then
live frames, with nothing twice even when replies arrive while the archive is read."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from parley.records import ReplyEvent
from parley.streams.delivery import websocket_frame
from parley.web.keys import DEPS
from tests.web.test_ws_gateway import (  # noqa: F401 - fixtures
    ClientFactory,
    Produced,
    client,
    closed_with,
    make_app,
    produced,
    say_hello,
    token_for,
)


def doc(_id: str, role: str, created_at: float, order: int, **fields: Any) -> dict[str, Any]:
    return {
        "_id": _id, "application_id": "demo", "conversation_id": "c1", "role": role,
        "created_at": created_at, "order": order, "text": f"text of {_id}", **fields,
    }


HISTORY = [
    doc("u1", "user", 1.0, 0, client_message_id="m-1", sender="ann"),
    doc("a1", "assistant", 1.0, 3, in_reply_to="u1"),
    doc("u2", "user", 2.0, 0, client_message_id="m-2", sender="ann", attachments=[
        # a Telegram photo: its platform reference stays on the server
        {"platform": "telegram", "ref": {"file_id": "AgAC-secret-ref"}, "content_type": "image/jpeg",
         "size": 900, "name": "image"},
    ]),
    doc("t2", "tool_call", 2.0, 1, calls=[]),
    doc("r2", "tool", 2.0, 2, tool_call_id="x"),
]


def seed(client: TestClient, *docs: dict[str, Any]) -> Any:
    documents = client.app[DEPS].archive
    documents.messages.extend(docs)
    return documents


async def frames_until_pong(ws: Any) -> list[dict[str, Any]]:
    """Every frame before the answer to a ping sent now (the socket's queue, drained)."""
    await ws.send_json({"type": "ping"})
    frames = []
    while (frame := await ws.receive_json(timeout=2)) != {"type": "pong"}:
        frames.append(frame)
    return frames


async def test_a_resuming_client_gets_the_missed_messages_then_live_ones_nothing_twice(client: TestClient) -> None:
    documents = seed(client, *HISTORY)
    bus = client.app[DEPS].bus
    channel = "parley:conv:demo:c1"
    a2 = doc("a2", "assistant", 2.0, 3, in_reply_to="u2")

    async def reply_lands_during_the_read() -> None:
        # The persister archives a2 and delivers it while the archive is being read; a3 is
        # delivered too but archived too late for this read.
        await bus.publish(channel, {"type": "delta", "message_id": "a2", "seq": 0, "text": "text of"})
        documents.messages.append(a2)
        await bus.publish(channel, {**websocket_frame(reply("a2", "u2")), "text": "text of a2"})
        await bus.publish(channel, {"type": "delta", "message_id": "a3", "seq": 0, "text": "live"})
        await bus.publish(channel, websocket_frame(reply("a3", "u3")))

    documents.before_read = reply_lands_during_the_read
    async with client.ws_connect("/ws") as ws:
        ready = await say_hello(ws, last_message_id="a1")
        assert ready["type"] == "ready"
        frames = await frames_until_pong(ws)
        await bus.publish(channel, websocket_frame(reply("a2", "u2")))  # a redelivery, later
        await bus.publish(channel, websocket_frame(reply("a4", "u4")))
        later = await frames_until_pong(ws)

    assert frames[0] == {"type": "resume", "last_message_id": "a1", "found": True, "count": 2, "truncated": False}
    assert frames[1] == {
        "type": "message", "message_id": "u2", "role": "user", "text": "text of u2", "in_reply_to": None,
        "created_at": 2.0, "id": "m-2", "sender": "ann",
        "attachments": [{"name": "image", "content_type": "image/jpeg", "size": 900}],
    }
    assert frames[2] == {
        "type": "message", "message_id": "a2", "role": "assistant", "text": "text of a2",
        "in_reply_to": "u2", "created_at": 2.0, "html": "<p>text of a2</p>", "stopped": False,
    }
    assert [(f["type"], f["message_id"]) for f in frames[3:]] == [("delta", "a3"), ("message", "a3")]
    assert [(f["type"], f["message_id"]) for f in later] == [("message", "a4")]


def reply(message_id: str, in_reply_to: str) -> ReplyEvent:
    return ReplyEvent(
        event_id=message_id, conversation_id="c1", application_id="demo", created_at=2.0,
        in_reply_to=in_reply_to, text=f"text of {message_id}",
    )


async def test_archived_replies_look_exactly_like_live_ones(client: TestClient) -> None:
    seed(client, doc("a9", "assistant", 5.0, 3, in_reply_to="u9", is_error=False, replay_id=None))
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws, last_message_id="unknown-id")
        _resume, archived = await frames_until_pong(ws)
    live = websocket_frame(ReplyEvent(
        event_id="a9", conversation_id="c1", application_id="demo", created_at=5.0,
        in_reply_to="u9", text="text of a9",
    ))
    assert archived == live


async def test_an_unknown_last_message_id_gets_the_whole_conversation_bounded(
    aiohttp_client: ClientFactory, produced: Produced
) -> None:
    client = await aiohttp_client(make_app(produced, ws_resume_limit=2))
    seed(client, *HISTORY, doc("a2", "assistant", 2.0, 3, in_reply_to="u2"))
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws, resume_from="not-a-message-of-c1")
        frames = await frames_until_pong(ws)
    assert frames[0] == {
        "type": "resume", "last_message_id": "not-a-message-of-c1", "found": False, "count": 2, "truncated": True,
    }
    assert [f["message_id"] for f in frames[1:]] == ["u2", "a2"], "the most recent ones"


async def test_a_hello_asking_for_history_gets_the_conversation_so_far(
    aiohttp_client: ClientFactory, produced: Produced
) -> None:
    # a page load: nothing is shown yet, so the conversation's recent messages come first
    client = await aiohttp_client(make_app(produced, ws_resume_limit=3))
    seed(client, *HISTORY, doc("a2", "assistant", 2.0, 3, in_reply_to="u2"))
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws, history=True)
        frames = await frames_until_pong(ws)
    assert frames[0] == {"type": "resume", "last_message_id": None, "found": False, "count": 3, "truncated": True}
    assert [(f["message_id"], f["role"]) for f in frames[1:]] == [("a1", "assistant"), ("u2", "user"), ("a2", "assistant")]


async def test_a_page_reloaded_during_a_handoff_learns_who_answers(client: TestClient) -> None:
    documents = seed(client, *HISTORY)
    async with client.ws_connect("/ws") as ws:  # no handoff: the history alone
        await say_hello(ws, history=True)
        assert "handoff" not in [f["type"] for f in await frames_until_pong(ws)]
    documents.handoffs[("demo", "c1")] = {"operator_id": "op-1", "operator_name": "Grace", "since": 5.0}
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws, last_message_id="a1")
        frames = await frames_until_pong(ws)
    assert frames[-1] == {"type": "handoff", "state": "operator", "operator": {"name": "Grace"}, "created_at": 5.0}
    assert "op-1" not in str(frames)  # the operator's account id stays on the server


@pytest.mark.parametrize("value", ["yes", 1, 0, "", [True]])
async def test_history_must_be_a_boolean(client: TestClient, value: Any) -> None:
    async with client.ws_connect("/ws") as ws:
        error = await say_hello(ws, history=value)
        assert (error["type"], error["code"]) == ("error", "invalid_field")


async def test_a_hello_without_a_last_message_id_reads_no_archive(client: TestClient) -> None:
    documents = seed(client, *HISTORY)
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws)
        assert await frames_until_pong(ws) == []
    assert documents.reads == 0


async def test_resuming_after_the_last_message_gets_an_empty_resume(client: TestClient) -> None:
    seed(client, *HISTORY)
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws, last_message_id="r2")
        assert await frames_until_pong(ws) == [
            {"type": "resume", "last_message_id": "r2", "found": True, "count": 0, "truncated": False}
        ]


@pytest.mark.parametrize("value", ["bad id!", 3.5, ["a1"]])
async def test_a_malformed_last_message_id_is_an_error_and_the_socket_stays_open(
    client: TestClient, value: Any
) -> None:
    async with client.ws_connect("/ws") as ws:
        error = await say_hello(ws, last_message_id=value)
        assert (error["type"], error["code"]) == ("error", "invalid_field")
        assert (await say_hello(ws))["type"] == "ready"


async def test_an_archive_that_cannot_be_read_closes_the_socket_so_the_client_retries(client: TestClient) -> None:
    seed(client, *HISTORY).fail = True
    async with client.ws_connect("/ws") as ws:
        assert (await say_hello(ws, last_message_id="a1"))["type"] == "ready"
        error = await ws.receive_json(timeout=2)
        assert (error["type"], error["code"]) == ("error", "unavailable")
        assert await closed_with(ws) == 1013


async def test_a_signed_in_user_resumes_their_own_conversation(client: TestClient) -> None:
    seed(client, *(
        {**d, "application_id": "secure", "sender": "ann"} if d["role"] == "user" else {**d, "application_id": "secure"}
        for d in HISTORY
    ))
    async with client.ws_connect("/ws") as ws:
        ready = await say_hello(ws, "secure", token=token_for("secure", "ann"), last_message_id="u1")
        assert ready["user_id"] == "ann"
        frames = await frames_until_pong(ws)
    assert [f.get("message_id") for f in frames] == [None, "a1", "u2"]
