"""The upload ledger on the real embedded document server: the hourly quota holds under
concurrent uploads, and the sweep deletes only the files no message referenced."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley.embedded import EmbeddedServer
from parley.storage.documents import DocumentStore
from parley.storage.files import LocalFileStore, make_key
from parley.storage.uploads import HOUR_S, sweep_unreferenced


@pytest.fixture
async def store(services: dict[str, EmbeddedServer]) -> AsyncIterator[DocumentStore]:
    documents = DocumentStore(services["documents"].url, f"uploads-{uuid.uuid4().hex[:8]}")
    await documents.start()
    yield documents
    await documents.close()


async def test_concurrent_uploads_never_exceed_the_quota(store: DocumentStore) -> None:
    ledger, now = store.uploads, time.time()
    waits = await asyncio.gather(*(ledger.reserve("shop", 100, 1_000, now) for _ in range(25)))
    assert sum(1 for w in waits if w == 0) == 10  # exactly the quota, across concurrent callers
    assert all(0 < w <= HOUR_S for w in waits if w)
    assert await ledger.reserve("other", 100, 1_000, now) == 0  # every application has its own
    await ledger.release("shop", 100, now)
    assert await ledger.reserve("shop", 100, 1_000, now) == 0  # a released upload frees its bytes
    assert await ledger.reserve("shop", 100, 1_000, now + HOUR_S) == 0  # a new hour, a new quota


async def test_the_sweep_deletes_unreferenced_uploads_only(store: DocumentStore, tmp_path: Path) -> None:
    files = LocalFileStore(tmp_path / "files", "http://testserver")
    ledger, then = store.uploads, time.time() - 2 * HOUR_S
    keys = [make_key("shop", ".txt") for _ in range(3)]
    for key in keys:
        await files.put(key, b"hello", "text/plain", name="a.txt")
        await ledger.record(key, "shop", 5, then)
    await ledger.referenced([keys[0]], then + 10)
    fresh = make_key("shop", ".txt")
    await files.put(fresh, b"new", "text/plain")
    await ledger.record(fresh, "shop", 3, time.time())

    assert await sweep_unreferenced(ledger, files, ttl_s=HOUR_S, now=time.time()) == 2
    assert [await files.stat(k) is not None for k in keys] == [True, False, False]
    assert await files.stat(fresh) is not None  # younger than the TTL
    assert await ledger.unreferenced_before(time.time(), 10) == [fresh]
    assert await sweep_unreferenced(ledger, files, ttl_s=HOUR_S, now=time.time()) == 0  # nothing left to do
