"""In-memory stand-ins for the document store's parts the web layer uses, with call counts."""

from __future__ import annotations

import asyncio
from typing import Any

from parley.storage.cache import InMemoryCache
from parley.storage.owners import ConversationOwners

__all__ = ["DocumentConfigs", "OwnerRecords", "memory_owners"]


class OwnerRecords:
    """The ``conversations`` collection as a dict; ``fail`` makes every call raise it."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.reads = 0
        self.writes = 0
        self.fail: Exception | None = None

    async def find_owner_record(self, record_id: str) -> dict[str, Any] | None:
        self.reads += 1
        if self.fail is not None:
            raise self.fail
        record = self.records.get(record_id)
        return dict(record) if record is not None else None

    async def insert_owner_records(self, records: list[dict[str, Any]]) -> list[bool]:
        self.writes += 1
        if self.fail is not None:
            raise self.fail
        inserted = []
        for record in records:
            inserted.append(record["_id"] not in self.records)
            self.records.setdefault(record["_id"], dict(record))
        return inserted

    def own(self, application_id: str, conversation_id: str, user_id: str | None) -> None:
        """Record an owner, as a claim by an earlier message would have."""
        record_id = f"{application_id}/{conversation_id}"
        self.records[record_id] = {"_id": record_id, "user_id": user_id, "signed_in": user_id is not None}


def memory_owners(records: OwnerRecords | None = None) -> ConversationOwners:
    return ConversationOwners(records or OwnerRecords(), InMemoryCache())


class DocumentConfigs:
    """``ConfigStore.application_document`` straight from a fake document store (no cache)."""

    def __init__(self, documents: Any) -> None:
        self._documents = documents

    async def application_document(self, application_id: str) -> dict[str, Any] | None:
        return await self._documents.get_application(application_id)
