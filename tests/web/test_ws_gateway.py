"""The chat websocket's edges, on the real aiohttp app: user tokens, the origin allow-list, rate
limits, the frame size limit, the idle timeout, typing frames and the close on shutdown."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from parley.config.models import ApplicationConfig, ChatbotConfig
from parley.settings import Settings
from parley.storage.bus import InProcessBus
from parley.streams.archive import documents_for_incoming
from parley.web.app import create_web_app
from parley.web.auth import make_user_token
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress
from parley.web.keys import DEPS
from tests.support.produced import Produced
from tests.support.stores import OwnerRecords, memory_owners
from tests.support.webdeps import web_deps

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]

SECRET = "app-secret-0123456789"
# demo: anonymous allowed, no secret; secure: tokens only; open: anonymous allowed and a secret;
# web: only https://chat.example; bot2: its chatbot allows 2 messages a minute.
APPLICATIONS: dict[str, dict[str, Any]] = {
    "demo": {"_id": "demo"},
    "secure": {"_id": "secure", "allow_anonymous": False, "secret": SECRET},
    "open": {"_id": "open", "secret": SECRET},
    "web": {"_id": "web", "allowed_origins": ["https://chat.example"]},
    "bot2": {"_id": "bot2", "rate_limit_per_minute": 2},
}


class Configs:
    async def application_document(self, application_id: str) -> dict[str, Any] | None:
        doc = APPLICATIONS.get(application_id)
        return dict(doc) if doc is not None else None

    async def application(self, application_id: str) -> ApplicationConfig | None:
        doc = APPLICATIONS.get(application_id)
        if doc is None:
            return None
        return ApplicationConfig(
            application_id=application_id,
            callback_url=None,
            chatbot=ChatbotConfig(rate_limit_per_minute=doc.get("rate_limit_per_minute")),
            allow_anonymous=doc.get("allow_anonymous", True),
            allowed_origins=tuple(doc.get("allowed_origins", ())),
        )


class Documents:
    """Applications, and an archive held in a list (the resume tests fill it)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.reads = 0
        self.before_read: Callable[[], Awaitable[None]] | None = None
        self.fail = False
        self.handoffs: dict[tuple[str, str], dict[str, Any]] = {}  # (application, conversation) -> held by

    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        doc = APPLICATIONS.get(application_id)
        return dict(doc) if doc is not None else None

    async def messages_after(
        self, application_id: str, conversation_id: str, after_id: str | None, *, roles: tuple[str, ...], limit: int
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        self.reads += 1
        if self.before_read is not None:
            await self.before_read()
        if self.fail:
            raise ConnectionError("document store down")
        ordered = sorted(
            (m for m in self.messages if (m["application_id"], m["conversation_id"]) == (application_id, conversation_id)),
            key=lambda m: (m["created_at"], m["order"], m["_id"]),
        )
        ids = [m["_id"] for m in ordered]
        found = after_id in ids
        after = ordered[ids.index(after_id) + 1:] if found else ordered
        docs = [m for m in after if m["role"] in roles]
        return docs[-limit:], found, len(docs) > limit

    async def handoff(self, application_id: str, conversation_id: str) -> dict[str, Any] | None:
        return self.handoffs.get((application_id, conversation_id))


def make_deps() -> WebDeps:
    archive = Documents()
    archive.owner_records = OwnerRecords()  # who owns each conversation, read by the tests
    return web_deps(configs=Configs(), archive=archive, owners=memory_owners(archive.owner_records))



async def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


def make_app(produced: Produced, **settings: Any) -> web.Application:
    return create_web_app(
        settings=Settings(max_text_bytes=64, **settings),
        deps=make_deps(),
        ingress=Ingress(produced, timeout_s=1),
        readiness=_ready,
    )


@pytest.fixture
def produced() -> Produced:
    return Produced()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, produced: Produced) -> TestClient:
    return await aiohttp_client(make_app(produced))


def token_for(application_id: str, user_id: str = "user-42", *, secret: str = SECRET, ttl_s: float = 24 * 3600, now: float | None = None) -> str:
    return make_user_token(secret, application_id, user_id, ttl_s, now=now)


