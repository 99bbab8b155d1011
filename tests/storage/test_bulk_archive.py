"""Batched writes on the real embedded document server: the archive and conversation claims."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, BulkWriteError

from parley.embedded import EmbeddedServer
from parley.storage.bulk import BulkInserter, BulkWriteFailed
from parley.storage.cache import InMemoryCache
from parley.storage.documents import DocumentStore
from parley.storage.owners import ConversationOwners


@pytest.fixture
async def store(services: dict[str, EmbeddedServer]) -> AsyncIterator[DocumentStore]:
    documents = DocumentStore(services["documents"].url, f"bulk-{uuid.uuid4().hex[:8]}", batch_wait_s=0.02)
    await documents.start()
    yield documents
    await documents.close()


class Counting:
    """A collection that counts the ``insert_many`` calls made on it."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.batches: list[int] = []

    async def insert_many(self, documents: list[dict[str, Any]], *, ordered: bool) -> Any:
        self.batches.append(len(documents))
        return await self.collection.insert_many(documents, ordered=ordered)


async def test_concurrent_writers_share_batches_and_each_returns_once_its_documents_are_stored(
    store: DocumentStore,
) -> None:
    counting = Counting(store.messages)
    inserter = BulkInserter(counting, max_docs=100, max_wait_s=0.02)

    async def writer(index: int) -> None:
        docs = [{"_id": f"m-{index}-{n}", "text": "hi"} for n in range(2)]
        assert await inserter.insert(docs) == [True, True]
        # what the caller acks is on the store when it returns
        assert await store.messages.count_documents({"_id": {"$in": [d["_id"] for d in docs]}}) == 2

    await asyncio.gather(*(writer(i) for i in range(300)))
    assert sum(counting.batches) == 600
    assert len(counting.batches) <= 12, f"600 documents in {len(counting.batches)} round trips"
    assert max(counting.batches) <= 100


async def test_a_repeated_id_is_not_an_error_and_the_first_write_wins(store: DocumentStore) -> None:
    assert await store.archive([{"_id": "r-1", "text": "first"}]) == [True]
    assert await store.archive([{"_id": "r-1", "text": "second"}, {"_id": "r-2", "text": "new"}]) == [False, True]
    assert (await store.messages.find_one({"_id": "r-1"}))["text"] == "first"
    # the same id twice in one batch (two events racing): one write, both callers fine
    results = await asyncio.gather(store.archive([{"_id": "r-3"}]), store.archive([{"_id": "r-3"}]))
    assert sorted(r[0] for r in results) == [False, True]


class Refusing:
    """A collection whose unordered insert refuses documents marked ``bad`` (not duplicates)."""

    async def insert_many(self, documents: list[dict[str, Any]], *, ordered: bool) -> Any:
        assert ordered is False
        errors = [{"index": i, "code": 121, "errmsg": "Document failed validation"}
                  for i, d in enumerate(documents) if d.get("bad")]
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": len(documents) - len(errors)})


class Down:
    async def insert_many(self, documents: list[dict[str, Any]], *, ordered: bool) -> Any:
        raise AutoReconnect("connection refused")


async def test_a_refused_document_fails_only_its_caller() -> None:
    inserter = BulkInserter(Refusing(), max_docs=10, max_wait_s=0.01)
    good, bad = await asyncio.gather(
        inserter.insert([{"_id": "a"}]), inserter.insert([{"_id": "b", "bad": True}]), return_exceptions=True
    )
    assert good == [True]
    assert isinstance(bad, BulkWriteFailed) and "failed validation" in str(bad)


async def test_an_outage_fails_every_caller_of_the_batch() -> None:
    inserter = BulkInserter(Down(), max_docs=10, max_wait_s=0.01)
    results = await asyncio.gather(*(inserter.insert([{"_id": str(i)}]) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, AutoReconnect) for r in results)


async def test_two_gateways_claiming_one_conversation_agree_on_its_owner(store: DocumentStore) -> None:
    gateway_a = ConversationOwners(store, InMemoryCache())
    gateway_b = ConversationOwners(store, InMemoryCache())
    assert await gateway_a.owner("app", "c-1") is None
    owners = await asyncio.gather(gateway_a.claim("app", "c-1", "alice"), gateway_b.claim("app", "c-1", None))
    assert owners[0] == owners[1], "both gateways see the winner"
    assert await store.conversations.count_documents({"_id": "app/c-1"}) == 1
    later = ConversationOwners(store, InMemoryCache())  # a gateway started later
    assert await later.owner("app", "c-1") == owners[0]


async def test_conversations_archived_before_owner_records_get_them_once(store: DocumentStore) -> None:
    def user(conversation: str, n: int, sender: str, signed_in: bool | None) -> dict[str, Any]:
        doc = {"_id": f"{conversation}-{n}", "application_id": "app", "conversation_id": conversation,
               "role": "user", "sender": sender, "created_at": float(n), "replay_id": None}
        if signed_in is not None:
            doc["signed_in"] = signed_in
        return doc

    await store.messages.insert_many([
        user("c-alice", 1, "alice", True), user("c-alice", 2, "alice", True),
        user("c-anon", 1, "bob", False), user("c-old", 1, "carol", None),
    ])
    assert await store.backfill_owner_records() == 3
    owners = ConversationOwners(store, InMemoryCache())
    assert (await owners.owner("app", "c-alice")).user_id == "alice"  # type: ignore[union-attr]
    assert (await owners.owner("app", "c-anon")).user_id is None  # type: ignore[union-attr]
    assert (await owners.owner("app", "c-old")).user_id is None  # type: ignore[union-attr]
    assert await store.backfill_owner_records() == 0, "done once per database"


async def test_delivery_marks_of_concurrent_replies_share_commands_and_each_is_stored_when_it_returns(
    store: DocumentStore,
) -> None:
    counting = Counting(store.deliveries)
    store._marks = BulkInserter(counting, max_docs=100, max_wait_s=0.02)  # the store's own ledger, counted

    async def mark(index: int) -> None:
        await store.mark_delivered(f"reply-{index}", 1000.0 + index)
        assert await store.was_delivered(f"reply-{index}")  # written when the mark returns

    await asyncio.gather(*(mark(i) for i in range(200)))
    assert sum(counting.batches) == 200
    assert len(counting.batches) <= 8, f"200 marks in {len(counting.batches)} commands"
    # a repeat keeps the first delivery's time; the archived reply itself is not rewritten
    await store.mark_delivered("reply-0", 5.0)
    assert (await store.deliveries.find_one({"_id": "reply-0"}))["delivered_at"] == 1000.0
    assert not await store.was_delivered("no-such-reply")
    assert await store.messages.find_one({"_id": "reply-0"}) is None


async def test_a_mark_kept_on_the_message_by_an_earlier_version_still_counts(store: DocumentStore) -> None:
    await store.messages.insert_one({"_id": "old-reply", "role": "assistant", "delivered_at": 3.0})
    assert await store.was_delivered("old-reply")
