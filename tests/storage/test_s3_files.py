"""S3FileStore against moto's S3 in server mode, over HTTP, through aiobotocore."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from yarl import URL

from parley.settings import Settings
from parley.storage.files import (
    FileStoreError,
    LocalFileStore,
    S3FileStore,
    file_store_from_settings,
    make_key,
)
from tests.storage.conftest import ACCESS_KEY, SECRET_KEY

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))


async def http_get(url: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as http:
        # encoded=True: send the presigned query exactly as signed
        async with http.get(URL(url, encoded=True)) as response:
            return response.status, await response.read(), response.headers.get("Content-Type", "")


async def test_put_stat_and_get_round_trip(s3_store: S3FileStore) -> None:
    key = make_key("demo", ".png")
    size = await s3_store.put(
        key, PNG, "image/png", name="café ☕.png", metadata={"conversation_id": "c-1", "user": "zoë"}
    )
    assert size == len(PNG)
    info = await s3_store.stat(key)
    assert info is not None
    assert (info.content_type, info.size, info.name) == ("image/png", len(PNG), "café ☕.png")
    assert info.metadata == {"conversation_id": "c-1", "user": "zoë"}
    assert await s3_store.get(key) == PNG


async def test_a_deleted_file_is_gone_and_deleting_again_is_harmless(s3_store: S3FileStore) -> None:
    key = make_key("demo", ".png")
    await s3_store.put(key, PNG, "image/png")
    await s3_store.delete(key)
    assert await s3_store.stat(key) is None
    await s3_store.delete(key)


async def test_a_stream_is_stored_whole(s3_store: S3FileStore) -> None:
    async def chunks():
        for i in range(5):
            yield bytes([i]) * 1000

    key = make_key("demo", ".txt")
    assert await s3_store.put(key, chunks(), "text/plain") == 5000
    assert await s3_store.get(key) == b"".join(bytes([i]) * 1000 for i in range(5))


async def test_a_presigned_url_gets_the_bytes_and_expires_as_asked(s3_store: S3FileStore) -> None:
    key = make_key("demo", ".png")
    await s3_store.put(key, PNG, "image/png")
    url = await s3_store.presigned_url(key, 120)
    status, body, content_type = await http_get(url)
    assert (status, body, content_type) == (200, PNG, "image/png")
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["120"]
    assert "X-Amz-Signature" in query


async def test_missing_files(s3_store: S3FileStore) -> None:
    key = make_key("demo", ".png")
    assert await s3_store.stat(key) is None
    with pytest.raises(FileStoreError):
        await s3_store.get(key)


async def test_the_bucket_is_created_on_start_and_an_existing_one_is_reused(
    s3_factory: Callable[..., S3FileStore],
) -> None:
    store = s3_factory()
    await store.start()
    try:
        # created on start, before any upload: another client sees it
        await store.client.head_bucket(Bucket=store.bucket)
        key = make_key("demo", ".txt")
        await store.put(key, b"first", "text/plain")
    finally:
        await store.close()
    again = s3_factory(bucket=store.bucket)
    await again.start()
    try:
        assert await again.get(key) == b"first", "a restart must not replace the bucket"
    finally:
        await again.close()


async def test_timeouts_and_retries_are_configured(s3_factory: Callable[..., S3FileStore]) -> None:
    store = s3_factory(timeout_s=1.5, max_attempts=4)
    await store.start()
    try:
        config = store.client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (1.5, 1.5)
        assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    finally:
        await store.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_an_s3_that_does_not_answer_fails_in_bounded_time(silent_port: int) -> None:
    store = S3FileStore(
        bucket="never-answers", region="us-east-1", endpoint_url=f"http://127.0.0.1:{silent_port}",
        access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, timeout_s=0.3, max_attempts=2,
    )
    started = time.monotonic()
    await store.start()  # an unreachable S3 at start is logged, not fatal
    try:
        with pytest.raises(FileStoreError):
            await asyncio.wait_for(store.put(make_key("demo", ".txt"), b"x", "text/plain"), 30)
    finally:
        await store.close()
    assert time.monotonic() - started < store.call_deadline_s * 2 + 2


def test_the_backend_follows_the_settings(tmp_path) -> None:
    local = file_store_from_settings(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalFileStore) and local.root == tmp_path / "files"
    s3 = file_store_from_settings(Settings(data_dir=tmp_path, s3_endpoint_url="http://minio:9000", s3_bucket="up"))
    assert isinstance(s3, S3FileStore) and (s3.bucket, s3.endpoint_url) == ("up", "http://minio:9000")
    forced = file_store_from_settings(Settings(data_dir=tmp_path, files_backend="s3"))
    assert isinstance(forced, S3FileStore) and forced.endpoint_url is None
