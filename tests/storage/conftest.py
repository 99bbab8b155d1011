"""An S3 API for the storage tests: moto in server mode, over real HTTP on a free port."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from parley.storage.files import S3FileStore
from tests.support.net import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing-secret"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_factory(moto_endpoint: str) -> Callable[..., S3FileStore]:
    def make(bucket: str | None = None, **options: Any) -> S3FileStore:
        settings: dict[str, Any] = {
            "bucket": bucket or f"parley-{uuid.uuid4().hex[:12]}",
            "region": "us-east-1",
            "endpoint_url": moto_endpoint,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "timeout_s": 5.0,
            "max_attempts": 2,
        }
        settings.update(options)
        return S3FileStore(**settings)

    return make


@pytest.fixture
async def s3_store(s3_factory: Callable[..., S3FileStore]) -> AsyncIterator[S3FileStore]:
    store = s3_factory()
    await store.start()
    try:
        yield store
    finally:
        await store.close()
