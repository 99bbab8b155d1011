"""The document store: applications, chatbots, the message archive and who each conversation
belongs to, in MongoDB.

Reached through PyMongo's async API. Every write is idempotent: the archive inserts by message
id (the first write wins), so a repeated event never duplicates a message. Archive writes and
conversation claims are batched (``parley.storage.bulk``).
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from parley.storage.bulk import BulkFinder, BulkInserter
from parley.storage.transcripts import ConversationIndex
from parley.storage.uploads import MongoUploadLedger

__all__ = ["ARCHIVE_ROLES", "DocumentCollection", "DocumentStore"]

logger = logging.getLogger(__name__)

#: Roles of archived messages, in the order they happen within a turn.
ARCHIVE_ROLES = ("user", "tool_call", "tool", "assistant")


class DocumentCollection:
    """One collection of admin documents (``applications``, ``chatbots``), keyed by ``_id``:
    what the admin API does with each (list, read, create, compare-and-swap replace, delete)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def list(
        self, *, limit: int, after: str | None = None, only: frozenset[str] | None = None
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` documents ordered by id, those after ``after`` (exclusive), only the
        ids in ``only`` when given."""
        ids: dict[str, Any] = {}
        if after is not None:
            ids["$gt"] = after
        if only is not None:
            ids["$in"] = sorted(only)
        query = {"_id": ids} if ids else {}
        cursor = self.collection.find(query).sort("_id", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def get(self, doc_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": doc_id})

    async def put(self, doc: dict[str, Any]) -> None:
        """Insert or replace, unconditionally."""
        await self.collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def create(self, doc: dict[str, Any]) -> bool:
        """Insert; False (and nothing written) when the id exists."""
        try:
            await self.collection.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def replace(self, doc: dict[str, Any], *, revision: int | None) -> bool:
        """Replace only if the stored ``revision`` is ``revision`` (None: the field is absent)."""
        expected: Any = revision if revision is not None else {"$exists": False}
        result = await self.collection.replace_one({"_id": doc["_id"], "revision": expected}, doc)
        return bool(result.matched_count == 1)

    async def delete(self, doc_id: str) -> bool:
        return (await self.collection.delete_one({"_id": doc_id})).deleted_count == 1


class DocumentStore:
    """Applications, chatbots and the message archive."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        timeout_s: float = 5.0,
        batch_max_docs: int = 500,
        batch_wait_s: float = 0.005,
    ) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=int(timeout_s * 1000),
            connectTimeoutMS=int(timeout_s * 1000),
            timeoutMS=int(timeout_s * 1000),
        )
        self._db = self._client[database]
        self.applications = DocumentCollection(self._db["applications"])
        self.chatbots = DocumentCollection(self._db["chatbots"])
        self.messages = self._db["messages"]
        self.conversations = self._db["conversations"]  # one owner record per conversation
        #: one record per reply a platform or callback has taken: ``{_id: message_id, delivered_at}``
        self.deliveries = self._db["deliveries"]
        #: the console's conversation list, transcripts and handoff records
        self.index = ConversationIndex(self._db)
        # operator accounts (parley.users): accounts, personal API tokens, one-time sign-in
        # links, sessions (when Redis is not configured) and the audit log
        self.users = self._db["users"]
        self.api_tokens = self._db["api_tokens"]
        self.signin_links = self._db["signin_links"]
        self.sessions = self._db["sessions"]
        self.audit = self._db["audit"]
        self._archive = BulkInserter(self.messages, max_docs=batch_max_docs, max_wait_s=batch_wait_s)
        # Delivery marks are inserts of their own records, not updates of the archived replies: on
        # the embedded document server an update by ``_id`` costs ~5x an insert (it rewrites the
        # message's index entries; bench/throughput.py --profile), and a webhook turn's mark cost
        # more than its two archive inserts.
        self._marks = BulkInserter(self.deliveries, max_docs=batch_max_docs, max_wait_s=batch_wait_s)
        self._claims = BulkInserter(self.conversations, max_docs=batch_max_docs, max_wait_s=batch_wait_s)
        self._owner_reads = BulkFinder(self.conversations, max_ids=batch_max_docs)
        self.uploads = MongoUploadLedger(self._db["uploads"], self._db["upload_quota"])

    async def start(self) -> None:
        await self.messages.create_index([("conversation_id", ASCENDING), ("created_at", ASCENDING)])
        await self.uploads.start()
        await self.index.start()

    async def close(self) -> None:
        for writer in (self._archive, self._claims, self._marks):
            try:
                await writer.close()
            except Exception as exc:  # noqa: BLE001 - closing: the callers have their errors
                logger.warning("document store: a batched write failed while closing: %s", exc)
        await self._client.close()

    @property
    def database(self) -> Any:
        """The database itself, for the ops tools' own collections (``dead_letter_actions``)."""
        return self._db

    async def ping(self) -> bool:
        try:
            await self._db.command("ping")
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as "not ready"
            logger.warning("document store ping failed: %s", exc)
            return False
        return True

    # --- applications and chatbots (the admin API uses ``applications`` and ``chatbots``) ----
    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        return await self.applications.get(application_id)

    async def put_application(self, doc: dict[str, Any]) -> None:
        await self.applications.put(doc)

    async def get_chatbot(self, chatbot_id: str) -> dict[str, Any] | None:
        return await self.chatbots.get(chatbot_id)

    async def put_chatbot(self, doc: dict[str, Any]) -> None:
        await self.chatbots.put(doc)

    async def applications_using_chatbot(self, chatbot_id: str, *, limit: int = 20) -> list[str]:
        cursor = (
            self.applications.collection.find({"chatbot_id": chatbot_id}, {"_id": 1})
            .sort("_id", ASCENDING)
            .limit(limit)
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def chatbot_users(self) -> dict[str, set[str]]:
        """Every chatbot id in use and the applications using it."""
        users: dict[str, set[str]] = {}
        async for doc in self.applications.collection.find({}, {"_id": 1, "chatbot_id": 1}):
            if isinstance(doc.get("chatbot_id"), str):
                users.setdefault(doc["chatbot_id"], set()).add(str(doc["_id"]))
        return users

    # --- archive -------------------------------------------------------------------------
    async def archive(self, docs: list[dict[str, Any]]) -> list[bool]:
        """Insert-or-keep by ``_id``: the first write wins, a repeat changes nothing. Returns, per
        document, whether this call wrote it (False: it was archived already). Written in
        batches with other callers' documents; returns once these are on the store."""
        return await self._archive.insert(docs)

    async def was_delivered(self, message_id: str) -> bool:
        if await self.deliveries.find_one({"_id": message_id}, {"_id": 1}) is not None:
            return True
        # archives written before the deliveries collection kept the mark on the message
        doc = await self.messages.find_one({"_id": message_id}, {"delivered_at": 1})
        return bool(doc and doc.get("delivered_at"))

    async def mark_delivered(self, message_id: str, at: float) -> None:
        """Batched with other replies' marks; returns once this one is written (the first
        delivery's time is kept)."""
        await self._marks.insert([{"_id": message_id, "delivered_at": at}])

    async def conversation_messages(
        self, conversation_id: str, *, limit: int = 1000
    ) -> list[dict[str, Any]]:
        cursor = (
            self.messages.find({"conversation_id": conversation_id})
            .sort([("created_at", ASCENDING), ("order", ASCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]

    # --- websocket resume ------------------------------------------------------------------
    async def messages_after(
        self,
        application_id: str,
        conversation_id: str,
        after_id: str | None,
        *,
        roles: tuple[str, ...],
        limit: int,
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        """Archived messages of one conversation that follow ``after_id``, oldest first.

        Returns ``(docs, found, truncated)``. ``found`` says whether ``after_id`` is a message of
        this conversation; when it is not (or is None), the docs are the whole conversation.
        At most ``limit`` docs, the most recent ones: ``truncated`` says older ones were left out.
        Only ``roles``, and only original messages (not those re-created by a replay).
        The order is the archive's: ``created_at``, then ``order`` within a turn, then ``_id``.
        """
        scope: dict[str, Any] = {"application_id": application_id, "conversation_id": conversation_id}
        query: dict[str, Any] = {**scope, "role": {"$in": list(roles)}, "replay_id": None}
        newest_first = [("created_at", DESCENDING), ("order", DESCENDING), ("_id", DESCENDING)]
        anchor = await self.messages.find_one({**scope, "_id": after_id}) if after_id else None
        if anchor is None:
            docs = [doc async for doc in self.messages.find(query).sort(newest_first).limit(limit + 1)]
        else:
            # Two range reads on the (conversation_id, created_at) index rather than one $or,
            # which document servers may answer with a scan (47 ms against 1 ms measured on the
            # embedded one): what came later, and what shares the anchor's instant (its turn).
            at = anchor.get("created_at")
            position = (anchor.get("order", 0), str(anchor["_id"]))
            later = self.messages.find({**query, "created_at": {"$gt": at}}).sort(newest_first).limit(limit + 1)
            docs = [doc async for doc in later]
            same = self.messages.find({**query, "created_at": at})
            docs += [doc async for doc in same if (doc.get("order", 0), str(doc["_id"])) > position]
            docs.sort(key=lambda d: (d.get("created_at"), d.get("order", 0), str(d["_id"])), reverse=True)
            docs = docs[: limit + 1]
        truncated = len(docs) > limit
        return list(reversed(docs[:limit])), anchor is not None, truncated

    async def handoff(self, application_id: str, conversation_id: str) -> dict[str, Any] | None:
        return await self.index.handoff(application_id, conversation_id)

    # --- conversation owners (parley.storage.owners) -------------------------------------------
    async def find_owner_record(self, record_id: str) -> dict[str, Any] | None:
        return await self._owner_reads.find(record_id)

    async def insert_owner_records(self, records: list[dict[str, Any]]) -> list[bool]:
        """Per record, True if it was written, False if the conversation had an owner already."""
        return await self._claims.insert(records)

    async def backfill_owner_records(self) -> int:
        """Once per database: owner records for conversations archived before they existed (a
        signed-in sender's conversation is theirs, any other is anonymous). Returns how many were
        written. Safe to run in several processes at once: the first record written wins."""
        marker = {"_id": "owner-records-v1"}
        migrations = self._db["migrations"]
        if await migrations.find_one(marker) is not None:
            return 0
        owners: dict[str, dict[str, Any]] = {}
        cursor = self.messages.find(
            {"role": "user", "replay_id": None},
            {"application_id": 1, "conversation_id": 1, "sender": 1, "signed_in": 1, "created_at": 1},
        ).sort("created_at", ASCENDING)
        async for doc in cursor:
            app, conv = doc.get("application_id"), doc.get("conversation_id")
            if not isinstance(app, str) or not isinstance(conv, str):
                continue
            record = owners.setdefault(f"{app}/{conv}", {
                "_id": f"{app}/{conv}", "application_id": app, "conversation_id": conv,
                "user_id": None, "signed_in": False, "created_at": doc.get("created_at") or 0.0,
            })
            if doc.get("signed_in") is True and not record["signed_in"]:
                record.update(user_id=str(doc.get("sender") or ""), signed_in=True)
        records = list(owners.values())
        written = sum(await self._claims.insert(records))  # batched by the inserter
        await migrations.replace_one(marker, {**marker, "conversations": len(records)}, upsert=True)
        if records:
            logger.info("document store: owner records written for %d archived conversations", written)
        return written
