"""The widget's edges: its public presentation endpoint, the panel's framing policy, the stop
frame, and error frames that name the message they refuse."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from parley.config.models import ApplicationConfig, ChatbotConfig
from parley.records import KIND_STOP
from parley.settings import Settings
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from parley.web.widget import strings
from tests.support.produced import Produced
from tests.support.webdeps import NoFiles, web_deps
from tests.web.test_ws_gateway import ClientFactory, Documents, make_app, say_hello
from tests.web.test_ws_gateway import Configs as GatewayConfigs

SHOP = ApplicationConfig(
    application_id="shop", callback_url=None, chatbot=ChatbotConfig(), name="Shop",
    allowed_origins=("https://shop.example",),
    widget={"display_name": "Shop helper", "accent_color": "#0a7d4f", "language": "fr"},
)


class Configs:
    async def application(self, application_id: str) -> ApplicationConfig | None:
        return SHOP if application_id == "shop" else None

    async def application_document(self, application_id: str) -> dict[str, Any] | None:
        return None


async def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


def widget_app() -> web.Application:
    return create_web_app(settings=Settings(max_text_bytes=64), deps=web_deps(configs=Configs()),
                          ingress=Ingress(Produced(), timeout_s=1), readiness=_ready)


async def test_the_presentation_endpoint_gives_only_the_widget_fields(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(widget_app())
    response = await client.get("/v1/widget/shop")
    assert response.status == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    body = await response.json()
    assert body == {
        "application_id": "shop", "display_name": "Shop helper", "avatar_url": None, "accent_color": "#0a7d4f",
        "welcome_message": strings()["fr"]["welcome"], "placeholder": strings()["fr"]["placeholder"],
        "language": "fr", "max_text_bytes": 64, "strings": strings()["fr"],
    }
    missing = await client.get("/v1/widget/nope")
    assert missing.status == 404 and (await missing.json())["code"] == "unknown_application"
    assert (await missing.json())["strings"] == strings()["en"]  # so the widget can say so in words
    malformed = await client.get("/v1/widget/%C2%BA%3C%C3%BE")
    assert malformed.status == 400 and (await malformed.json())["code"] == "invalid_field"


async def test_the_panel_may_be_framed_only_by_the_allowed_origins(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(widget_app())
    panel = await client.get("/widget/panel?application=shop&embed=1")
    assert panel.status == 200
    assert panel.headers["Content-Security-Policy"] == "frame-ancestors 'self' https://shop.example"
    for path in ("/favicon.ico", "/favicon.svg", "/widget.js", "/"):
        assert (await client.get(path)).status == 200, path


def test_every_language_has_every_word() -> None:
    words = strings()
    assert set(words) == {"en", "fr"}
    assert set(words["fr"]) == set(words["en"])


async def test_an_error_caused_by_a_message_carries_its_id(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(make_app(Produced()))
    async with client.ws_connect("/ws") as ws:
        assert (await say_hello(ws))["type"] == "ready"
        await ws.send_json({"type": "message", "id": "m-long", "text": "x" * 100})  # over max_text_bytes=64
        error = await ws.receive_json(timeout=2)
        assert (error["type"], error["id"]) == ("error", "m-long")
        await ws.send_json({"type": "message", "id": "m-bad", "text": 5})
        assert (await ws.receive_json(timeout=2))["id"] == "m-bad"


async def test_a_stop_frame_becomes_a_stop_event_keyed_by_the_conversation(aiohttp_client: ClientFactory) -> None:
    produced = Produced()
    client = await aiohttp_client(make_app(produced))
    async with client.ws_connect("/ws") as ws:
        await ws.send_json({"type": "stop"})
        assert (await ws.receive_json(timeout=2))["code"] == "not_ready"
        assert (await say_hello(ws))["type"] == "ready"
        await ws.send_json({"type": "stop", "message_id": "reply-1"})
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json(timeout=2))["type"] == "pong"
    [event] = produced.events
    assert (event.kind, event.turn_id, event.conversation_id, event.application_id) == (KIND_STOP, "reply-1", "c1", "demo")


class LinkingFiles(NoFiles):
    """Links every file; one of them cannot be linked (the store is down for it)."""

    async def presigned_url(self, key: str, expires_s: int) -> str:
        if key == "demo/broken.png":
            raise ConnectionError("file store down")
        return f"https://files.example/{key}?expires={expires_s}"


async def test_resumed_images_carry_a_link_for_thumbnails(aiohttp_client: ClientFactory) -> None:
    archive = Documents()
    archive.messages.append({
        "_id": "u1", "application_id": "demo", "conversation_id": "c1", "role": "user", "created_at": 1.0,
        "order": 0, "text": "look", "client_message_id": "m-1", "attachments": [
            {"file_id": "demo/a.png", "content_type": "image/png", "size": 10, "name": "a.png"},
            {"file_id": "demo/b.pdf", "content_type": "application/pdf", "size": 20, "name": "b.pdf"},
            {"file_id": "demo/broken.png", "content_type": "image/png", "size": 30, "name": "broken.png"},
        ]})
    app = create_web_app(settings=Settings(files_url_expiry_s=600), deps=web_deps(configs=GatewayConfigs(), archive=archive,
                         files=LinkingFiles()), ingress=Ingress(Produced(), timeout_s=1), readiness=_ready)
    client = await aiohttp_client(app)
    async with client.ws_connect("/ws") as ws:
        await say_hello(ws, history=True)
        assert (await ws.receive_json(timeout=2))["type"] == "resume"
        message = await ws.receive_json(timeout=2)
    assert message["attachments"] == [
        {"name": "a.png", "content_type": "image/png", "size": 10, "url": "https://files.example/demo/a.png?expires=600"},
        {"name": "b.pdf", "content_type": "application/pdf", "size": 20},
        {"name": "broken.png", "content_type": "image/png", "size": 30},
    ]


async def test_stop_frames_have_a_rate_limit(aiohttp_client: ClientFactory) -> None:
    produced = Produced()
    client = await aiohttp_client(make_app(produced, ws_messages_per_minute=6, ws_message_burst=2))
    async with client.ws_connect("/ws") as ws:
        assert (await say_hello(ws))["type"] == "ready"
        for _ in range(3):
            await ws.send_json({"type": "stop"})
        refused = await ws.receive_json(timeout=2)
    assert refused["code"] == "rate_limited" and refused["retry_after"] > 0
    assert len(produced.events) == 2
