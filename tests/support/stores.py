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


class MemoryUploadLedger:
    """``parley.ports.UploadLedger`` in memory, with the Mongo ledger's semantics."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, int], int] = {}
        self.records: dict[str, dict[str, Any]] = {}

    async def reserve(self, application_id: str, size: int, quota_bytes: int, now: float) -> float:
        from parley.storage.uploads import hour_of, seconds_to_next_hour

        key = (application_id, hour_of(now))
        if self.counters.get(key, 0) + size > quota_bytes:
            return seconds_to_next_hour(now)
        self.counters[key] = self.counters.get(key, 0) + size
        return 0.0

    async def release(self, application_id: str, size: int, now: float) -> None:
        from parley.storage.uploads import hour_of

        key = (application_id, hour_of(now))
        self.counters[key] = self.counters.get(key, 0) - size

    async def record(self, file_id: str, application_id: str, size: int, now: float) -> None:
        self.records.setdefault(
            file_id, {"application_id": application_id, "size": size, "created_at": now, "referenced_at": None}
        )

    async def referenced(self, file_ids: list[str], now: float) -> None:
        for file_id in file_ids:
            record = self.records.get(file_id)
            if record is not None and record["referenced_at"] is None:
                record["referenced_at"] = now

    async def unreferenced_before(self, before: float, limit: int) -> list[str]:
        found = sorted(
            (r["created_at"], fid) for fid, r in self.records.items()
            if r["referenced_at"] is None and r["created_at"] < before
        )
        return [fid for _, fid in found[:limit]]

    async def forget(self, file_ids: list[str]) -> None:
        for file_id in file_ids:
            if self.records.get(file_id, {}).get("referenced_at", 0) is None:
                del self.records[file_id]

    async def prune_quota(self, before: float) -> None:
        from parley.storage.uploads import hour_of

        for key in [k for k in self.counters if k[1] < hour_of(before)]:
            del self.counters[key]
