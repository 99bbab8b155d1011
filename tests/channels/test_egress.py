"""The egress guard at send time: a reply is never POSTed to a private or loopback address in
any spelling, a refusal is final (one attempt, no retry), redirects are not followed, and the
operator's allow-list lets private receivers through. Callbacks carry an idempotency key."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from parley.channels.base import DeliveryRefused, DownloadError, get_bytes
from parley.channels.egress import guarded_session
from parley.channels.generic import GenericChannel
from parley.channels.whatsapp import WhatsAppChannel
from parley.egress import EgressPolicy
from parley.records import ReplyEvent
from tests.channels.conftest import FAST, FakeAPI

CHANNEL = GenericChannel()


def reply(event_id: str = "r-1") -> ReplyEvent:
    return ReplyEvent(
        event_id=event_id, conversation_id="order-1", application_id="shop", created_at=1795596204.4,
        text="It ships today.", channel="generic", in_reply_to="e-1",
    )


async def fake_lookup(host: str, port: int) -> list[str]:
    """A resolver with names of its own: one that resolves to loopback, one to a public address
    and one to both (rebinding within one answer)."""
    names = {"rebind.example": ["127.0.0.1"], "mixed.example": ["93.184.216.34", "127.0.0.1"]}
    if host.rstrip(".") in names:
        return names[host.rstrip(".")]
    raise OSError(f"{host} does not resolve here")


#: every spelling of a destination Parley must not call; {port} is the loopback receiver's
SSRF_URLS = [
    "http://127.0.0.1:{port}/hook",
    "https://127.0.0.1:{port}/hook",
    "https://[::ffff:127.0.0.1]:{port}/hook",
    "https://[::1]:{port}/hook",
    "https://2130706433:{port}/hook",
    "https://0x7f000001:{port}/hook",
    "https://0177.0.0.1:{port}/hook",
    "https://127.1:{port}/hook",
    "https://localhost:{port}/hook",
    "https://LOCALHOST.:{port}/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1/hook",
    "https://192.168.1.1/hook",
    "https://[fe80::1]/hook",
    "https://[fd00::1]/hook",
    "https://0.0.0.0:{port}/hook",
    "https://224.0.0.1/hook",
    "https://[64:ff9b::7f00:1]:{port}/hook",
    "https://rebind.example:{port}/hook",
    "https://mixed.example:{port}/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/",
    "not a url",
    "https://[/hook",
]


@pytest.fixture
async def strict() -> AsyncIterator[aiohttp.ClientSession]:
    """The session of an operator with no allow-list."""
    async with guarded_session(EgressPolicy(lookup=fake_lookup)) as http:
        yield http


@pytest.mark.parametrize("template", SSRF_URLS)
async def test_a_private_destination_is_refused_at_send_once_and_for_good(
    template: str, api: FakeAPI, strict: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    port = api.base.rsplit(":", 1)[1]
    url = template.format(port=port)
    with caplog.at_level(logging.WARNING), pytest.raises(DeliveryRefused) as refused:
        await CHANNEL.send(strict, {"_id": "shop", "callback_url": url}, reply(), FAST)
    assert api.requests == []  # nothing reached the loopback receiver
    assert refused.value.permanent is True  # dead-lettered at once, never retried
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


async def test_the_resolver_refuses_a_name_the_url_check_cannot_see(
    api: FakeAPI, strict: aiohttp.ClientSession
) -> None:
    """A name passes the URL check (it is a name); the connection's resolver sees it resolve to
    loopback and refuses: what was checked is what would be connected to."""
    port = api.base.rsplit(":", 1)[1]
    with pytest.raises(DeliveryRefused, match=r"127\.0\.0\.1"):
        await CHANNEL.send(strict, {"_id": "shop", "callback_url": f"https://rebind.example:{port}/h"}, reply(), FAST)
    assert api.requests == []


async def test_the_allow_list_lets_a_private_receiver_through_keeping_its_host_name(api: FakeAPI) -> None:
    port = api.base.rsplit(":", 1)[1]
    policy = EgressPolicy.from_entries(["rebind.example"], lookup=fake_lookup)
    async with guarded_session(policy) as http:
        await CHANNEL.send(http, {"_id": "shop", "callback_url": f"http://rebind.example:{port}/hook"}, reply(), FAST)
    [request] = api.requests
    assert request["headers"]["Host"] == f"rebind.example:{port}"  # pinned address, same Host


async def test_the_tests_loopback_allow_list_reaches_the_receiver(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    await CHANNEL.send(session, {"_id": "shop", "callback_url": f"{api.base}/hook"}, reply(), FAST)
    assert len(api.requests) == 1


async def test_a_session_without_the_guard_is_refused(api: FakeAPI) -> None:
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(DeliveryRefused, match="egress guard"):
            await CHANNEL.send(plain, {"_id": "shop", "callback_url": f"{api.base}/hook"}, reply(), FAST)
    assert api.requests == []


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_not_followed_and_is_final(
    status: int, api: FakeAPI, session: aiohttp.ClientSession
) -> None:
    """A 3xx to a private address: one POST, no second one to where it points, no retry (a
    redirect loop once made 120 POSTs for one reply)."""
    api.default = (status, {}, {"Location": "http://10.0.0.1/steal"})
    with pytest.raises(DeliveryRefused, match=str(status)):
        await CHANNEL.send(session, {"_id": "shop", "callback_url": f"{api.base}/hook", "secret": "s" * 16}, reply(), FAST)
    assert len(api.requests) == 1


async def test_a_redirect_loop_is_one_post(api: FakeAPI, session: aiohttp.ClientSession) -> None:
    api.default = (307, {}, {"Location": f"{api.base}/hook"})
    with pytest.raises(DeliveryRefused):
        await CHANNEL.send(session, {"_id": "shop", "callback_url": f"{api.base}/hook"}, reply(), FAST)
    assert len(api.requests) == 1


async def test_callbacks_carry_the_message_id_as_idempotency_key_on_every_attempt(
    api: FakeAPI, session: aiohttp.ClientSession
) -> None:
    api.script = [(503, {}, {}), (200, {}, {})]
    await CHANNEL.send(session, {"_id": "shop", "callback_url": f"{api.base}/hook"}, reply("r-42"), FAST)
    assert [r["headers"]["Idempotency-Key"] for r in api.requests] == ["r-42", "r-42"]
    assert all(r["json"]["message_id"] == "r-42" for r in api.requests)


async def test_downloads_are_guarded_too(api: FakeAPI, strict: aiohttp.ClientSession) -> None:
    with pytest.raises(DownloadError, match="egress guard"):
        await get_bytes(strict, f"{api.base}/file", policy=FAST, what="file", max_bytes=100)
    assert api.requests == []


async def test_whatsapp_sends_its_token_only_to_the_platforms_hosts(aiohttp_server: Any) -> None:
    """The media lookup answers with a URL on another host (127.0.0.2, which the operator did
    not allow): the token is not sent there."""
    seen: list[dict[str, str]] = []

    async def lookup(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if request.path == "/media-1":
            return web.json_response({"url": str(other.make_url("/file"))})
        return web.Response(body=b"x")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", lookup)
    api = await aiohttp_server(app)
    other = await aiohttp_server(app, host="127.0.0.2")
    application = {"_id": "shop", "channels": {"whatsapp": {
        "access_token": "wa-token", "api_base": str(api.make_url("")).rstrip("/"),
    }}}
    async with guarded_session(EgressPolicy.from_entries(["127.0.0.1/32"])) as session:
        with pytest.raises(DownloadError, match="token is not sent"):
            await WhatsAppChannel().download(session, application, {"media_id": "media-1"}, max_bytes=100, policy=FAST)
    assert len(seen) == 1  # the lookup only; nothing went to 127.0.0.2
