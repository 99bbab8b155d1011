"""The document store: applications, chatbots and the message archive, in MongoDB.

Reached through PyMongo's async API. Every write is idempotent: the archive upserts by
message id, so a repeated event never duplicates a message.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient

__all__ = ["DocumentStore", "ARCHIVE_ROLES"]

logger = logging.getLogger(__name__)

#: Roles of archived messages, in the order they happen within a turn.
ARCHIVE_ROLES = ("user", "tool_call", "tool", "assistant")


class DocumentStore:
    """Applications, chatbots and the message archive."""

    def __init__(self, url: str, database: str, *, timeout_s: float = 5.0) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url,
            serverSelectionTimeoutMS=int(timeout_s * 1000),
            connectTimeoutMS=int(timeout_s * 1000),
            timeoutMS=int(timeout_s * 1000),
        )
        self._db = self._client[database]
        self.applications = self._db["applications"]
        self.chatbots = self._db["chatbots"]
        self.messages = self._db["messages"]

    async def start(self) -> None:
        await self.messages.create_index([("conversation_id", ASCENDING), ("created_at", ASCENDING)])

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> bool:
        try:
            await self._db.command("ping")
        except Exception as exc:  # noqa: BLE001 - readiness reports any failure as "not ready"
            logger.warning("document store ping failed: %s", exc)
            return False
        return True

    # --- applications and chatbots -------------------------------------------------------
    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        return await self.applications.find_one({"_id": application_id})

    async def put_application(self, doc: dict[str, Any]) -> None:
        await self.applications.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def get_chatbot(self, chatbot_id: str) -> dict[str, Any] | None:
        return await self.chatbots.find_one({"_id": chatbot_id})

    async def put_chatbot(self, doc: dict[str, Any]) -> None:
        await self.chatbots.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    # --- archive -------------------------------------------------------------------------
    async def archive(self, doc: dict[str, Any]) -> None:
        """Insert-or-keep by ``_id``: the first write wins, a repeat changes nothing."""
        await self.messages.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    async def conversation_messages(
        self, conversation_id: str, *, limit: int = 1000
    ) -> list[dict[str, Any]]:
        cursor = (
            self.messages.find({"conversation_id": conversation_id})
            .sort([("created_at", ASCENDING), ("order", ASCENDING)])
            .limit(limit)
        )
        return [doc async for doc in cursor]