async def say_hello(ws: Any, application_id: str = "demo", conversation_id: str = "c1", **fields: Any) -> dict[str, Any]:
    await ws.send_json({"type": "hello", "application_id": application_id, "conversation_id": conversation_id, **fields})
    return await ws.receive_json(timeout=2)


async def closed_with(ws: Any) -> int | None:
    """The close code the server ends the socket with (after any frames still queued)."""
    while True:
        msg = await ws.receive(timeout=2)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code


async def refused(ws: Any, code: str, close_code: int, **hello: Any) -> dict[str, Any]:
    error = await say_hello(ws, **hello)
    assert (error["type"], error["code"]) == ("error", code), error
    assert await closed_with(ws) == close_code
    return error


# --- authentication ----------------------------------------------------------------------------
async def test_a_valid_token_makes_its_user_the_sender(client: TestClient, produced: Produced) -> None:
    async with client.ws_connect("/ws") as ws:
        ready = await say_hello(ws, "secure", token=token_for("secure", "alice"))
        assert ready == {"type": "ready", "application_id": "secure", "conversation_id": "c1", "user_id": "alice"}
        await ws.send_json({"type": "message", "id": "m1", "text": "hi", "sender": "mallory"})
        assert (await ws.receive_json(timeout=2))["type"] == "ack"
    [event] = produced.events
    assert (event.application_id, event.sender) == ("secure", "alice")


async def test_the_token_may_come_as_a_query_parameter(client: TestClient) -> None:
    async with client.ws_connect(f"/ws?token={token_for('secure', 'bob')}") as ws:
        assert (await say_hello(ws, "secure"))["user_id"] == "bob"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (token_for("secure", secret="not-the-secret"), "signature"),
        (token_for("secure")[:-2] + "AA", "signature"),
        (token_for("secure", ttl_s=60, now=time.time() - 120), "expired"),
        (token_for("open"), "not for application 'secure'"),
        ("not-a-token", "base64url"),
        ("", "non-empty"),
        (42, "string"),
        (token_for("secure", ttl_s=10 * 365 * 86_400), "PARLEY_USER_TOKEN_MAX_LIFETIME_S"),
    ],
    ids=["forged", "tampered", "expired", "other-app", "garbage", "empty", "number", "ten-years"],
)
async def test_a_bad_token_is_refused_and_the_socket_closed(
    client: TestClient, produced: Produced, token: Any, reason: str
) -> None:
    async with client.ws_connect("/ws") as ws:
        error = await refused(ws, "unauthorized", 4401, application_id="secure", token=token)
    assert reason in error["message"]
    assert produced.events == []


