"""What every channel's sending shares: bounded retries, final 4xx, timeouts, secrets kept out
of errors, and splitting long texts."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from parley.channels.base import (
    DeliveryError,
    DeliveryRefused,
    DownloadError,
    SendPolicy,
    accepted_text,
    get_bytes,
    get_json,
    post_json,
    split_text,
)
from tests.channels.conftest import FAST, FakeAPI


async def test_5xx_is_retried_until_it_succeeds(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.script = [(500, {"error": "boom"}, {}), (502, {}, {})]
    answer = await post_json(session, f"{api.base}/x", {"a": 1}, policy=FAST, what="test call")
    assert answer == {"ok": True}
    assert len(api.requests) == 3
    assert all(r["json"] == {"a": 1} for r in api.requests)


async def test_retries_are_bounded(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (503, {"error": "down"}, {})
    with pytest.raises(DeliveryError) as caught:
        await post_json(session, f"{api.base}/x", {"a": 1}, policy=FAST, what="test call")
    assert not isinstance(caught.value, DeliveryRefused)
    assert "test call failed after 3 attempts: HTTP 503" in str(caught.value)
    assert len(api.requests) == FAST.max_attempts


async def test_429_is_retried_after_the_platform_says(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.script = [(429, {"ok": False}, {"Retry-After": "0.1"})]
    await post_json(session, f"{api.base}/x", {"a": 1}, policy=FAST, what="test call")
    assert len(api.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_other_4xx_is_refused_without_retry(api: FakeAPI, session: aiohttp.ClientSession, status: int) -> None:
    api.default = (status, {"error": "no"}, {})
    with pytest.raises(DeliveryRefused, match=f"HTTP {status}"):
        await post_json(session, f"{api.base}/x", {"a": 1}, policy=FAST, what="test call")
    assert len(api.requests) == 1


async def test_a_slow_platform_times_out_and_is_retried(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.delay_s = 0.5
    policy = SendPolicy(timeout_s=0.1, max_attempts=2, base_backoff_s=0.01)
    with pytest.raises(DeliveryError, match="TimeoutError"):
        await post_json(session, f"{api.base}/x", {}, policy=policy, what="test call")
    assert len(api.requests) == 2


async def test_an_unreachable_platform_fails_after_the_attempts(session: aiohttp.ClientSession) -> None:
    from tests.support.net import free_port

    with pytest.raises(DeliveryError, match="after 3 attempts"):
        await post_json(session, f"http://127.0.0.1:{free_port()}/x", {}, policy=FAST, what="test call")


async def test_secrets_never_reach_the_error(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (400, {"description": "bad request for bot123:SECRET"}, {})
    with pytest.raises(DeliveryRefused) as caught:
        await post_json(
            session, f"{api.base}/bot123:SECRET/sendMessage", {}, policy=FAST,
            what="telegram sendMessage", secrets=("123:SECRET",),
        )
    assert "SECRET" not in str(caught.value)
    assert "telegram sendMessage" in str(caught.value)


def test_short_text_is_one_piece() -> None:
    assert split_text("hello", 10) == ["hello"]


def test_long_text_is_cut_at_spaces_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    pieces = split_text(text, 100)
    assert all(len(p) <= 100 for p in pieces)
    assert " ".join(pieces).split() == text.split()
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in pieces)


def test_limit_counts_utf16_units() -> None:
    text = "😀" * 10  # two UTF-16 units each
    pieces = split_text(text, 5)
    assert all(len(p.encode("utf-16-le")) // 2 <= 5 for p in pieces)
    assert "".join(pieces) == text


def test_text_without_spaces_is_cut_hard() -> None:
    text = "x" * 250
    assert split_text(text, 100) == ["x" * 100, "x" * 100, "x" * 50]


# --- fetching users' files ----------------------------------------------------------------------
async def test_a_file_download_retries_5xx_and_returns_the_bytes(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.script = [(503, {"error": "busy"}, {})]
    api.default = (200, {"some": "file"}, {})
    got = await get_bytes(session, f"{api.base}/f", policy=FAST, what="file download", max_bytes=1000)
    assert got.data == b'{"some": "file"}' and got.content_type.startswith("application/json")
    assert len(api.requests) == 2


async def test_a_file_larger_than_the_limit_is_refused(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (200, {"big": "x" * 5000}, {})
    with pytest.raises(DownloadError, match="larger than 1000 bytes"):
        await get_bytes(session, f"{api.base}/f", policy=FAST, what="file download", max_bytes=1000)
    assert len(api.requests) == 1  # not retried


async def test_a_refused_download_fails_at_once_without_the_token(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (404, {"error": "no such file for token-123"}, {})
    with pytest.raises(DownloadError) as caught:
        await get_bytes(session, f"{api.base}/f", policy=FAST, what="file download", max_bytes=1000,
                        secrets=("token-123",))
    assert "file download refused: HTTP 404" in str(caught.value) and "token-123" not in str(caught.value)
    assert len(api.requests) == 1


async def test_a_metadata_answer_that_is_not_an_object_is_an_error(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (200, [1, 2], {})
    with pytest.raises(DownloadError, match="not a JSON object"):
        await get_json(session, f"{api.base}/m", policy=FAST, what="media lookup")


def test_a_message_with_files_may_have_no_text() -> None:
    files = ({"type": "image", "file_id": "x"},)
    assert accepted_text("hi", files, 100) == "hi"
    assert accepted_text(None, files, 100) == ""
    assert accepted_text("   ", files, 100) == ""
    assert accepted_text(None, (), 100) is None
    assert accepted_text("x" * 200, files, 100) is None  # too long is ignored, files or not


async def test_a_file_sent_in_many_pieces_is_read_whole(aiohttp_server, session: aiohttp.ClientSession) -> None:
    body = bytes(range(256)) * 12_000  # ~3 MB, written in 100 kB pieces with pauses

    async def serve(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        response.content_length = len(body)
        await response.prepare(request)
        for start in range(0, len(body), 100_000):
            await response.write(body[start:start + 100_000])
            await asyncio.sleep(0.001)
        return response

    app = web.Application()
    app.router.add_get("/f", serve)
    server = await aiohttp_server(app)
    got = await get_bytes(session, str(server.make_url("/f")), policy=FAST, what="file download", max_bytes=10**7)
    assert got.data == body and got.content_type == "application/pdf"
    with pytest.raises(DownloadError, match="larger than"):
        await get_bytes(session, str(server.make_url("/f")), policy=FAST, what="file download", max_bytes=10**6)
