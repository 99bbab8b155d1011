"""Websocket resume end to end: a client that was away gets exactly what it missed, read from the
real archive, then live traffic, nothing twice. Plus a signed-in client against the real worker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import websockets

from parley.storage.documents import DocumentStore
from parley.web.auth import make_user_token
from tests.e2e.test_pipeline import archived


class Socket:
    """A raw websocket client that keeps every frame it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, url: str, conversation_id: str, application_id: str = "demo", **hello: Any) -> Socket:
        socket = cls(await websockets.connect(url, open_timeout=10))
        await socket.send({"type": "hello", "application_id": application_id, "conversation_id": conversation_id, **hello})
        ready = await socket.recv()
        assert ready["type"] == "ready", ready
        return socket

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def recv(self, timeout_s: float = 20.0) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
        self.frames.append(frame)
        return frame

    async def until(self, predicate: Any, timeout_s: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self.recv(max(0.01, deadline - time.monotonic()))
            if predicate(frame):
                return frame

    async def turn(self, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send ``text``; return its ack and the final reply to it."""
        client_id = f"m-{uuid.uuid4().hex[:10]}"
        await self.send({"type": "message", "id": client_id, "text": text})
        ack = await self.until(lambda f: f["type"] == "ack" and f["id"] == client_id)
        final = await self.until(
            lambda f: f["type"] == "message" and f.get("in_reply_to") == ack["event_id"]
        )
        return ack, final

    async def drain(self) -> None:
        """Everything the server sent before the answer to a ping sent now."""
        await self.send({"type": "ping"})
        await self.until(lambda f: f["type"] == "pong")

    async def close(self) -> None:
        await self.ws.close()


def messages(frames: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(f["role"], f["text"]) for f in frames if f["type"] == "message"]


async def test_a_reconnecting_client_gets_exactly_what_it_missed_then_live_traffic(worker, mongo_db):
    conversation = f"resume-{uuid.uuid4().hex[:10]}"
    phone = await Socket.open(worker.ws, conversation)
    try:
        _, first_reply = await phone.turn("first from the phone")
    finally:
        await phone.close()
    last_seen = first_reply["message_id"]

    laptop = await Socket.open(worker.ws, conversation)  # another device, while the phone is away
    try:
        second_ack, _ = await laptop.turn("second from the laptop")
        third_ack, _ = await laptop.turn("third from the laptop")
    finally:
        await laptop.close()
    archived(mongo_db, conversation, 6)  # the persister archives user messages and replies apart

    phone = await Socket.open(worker.ws, conversation, last_message_id=last_seen)
    try:
        resume = await phone.recv()
        assert resume == {
            "type": "resume", "last_message_id": last_seen, "found": True, "count": 4, "truncated": False,
        }
        missed = [await phone.recv() for _ in range(4)]
        fourth_ack, fourth_reply = await phone.turn("fourth from the phone")
        await asyncio.sleep(1.0)  # room for anything that would come twice
        await phone.drain()
    finally:
        await phone.close()

    assert messages(missed) == [
        ("user", "second from the laptop"),
        ("assistant", "You said: second from the laptop"),
        ("user", "third from the laptop"),
        ("assistant", "You said: third from the laptop"),
    ]
    assert [f["message_id"] for f in missed[::2]] == [second_ack["event_id"], third_ack["event_id"]]
    assert [f["in_reply_to"] for f in missed[1::2]] == [second_ack["event_id"], third_ack["event_id"]]
    assert messages(phone.frames[6:]) == [("assistant", "You said: fourth from the phone")]
    finals = [f["message_id"] for f in phone.frames if f["type"] == "message"]
    assert len(finals) == len(set(finals)) == 5
    assert first_reply["message_id"] not in finals
    after_ack = phone.frames[phone.frames.index(fourth_ack) + 1]
    assert after_ack == {"type": "typing", "state": "started", "in_reply_to": fourth_ack["event_id"]}
    assert fourth_reply["in_reply_to"] == fourth_ack["event_id"]


async def test_a_signed_in_user_is_the_sender_of_their_messages(worker, mongo_db):
    application_id = f"signed-{uuid.uuid4().hex[:8]}"
    secret = "e2e-secret-" + uuid.uuid4().hex
    mongo_db.applications.insert_one(
        {"_id": application_id, "chatbot_id": "demo", "allow_anonymous": False, "secret": secret}
    )
    conversation = f"signed-{uuid.uuid4().hex[:10]}"
    token = make_user_token(secret, application_id, "user-7", ttl_s=60)

    refused = await websockets.connect(worker.ws, open_timeout=10)
    try:
        await refused.send(json.dumps({"type": "hello", "application_id": application_id, "conversation_id": conversation}))
        assert json.loads(await asyncio.wait_for(refused.recv(), 10))["code"] == "unauthorized"
        await asyncio.wait_for(refused.wait_closed(), 10)
        assert refused.close_code == 4401
    finally:
        await refused.close()

    client = await Socket.open(worker.ws, conversation, application_id, token=token)
    try:
        _, reply = await client.turn("hello as user-7")
    finally:
        await client.close()
    assert reply["text"] == "You said: hello as user-7"
    [user] = [d for d in archived(mongo_db, conversation, 2) if d["role"] == "user"]
    assert (user["sender"], user["signed_in"]) == ("user-7", True)


async def test_an_anonymous_client_cannot_open_a_signed_in_users_conversation(worker, mongo_db):
    application_id = f"mixed-{uuid.uuid4().hex[:8]}"
    secret = "e2e-secret-" + uuid.uuid4().hex
    mongo_db.applications.insert_one(  # signed-in and anonymous clients both welcome
        {"_id": application_id, "chatbot_id": "demo", "allow_anonymous": True, "secret": secret}
    )
    conversation = f"mixed-{uuid.uuid4().hex[:10]}"
    owner = await Socket.open(worker.ws, conversation, application_id,
                              token=make_user_token(secret, application_id, "user-8", ttl_s=60))
    try:
        await owner.turn("my order number is 1234")
    finally:
        await owner.close()
    archived(mongo_db, conversation, 2)  # the user message is archived

    anonymous = await websockets.connect(worker.ws, open_timeout=10)
    try:
        await anonymous.send(json.dumps({
            "type": "hello", "application_id": application_id, "conversation_id": conversation, "history": True,
        }))
        error = json.loads(await asyncio.wait_for(anonymous.recv(), 10))
        assert (error["type"], error["code"]) == ("error", "forbidden_conversation")
    finally:
        await anonymous.close()

    # an anonymous client writing under the user's name does not make a conversation theirs
    planted = f"planted-{uuid.uuid4().hex[:10]}"
    mallory = await Socket.open(worker.ws, planted, application_id)
    try:
        await mallory.send({"type": "message", "id": "m-as-user-8", "text": "posing", "sender": "user-8"})
        ack = await mallory.until(lambda f: f["type"] == "ack")
        await mallory.until(lambda f: f["type"] == "message" and f.get("in_reply_to") == ack["event_id"])
    finally:
        await mallory.close()
    [posing] = [d for d in archived(mongo_db, planted, 2) if d["role"] == "user"]
    assert (posing["sender"], posing["signed_in"]) == ("user-8", False)
    owner = await websockets.connect(worker.ws, open_timeout=10)
    try:
        await owner.send(json.dumps({
            "type": "hello", "application_id": application_id, "conversation_id": planted,
            "token": make_user_token(secret, application_id, "user-8", ttl_s=60),
        }))
        error = json.loads(await asyncio.wait_for(owner.recv(), 10))
        assert (error["type"], error["code"]) == ("error", "forbidden_conversation")
    finally:
        await owner.close()


async def test_the_archive_query_behind_resume(services, mongo_db):
    """Against the real document server: order, roles, replays, other applications, the bound."""
    conversation = f"query-{uuid.uuid4().hex[:10]}"

    def doc(_id: str, role: str, at: float, order: int, **extra: Any) -> dict[str, Any]:
        return {"_id": f"{conversation}-{_id}", "application_id": "demo", "conversation_id": conversation,
                "role": role, "created_at": at, "order": order, "replay_id": None, **extra}

    mongo_db.messages.insert_many([
        doc("u1", "user", 1.0, 0), doc("a1", "assistant", 1.0, 3),
        doc("u2", "user", 2.0, 0), doc("c2", "tool_call", 2.0, 1), doc("t2", "tool", 2.0, 2),
        doc("a2", "assistant", 2.0, 3),
        doc("x2", "assistant", 2.5, 3, replay_id="some-replay"),
        doc("u3", "user", 3.0, 0), doc("a3", "assistant", 3.0, 3),
        {**doc("o1", "user", 4.0, 0), "application_id": "another-app"},
    ])
    store = DocumentStore(services["documents"].url, mongo_db.name)
    try:
        async def ids(after: str | None, limit: int = 200) -> tuple[list[str], bool, bool]:
            docs, found, truncated = await store.messages_after(
                "demo", conversation, after, roles=("user", "assistant"), limit=limit
            )
            return [d["_id"].removeprefix(f"{conversation}-") for d in docs], found, truncated

        assert await ids(f"{conversation}-a1") == (["u2", "a2", "u3", "a3"], True, False)
        assert await ids(f"{conversation}-t2") == (["a2", "u3", "a3"], True, False)
        assert await ids(f"{conversation}-a3") == ([], True, False)
        assert await ids("unknown") == (["u1", "a1", "u2", "a2", "u3", "a3"], False, False)
        assert await ids(f"{conversation}-o1") == (["u1", "a1", "u2", "a2", "u3", "a3"], False, False)
        assert await ids(f"{conversation}-u1", limit=2) == (["u3", "a3"], True, True)
    finally:
        await store.close()