async def test_a_payload_edited_to_another_user_fails_the_signature(client: TestClient) -> None:
    import base64
    import json

    payload, signature = token_for("secure", "alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + signature
    async with client.ws_connect("/ws") as ws:
        error = await refused(ws, "unauthorized", 4401, application_id="secure", token=forged)
    assert "signature" in error["message"]


async def test_anonymous_clients_only_where_the_application_allows_them(client: TestClient, produced: Produced) -> None:
    async with client.ws_connect("/ws") as ws:
        error = await refused(ws, "unauthorized", 4401, application_id="secure")
    assert "requires a user token" in error["message"]

    async with client.ws_connect("/ws") as ws:
        ready = await say_hello(ws, "open")
        assert (ready["type"], ready["user_id"]) == ("ready", None)
        await ws.send_json({"type": "message", "id": "m1", "text": "hi", "sender": "guest"})
        assert (await ws.receive_json(timeout=2))["type"] == "ack"
    assert [(e.application_id, e.sender) for e in produced.events] == [("open", "guest")]


async def test_a_bad_token_is_refused_even_where_anonymous_clients_are_allowed(client: TestClient) -> None:
    async with client.ws_connect("/ws") as ws:
        await refused(ws, "unauthorized", 4401, application_id="open", token=token_for("open", secret="wrong-secret"))


async def test_an_application_without_a_secret_accepts_no_token(client: TestClient) -> None:
    async with client.ws_connect("/ws") as ws:
        error = await refused(ws, "unauthorized", 4401, application_id="demo", token=token_for("demo"))
    assert "no secret" in error["message"]


async def test_a_signed_in_user_cannot_join_another_users_conversation(client: TestClient) -> None:
    client.app[DEPS].archive.owner_records.own("secure", "c-alice", "alice")  # alice wrote first
    async with client.ws_connect("/ws") as ws:
        error = await say_hello(ws, "secure", "c-alice", token=token_for("secure", "mallory"))
        assert error["code"] == "forbidden_conversation"
        assert (await say_hello(ws, "secure", "c-alice", token=token_for("secure", "alice")))["type"] == "ready"


async def test_an_anonymous_client_cannot_join_a_signed_in_users_conversation(
    client: TestClient, produced: Produced
) -> None:
    # "open" takes both signed-in and anonymous clients
    async with client.ws_connect("/ws") as alice:
        await say_hello(alice, "open", "c-alice", token=token_for("open", "alice"))
        await alice.send_json({"type": "message", "id": "m-1", "text": "my secrets"})
        assert (await alice.receive_json(timeout=2))["type"] == "ack"
    [event] = produced.events
    assert event.signed_in is True and event.sender == "alice"
    client.app[DEPS].archive.messages.extend(documents_for_incoming(event))
    async with client.ws_connect("/ws") as ws:
        error = await say_hello(ws, "open", "c-alice", last_message_id="u-0")
        assert (error["code"], error["type"]) == ("forbidden_conversation", "error")
        assert (await say_hello(ws, "open", "c-mine"))["type"] == "ready", "the socket stays open"
        await ws.send_json({"type": "message", "id": "m-2", "text": "hello", "sender": "alice"})
        assert (await ws.receive_json(timeout=2))["type"] == "ack"
    # a message from an anonymous client naming a sender is not a signed-in one
    assert (produced.events[-1].sender, produced.events[-1].signed_in) == ("alice", False)


@pytest.mark.parametrize("conversation_id", ["telegram:12345", "whatsapp:15551234567", "slack:C0123"])
async def test_platform_conversations_are_not_reachable_over_the_websocket(
    client: TestClient, conversation_id: str
) -> None:
    async with client.ws_connect("/ws") as ws:
        error = await say_hello(ws, "demo", conversation_id)
        assert error["code"] == "forbidden_conversation"
        assert (await say_hello(ws, "demo", "generic-ok:1"))["type"] == "ready", "the socket stays open"


# --- origins -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://chat.example", True),
        ("HTTPS://Chat.Example/", True),
        (None, True),
        ("https://evil.example", False),
        ("http://chat.example", False),
        ("null", False),
    ],
)
async def test_the_origin_allow_list(client: TestClient, origin: str | None, allowed: bool) -> None:
    headers = {"Origin": origin} if origin is not None else {}
    async with client.ws_connect("/ws", headers=headers) as ws:
        if allowed:
            assert (await say_hello(ws, "web"))["type"] == "ready"
        else:
            error = await refused(ws, "forbidden_origin", 4403, application_id="web")
            assert "'web'" in error["message"]


async def test_an_application_without_an_allow_list_takes_any_origin(client: TestClient) -> None:
    async with client.ws_connect("/ws", headers={"Origin": "https://anywhere.example"}) as ws:
        assert (await say_hello(ws, "demo"))["type"] == "ready"


# --- rate limits -------------------------------------------------------------------------------
async def send_message(ws: Any, client_id: str) -> dict[str, Any]:
    await ws.send_json({"type": "message", "id": client_id, "text": "hi"})
    return await ws.receive_json(timeout=2)


