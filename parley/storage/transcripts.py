"""The console's reads of the archive and the handoff records, in MongoDB.

- ``ConversationIndex.page``: an application's conversations, newest first, one row each (last
  message, its time, the sender), found by conversation id, sender or message text; built from
  the ``messages`` collection (the archive) with one aggregation per page.
- ``ConversationIndex.transcript``: one conversation's archived messages, oldest first.
- The ``handoffs`` collection: one record per conversation an operator holds now
  (``_id`` = conversation key). It is the API's view of a handoff; the processor's own state
  (``conversations`` table) is what decides whether the model answers
  (``parley.streams.handoff``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING

from parley.records import conversation_key

__all__ = ["ConversationIndex", "ConversationRow", "SHOWN_ROLES"]

#: Roles of a conversation's list row (what the user and the answerer said).
SHOWN_ROLES = ("user", "assistant", "operator")
#: Conversations a text search may match at most (then the newest of them are listed).
MAX_MATCHES = 5000


@dataclass(frozen=True)
class ConversationRow:
    conversation_id: str
    sender: str
    last_message_at: float
    last_text: str


class ConversationIndex:
    def __init__(self, database: Any) -> None:
        self.messages = database["messages"]
        self.handoffs = database["handoffs"]
        self.deliveries = database["deliveries"]

    async def start(self) -> None:
        await self.messages.create_index([("application_id", ASCENDING), ("created_at", DESCENDING)])

    async def page(
        self, application_id: str, *, query: str, limit: int, after: tuple[float, str] | None
    ) -> tuple[list[ConversationRow], bool]:
        """Up to ``limit`` conversations, newest last message first, those after the ``after``
        row (its ``last_message_at`` and id); and whether more follow."""
        match: dict[str, Any] = {"application_id": application_id, "role": {"$in": list(SHOWN_ROLES)}, "replay_id": None}
        if query:
            ids = await self._matching(application_id, query)
            if not ids:
                return [], False
            match["conversation_id"] = {"$in": ids}
        pipeline: list[dict[str, Any]] = [
            {"$match": match},
            {"$sort": {"created_at": -1}},
            {"$group": {
                "_id": "$conversation_id", "last_message_at": {"$first": "$created_at"},
                "last_text": {"$first": "$text"}, "sender": {"$max": "$sender"},
            }},
        ]
        if after is not None:
            at, conversation_id = after
            pipeline.append({"$match": {"$or": [
                {"last_message_at": {"$lt": at}}, {"last_message_at": at, "_id": {"$lt": conversation_id}},
            ]}})
        pipeline += [{"$sort": {"last_message_at": -1, "_id": -1}}, {"$limit": limit + 1}]
        cursor = await self.messages.aggregate(pipeline)
        docs = [doc async for doc in cursor]
        rows = [
            ConversationRow(
                conversation_id=str(doc["_id"]), sender=str(doc.get("sender") or ""),
                last_message_at=float(doc.get("last_message_at") or 0.0), last_text=str(doc.get("last_text") or ""),
            )
            for doc in docs[:limit]
        ]
        return rows, len(docs) > limit

    async def _matching(self, application_id: str, query: str) -> list[str]:
        """Conversations whose id, a sender or a message's text contains ``query`` (any case)."""
        pattern = {"$regex": re.escape(query), "$options": "i"}
        found = await self.messages.distinct(
            "conversation_id",
            {"application_id": application_id, "$or": [{"conversation_id": pattern}, {"sender": pattern}, {"text": pattern}]},
        )
        return [str(c) for c in found][:MAX_MATCHES]

    async def transcript(self, application_id: str, conversation_id: str, *, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """The conversation's archived messages, oldest first: its last ``limit``, and whether
        older ones were left out."""
        newest_first = [("created_at", DESCENDING), ("order", DESCENDING), ("_id", DESCENDING)]
        cursor = self.messages.find({"application_id": application_id, "conversation_id": conversation_id})
        docs = [doc async for doc in cursor.sort(newest_first).limit(limit + 1)]
        shown = list(reversed(docs[:limit]))
        await self._with_deliveries(shown)
        return shown, len(docs) > limit

    async def _with_deliveries(self, docs: list[dict[str, Any]]) -> None:
        """Set ``delivered_at`` on the replies a platform or callback has taken (their marks are
        records of the ``deliveries`` collection; older archives kept it on the message)."""
        replies = {doc["_id"]: doc for doc in docs if doc.get("role") in ("assistant", "operator") and not doc.get("delivered_at")}
        if not replies:
            return
        async for mark in self.deliveries.find({"_id": {"$in": list(replies)}}):
            replies[mark["_id"]]["delivered_at"] = mark.get("delivered_at")

    async def channel(self, application_id: str, conversation_id: str) -> str | None:
        """The channel of the conversation's latest user message; None if it has none archived."""
        doc = await self.messages.find_one(
            {"application_id": application_id, "conversation_id": conversation_id, "role": "user"},
            {"channel": 1}, sort=[("created_at", DESCENDING)],
        )
        return None if doc is None else str(doc.get("channel") or "websocket")

    # --- handoffs -------------------------------------------------------------------------
    async def handoff(self, application_id: str, conversation_id: str) -> dict[str, Any] | None:
        doc = await self.handoffs.find_one({"_id": conversation_key(application_id, conversation_id)})
        return None if doc is None else _handoff_view(doc)

    async def handoffs_of(self, application_id: str, conversation_ids: list[str]) -> dict[str, dict[str, Any]]:
        keys = [conversation_key(application_id, c) for c in conversation_ids]
        found = self.handoffs.find({"_id": {"$in": keys}})
        return {str(doc["conversation_id"]): _handoff_view(doc) async for doc in found}

    async def hold(self, application_id: str, conversation_id: str, handoff: dict[str, Any]) -> None:
        key = conversation_key(application_id, conversation_id)
        record = {"_id": key, "application_id": application_id, "conversation_id": conversation_id, **handoff}
        await self.handoffs.replace_one({"_id": key}, record, upsert=True)

    async def release(self, application_id: str, conversation_id: str) -> None:
        await self.handoffs.delete_one({"_id": conversation_key(application_id, conversation_id)})


def _handoff_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "operator_id": str(doc.get("operator_id") or ""),
        "operator_name": str(doc.get("operator_name") or ""),
        "since": doc.get("since"),
    }
