"""Delivery dispatches a reply by its channel: websocket over the bus, platforms through their
send API with the application document's credentials."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from parley.channels.base import DeliveryRefused
from parley.records import ReplyEvent
from parley.settings import Settings
from parley.streams.delivery import DeliveryPorts, deliver
from tests.channels import test_slack as slack
from tests.channels import test_telegram as telegram
from tests.channels import test_whatsapp as whatsapp
from tests.channels.conftest import FakeAPI
from tests.support.stores import DocumentConfigs


class Documents:
    def __init__(self, applications: dict[str, dict[str, Any]]) -> None:
        self.applications = applications

        self.delivered: dict[str, float] = {}

    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        return self.applications.get(application_id)

    async def was_delivered(self, message_id: str) -> bool:
        return message_id in self.delivered

    async def mark_delivered(self, message_id: str, at: float) -> None:
        self.delivered[message_id] = at


class Runtime:
    def __init__(self, http: aiohttp.ClientSession, applications: dict[str, dict[str, Any]]) -> None:
        self.http = http
        self.documents = Documents(applications)
        self.configs = DocumentConfigs(self.documents)
        self.published: list[tuple[str, str, dict[str, Any]]] = []

    async def publish(self, application_id: str, conversation_id: str, frame: dict[str, Any]) -> None:
        self.published.append((application_id, conversation_id, frame))

    def ports(self) -> DeliveryPorts:
        return DeliveryPorts(publish=self.publish, applications=self.configs, ledger=self.documents, http=self.http)


SETTINGS = Settings(delivery_timeout_s=2.0, delivery_max_attempts=2)


def reply(channel: str, conversation_id: str, application_id: str = "app", **extra: Any) -> ReplyEvent:
    return ReplyEvent(
        event_id="r-1", conversation_id=conversation_id, application_id=application_id,
        created_at=time.time(), text="Hi!", channel=channel, in_reply_to="e-1", **extra,
    )


@pytest.fixture
def runtime(session: aiohttp.ClientSession, api: FakeAPI) -> Runtime:
    channels = {
        **telegram.with_api(api.base)["channels"],
        **whatsapp.with_api(api.base)["channels"],
        **slack.with_api(api.base)["channels"],
    }
    return Runtime(session, {
        "app": {"_id": "app", "channels": channels, "callback_url": f"{api.base}/hook"},
        "bare": {"_id": "bare"},
    })


@pytest.mark.parametrize(
    ("channel", "conversation_id", "path", "payload"),
    [
        ("telegram", "telegram:42", f"/bot{telegram.TOKEN}/sendMessage", {"chat_id": 42, "text": "Hi!"}),
        ("whatsapp", "whatsapp:16505551234", f"/{whatsapp.PHONE_NUMBER_ID}/messages", {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
            "type": "text", "text": {"preview_url": False, "body": "Hi!"},
        }),
        ("slack", "slack:C1:1.2", "/chat.postMessage", {"channel": "C1", "text": "Hi!", "thread_ts": "1.2"}),
    ],
)
async def test_platform_replies_go_to_the_platform(
    runtime: Runtime, api: FakeAPI, channel: str, conversation_id: str, path: str, payload: dict[str, Any]
) -> None:
    await deliver(reply(channel, conversation_id), runtime.ports(), SETTINGS)
    [request] = api.requests
    assert (request["path"], request["json"]) == (path, payload)
    assert runtime.published == []


async def test_generic_replies_go_to_the_callback_url(runtime: Runtime, api: FakeAPI) -> None:
    await deliver(reply("generic", "order-1"), runtime.ports(), SETTINGS)
    [request] = api.requests
    assert request["path"] == "/hook" and request["json"]["message_id"] == "r-1"


async def test_a_generic_reply_is_marked_delivered_only_when_a_callback_took_it(
    runtime: Runtime, api: FakeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    await deliver(reply("generic", "order-1"), runtime.ports(), SETTINGS)
    assert list(runtime.documents.delivered) == ["r-1"]
    # an application without a callback_url: archived only, nothing sent, and no mark either
    # (the console would say "delivered")
    runtime.documents.delivered.clear()
    with caplog.at_level("WARNING"):
        await deliver(reply("generic", "order-2", application_id="bare"), runtime.ports(), SETTINGS)
    assert len(api.requests) == 1 and runtime.documents.delivered == {}
    assert "no callback_url: reply r-1 archived only" in caplog.text


async def test_websocket_replies_go_over_the_bus(runtime: Runtime, api: FakeAPI) -> None:
    await deliver(reply("websocket", "c1"), runtime.ports(), SETTINGS)
    [(application_id, conversation_id, frame)] = runtime.published
    assert (application_id, conversation_id, frame["message_id"], frame["text"]) == ("app", "c1", "r-1", "Hi!")
    assert api.requests == []


async def test_a_replayed_reply_is_not_delivered(runtime: Runtime, api: FakeAPI) -> None:
    await deliver(reply("telegram", "telegram:42", replay_id="rp-1", deliver=False), runtime.ports(), SETTINGS)
    assert api.requests == []


async def test_a_platform_4xx_is_raised_for_the_dead_letters(runtime: Runtime, api: FakeAPI) -> None:
    api.default = (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, {})
    with pytest.raises(DeliveryRefused, match="blocked"):
        await deliver(reply("telegram", "telegram:42"), runtime.ports(), SETTINGS)
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("channel", "conversation_id", "application_id"),
    [("telegram", "telegram:42", "bare"), ("carrier-pigeon", "c1", "app"), ("slack", "telegram:42", "app")],
)
async def test_undeliverable_replies_are_refused(
    runtime: Runtime, api: FakeAPI, channel: str, conversation_id: str, application_id: str
) -> None:
    with pytest.raises(DeliveryRefused):
        await deliver(reply(channel, conversation_id, application_id), runtime.ports(), SETTINGS)
    assert api.requests == []


async def test_a_reply_for_a_deleted_application_is_archived_only(runtime: Runtime, api: FakeAPI) -> None:
    await deliver(reply("telegram", "telegram:42", "deleted"), runtime.ports(), SETTINGS)
    assert api.requests == []


async def test_a_reply_already_delivered_is_not_sent_again(runtime: Runtime, api: FakeAPI) -> None:
    await deliver(reply("generic", "order-1"), runtime.ports(), SETTINGS)
    await deliver(reply("generic", "order-1"), runtime.ports(), SETTINGS)  # the outgoing event, redelivered
    assert len(api.requests) == 1
    assert "r-1" in runtime.documents.delivered