async def test_a_connection_over_its_rate_gets_rate_limited_and_nothing_is_produced(
    aiohttp_client: ClientFactory, produced: Produced
) -> None:
    client = await aiohttp_client(make_app(produced, ws_messages_per_minute=6, ws_message_burst=3))
    async with client.ws_connect("/ws") as ws:
        assert (await say_hello(ws))["type"] == "ready"
        for client_id in ("m1", "m2", "m3"):
            assert (await send_message(ws, client_id))["type"] == "ack"
            assert (await ws.receive_json(timeout=2))["type"] == "typing"
        error = await send_message(ws, "m4")
        assert (error["type"], error["code"], error["id"]) == ("error", "rate_limited", "m4")
        assert 5 < error["retry_after"] <= 10  # 6 a minute: one every 10 s
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=2)) == {"type": "pong"}, "pings are not limited; the socket stays open"
        assert (await say_hello(ws, conversation_id="c2"))["type"] == "ready", "hellos have their own bucket"
        assert (await send_message(ws, "m4"))["code"] == "rate_limited"
    assert [e.client_message_id for e in produced.events] == ["m1", "m2", "m3"]

    async with client.ws_connect("/ws") as ws:  # another connection has its own bucket
        await say_hello(ws)
        assert (await send_message(ws, "m4"))["type"] == "ack"


@pytest.mark.parametrize(
    ("application_id", "settings"),
    [("bot2", {}), ("demo", {"ws_app_messages_per_minute": 2})],
    ids=["chatbot-limit", "default-limit"],
)
async def test_an_application_over_its_rate_gets_rate_limited_across_connections(
    aiohttp_client: ClientFactory, produced: Produced, application_id: str, settings: dict[str, Any]
) -> None:
    client = await aiohttp_client(make_app(produced, **settings))
    async with client.ws_connect("/ws") as one, client.ws_connect("/ws") as two:
        await say_hello(one, application_id, "c-one")
        await say_hello(two, application_id, "c-two")
        assert (await send_message(one, "m1"))["type"] == "ack"
        assert (await one.receive_json(timeout=2))["type"] == "typing"
        assert (await send_message(two, "m2"))["type"] == "ack"
        assert (await two.receive_json(timeout=2))["type"] == "typing"
        error = await send_message(one, "m3")
        assert (error["code"], error["id"]) == ("rate_limited", "m3")
        assert 0 < error["retry_after"] <= 30
        async with client.ws_connect("/ws") as three:  # a new connection does not reset it
            await say_hello(three, application_id, "c-three")
            assert (await send_message(three, "m4"))["code"] == "rate_limited"
        # other applications are not affected
        await say_hello(two, "open", "c-two")
        assert (await send_message(two, "m5"))["type"] == "ack"
    assert [e.client_message_id for e in produced.events] == ["m1", "m2", "m5"]


async def test_hello_frames_are_limited_per_connection(aiohttp_client: ClientFactory, produced: Produced) -> None:
    client = await aiohttp_client(make_app(produced, ws_messages_per_minute=1, ws_message_burst=2))
    async with client.ws_connect("/ws") as ws:
        assert (await say_hello(ws, conversation_id="a"))["type"] == "ready"
        assert (await say_hello(ws, conversation_id="b"))["type"] == "ready"
        error = await say_hello(ws, conversation_id="c")
        assert error["code"] == "rate_limited" and error["retry_after"] > 0 and "id" not in error
        assert (await send_message(ws, "m1"))["type"] == "ack", "messages have their own bucket"


# --- frames and the connection's life ----------------------------------------------------------
async def test_an_ack_is_followed_by_a_typing_frame(client: TestClient) -> None:
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws)
        ack = await send_message(ws, "m1")
        typing = await ws.receive_json(timeout=2)
    assert typing == {"type": "typing", "state": "started", "in_reply_to": ack["event_id"]}


async def test_a_frame_over_the_size_limit_closes_the_socket_with_1009(client: TestClient, produced: Produced) -> None:
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws)
        await ws.send_str('{"type": "message", "id": "m1", "text": "%s"}' % ("x" * (64 * 4 + 4096)))
        assert await closed_with(ws) == 1009
    assert produced.events == []


