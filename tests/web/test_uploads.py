"""Uploads and local file links on the real aiohttp app, with a LocalFileStore in tmp_path."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from parley.attachments import MAX_ATTACHMENTS
from parley.config.models import ApplicationConfig, ChatbotConfig
from parley.filetypes import sniff
from parley.settings import Settings
from parley.storage.files import KEY_PATTERN, FileStoreError, LocalFileStore
from parley.validation import InputError
from parley.web.app import create_web_app
from parley.web.auth import make_user_token
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress
from parley.web.uploads import _MIN_READ, _read_part, resolve_attachments
from tests.support.stores import MemoryUploadLedger
from tests.support.webdeps import web_deps

LIMIT = 64 * 1024
SECRET = "app-secret"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100)
GIF = b"GIF89a" + bytes(50)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(50)
PDF = b"%PDF-1.7\n" + bytes(50)
LEDGER = MemoryUploadLedger()
ClientFactory = Callable[[web.Application], Awaitable[TestClient]]

APPLICATIONS = {
    "demo": ({}, ApplicationConfig("demo", None, ChatbotConfig())),
    "secured": ({"secret": SECRET}, ApplicationConfig("secured", None, ChatbotConfig())),
    "members": ({}, ApplicationConfig("members", None, ChatbotConfig(), allow_anonymous=False)),
    "web-only": ({}, ApplicationConfig("web-only", None, ChatbotConfig(), allowed_origins=("https://chat.example",))),
}


class Configs:
    async def application_document(self, application_id: str) -> dict[str, Any] | None:
        return await Documents().get_application(application_id)

    async def application(self, application_id: str) -> ApplicationConfig | None:
        entry = APPLICATIONS.get(application_id)
        return entry[1] if entry else None


class Documents:
    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        entry = APPLICATIONS.get(application_id)
        return {"_id": application_id, **entry[0]} if entry else None



def make_deps(files: Any, uploads: MemoryUploadLedger | None = None) -> WebDeps:
    return web_deps(configs=Configs(), files=files, uploads=uploads or MemoryUploadLedger())


class BrokenStore(LocalFileStore):
    async def put(self, *args: Any, **kwargs: Any) -> int:
        raise FileStoreError("S3 put_object failed: connection refused")

    async def stat(self, key: str) -> Any:
        raise FileStoreError("S3 head_object failed: connection refused")


async def ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


async def never_produce(key: str, value: bytes) -> None:
    raise AssertionError("an upload produces nothing")


def make_app(files: Any, uploads: MemoryUploadLedger | None = None, **settings: Any) -> web.Application:
    return create_web_app(
        settings=Settings(max_upload_bytes=LIMIT, **settings),
        deps=make_deps(files, uploads),
        ingress=Ingress(never_produce, timeout_s=1),
        readiness=ready,
    )


@pytest.fixture
async def store(tmp_path: Path) -> LocalFileStore:
    store = LocalFileStore(tmp_path / "files", "http://testserver")
    await store.start()
    return store


@pytest.fixture
async def client(aiohttp_client: ClientFactory, store: LocalFileStore) -> TestClient:
    return await aiohttp_client(make_app(store))


def form(data: bytes, content_type: str | None = "image/png", filename: str = "photo.png", **fields: str) -> aiohttp.FormData:
    body = aiohttp.FormData()
    for name, value in fields.items():
        body.add_field(name, value)
    body.add_field("file", data, filename=filename, content_type=content_type)
    return body


async def upload(client: TestClient, body: Any, application_id: str = "demo", **kwargs: Any) -> tuple[int, dict[str, Any]]:
    async with client.post(f"/v1/applications/{application_id}/uploads", data=body, **kwargs) as response:
        return response.status, await response.json()


def local_path(url: str) -> str:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://testserver"
    return f"{parts.path}?{parts.query}"


# --- happy paths ----------------------------------------------------------------------------


async def test_an_image_upload_is_stored_and_its_link_serves_it(client: TestClient, store: LocalFileStore) -> None:
    status, body = await upload(client, form(PNG, filename="C:\\Users\\me\\holiday.png", conversation_id="c-42"))
    assert status == 201, body
    assert set(body) == {"file_id", "content_type", "size", "name", "url"}
    assert (body["content_type"], body["size"], body["name"]) == ("image/png", len(PNG), "holiday.png")
    match = KEY_PATTERN.match(body["file_id"])
    assert match and match["application_id"] == "demo"
    assert re.fullmatch(rf"demo/{time.gmtime().tm_year}/\d\d/[0-9a-f]{{32}}\.png", body["file_id"])
    info = await store.stat(body["file_id"])
    assert info is not None and info.metadata["conversation_id"] == "c-42"

    async with client.get(local_path(body["url"])) as response:
        assert response.status == 200
        assert await response.read() == PNG
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"].startswith("inline")


@pytest.mark.parametrize(
    ("data", "declared", "stored"),
    [
        (JPEG, "image/jpeg", "image/jpeg"),
        (GIF, "image/gif", "image/gif"),
        (WEBP, "image/webp", "image/webp"),
        (PDF, "application/pdf", "application/pdf"),
        ("héllo\n".encode(), "text/plain; charset=utf-8", "text/plain"),
        (PNG, "application/octet-stream", "image/png"),  # a generic type: the sniffed one
        (PNG, None, "image/png"),
    ],
)
async def test_every_allowed_type_is_accepted(client: TestClient, data: bytes, declared: str | None, stored: str) -> None:
    status, body = await upload(client, form(data, declared, filename="f"))
    assert status == 201, body
    assert body["content_type"] == stored and body["size"] == len(data)


async def test_a_pdf_link_downloads_as_an_attachment(client: TestClient) -> None:
    _, body = await upload(client, form(PDF, "application/pdf", filename="report ü.pdf"))
    async with client.get(local_path(body["url"])) as response:
        assert response.status == 200 and await response.read() == PDF
        assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''report%20%C3%BC.pdf"


# --- size limit -----------------------------------------------------------------------------


async def test_a_file_at_the_limit_is_accepted(client: TestClient) -> None:
    data = PNG + bytes(LIMIT - len(PNG))
    status, body = await upload(client, form(data))
    assert (status, body["size"]) == (201, LIMIT)


async def test_a_file_over_the_limit_is_refused_while_it_streams(client: TestClient) -> None:
    """The client sends far more than the limit, pausing once it has sent a little more than
    the limit: the 413 must arrive during that pause, so the server neither waited for nor read
    the rest (a server reading the whole body would never answer and the pause would time out)."""
    boundary = "parley-test-boundary"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + PNG
    chunk = bytes(16 * 1024)
    answered = asyncio.Event()
    sent_by_then: list[int] = []
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield head
        while sent < LIMIT * 20:
            if sent > LIMIT + 4 * len(chunk):
                await asyncio.wait_for(answered.wait(), 10)
                return
            yield chunk
            sent += len(chunk)

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    async with client.post("/v1/applications/demo/uploads", data=body(), headers=headers) as response:
        sent_by_then.append(sent)
        answered.set()
        assert response.status == 413
        assert response.headers.get("Connection", "").lower() == "close"
        error = await response.json()
    assert error["type"] == "error" and error["code"] == "too_large"
    assert str(LIMIT) in error["message"]
    assert sent_by_then[0] <= LIMIT + 5 * len(chunk) < LIMIT * 20


async def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(client: TestClient) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            b"POST /v1/applications/demo/uploads HTTP/1.1\r\nHost: test\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000000\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        assert status_line.split()[1] == b"413"
    finally:
        writer.close()


class CountingPart:
    """Stands for a multipart part of ``total`` bytes and counts what is read from it."""

    def __init__(self, total: int) -> None:
        self.remaining = total
        self.read = 0

    async def read_chunk(self, size: int) -> bytes:
        n = min(size, self.remaining)
        self.remaining -= n
        self.read += n
        return b"x" * n


async def test_a_part_is_never_read_much_past_the_limit() -> None:
    part = CountingPart(10 * 1024 * 1024)
    too_large = InputError("too_large", "too large", status=413)
    with pytest.raises(InputError) as raised:
        await _read_part(part, 100_000, too_large)  # type: ignore[arg-type]
    assert raised.value is too_large
    assert 100_000 < part.read <= 100_000 + _MIN_READ
    exact = CountingPart(100_000)
    assert len(await _read_part(exact, 100_000, too_large)) == 100_000  # type: ignore[arg-type]


# --- types ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "declared", "code"),
    [
        (b"PK\x03\x04zip", "application/zip", "unsupported_type"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", "unsupported_type"),
        (b"MZ\x90\x00", "application/octet-stream", "unsupported_type"),
        (b"#!/bin/sh\n", None, "unsupported_type"),
        (JPEG, "image/png", "type_mismatch"),
        (b"<html><script>alert(1)</script>", "image/png", "type_mismatch"),
        (b"just text", "application/pdf", "type_mismatch"),
        (PNG, "text/plain", "type_mismatch"),
        (b"\xff\xfe\x00b\x00i\x00n", "text/plain", "type_mismatch"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "image/webp", "type_mismatch"),
    ],
)
async def test_a_type_that_is_not_allowed_or_not_true_is_415(
    client: TestClient, store: LocalFileStore, data: bytes, declared: str | None, code: str
) -> None:
    status, body = await upload(client, form(data, declared))
    assert (status, body["type"], body["code"]) == (415, "error", code), body
    assert body["message"]
    assert not any(p.is_file() for p in store.root.rglob("*")), "nothing is stored"


async def test_the_allow_list_is_a_setting(aiohttp_client: ClientFactory, store: LocalFileStore) -> None:
    client = await aiohttp_client(make_app(store, upload_allowed_types="image/png"))
    assert (await upload(client, form(PNG)))[0] == 201
    status, body = await upload(client, form(PDF, "application/pdf"))
    assert (status, body["code"]) == (415, "unsupported_type")
    assert "image/png" in body["message"]


def test_sniffing() -> None:
    assert [sniff(d) for d in (PNG, JPEG, GIF, WEBP, PDF, b"", b"RIFF1234WAVE")] == [
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", None, None,
    ]


# --- refusals -------------------------------------------------------------------------------


async def test_an_unknown_application_is_404(client: TestClient) -> None:
    status, body = await upload(client, form(PNG), application_id="nope")
    assert (status, body["code"]) == (404, "unknown_application")


@pytest.mark.parametrize(
    ("make_body", "headers", "status", "code"),
    [
        (lambda: b'{"file": "x"}', {"Content-Type": "application/json"}, 415, "not_multipart"),
        (lambda: aiohttp.FormData({"conversation_id": "c1"}, default_to_multipart=True), None, 400, "missing_file"),
        (lambda: form(b""), None, 400, "empty_file"),
        (lambda: form(PNG, note="hi"), None, 400, "invalid_multipart"),
        (lambda: form(PNG, conversation_id="bad id!"), None, 400, "invalid_field"),
        (lambda: form(PNG, conversation_id="c" * 300), None, 400, "invalid_field"),
        (
            lambda: b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" + PNG,
            {"Content-Type": "multipart/form-data; boundary=b"},
            400,
            "invalid_multipart",
        ),
    ],
)
async def test_a_malformed_upload_is_400(
    client: TestClient, make_body: Callable[[], Any], headers: dict[str, str] | None, status: int, code: str
) -> None:
    got, body = await upload(client, make_body(), headers=headers)
    assert (got, body["type"], body["code"]) == (status, "error", code), body


async def test_two_files_are_refused(client: TestClient) -> None:
    body = form(PNG)
    body.add_field("file", PNG, filename="again.png", content_type="image/png")
    status, error = await upload(client, body)
    assert (status, error["code"]) == (400, "invalid_multipart")


async def test_an_application_with_a_secret_needs_a_user_token(client: TestClient, store: LocalFileStore) -> None:
    status, body = await upload(client, form(PNG), application_id="secured")
    assert (status, body["code"]) == (401, "unauthorized")
    async with client.post("/v1/applications/secured/uploads", data=form(PNG)) as response:
        assert response.headers["WWW-Authenticate"] == "Bearer"

    for authorization in (
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer " + make_user_token("wrong-secret", "secured", "alice", 60),
        "Bearer " + make_user_token(SECRET, "demo", "alice", 60),  # for another application
        "Bearer " + make_user_token(SECRET, "secured", "alice", 60, now=time.time() - 120),  # expired
    ):
        status, body = await upload(client, form(PNG), application_id="secured", headers={"Authorization": authorization})
        assert (status, body["code"]) == (401, "unauthorized"), authorization

    token = make_user_token(SECRET, "secured", "alice", 60)
    status, body = await upload(client, form(PNG), application_id="secured", headers={"Authorization": f"Bearer {token}"})
    assert status == 201, body
    info = await store.stat(body["file_id"])
    assert info is not None and info.metadata["user"] == "alice"


async def test_an_application_without_anonymous_users_needs_a_token(client: TestClient) -> None:
    status, body = await upload(client, form(PNG), application_id="members")
    assert (status, body["code"]) == (401, "unauthorized")


async def test_a_browser_origin_the_application_does_not_allow_is_403(client: TestClient) -> None:
    status, body = await upload(client, form(PNG), application_id="web-only", headers={"Origin": "https://evil.example"})
    assert (status, body["code"]) == (403, "forbidden_origin")
    status, _ = await upload(client, form(PNG), application_id="web-only", headers={"Origin": "https://chat.example"})
    assert status == 201


async def test_a_store_that_fails_is_503(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    client = await aiohttp_client(make_app(BrokenStore(tmp_path, "http://testserver")))
    status, body = await upload(client, form(PNG))
    assert (status, body["code"]) == (503, "unavailable")


# --- local file links -----------------------------------------------------------------------


async def test_an_expired_or_forged_link_is_403(client: TestClient, store: LocalFileStore) -> None:
    _, body = await upload(client, form(PNG))
    key = body["file_id"]
    expired = int(time.time()) - 1
    forged_sig = "0" * 64
    for query in (
        f"expires={expired}&sig={store.sign(key, expired)}",
        f"expires={int(time.time()) + 60}&sig={forged_sig}",
        f"expires={int(time.time()) + 60}",
        "",
    ):
        async with client.get(f"/v1/files/{key}?{query}") as response:
            assert response.status == 403, query
            assert (await response.json())["code"] == "forbidden"


@pytest.mark.parametrize(
    "key",
    [
        "../secret.txt",
        "demo/2026/01/../../../secret.txt",
        "demo/2026/01/" + "ab" * 16 + ".png.meta.json",
        "demo/2026/01/..%2F..%2F..%2Fsecret.txt",
        "%2e%2e/%2e%2e/secret.txt",
        "demo%2F2026%2F01%2F..%2F..%2F..%2Fsecret.txt",
        "demo/2026/01/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "demo\\..\\..\\secret.txt",
        "/etc/passwd",
    ],
)
async def test_traversal_is_impossible_even_with_a_valid_signature(
    client: TestClient, store: LocalFileStore, tmp_path: Path, key: str
) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    store.root.mkdir(parents=True, exist_ok=True)
    (store.root / "secret.txt").write_text("top secret")
    await store.put("demo/2026/01/" + "ab" * 16 + ".png", PNG, "image/png")
    expires = int(time.time()) + 60
    # Signed as an attacker holding the signing key would, for the raw and the decoded path,
    # and sent as is (encoded=True: the client does not normalise the ``..`` away).
    for signed in {key, unquote(key)}:
        sig = store.sign(signed, expires)
        url = URL(f"http://{client.host}:{client.port}/v1/files/{key}?expires={expires}&sig={sig}", encoded=True)
        async with client.session.get(url) as response:
            assert response.status in (403, 404), (signed, response.status)
            assert b"top secret" not in await response.read()


async def test_links_are_not_served_when_the_store_is_s3(aiohttp_client: ClientFactory) -> None:
    class S3Like:
        pass

    client = await aiohttp_client(make_app(S3Like()))
    async with client.get("/v1/files/demo/2026/01/" + "ab" * 16 + ".png?expires=1&sig=x") as response:
        assert response.status == 404


# --- resolve_attachments --------------------------------------------------------------------


async def test_attachments_resolve_to_references(client: TestClient, store: LocalFileStore) -> None:
    _, png = await upload(client, form(PNG, filename="a.png"))
    _, pdf = await upload(client, form(PDF, "application/pdf", filename="b.pdf"))
    resolved = await resolve_attachments(
        store, LEDGER, "demo", [{"file_id": png["file_id"]}, {"file_id": pdf["file_id"]}, {"file_id": png["file_id"]}]
    )
    assert resolved == [
        {"file_id": png["file_id"], "content_type": "image/png", "size": len(PNG), "name": "a.png"},
        {"file_id": pdf["file_id"], "content_type": "application/pdf", "size": len(PDF), "name": "b.pdf"},
    ]
    assert await resolve_attachments(store, LEDGER, "demo", None) == []
    assert await resolve_attachments(store, LEDGER, "demo", []) == []


async def test_bad_attachments_are_refused(client: TestClient, store: LocalFileStore, tmp_path: Path) -> None:
    _, png = await upload(client, form(PNG))
    _, secured = await upload(
        client, form(PNG), application_id="secured",
        headers={"Authorization": "Bearer " + make_user_token(SECRET, "secured", "bob", 60)},
    )
    cases = [
        ({"file_id": png["file_id"]}, "invalid_field"),
        ([png["file_id"]], "invalid_field"),
        ([{"id": png["file_id"]}], "invalid_field"),
        ([{"file_id": 7}], "invalid_field"),
        ([{"file_id": secured["file_id"]}], "unknown_file"),  # another application's file
        ([{"file_id": "demo/2026/01/" + "0" * 32 + ".png"}], "unknown_file"),
        ([{"file_id": "demo/../secured/x"}], "unknown_file"),
        ([{"file_id": png["file_id"]}] * 2 + [{"file_id": f"demo/2026/01/{i:032x}"} for i in range(MAX_ATTACHMENTS)], "too_many_attachments"),
    ]
    for raw, code in cases:
        with pytest.raises(InputError) as raised:
            await resolve_attachments(store, LEDGER, "demo", raw)
        assert (raised.value.code, raised.value.status) == (code, 400), raw
    with pytest.raises(InputError) as raised:
        await resolve_attachments(BrokenStore(tmp_path, "http://x"), LEDGER, "demo", [{"file_id": png["file_id"]}])
    assert (raised.value.code, raised.value.status) == ("unavailable", 503)


# --- quota and expiry -----------------------------------------------------------------------


async def test_uploads_over_the_hourly_quota_are_429_with_retry_after(aiohttp_client: ClientFactory, store: LocalFileStore) -> None:
    ledger = MemoryUploadLedger()
    client = await aiohttp_client(make_app(store, ledger, upload_quota_bytes_per_hour=2 * len(PNG)))
    for _ in range(2):
        status, _ = await upload(client, form(PNG))
        assert status == 201
    async with client.post("/v1/applications/demo/uploads", data=form(PNG)) as response:
        body = await response.json()
        assert response.status == 429, body
        assert body["code"] == "upload_quota" and "quota" in body["message"]
        assert 1 <= int(response.headers["Retry-After"]) <= 3600
    # another application has its own quota; a refused upload is not kept
    status, _ = await upload(
        client, form(PNG), application_id="secured",
        headers={"Authorization": "Bearer " + make_user_token(SECRET, "secured", "bob", 60)},
    )
    assert status == 201
    assert len(ledger.records) == 3
    assert sum(1 for _ in (store.root).rglob("*.png")) == 3


async def test_a_failed_store_gives_its_quota_back(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    ledger = MemoryUploadLedger()
    client = await aiohttp_client(make_app(BrokenStore(tmp_path, "http://testserver"), ledger, upload_quota_bytes_per_hour=10_000))
    for _ in range(3):
        status, _ = await upload(client, form(PNG))
        assert status == 503
    assert sum(ledger.counters.values()) == 0 and ledger.records == {}


async def test_a_store_that_cannot_count_the_quota_is_503_and_keeps_nothing(aiohttp_client: ClientFactory, store: LocalFileStore) -> None:
    class DownLedger(MemoryUploadLedger):
        async def record(self, *args: Any) -> None:
            raise ConnectionError("document store down")

    client = await aiohttp_client(make_app(store, DownLedger()))
    status, body = await upload(client, form(PNG))
    assert status == 503 and body["code"] == "unavailable"
    assert list(store.root.rglob("*.png")) == []  # a file without its record would never expire


async def test_unreferenced_uploads_expire_and_referenced_ones_stay(aiohttp_client: ClientFactory, store: LocalFileStore) -> None:
    from parley.storage.uploads import sweep_unreferenced

    ledger = MemoryUploadLedger()
    client = await aiohttp_client(make_app(store, ledger))
    _, kept = await upload(client, form(PNG, filename="kept.png"))
    _, dropped = await upload(client, form(PNG, filename="dropped.png"))
    await resolve_attachments(store, ledger, "demo", [{"file_id": kept["file_id"]}])

    assert await sweep_unreferenced(ledger, store, ttl_s=3600, now=time.time()) == 0  # not old enough
    assert await sweep_unreferenced(ledger, store, ttl_s=3600, now=time.time() + 3601) == 1
    assert await store.stat(kept["file_id"]) is not None
    assert await store.stat(dropped["file_id"]) is None
    async with client.get(local_path(dropped["url"])) as response:
        assert response.status == 404
    with pytest.raises(InputError) as refused:
        await resolve_attachments(store, ledger, "demo", [{"file_id": dropped["file_id"]}])
    assert refused.value.code == "unknown_file"
