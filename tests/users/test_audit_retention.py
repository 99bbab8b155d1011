"""PARLEY_AUDIT_RETENTION_DAYS: entries written with a retention carry their expiry, which the
document store's TTL index removes them by; without one they are kept, and the API never shows
the field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from parley.embedded import EmbeddedServer
from parley.users.audit import AuditLog


@pytest.fixture
async def collection(services: dict[str, EmbeddedServer]) -> Any:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(services["documents"].url)
    name = f"audit{uuid.uuid4().hex[:8]}"
    yield client["parley"][name]
    await client["parley"].drop_collection(name)
    await client.close()


ACTOR = {"user_id": "u1", "email": "ada@example.com", "credential": "session", "role": "owner"}


@pytest.mark.parametrize("days", [0, 30])
async def test_entries_expire_only_with_a_retention(collection: Any, days: int) -> None:
    log = AuditLog(collection, clock=lambda: 1_800_000_000.0, retention_days=days)
    await log.start()
    ttl = [i for i in (await collection.index_information()).values() if i.get("key") == [("expires_at", 1)]]
    assert ttl and ttl[0]["expireAfterSeconds"] == 0
    entry = await log.append(actor=ACTOR, action="update", kind="application", target_id="shop", application_ids=["shop"])
    stored = await collection.find_one({"_id": entry["_id"]})
    if days:
        expected = datetime.fromtimestamp(1_800_000_000 + 30 * 86400, UTC).replace(tzinfo=None)
        assert stored["expires_at"] == expected
    else:
        assert "expires_at" not in stored
    items, _ = await log.list(scope=None, everything=True)
    assert [i["id"] for i in items] == [entry["_id"]] and "expires_at" not in items[0]