async def test_an_idle_socket_is_closed_but_heartbeats_do_not_keep_it_open(
    aiohttp_client: ClientFactory, produced: Produced
) -> None:
    client = await aiohttp_client(make_app(produced, ws_idle_timeout_s=1.0, ws_heartbeat_s=0.25))
    async with client.ws_connect("/ws") as ws:
        frames: asyncio.Queue[Any] = asyncio.Queue()

        async def read() -> None:  # keeps receiving, so the client answers the server's pings
            while True:
                msg = await ws.receive()
                await frames.put(msg)
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                    return

        reader = asyncio.create_task(read())
        await ws.send_json({"type": "hello", "application_id": "demo", "conversation_id": "c1"})
        assert (await asyncio.wait_for(frames.get(), 2)).json()["type"] == "ready"
        for _ in range(4):  # client frames keep it open past the timeout
            await asyncio.sleep(0.3)
            await ws.send_json({"type": "ping"})
            assert (await asyncio.wait_for(frames.get(), 2)).json() == {"type": "pong"}
        started = time.monotonic()
        error = (await asyncio.wait_for(frames.get(), 5)).json()  # only heartbeats from here on
        assert (error["type"], error["code"]) == ("error", "idle_timeout")
        assert time.monotonic() - started >= 0.9
        assert (await asyncio.wait_for(frames.get(), 2)).type == WSMsgType.CLOSE
        await reader
        assert ws.close_code == 4408


async def test_shutting_the_web_app_down_closes_open_sockets_with_going_away(
    aiohttp_client: ClientFactory, produced: Produced
) -> None:
    client = await aiohttp_client(make_app(produced))
    sockets = [await client.ws_connect("/ws") for _ in range(2)]
    for ws in sockets:
        await say_hello(ws)
    shutdown = asyncio.create_task(client.server.close())
    try:
        codes = [await closed_with(ws) for ws in sockets]
    finally:
        await shutdown
    assert codes == [1001, 1001]


async def test_a_hello_that_cannot_subscribe_to_live_traffic_says_so(client: TestClient, produced: Produced) -> None:
    class DownBus(InProcessBus):
        def subscribe(self, channel: str) -> Any:
            raise ConnectionError("redis is down")

    client.app[DEPS].bus = DownBus()
    async with client.ws_connect("/ws") as ws:
        error = await say_hello(ws)
        assert (error["type"], error["code"]) == ("error", "unavailable")
        assert (await send_message(ws, "m1"))["code"] == "not_ready", "no message without live delivery"
    assert produced.events == []


async def test_a_message_shows_at_once_on_the_users_other_sockets(client: TestClient) -> None:
    async with client.ws_connect("/ws") as phone, client.ws_connect("/ws") as laptop, \
            client.ws_connect("/ws") as elsewhere:
        await say_hello(phone, conversation_id="shared")
        await say_hello(laptop, conversation_id="shared")
        await say_hello(elsewhere, conversation_id="another")
        await phone.send_json({"type": "message", "id": "m-1", "text": "sent from the phone"})
        ack = await phone.receive_json(timeout=2)
        assert ack["type"] == "ack"
        shown = await laptop.receive_json(timeout=2)
        assert shown == {
            "type": "message", "message_id": ack["event_id"], "role": "user", "text": "sent from the phone",
            "in_reply_to": None, "created_at": shown["created_at"], "id": "m-1", "sender": "",
        }
        # the sender has its ack (then the typing frame), not its own message back
        assert (await phone.receive_json(timeout=2))["type"] == "typing"
        with pytest.raises(asyncio.TimeoutError):
            await phone.receive_json(timeout=0.3)
        with pytest.raises(asyncio.TimeoutError):
            await elsewhere.receive_json(timeout=0.3)


async def test_a_bus_that_does_not_answer_holds_the_sender_at_most_a_moment(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import parley.web.ws

    async def hangs(channel: str, frame: dict[str, Any]) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(parley.web.ws, "SHOW_TIMEOUT_S", 0.2)
    monkeypatch.setattr(client.app[DEPS].bus, "publish", hangs)
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws, conversation_id="shared")
        await ws.send_json({"type": "message", "id": "m-1", "text": "hello"})
        assert (await ws.receive_json(timeout=2))["type"] == "ack"
        assert (await ws.receive_json(timeout=2))["type"] == "typing"
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json(timeout=2) == {"type": "pong"}
    assert "not shown live on other sockets" in caplog.text


