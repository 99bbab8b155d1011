"""The upload ledger (``parley.ports.UploadLedger``) on the document store, and the sweep that
deletes uploads no message referenced.

- ``uploads``: one record per stored upload, ``{_id: file_id, application_id, size, created_at,
  referenced_at}``; ``referenced_at`` is set when a message first references the file.
- ``upload_quota``: one counter per application and hour, ``{_id: "<application>/<hour>",
  bytes, hour}``, incremented atomically so that every gateway counts against the same quota.

A client can upload a file and never send the message that uses it (or upload on purpose to fill
the store): the sweep deletes such files ``PARLEY_UPLOAD_UNREFERENCED_TTL_S`` after their upload,
and the hourly quota (``PARLEY_UPLOAD_QUOTA_BYTES_PER_HOUR``) bounds how fast an application's
clients can add them.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from parley.ports import FileStore, FileStoreError, UploadLedger

__all__ = ["MongoUploadLedger", "SWEEP_BATCH", "hour_of", "seconds_to_next_hour", "sweep_unreferenced"]

logger = logging.getLogger(__name__)

#: uploads deleted per sweep round at most (the next round goes on)
SWEEP_BATCH = 500
HOUR_S = 3600


def hour_of(now: float) -> int:
    return int(now // HOUR_S)


def seconds_to_next_hour(now: float) -> float:
    return max(1.0, (hour_of(now) + 1) * HOUR_S - now)


class MongoUploadLedger:
    def __init__(self, uploads: Any, quota: Any) -> None:
        self._uploads = uploads
        self._quota = quota

    async def start(self) -> None:
        await self._uploads.create_index([("referenced_at", ASCENDING), ("created_at", ASCENDING)])

    async def reserve(self, application_id: str, size: int, quota_bytes: int, now: float) -> float:
        hour = hour_of(now)
        counter_id = f"{application_id}/{hour}"
        counted = await self._quota.find_one_and_update(
            {"_id": counter_id},
            {"$inc": {"bytes": size}, "$setOnInsert": {"hour": hour}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if int((counted or {}).get("bytes", size)) <= quota_bytes:
            return 0.0
        await self._quota.update_one({"_id": counter_id}, {"$inc": {"bytes": -size}})
        return seconds_to_next_hour(now)

    async def release(self, application_id: str, size: int, now: float) -> None:
        await self._quota.update_one({"_id": f"{application_id}/{hour_of(now)}"}, {"$inc": {"bytes": -size}})

    async def record(self, file_id: str, application_id: str, size: int, now: float) -> None:
        await self._uploads.update_one(
            {"_id": file_id},
            {"$setOnInsert": {"application_id": application_id, "size": size, "created_at": now, "referenced_at": None}},
            upsert=True,
        )

    async def referenced(self, file_ids: list[str], now: float) -> None:
        if file_ids:
            await self._uploads.update_many(
                {"_id": {"$in": file_ids}, "referenced_at": None}, {"$set": {"referenced_at": now}}
            )

    async def unreferenced_before(self, before: float, limit: int) -> list[str]:
        cursor = (
            self._uploads.find({"referenced_at": None, "created_at": {"$lt": before}}, {"_id": 1})
            .sort("created_at", ASCENDING)
            .limit(limit)
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def forget(self, file_ids: list[str]) -> None:
        if file_ids:
            await self._uploads.delete_many({"_id": {"$in": file_ids}, "referenced_at": None})

    async def prune_quota(self, before: float) -> None:
        await self._quota.delete_many({"hour": {"$lt": hour_of(before)}})


async def sweep_unreferenced(ledger: UploadLedger, files: FileStore, *, ttl_s: float, now: float) -> int:
    """Delete the uploads older than ``ttl_s`` that no message referenced; returns how many.

    A file is deleted before its record, so a failure part way leaves records whose files are
    gone (deleted again, harmlessly, next time), never files nobody would delete."""
    expired = await ledger.unreferenced_before(now - ttl_s, SWEEP_BATCH)
    deleted: list[str] = []
    for file_id in expired:
        try:
            await files.delete(file_id)
        except (FileStoreError, ValueError) as exc:
            logger.warning("could not delete the unreferenced upload %s: %s", file_id, exc)
            continue
        deleted.append(file_id)
    await ledger.forget(deleted)
    await ledger.prune_quota(now - 2 * HOUR_S)
    if deleted:
        logger.info("deleted %d uploads no message referenced within %ss", len(deleted), f"{ttl_s:g}")
    return len(deleted)
