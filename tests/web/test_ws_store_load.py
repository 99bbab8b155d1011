"""The websocket under load on the document store: who owns a conversation is answered without
the archive (and mostly from the cache), and a store that fails gives `unavailable` frames,
never a dropped socket."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from pymongo.errors import ServerSelectionTimeoutError

from parley.storage.cache import InMemoryCache
from parley.storage.owners import ConversationOwners
from parley.web.keys import DEPS
from tests.support.produced import Produced
from tests.support.stores import OwnerRecords
from tests.web.test_ws_gateway import (  # noqa: F401 - fixtures
    client,
    make_app,
    produced,
    say_hello,
    token_for,
)

DOWN = ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")


async def test_hellos_and_messages_read_no_archive_and_each_conversation_owner_once(
    client: TestClient, produced: Produced
) -> None:
    deps = client.app[DEPS]
    records: OwnerRecords = deps.archive.owner_records

    async def chat(index: int) -> None:
        conversation = f"c-{index % 10}"
        async with client.ws_connect("/ws") as ws:
            assert (await say_hello(ws, conversation_id=conversation))["type"] == "ready"
            await ws.send_json({"type": "message", "id": f"m-{index}", "text": "hi"})
            assert (await ws.receive_json(timeout=5))["type"] == "ack"

    await asyncio.gather(*(chat(i) for i in range(50)))
    assert len(produced.events) == 50
    assert deps.archive.reads == 0, "a hello or a message read the archive"
    # 50 sockets on 10 conversations: one owner read per conversation, and claims only for
    # conversations whose owner the cache did not know yet
    assert records.reads <= 10
    assert records.writes <= 10
    assert len(records.records) == 10
    assert {r["user_id"] for r in records.records.values()} == {None}  # anonymous conversations


async def test_a_hello_while_the_store_is_down_gets_unavailable_and_the_socket_stays(client: TestClient) -> None:
    records: OwnerRecords = client.app[DEPS].archive.owner_records
    records.fail = DOWN
    async with client.ws_connect("/ws") as ws:
        error = await say_hello(ws, conversation_id="c-down")
        assert (error["type"], error["code"]) == ("error", "unavailable")
        assert error["retry_after"] > 0
        assert "connection refused" not in error["message"], "no driver details for clients"
        records.fail = None
        assert (await say_hello(ws, conversation_id="c-down"))["type"] == "ready"
        assert not ws.closed


async def test_a_message_whose_claim_fails_is_not_produced_and_can_be_sent_again(
    client: TestClient, produced: Produced
) -> None:
    records: OwnerRecords = client.app[DEPS].archive.owner_records
    async with client.ws_connect("/ws") as ws:
        assert (await say_hello(ws, conversation_id="c-claim"))["type"] == "ready"
        records.fail = DOWN
        await ws.send_json({"type": "message", "id": "m-1", "text": "hi"})
        error = await ws.receive_json(timeout=5)
        assert (error["type"], error["code"], error["id"]) == ("error", "unavailable", "m-1")
        assert produced.events == []
        records.fail = None
        await ws.send_json({"type": "message", "id": "m-1", "text": "hi"})
        assert (await ws.receive_json(timeout=5))["type"] == "ack"
    assert [e.client_message_id for e in produced.events] == ["m-1"]


async def test_any_failure_in_a_frame_handler_is_an_unavailable_frame(
    client: TestClient, produced: Produced, caplog: Any
) -> None:
    deps = client.app[DEPS]

    class Broken:
        async def owner(self, *args: Any) -> None:
            raise RuntimeError("something nobody expected")

    class BrokenConfigs:
        async def application(self, *args: Any) -> None:
            raise KeyError("a bug of ours")

    deps.owners = Broken()
    async with client.ws_connect("/ws") as ws:
        for _ in range(10):
            error = await say_hello(ws, conversation_id="c-broken")
            assert (error["type"], error["code"]) == ("error", "unavailable")
        deps.configs = BrokenConfigs()  # a failure outside any store call
        for _ in range(3):
            error = await say_hello(ws, conversation_id="c-broken")
            assert (error["type"], error["code"]) == ("error", "unavailable")
            assert error["retry_after"] > 0
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json(timeout=2) == {"type": "pong"}
    assert "Traceback" not in caplog.text
    assert sum("something nobody expected" in r.getMessage() for r in caplog.records) == 1, \
        "ten failures make one log line"
    assert sum("a bug of ours" in r.getMessage() for r in caplog.records) <= 1


async def test_a_claim_made_on_another_gateway_is_enforced_despite_a_stale_cache(
    client: TestClient, produced: Produced
) -> None:
    """Two gateways share the owner records, not their caches: an anonymous socket that said
    hello before alice's first message (on the other gateway) may not write after it."""
    deps = client.app[DEPS]
    records: OwnerRecords = deps.archive.owner_records
    other_gateway = ConversationOwners(records, InMemoryCache())
    async with client.ws_connect("/ws") as anonymous:
        assert (await say_hello(anonymous, "open", "c-race"))["type"] == "ready"  # "nobody" cached
        assert (await other_gateway.claim("open", "c-race", "alice")).user_id == "alice"
        await anonymous.send_json({"type": "message", "id": "m-1", "text": "hi"})
        error = await anonymous.receive_json(timeout=5)
        assert (error["type"], error["code"]) == ("error", "forbidden_conversation")
        await anonymous.send_json({"type": "message", "id": "m-2", "text": "hi again"})
        assert (await anonymous.receive_json(timeout=5))["code"] == "not_ready"
        # a new hello now knows the owner
        assert (await say_hello(anonymous, "open", "c-race"))["code"] == "forbidden_conversation"
        assert (await say_hello(anonymous, "open", "c-race", token=token_for("open", "alice")))["type"] == "ready"
    assert produced.events == []