async def test_an_anonymous_socket_there_first_stops_following_at_the_signed_in_users_message(
    client: TestClient,
) -> None:
    async with client.ws_connect("/ws") as anonymous, client.ws_connect("/ws") as alice:
        assert (await say_hello(anonymous, "open", "c-fixed"))["type"] == "ready"
        await say_hello(alice, "open", "c-fixed", token=token_for("open", "alice"))
        await alice.send_json({"type": "message", "id": "m-1", "text": "my address is ..."})
        assert (await alice.receive_json(timeout=2))["type"] == "ack"
        error = await anonymous.receive_json(timeout=2)
        assert (error["type"], error["code"]) == ("error", "forbidden_conversation")
        assert "my address" not in json.dumps(error)
        await anonymous.send_json({"type": "message", "id": "m-2", "text": "still here?"})
        assert (await anonymous.receive_json(timeout=2))["code"] == "not_ready"


async def test_an_anonymous_message_under_a_users_name_is_not_theirs(
    client: TestClient, produced: Produced
) -> None:
    async with client.ws_connect("/ws") as mallory:
        await say_hello(mallory, "open", "c-planted")
        await mallory.send_json({"type": "message", "id": "m-1", "text": "hi", "sender": "alice"})
        assert (await mallory.receive_json(timeout=2))["type"] == "ack"
    client.app[DEPS].archive.messages.extend(documents_for_incoming(produced.events[-1]))
    async with client.ws_connect("/ws") as alice:
        error = await say_hello(alice, "open", "c-planted", token=token_for("open", "alice"))
        assert (error["type"], error["code"]) == ("error", "forbidden_conversation")


async def test_a_socket_sending_garbage_is_closed_with_1008_and_others_are_unaffected(
    aiohttp_client: ClientFactory, produced: Produced
) -> None:
    client = await aiohttp_client(make_app(produced))
    async with client.ws_connect("/ws") as bystander, client.ws_connect("/ws") as ws:
        assert (await say_hello(bystander))["type"] == "ready"
        kinds = ("not json", '{"type": "nonsense"}', b"\x00binary", "[1, 2]")
        for index in range(2000):
            try:
                frame = kinds[index % len(kinds)]
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            except ConnectionError:
                break  # the server closed the socket
        errors: list[dict[str, Any]] = []
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
            errors.append(json.loads(msg.data))
        assert ws.close_code == 1008
        assert len(errors) < 100, f"{len(errors)} replies before the close"
        assert errors[-1]["code"] == "too_many_bad_frames"
        assert {e["code"] for e in errors[:-1]} <= {"invalid_json", "unknown_type", "invalid_frame", "invalid_request"}
        # the other socket goes on
        await bystander.send_json({"type": "ping"})
        assert (await bystander.receive_json(timeout=2)) == {"type": "pong"}
        assert (await send_message(bystander, "m1"))["type"] == "ack"


async def test_pings_count_against_the_frame_rate(aiohttp_client: ClientFactory, produced: Produced) -> None:
    client = await aiohttp_client(make_app(produced, ws_frames_per_minute=6, ws_frame_burst=3, ws_bad_frame_burst=2))
    async with client.ws_connect("/ws") as ws:
        for _ in range(3):
            await ws.send_json({"type": "ping"})
            assert (await ws.receive_json(timeout=2)) == {"type": "pong"}
        await ws.send_json({"type": "ping"})
        error = await ws.receive_json(timeout=2)
        assert (error["code"], error["type"]) == ("rate_limited", "error") and 5 < error["retry_after"] <= 10
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=2))["code"] == "rate_limited"
        await ws.send_json({"type": "ping"})  # the third frame over the rate: too many bad frames
        assert (await ws.receive_json(timeout=2))["code"] == "too_many_bad_frames"
        assert (await ws.receive(timeout=2)).type == WSMsgType.CLOSE
        assert ws.close_code == 1008
