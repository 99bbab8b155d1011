"""Who may use the console's operations endpoints (parley.web.access): viewers read, admins
write for their own applications, every write is audited, and a session cookie alone (no CSRF
token) writes nothing. Real accounts (``parley.users``) on the embedded document server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.config.store import ConfigStore
from parley.ops.dlq_desk import DeadLetterService
from parley.settings import Settings
from parley.storage.cache import InMemoryCache
from parley.storage.documents import DocumentStore
from parley.users.service import user_service
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.ops.fakes import FakeSink, FakeTopic
from tests.support.webapp import always_ready
from tests.support.webdeps import web_deps
from tests.web.test_conversations_api import Produced, archive, user
from tests.web.test_deadletters_api import ORIGINAL, letter

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]
BASE = "/v1/admin/applications/shop/conversations/c1"


def opener(thing: Any) -> Callable[[], contextlib.AbstractAsyncContextManager[Any]]:
    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[Any]:
        yield thing

    return opened


class World:
    def __init__(self, client: TestClient, users: Any, produced: Produced, documents: DocumentStore) -> None:  # noqa: F811
        self.client, self.users, self.produced, self.documents = client, users, produced, documents
        self.tokens: dict[str, dict[str, str]] = {}

    async def person(self, label: str, role: str, applications: list[str] | None) -> dict[str, Any]:
        account = await self.users.accounts.create_user(
            email=f"{label}@example.com", name=label.title(), role=role, applications=applications, password="correct horse battery",
        )
        _, secret = await self.users.accounts.create_token(account, {"name": "console tests"})
        self.tokens[label] = {"Authorization": f"Bearer {secret}"}
        return dict(account)

    async def status(self, label: str, method: str, path: str, **kwargs: Any) -> int:
        response = await self.client.request(method, path, headers=self.tokens[label], **kwargs)
        return response.status


@pytest.fixture
async def world(aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore) -> World:  # noqa: F811
    await documents.put_application({"_id": "shop", "chatbot_id": "demo"})
    await documents.put_application({"_id": "other", "chatbot_id": "demo"})
    await archive(documents, user("c1", "u1", "hello", 10.0))
    users = user_service(documents, InMemoryCache(), settings)
    await users.start()
    topic = FakeTopic(partitions=1)
    topic.append(0, letter("dl-shop", key="shop/c1", failed_at=1.0, original=ORIGINAL))
    topic.append(0, letter("dl-other", key="other/c2", failed_at=2.0, original=ORIGINAL))
    desk = DeadLetterService(documents.database, source=opener(topic), sink=opener(FakeSink()))
    produced = Produced()
    deps = web_deps(
        configs=ConfigStore(documents, settings), documents=documents, archive=documents, users=users, dead_letters=desk,
    )
    app = create_web_app(settings=settings, deps=deps, ingress=Ingress(produced, timeout_s=2), readiness=always_ready)
    world = World(await aiohttp_client(app), users, produced, documents)
    await world.person("vera", "viewer", None)
    await world.person("otto", "admin", ["other"])
    await world.person("ada", "admin", ["shop"])
    return world


async def test_a_viewer_reads_but_cannot_take_over_write_replay_or_purge(world: World) -> None:
    assert await world.status("vera", "GET", "/v1/admin/applications/shop/conversations") == 200
    assert await world.status("vera", "GET", BASE) == 200
    assert await world.status("vera", "GET", "/v1/admin/dead-letters/dl-shop") == 200
    assert await world.status("vera", "GET", "/v1/admin/overview") == 200
    for method, path, body in [
        ("POST", f"{BASE}/handoff", None), ("DELETE", f"{BASE}/handoff", None),
        ("POST", f"{BASE}/messages", {"text": "hi"}),
        ("POST", "/v1/admin/dead-letters/dl-shop/replay", None), ("DELETE", "/v1/admin/dead-letters/dl-shop", None),
    ]:
        assert await world.status("vera", method, path, json=body) == 403, (method, path)
    assert world.produced.events == []


async def test_an_admin_of_another_application_sees_and_changes_nothing_of_this_one(world: World) -> None:
    assert await world.status("otto", "GET", "/v1/admin/applications/shop/conversations") == 403
    assert await world.status("otto", "GET", BASE) == 403
    assert await world.status("otto", "POST", f"{BASE}/handoff") == 403
    assert await world.status("otto", "GET", "/v1/admin/dead-letters/dl-shop") == 403
    assert await world.status("otto", "POST", "/v1/admin/dead-letters/dl-shop/replay") == 403
    listed = await world.client.get("/v1/admin/dead-letters", headers=world.tokens["otto"])
    assert [i["dead_letter_id"] for i in (await listed.json())["items"]] == ["dl-other"]
    assert world.produced.events == []


async def test_an_admin_takes_over_as_themselves_and_every_write_is_audited(world: World) -> None:
    response = await world.client.post(f"{BASE}/handoff", headers=world.tokens["ada"])
    assert response.status == 200
    handoff = (await response.json())["handoff"]
    ada = await world.users.accounts.find_user("ada@example.com")
    assert (handoff["operator_id"], handoff["operator_name"]) == (ada["_id"], "Ada")
    [(_, event)] = world.produced.events
    assert (event.operator_id, event.operator_name) == (ada["_id"], "Ada")
    assert await world.status("ada", "POST", f"{BASE}/messages", json={"text": "Ada here"}) == 202
    assert await world.status("ada", "DELETE", f"{BASE}/handoff") == 200
    assert await world.status("ada", "POST", "/v1/admin/dead-letters/dl-shop/replay") == 200
    assert await world.status("ada", "DELETE", "/v1/admin/dead-letters/dl-shop") == 200
    entries, _ = await world.users.audit.list(scope=None, everything=True)
    assert [(e["action"], e["kind"], e["actor"]["email"]) for e in reversed(entries)] == [
        ("take_over", "conversation", "ada@example.com"),
        ("send_message", "conversation", "ada@example.com"),
        ("hand_back", "conversation", "ada@example.com"),
        ("replay", "dead_letter", "ada@example.com"),
        ("purge", "dead_letter", "ada@example.com"),
    ]
    assert all(e["application_ids"] == ["shop"] for e in entries)


async def test_a_session_cookie_without_its_csrf_token_takes_nothing_over(world: World) -> None:
    ada = await world.users.accounts.find_user("ada@example.com")
    session, secret = await world.users.accounts.open_session(ada, "127.0.0.1")
    cookie = {"Cookie": f"parley_session={secret}"}
    refused = await world.client.post(f"{BASE}/handoff", headers=cookie)
    assert refused.status == 403 and (await refused.json())["code"] == "csrf_required"
    assert world.produced.events == []
    read = await world.client.get(BASE, headers=cookie)
    assert read.status == 200
    taken = await world.client.post(f"{BASE}/handoff", headers={**cookie, "X-CSRF-Token": session.csrf_token})
    assert taken.status == 200 and len(world.produced.events) == 1
